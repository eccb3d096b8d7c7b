"""Task datasets: determinism, shapes, leak-free splits, information-free gaps."""
import math
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeClassifier

from lib.errors import ConfigError
from lib.tasks import CLASSIFICATION, REGRESSION, TASKS, make_dataset, task_dict, task_from_dict
from lib.tasks.adding import AddingConfig, make_adding
from lib.tasks.copy_memory import CopyMemoryConfig, make_copy_memory
from lib.tasks.forecast import MIN_WINDOWS, forecast_splits, min_length, naive_baselines, seasonal_lag, segment_sizes
from lib.tasks.sine import SineConfig, make_sine, sine_series
from lib.tasks.text import TextRecallConfig, make_text_recall, vocabulary, word_lists
from lib.tasks.user.arrays import from_series
from lib.tasks.video import DIGIT, VideoConfig, clip_frames, digit_images, image_split, make_video
from lib.train import loss_fn


def raises(message: str):
    """pytest.raises for a ConfigError whose message is exactly `message`."""
    return pytest.raises(ConfigError, match="^" + re.escape(message) + "$")


def same_tensors(a, b) -> bool:
    return all(torch.equal(getattr(a, s).x, getattr(b, s).x) and torch.equal(getattr(a, s).y, getattr(b, s).y)
               for s in ("train", "val", "test"))


# ---------------------------------------------------------------- text recall

TINY_TEXT = TextRecallConfig(distance=4, distance_max=7, n_train=50, n_val=10, n_test=10, seed=3)


def test_text_recall_is_deterministic_in_its_seed():
    a, b = make_text_recall(TINY_TEXT), make_text_recall(TINY_TEXT)
    c = make_text_recall(TextRecallConfig(**{**TINY_TEXT.__dict__, "seed": 4}))
    assert same_tensors(a, b)
    assert not torch.equal(a.train.x, c.train.x)


def test_text_recall_opens_each_sentence_with_the_cue_that_decides_the_answer():
    ds = make_text_recall(TINY_TEXT)
    vocab, pairs = vocabulary(), word_lists()["pairs"]
    cues = [c for c, _ in pairs]
    assert ds.class_names == tuple(a for _, a in pairs)
    assert ds.chance == pytest.approx(1 / len(pairs))
    for x, y, d in zip(ds.train.x, ds.train.y, ds.train.distance, strict=True):
        words = [vocab[i] for i in x.tolist() if i != 0]  # left padding removed: the cue is first
        assert words[0] == cues[int(y)]
        assert words[-2:] == word_lists()["closing"]
        assert len(words) == 3 + int(d) + 2
        assert 4 <= int(d) <= 7
    assert ds.train.x.dtype == torch.int64 and ds.train.x.shape == (50, 3 + 7 + 2)
    assert ds.cue_lag is None  # distances vary, so no single window reaches every cue


def test_text_recall_next_word_targets_are_the_input_shifted_with_the_answer_last():
    cfg = TextRecallConfig(distance=3, objective="next_word", n_train=20, n_val=10, n_test=10)
    ds = make_text_recall(cfg)
    vocab, x, y = vocabulary(), ds.train.x, ds.train.y
    answer = {vocab.index(c): vocab.index(a) for c, a in word_lists()["pairs"]}
    assert ds.per_step and y.shape == x.shape
    assert torch.equal(y[:, :-1][x[:, :-1] != 0], x[:, 1:][x[:, :-1] != 0])
    assert (y[x == 0] == -100).all()
    first = (x != 0).int().argmax(dim=1)
    assert [int(t) for t in y[:, -1]] == [answer[int(x[i, first[i]])] for i in range(len(x))]


@pytest.mark.parametrize("cues", [2, 4, 6])
def test_cue_words_set_the_classes_and_chance(cues):
    ds = make_text_recall(TextRecallConfig(distance=3, cues=cues, n_train=300, n_val=60, n_test=60))
    pairs = word_lists()["pairs"][:cues]
    assert ds.n_outputs == cues and ds.chance == pytest.approx(1 / cues)
    assert ds.class_names == tuple(answer for _, answer in pairs)
    assert set(ds.train.y.tolist()) == set(range(cues))
    first = ds.train.x[:, 0].tolist()  # the cue word opens every sentence (no padding at one distance)
    assert {vocabulary()[t] for t in first} == {cue for cue, _ in pairs}


