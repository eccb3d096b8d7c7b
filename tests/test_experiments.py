import sqlite3
from dataclasses import replace

import pandas as pd
import pytest
import torch

from lib import hosting
from lib.cli import main
from lib.errors import ConfigError
from lib.experiments import (
    aggregate,
    compare,
    context_models,
    distance_sweep,
    field_levels,
    load_comparison,
    window_grid,
    window_sweep,
)
from lib.models import ModelConfig
from lib.runs import run_config, run_one
from lib.stats import context_verdict, window_verdict
from lib.store import RunStore
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig

FAST = TrainConfig(epochs=2, patience=0, batch_size=64)
TASK = TextRecallConfig(distance=2, n_train=60, n_val=20, n_test=20)
GRU = ModelConfig(kind="gru", hidden=4)


def test_compare_returns_one_row_per_model_and_seed(tiny_text_config):
    comp = compare(tiny_text_config, [ModelConfig(kind="ffnn", window=3), ModelConfig(kind="gru", hidden=8)],
                   FAST, seeds=(0, 1))
    summary = comp.summary()
    assert list(summary["label"]) == ["FFNN w3", "GRU", "FFNN w3", "GRU"]  # every model for seed 0, then seed 1
    assert list(summary["seed"]) == [0, 0, 1, 1]
    assert set(comp.history()["epoch"]) == {1, 2}
    table = aggregate(summary)
    assert list(table["n_seeds"]) == [2, 2]


def test_invalid_model_fails_before_any_training(tiny_text_config):
    seen = []
    with pytest.raises(ConfigError, match="FFNN window 99 is longer than the sequence"):
        compare(tiny_text_config, [ModelConfig(kind="lstm"), ModelConfig(kind="ffnn", window=99)], FAST,
                on_epoch=lambda *a: seen.append(a))
    assert seen == []
    with pytest.raises(ConfigError, match="^choose at least one model to train.$"):
        compare(tiny_text_config, [], FAST)


def test_cancel_keeps_finished_runs(tiny_text_config):
    finished = []
    comp = compare(tiny_text_config, [ModelConfig(kind="ffnn", window=3), ModelConfig(kind="lstm", hidden=8),
                                      ModelConfig(kind="rnn", hidden=8)], FAST,
                   on_run=finished.append, should_stop=lambda: len(finished) >= 1, n_jobs=1)
    assert [r.status for r in comp.runs] == ["completed"]  # stopped before the second run started
    assert comp.cancelled
    calls = {"n": 0}

    def mid_run():
        calls["n"] += 1
        # polled before every batch; ceil(300 / 64) = 5 batches per epoch, so call 9 is the 4th batch of epoch 2
        return calls["n"] > 8

    comp = compare(tiny_text_config, [ModelConfig(kind="lstm", hidden=8), ModelConfig(kind="rnn", hidden=8)],
                   FAST, should_stop=mid_run, n_jobs=1)
    assert [r.status for r in comp.runs] == ["cancelled"] and len(comp.runs[0].history) == 1
    assert comp.cancelled


TIMELESS = ("epoch", "train_loss", "val_loss", "val_metric")


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the thread count sets the summation order, hence the low bits
    yield
    torch.set_num_threads(before)


def test_parallel_runs_equal_serial_runs_and_report_every_epoch(tiny_text_config, one_thread):
    models = [ModelConfig(kind="ffnn", window=3), ModelConfig(kind="gru", hidden=8)]
    serial = compare(tiny_text_config, models, FAST, seeds=(0, 1), n_jobs=1)
    seen = []
    parallel = compare(tiny_text_config, models, FAST, seeds=(0, 1), n_jobs=2,
                       on_epoch=lambda label, seed, rec: seen.append((label, seed, rec["epoch"])))
    assert [r.env["process"] for r in parallel.runs] != ["MainProcess"] * 4  # trained in workers
    assert [(r.label, r.train_config.seed) for r in parallel.runs] == [(r.label, r.train_config.seed)
                                                                        for r in serial.runs]  # spec order
    for a, b in zip(serial.runs, parallel.runs, strict=True):
        assert [{k: h[k] for k in TIMELESS} for h in a.history] == [{k: h[k] for k in TIMELESS} for h in b.history]
        assert a.test == b.test
    assert sorted(seen) == sorted((r.label, r.train_config.seed, e) for r in serial.runs for e in (1, 2))


def test_a_cancel_ends_parallel_runs_and_keeps_what_finished(tiny_text_config):
    finished = []
    models = [ModelConfig(kind="ffnn", window=3), ModelConfig(kind="lstm", hidden=8)] + \
        [ModelConfig(kind="rnn", hidden=8 + i) for i in range(4)]
    comp = compare(tiny_text_config, models, TrainConfig(epochs=200, patience=0), n_jobs=2,
                   on_run=finished.append, should_stop=lambda: len(finished) >= 1)
    assert comp.cancelled
    assert comp.runs[0].status == "completed" or "cancelled" in [r.status for r in comp.runs]
    assert "cancelled" in [r.status for r in comp.runs]  # the run training at the cancel ended at its next batch
    assert len(comp.runs) < len(models)  # runs not started never start


def test_window_sweep_and_distance_sweep_frames(tiny_text_config):
    sweep = window_sweep(tiny_text_config, [1, 3], FAST, references=[ModelConfig(kind="lstm", hidden=8)])
    assert list(sweep["window"].fillna(0)) == [1, 3, 0]
    assert sweep["n_params"].iloc[1] > sweep["n_params"].iloc[0]
    dist = distance_sweep(tiny_text_config, [0, 3], [ModelConfig(kind="ffnn", window=2)], FAST)
    # cue lag = distance + 3 opening words (cue, subject, verb) + 2 closing words ("to buy")
    assert list(dist["distance"]) == [0, 3] and list(dist["cue_lag"]) == [5, 8]


def test_store_reuses_identical_runs_and_force_retrains(tmp_path, tiny_text_config):
    store = RunStore(tmp_path / "runs.sqlite")
    models = [ModelConfig(kind="lstm", hidden=8)]
    first = compare(tiny_text_config, models, FAST, store=store).runs[0]
    again = compare(tiny_text_config, models, FAST, store=store).runs[0]
    assert again.message.startswith(f"reused stored run {first.run_id}")
    assert again.history == first.history and again.test == first.test
    x = torch.randint(1, 10, (4, 7))  # 4 sentences of 2 filler + 5 other words
    assert torch.equal(again.model(x), first.model(x))
    forced = compare(tiny_text_config, models, FAST, store=store, force=True).runs[0]
    assert forced.run_id != first.run_id
    other_seed = compare(tiny_text_config, models, FAST, seeds=(5,), store=store).runs[0]
    assert not other_seed.message.startswith("reused")
    assert len(store.runs()) == 3  # first, forced and other_seed; again reused first


def test_distance_knobs_are_named_per_task():
    from lib.experiments import distance_field
    from lib.tasks.sine import SineConfig
    from lib.tasks.text import TextRecallConfig
    from lib.tasks.video import VideoConfig

    assert distance_field(TextRecallConfig()) == "distance"
    assert distance_field(VideoConfig()) == "gap"
    with pytest.raises(ConfigError, match="^task 'sine' has no dependency-distance knob.$"):
        distance_field(SineConfig())


def test_window_grid_clips_to_the_sequence_before_spacing():
    assert window_grid(1, 40, 4, seq_len=25, cue_lag=25) == [1, 9, 17, 25]  # spaced over 1..25, not 1..40
    assert window_grid(1, 10, 3, seq_len=25, cue_lag=7) == [1, 6, 7, 10]  # the cue's window is always tried
    with pytest.raises(ConfigError) as err:
        window_grid(30, 40, 3, seq_len=25)
    assert str(err.value) == ("the smallest window (30) is longer than the sequence (25 steps); choose a smallest "
                              "window between 1 and 25.")
    with pytest.raises(ConfigError, match=r"^the smallest window \(10\) is larger than the largest \(5\); swap them"):
        window_grid(10, 5, 3, seq_len=25)


def test_field_levels_cover_the_window_range_and_the_first_field_that_reaches_the_cue():
    # kernel 3: receptive fields 5, 13, 29, 61 for 1..4 levels
    assert field_levels(1, 25, kernel=3, cue_lag=20) == [1, 2, 3]
    assert field_levels(1, 7, kernel=3, cue_lag=7) == [1, 2]
    assert field_levels(6, 10, kernel=2) == [2, 3]  # fields 7 (in range) and 15, the first past 10 without a cue
    assert field_levels(1, 400, kernel=3, cue_lag=400, max_levels=6) == [1, 2, 3, 4, 5, 6]  # a server's cap


def test_hosted_caps_bound_the_new_kinds_before_anything_trains():
    models = [ModelConfig(kind="tcn", levels=7), ModelConfig(kind="transformer", hidden=256, heads=4),
              ModelConfig(kind="linear", window=8), ModelConfig(kind="mingru", layers=3)]
    with pytest.raises(ConfigError) as err:
        hosting.check_job(hosting.HOSTED, TASK, models, FAST, [0], len(models))
    assert str(err.value) == (
        "TCN k3 n7's tcn levels is 7, above this server's limit of 6; lower TCN levels; Transformer's hidden units "
        "is 256, above this server's limit of 128; lower Hidden units or the parameter budget; minGRU's layers is "
        "3, above this server's limit of 2; lower Layers.")
    assert max(field_levels(1, 400, cue_lag=400, max_levels=hosting.HOSTED.levels)) == 6  # the sweep stays within