def test_with_two_cue_words_the_cue_decides_and_everything_else_is_at_chance():
    ds = make_text_recall(TextRecallConfig(distance=5, cues=2, n_train=1000, n_val=100, n_test=1000))
    onehot = lambda x: np.eye(len(vocabulary()))[x.numpy()].reshape(len(x), -1)  # noqa: E731
    seen = RidgeClassifier().fit(onehot(ds.train.x[:, :1]), ds.train.y).score(onehot(ds.test.x[:, :1]), ds.test.y)
    blind = RidgeClassifier().fit(onehot(ds.train.x[:, 1:]), ds.train.y).score(onehot(ds.test.x[:, 1:]), ds.test.y)
    assert seen == 1.0
    assert abs(blind - 0.5) < 3 * (0.25 / 1000) ** 0.5 + 0.02  # chance 1/2, within sampling noise


def test_the_default_cue_words_are_every_pair_of_the_word_list():
    assert TextRecallConfig().cues == len(word_lists()["pairs"])
    with pytest.raises(ConfigError, match=r"^cue words \(cues\) must be between 2 and 6, got 7\.$"):
        TextRecallConfig(cues=7).validate()


@pytest.mark.parametrize("change, message", [
    ({"distance": 201}, "distance must be between 0 and 200 filler words, got 201."),
    ({"distance_max": 3}, "distance_max must be between distance (20) and 200, got 3."),
    ({"objective": "guess"}, "objective must be 'classify' or 'next_word', got 'guess'."),
    ({"n_test": 100_001}, "test sentences (n_test) must be between 10 and 100000, got 100001."),
    ({"seed": -1}, "data seed (seed) must be at least 0, got -1."),
])
def test_text_recall_config_errors_say_what_to_change(change, message):
    with raises(message):
        TextRecallConfig(**change).validate()


# ---------------------------------------------------------------- sine

TINY_SINE = SineConfig(length=600, seq_len=30)


def test_sine_is_deterministic_in_its_seed():
    a, b = make_sine(TINY_SINE), make_sine(TINY_SINE)
    c = make_sine(SineConfig(length=600, seq_len=30, seed=1))
    assert same_tensors(a, b) and a.baselines == b.baselines
    assert not torch.equal(a.train.x, c.train.x)


def test_sine_shapes_and_spec():
    ds = make_sine(SineConfig(length=1000, seq_len=30, horizon=2))
    assert ds.kind == REGRESSION and ds.n_outputs == 1 and ds.n_features == 1 and ds.seq_len == 30
    assert ds.train.x.shape == (700 - 30 - 2 + 1, 30, 1) and ds.train.x.dtype == torch.float32
    assert ds.test.y.shape == (150 - 30 - 2 + 1,) and ds.test.y.dtype == torch.float32
    assert ds.cue_lag == 24 and (ds.test.distance == 24).all()
    assert set(ds.baselines) == {"last_value_mse", "last_value_mae",
                                 "seasonal_naive_mse", "seasonal_naive_mae"}


def test_sine_windows_are_chronological_and_never_cross_a_split():
    cfg = SineConfig(length=1000, seq_len=30, horizon=3)
    ds, series = make_sine(cfg), sine_series(cfg).astype(np.float32)
    starts = {"train": 0, "val": 700, "test": 850}
    for name, start in starts.items():
        split = getattr(ds, name)
        for i in (0, len(split) - 1):
            assert np.array_equal(split.x[i, :, 0].numpy(), series[start + i:start + i + 30])
            assert split.y[i].item() == series[start + i + 29 + 3]
    train_values = set(ds.train.x.flatten().tolist()) | set(ds.train.y.tolist())
    for name in ("val", "test"):  # noise makes every value unique: no shared value means no shared step
        split = getattr(ds, name)
        assert train_values.isdisjoint(set(split.x.flatten().tolist()) | set(split.y.tolist()))
    assert set(ds.val.y.tolist()).isdisjoint(ds.test.x.flatten().tolist())


def test_naive_baselines_on_a_hand_checked_series():
    series = np.arange(10.0) ** 2  # 0 1 4 9 16 25 36 49 64 81
    # segment from 6: windows [36, 49] -> 64 and [49, 64] -> 81; last values 49, 64; a period back 25, 36
    b = naive_baselines(series, start=6, window=2, horizon=1, period=3)
    assert b == {"last_value_mse": (15 ** 2 + 17 ** 2) / 2, "last_value_mae": 16.0,
                 "seasonal_naive_mse": (39 ** 2 + 45 ** 2) / 2, "seasonal_naive_mae": 42.0}
    assert seasonal_lag(3, 4) == 6 and seasonal_lag(24, 1) == 24  # never a value after the window's end
    far = naive_baselines(np.arange(20.0), start=10, window=2, horizon=4, period=3)
    assert far == {"last_value_mse": 16.0, "last_value_mae": 4.0, "seasonal_naive_mse": 36.0,
                   "seasonal_naive_mae": 6.0}


def test_sine_baselines_match_the_test_split():
    ds = make_sine(TINY_SINE)
    err = ds.test.x[:, -1, 0].double() - ds.test.y.double()
    assert ds.baselines["last_value_mse"] == pytest.approx(float((err ** 2).mean()), rel=1e-5)
    assert ds.baselines["last_value_mae"] == pytest.approx(float(err.abs().mean()), rel=1e-5)
    lag = make_sine(SineConfig(length=600, seq_len=30, horizon=1, noise=0.0))  # periods 24 and 8: exact
    assert lag.baselines["seasonal_naive_mse"] == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize("change, message", [
    ({"periods": (24.0, 8.0, 5.0, 3.0), "amplitudes": (1.0,) * 4}, "give 1 to 3 periods, got 4."),
    ({"amplitudes": (1.0,)}, "give one amplitude per period: 2 period(s) but 1 amplitude(s)."),
    ({"periods": (1.5,), "amplitudes": (1.0,)},
     "each period must be between 2 steps and a tenth of the series (500 steps), got 1.5; shorten the "
     "period or lengthen the series."),
    ({"seq_len": 20}, "seq_len must be between the main period (24 steps, so a window can span one cycle) "
                      "and 1000, got 20."),
    ({"length": 383}, "a series of 383 values is too short for seq_len 48 and horizon 1: the smallest "
                      "segment must hold 10 windows, so use length >= 384 or a shorter seq_len / horizon."),
    ({"noise": -1.0}, "noise must be between 0 and 10, got -1."),
    ({"seed": -1}, "data seed (seed) must be at least 0, got -1."),
])
def test_sine_config_errors_say_what_to_change(change, message):
    SineConfig(length=384).validate()  # the boundary: one value more is enough (58 in val and test)
    with raises(message):
        SineConfig(**change).validate()


# ---------------------------------------------------------------- video

TINY_VIDEO = VideoConfig(gap=4, n_train=60, n_val=20, n_test=30)


@pytest.fixture(scope="module")
def tiny_video():
    return make_video(TINY_VIDEO)


def test_video_is_deterministic_in_its_seed(tiny_video):
    assert same_tensors(tiny_video, make_video(TINY_VIDEO))
    other = make_video(VideoConfig(gap=4, n_train=60, n_val=20, n_test=30, seed=1))
    assert not torch.equal(tiny_video.train.x, other.train.x)


def test_video_shapes_and_spec(tiny_video):
    ds = tiny_video
    assert ds.kind == CLASSIFICATION and ds.n_outputs == 10 and ds.seq_len == 3 + 4
    assert ds.train.x.shape == (60, 7, 12 * 12) and ds.train.x.dtype == torch.float32
    assert ds.test.y.shape == (30,) and ds.test.y.dtype == torch.int64
    assert (ds.test.distance == 4).all() and ds.cue_lag == 5
    counts = torch.bincount(ds.test.y, minlength=10)
    assert ds.chance == pytest.approx(float(counts.max()) / 30)
    assert float(ds.train.x.min()) >= 0.0 and float(ds.train.x.max()) <= 1.0