def test_context_sweep_trains_each_kind_along_the_steps_it_sees(tiny_text_config):
    tcn = ModelConfig(kind="tcn", hidden=4, kernel=2)
    sweep = window_sweep(tiny_text_config, [1, 3], FAST, ffnn=None, linear=ModelConfig(kind="linear"), tcn=tcn,
                         levels=[1, 2], references=[ModelConfig(kind="transformer", hidden=8)])
    assert list(sweep["label"]) == ["Linear w1", "Linear w3", "TCN k2 n1", "TCN k2 n2", "Transformer"]
    assert list(sweep["steps_seen"].fillna(0)) == [1, 3, 3, 7, 0]  # windows, receptive fields, the whole sequence
    assert list(sweep["window"].fillna(0)) == [1, 3, 0, 0, 0]
    assert context_models([2], None, None, tcn, [3]) == [replace(tcn, levels=3)]
    with pytest.raises(ConfigError, match="^choose at least one model to sweep"):
        context_models([2], None)


def test_context_verdict_names_the_cheapest_model_that_sees_far_enough():
    def rows(label, kind, seen, n, ms):
        memory = "receptive field" if kind == "tcn" else "window" if seen else "recurrence"
        return [{"label": label, "kind": kind, "steps_seen": seen, "window": seen if kind != "tcn" else None,
                 "memory": memory,
                 "seed": i, "metric": m, "status": "completed", "n_params": n} for i, m in enumerate(ms)]
    same = (1.0,) * 3
    frame = pd.DataFrame(rows("FFNN w2", "ffnn", 2, 500, (0.3, 0.31, 0.29)) + rows("FFNN w8", "ffnn", 8, 4000, same)
                         + rows("TCN k2 n3", "tcn", 15, 1200, same) + rows("LSTM", "lstm", None, 3000, same))
    text = context_verdict(frame, "accuracy", True, cue_lag=8, n_test=5000)
    assert text.startswith("The cheapest model that sees far enough to match the LSTM is TCN k2 n3 (receptive field "
                           "15, accuracy 100.0%): it matches the LSTM"), text
    assert "It has 1,200 parameters, 0.4× the LSTM's 3,000. Also matching, at more parameters: FFNN w8 (window 8, " \
           "4,000)." in text and text.endswith("The decisive input lies 8 steps back.")
    only_ffnn = frame[frame["kind"].isin(["ffnn", "lstm"])]
    assert context_verdict(only_ffnn, "accuracy", True, 8, n_test=5000) == window_verdict(
        only_ffnn, "accuracy", True, 8, n_test=5000)  # one kind swept: the window verdict as before


def test_reused_runs_say_when_they_were_trained_and_stored_runs_load_back(tmp_path, tiny_text_config):
    models = [ModelConfig(kind="ffnn", window=3), ModelConfig(kind="rnn", hidden=8)]
    with RunStore(tmp_path / "runs.sqlite") as store:
        first = compare(tiny_text_config, models, FAST, store=store)
        fresh, fresh_history = first.summary(), first.history()["val_loss"].tolist()
        assert fresh["reused"].isna().all() and (fresh["epoch_cpu_seconds"] > 0).all()
        again = compare(tiny_text_config, models, FAST, store=store).summary()
        created = store.runs().set_index("id")["created"]
        assert list(again["reused"].str[:19]) == [created[i].isoformat()[:19] for i in fresh["run_id"]]
        loaded, dropped = load_comparison(store, [*fresh["run_id"], "nope", "0123456789ab"])
    assert dropped == ["'nope' (not a run id)", "0123456789ab (not in this run store)"]
    assert loaded.task == tiny_text_config and [r.label for r in loaded.runs] == ["FFNN w3", "RNN"]
    assert loaded.history()["val_loss"].tolist() == fresh_history
    assert all(r.model is not None for r in loaded.runs)  # weights come back with the runs


# -- reruns (python -m lib rerun): the recorded thread count, an interrupted run's kept epochs --------


TINY_CLI = ["--set", "distance=2", "n_train=200", "n_val=60", "n_test=60", "--epochs", "2", "--patience", "0",
            "--quiet"]


def test_rerun_recreates_the_thread_count_a_worker_recorded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "runs.sqlite"))
    torch.set_num_threads(1)  # as a worker process trains
    assert main(["compare", *TINY_CLI, "--models", "gru:hidden=8"]) == 0
    (run_id,) = RunStore().runs()["id"]
    torch.set_num_threads(2)
    capsys.readouterr()
    assert main(["rerun", run_id]) == 0
    out = capsys.readouterr().out
    assert "1 torch thread(s) as recorded" in out and "the numbers match" in out
    assert torch.get_num_threads() == 2


def test_rerun_of_an_interrupted_run_compares_the_epochs_it_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "runs.sqlite"))
    store = RunStore()
    full = run_one(TASK, GRU, TrainConfig(epochs=3, patience=0), store)
    stopped = store.start_run(run_config(TASK, GRU, TrainConfig(epochs=3, patience=0)), 0, "GRU", TASK.name,
                              full.env)
    for record in full.history[:2]:
        store.log_epoch(stopped, record)
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (stopped,))
    capsys.readouterr()
    assert main(["rerun", stopped]) == 0
    out = capsys.readouterr().out
    assert "history: 2 stored epochs, 3 rerun epochs, identical (the stored run was interrupted: its 2 epoch(s) " \
           "against the rerun's first 2)" in out
    assert "the numbers match" in out