def test_video_splits_use_disjoint_digit_images_and_test_clips_show_test_images():
    split = image_split(0)
    assert sum(len(v) for v in split.values()) == len(digit_images()[1])
    assert not set(split["train"]) & set(split["test"]) and not set(split["val"]) & set(split["test"])
    images, labels = digit_images()
    ds = make_video(TINY_VIDEO)
    for i in range(10):  # find the digit in the first frame: it must be an unseen (test) image of the label
        frame = clip_frames(TINY_VIDEO, "test", i)[0]
        room = TINY_VIDEO.canvas - DIGIT
        found = {int(k) for r in range(room + 1) for c in range(room + 1)
                 for k in np.flatnonzero((images == frame[r:r + DIGIT, c:c + DIGIT]).all(axis=(1, 2)))}
        assert found and found <= set(split["test"])
        assert {int(labels[k]) for k in found} == {int(ds.test.y[i])}


@pytest.mark.parametrize("mode", ["blank", "noise", "occluded"])
def test_clip_frames_redraws_the_dataset_inputs(mode):
    cfg = VideoConfig(gap=4, gap_mode=mode, n_train=60, n_val=20, n_test=30)
    ds = make_video(cfg)
    for split, i in (("train", 0), ("val", 7), ("test", 29)):
        frames = clip_frames(cfg, split, i)
        assert frames.shape == (7, 12, 12)
        assert np.array_equal(frames.reshape(7, -1), getattr(ds, split).x[i].numpy())


def test_gap_frames_show_nothing_of_the_digit():
    blank = make_video(VideoConfig(gap=4, gap_mode="blank", n_train=60, n_val=20, n_test=30))
    assert (blank.train.x[:, 3:] == 0).all()
    occluded = make_video(VideoConfig(gap=4, gap_mode="occluded", n_train=60, n_val=20, n_test=30))
    gap = occluded.train.x[:, 3:]  # a solid 8x8 block, the same for every digit: only its position varies
    assert ((gap == 0) | (gap == 1)).all() and (gap.sum(-1) == DIGIT * DIGIT).all()
    noise = make_video(VideoConfig(gap=4, gap_mode="noise", n_train=60, n_val=20, n_test=30))
    assert not torch.equal(noise.train.x[0, 3:], noise.train.x[1, 3:])


@pytest.mark.parametrize("mode", ["noise", "occluded"])
def test_a_classifier_on_gap_frames_alone_stays_at_chance(mode):
    cfg = VideoConfig(gap=2, gap_mode=mode, n_train=1500, n_val=10, n_test=1000)
    ds = make_video(cfg)
    clf = RidgeClassifier().fit(ds.train.x[:, 3:].flatten(1).numpy(), ds.train.y.numpy())
    accuracy = clf.score(ds.test.x[:, 3:].flatten(1).numpy(), ds.test.y.numpy())
    probe = RidgeClassifier().fit(ds.train.x[:, 0].numpy(), ds.train.y.numpy())
    seen = probe.score(ds.test.x[:, 0].numpy(), ds.test.y.numpy())  # the same probe on a visible frame
    assert accuracy <= ds.chance + 0.05
    assert seen >= 3 * ds.chance  # so the probe can learn when there is something to learn


def test_pca_features_are_fitted_on_training_frames_only():
    pixels = make_video(TINY_VIDEO)
    pca = make_video(VideoConfig(gap=4, n_train=60, n_val=20, n_test=30, features="pca", n_components=8))
    assert pca.train.x.shape == (60, 7, 8) and pca.n_features == 8
    reference = PCA(8, svd_solver="full").fit(pixels.train.x.flatten(0, 1).numpy())
    for split in ("train", "test"):
        expected = reference.transform(getattr(pixels, split).x.flatten(0, 1).numpy())  # (N*T, 8)
        got = getattr(pca, split).x.flatten(0, 1).numpy()
        signs = np.sign((expected * got).sum(axis=0))  # principal axes are defined up to sign
        np.testing.assert_allclose(got, expected * signs, atol=1e-4)
    on_test = PCA(8, svd_solver="full").fit(pixels.test.x.flatten(0, 1).numpy())
    assert not np.allclose(np.abs(on_test.components_), np.abs(reference.components_), atol=1e-3)


@pytest.mark.parametrize("change, message", [
    ({"gap": 101}, "gap must be between 0 and 100 frames, got 101."),
    ({"gap_mode": "fog"}, "gap frames show (gap_mode) must be one of 'blank', 'noise', 'occluded', got 'fog'."),
    ({"features": "hog"}, "frame features (features) must be 'pixels' or 'pca', got 'hog'."),
    ({"features": "pca", "n_components": 200},
     "n_components must be between 1 and the pixels per frame (144), got 200."),
    ({"n_train": 100_000, "n_val": 100_000, "n_test": 100_000, "gap": 100, "canvas": 32},
     "these clips' frames would take 117.9 GiB (limit 2 GiB); use fewer clips, a shorter gap or a "
     "smaller canvas."),
    ({"n_val": 9}, "validation clips (n_val) must be between 10 and 100000, got 9."),
    ({"seed": -1}, "data seed (seed) must be at least 0, got -1."),
])
def test_video_config_errors_say_what_to_change(change, message):
    with raises(message):
        VideoConfig(**change).validate()


def test_clip_frames_rejects_an_index_outside_the_split():
    with raises("index must be between 0 and 29 for the test split, got 30."):
        clip_frames(TINY_VIDEO, "test", 30)


def test_registry_builds_sine_and_video_by_name():
    assert {"sine", "video"} <= set(TASKS)
    assert make_dataset(task_from_dict({"name": "sine", "length": 600, "seq_len": 30})).name == "sine"
    video = task_from_dict({"name": "video", "gap": "1", "n_train": "10", "n_val": "10", "n_test": "10"}, text=True)
    assert video == VideoConfig(gap=1, n_train=10, n_val=10, n_test=10)
    assert make_dataset(video).name == "video"


TASK_NAMES = "text_recall, sine, video, adding, copy_memory, userdata"


@pytest.mark.parametrize("data, message", [
    ({"name": "music"}, f"unknown task 'music'; choose one of: {TASK_NAMES}."),
    ({"distance": 3}, f"unknown task None; choose one of: {TASK_NAMES}."),
    ({"name": "sine", "distance": 3}, "unknown parameter(s) for task 'sine': distance; valid: amplitudes, "
                                      "horizon, length, noise, periods, seed, seq_len."),
])
def test_task_from_dict_names_what_is_wrong(data, message):
    with raises(message):
        task_from_dict(data)


# ---------------------------------------------------------------- adding problem and copy memory

TINY_ADDING = AddingConfig(steps=9, n_train=50, n_val=10, n_test=10, seed=2)
TINY_COPY = CopyMemoryConfig(delay=5, n_train=50, n_val=10, n_test=10, seed=2)


@pytest.mark.parametrize("cfg", [TINY_ADDING, TINY_COPY])
def test_classic_benchmarks_are_deterministic_in_their_seed(cfg):
    a, b = make_dataset(cfg), make_dataset(cfg)
    c = make_dataset(replace(cfg, seed=3))
    assert same_tensors(a, b)
    assert not torch.equal(a.train.x, c.train.x)


def test_adding_marks_one_value_in_each_half_and_asks_for_their_sum():
    ds = make_adding(TINY_ADDING)
    x, y = ds.train.x, ds.train.y
    assert ds.kind == REGRESSION and x.shape == (50, 9, 2) and x.dtype == y.dtype == torch.float32
    assert ((x[..., 0] >= 0) & (x[..., 0] < 1)).all()
    marks = x[..., 1]
    assert (marks.sum(1) == 2).all() and (marks[:, :4].sum(1) == 1).all() and (marks[:, 4:].sum(1) == 1).all()
    torch.testing.assert_close(y, (x[..., 0] * marks).sum(1))
    first = marks.argmax(1)  # the first mark: what must be remembered longest
    assert torch.equal(ds.train.distance, 9 - 1 - first)
    assert ds.cue_lag is None and ds.baselines == {"do_nothing_mse": 1 / 6} and ds.do_nothing_loss == 1 / 6


def test_adding_do_nothing_mse_is_one_sixth():
    ds = make_adding(AddingConfig(steps=20, n_train=20_000, n_val=10, n_test=10))
    y = ds.train.y.double()
    assert float(y.mean()) == pytest.approx(1.0, abs=0.01)  # the do-nothing guess
    assert float(((y - 1) ** 2).mean()) == pytest.approx(1 / 6, abs=0.005)  # ± 4 standard errors


def test_copy_memory_follows_bai_et_al_layout():
    ds = make_copy_memory(TINY_COPY)
    x, y = ds.train.x, ds.train.y
    assert ds.per_step and ds.kind == CLASSIFICATION and x.shape == y.shape == (50, 25) and x.dtype == torch.int64
    assert ((x[:, :10] >= 1) & (x[:, :10] <= 8)).all()
    assert (x[:, 10:14] == 0).all() and (x[:, 14] == 9).all() and (x[:, 15:] == 0).all()  # delimiter at step T+10
    assert (y[:, :15] == 0).all() and torch.equal(y[:, 15:], x[:, :10])  # the symbols, in the last 10 steps
    assert ds.cue_lag == 5 + 11 == TINY_COPY.cue_lag  # from symbol i (step i) to its copy (step T + 10 + i)
    assert ds.vocab[0] == "blank" and ds.n_outputs == len(ds.vocab) == 10 and ds.chance == 1 / 8


@pytest.mark.parametrize("delay", [5, 30])
def test_copy_memory_do_nothing_loss_is_the_marginal_cross_entropy(delay):
    ds = make_copy_memory(CopyMemoryConfig(delay=delay, n_train=8000, n_val=10, n_test=10))
    y = ds.train.y  # (N, T + 20)
    counts = torch.stack([torch.bincount(col, minlength=10) for col in y.T]).double()  # (T + 20, 10)
    p = counts / counts.sum(1, keepdim=True)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(1).mean()  # the best guess of each step's class marginal
    assert ds.do_nothing_loss == pytest.approx(10 * math.log(8) / (delay + 20))
    assert float(entropy) == pytest.approx(ds.do_nothing_loss, rel=0.01)
    guess = torch.log(p.clamp_min(1e-12)).expand(len(y), -1, -1)  # that guess through lib.train's loss
    assert float(loss_fn(ds, guess.float(), y)) == pytest.approx(ds.do_nothing_loss, rel=0.01)


@pytest.mark.parametrize("cfg, message", [
    (AddingConfig(steps=1), "sequence length (steps) must be between 2 and 1000 steps, got 1."),
    (AddingConfig(n_train=9), "training sequences (n_train) must be between 10 and 100000, got 9."),
    (AddingConfig(seed=-1), "data seed (seed) must be at least 0, got -1."),
    (CopyMemoryConfig(delay=0), "delay must be between 1 and 1000 steps, got 0."),
    (CopyMemoryConfig(n_test=100_001), "test sequences (n_test) must be between 10 and 100000, got 100001."),
])
def test_classic_benchmark_config_errors_say_what_to_change(cfg, message):
    with raises(message):
        cfg.validate()


@pytest.mark.parametrize("cfg", [TINY_TEXT, TextRecallConfig(distance=6, n_train=50, n_val=10, n_test=10),
                                 TINY_SINE, TINY_VIDEO, TINY_ADDING, TINY_COPY])
def test_every_task_config_follows_the_protocol(cfg):
    """name, distance_field and cue_lag agree with the registry and with the dataset the config makes."""
    assert TASKS[cfg.name][0] is type(cfg) and task_from_dict(task_dict(cfg)) == cfg
    assert cfg.distance_field is None or isinstance(getattr(cfg, cfg.distance_field), int)
    assert cfg.cue_lag == make_dataset(cfg).cue_lag


def test_forecast_helpers_take_val_then_test_fraction():
    assert segment_sizes(100, 0.1, 0.3) == (60, 10, 30)
    n = min_length(5, 1, 0.1, 0.3)  # val, the smaller segment, must hold MIN_WINDOWS windows of 5 + 1 steps
    assert n == 146 and segment_sizes(n, 0.1, 0.3)[1] == 5 + 1 + MIN_WINDOWS - 1
    assert segment_sizes(n - 1, 0.1, 0.3)[1] == 5 + 1 + MIN_WINDOWS - 2  # round(14.5) is 14


def test_a_12_month_window_fits_the_144_months_whose_segments_hold_it():
    assert min_length(12, 1, 0.15, 0.15) == 144
    ds = from_series(np.sin(np.arange(144) / 3), 12)
    assert (len(ds.val), len(ds.test)) == (MIN_WINDOWS, MIN_WINDOWS)
    with raises("window 12 is too long for a series of 143 values: the smallest part (21 values) must hold 10 "
                "windows of window + horizon steps; use a window of at most 11 or a series of at least 144 values."):
        from_series(np.sin(np.arange(143) / 3), 12)


@settings(max_examples=300, deadline=None)
@given(window=st.integers(1, 300), horizon=st.integers(1, 60), val=st.integers(5, 40), test=st.integers(5, 40))
def test_min_length_values_build_every_split_and_one_fewer_is_refused(window, horizon, val, test):
    """min_length is exact: its series (and every longer one) holds MIN_WINDOWS windows per split, one value
    fewer cannot, and from_series agrees."""
    val_fraction, test_fraction = val / 100, test / 100  # the fractions' knob range, 0.05 to 0.4
    n = min_length(window, horizon, val_fraction, test_fraction)
    for length in range(n, n + 40):
        splits = forecast_splits(np.zeros(length), window, horizon, val_fraction, test_fraction)[:3]
        assert min(len(s) for s in splits) >= MIN_WINDOWS
    short = forecast_splits(np.zeros(n - 1), window, horizon, val_fraction, test_fraction)[:3]
    assert min(len(s) for s in short) < MIN_WINDOWS
    series = np.sin(np.arange(n) / 3)
    assert len(from_series(series, window, horizon, val_fraction=val_fraction, test_fraction=test_fraction).test)
    with pytest.raises(ConfigError, match="too short|too long"):
        from_series(series[1:], window, horizon, val_fraction=val_fraction, test_fraction=test_fraction)


def test_example_prompt_is_the_home_example_sentence_stretched_to_the_trained_distance():
    from lib.tasks.text import cue_lag, example_prompt, vocabulary

    assert example_prompt(4) == "starving alice drives to the nearest store to buy"
    for d in (0, 20, 57):
        words = example_prompt(d).split()
        assert len(words) == cue_lag(d) and set(words) <= set(vocabulary())


ESSAY_TYPED = "starving alice drives to the nearest store to buy".split()  # the essay's sentence, 4 filler words


@pytest.mark.parametrize("distance", [0, 2, 20, 40, 200])
def test_aligning_puts_the_cue_of_a_typed_prompt_where_the_training_sentences_had_it(distance):
    from lib.tasks.text import cue_lag, vocabulary

    task = TextRecallConfig(distance=distance)
    aligned = task.align(ESSAY_TYPED)
    assert (aligned.cue, aligned.typed, aligned.lag, aligned.added) == ("starving", 9, cue_lag(distance), distance - 4)
    assert len(aligned.words) == cue_lag(distance) and set(aligned.words) <= set(vocabulary())
    assert aligned.words[:3] == ("starving", "alice", "drives") and aligned.words[-2:] == ("to", "buy")
    assert not aligned.moved and " ".join(aligned.words) == task.example()
    assert task.align(aligned.words) == replace(aligned, typed=aligned.lag, added=0)  # aligned already: kept
    if distance != 4:
        assert aligned.note() == (f"Aligned to the training sentences: {abs(distance - 4)} filler word(s) "
                                  f"{'added' if distance > 4 else 'left out'}, so the cue “starving” moves from 9 to "
                                  f"{cue_lag(distance)} words from the end, where the models were trained to find it.")


def test_a_prompt_kept_as_typed_names_where_its_cue_sits_and_where_the_models_learned_it():
    aligned = TextRecallConfig(distance=40).align(["then", *ESSAY_TYPED], stretch=False)
    assert aligned.words == ("then", *ESSAY_TYPED) and aligned.moved
    assert aligned.note() == ("The cue “starving” is 9 word(s) from the end here, but the models were trained with it "
                              "45 words from the end: no model has seen it at position 9, so their answers say little "
                              "about memory.")


def test_a_prompt_within_the_trained_distances_or_without_a_cue_is_left_as_typed():
    ranged = TextRecallConfig(distance=2, distance_max=10).align(ESSAY_TYPED)
    assert (ranged.words, ranged.trained, ranged.moved, ranged.note()) == (tuple(ESSAY_TYPED), (7, 15), False, None)
    none = TextRecallConfig(cues=2).align(["cold", "bob", "runs", "to", "buy"])  # "cold" is the third cue word
    assert none.cue is None and none.words == ("cold", "bob", "runs", "to", "buy") and not none.moved
    assert none.note().startswith("The prompt has no cue word")
