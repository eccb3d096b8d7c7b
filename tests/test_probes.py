"""Probes: the Cell unroll equals the fused modules, gradients through time equal finite differences,
the documented gradient-decay facts hold at initialisation, gates obey their equations, next-word guesses behave."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lib.errors import ConfigError
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, sees
from lib.probes import (
    attention_weights,
    encode_prompt,
    gate_activations,
    gradient_through_time,
    gradients_before_after,
    tokenize,
    top_k_next_words,
    unroll,
)
from lib.tasks.base import CLASSIFICATION, SequenceDataset, Split
from lib.tasks.text import TextRecallConfig, make_text_recall
from lib.train import TrainConfig, seeded_model, train

RECURRENT = ["rnn", "gru", "lstm"]


def build(cfg: ModelConfig, io: ModelIO, seed: int = 0) -> nn.Module:
    return seeded_model(cfg, io, seed).eval()


def feature_task(per_step: bool = False, t: int = 5, f: int = 3, n_out: int = 3,
                 b: int = 2) -> SequenceDataset:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(b, t, f, generator=gen, dtype=torch.float64)
    y = torch.randint(0, n_out, (b, t) if per_step else (b,), generator=gen)
    split = Split(x, y)
    return SequenceDataset("toy", "random features", CLASSIFICATION, split, split, split, seq_len=t,
                           n_features=f, n_outputs=n_out, per_step=per_step)


@pytest.fixture(scope="module")
def recall():
    return make_text_recall(TextRecallConfig(distance=30, n_train=10, n_val=10, n_test=64))


@pytest.fixture(scope="module")
def trained():
    ds = make_text_recall(TextRecallConfig(distance=2, n_train=400, n_val=50, n_test=50))
    run = train(ds, ModelConfig(kind="lstm", hidden=32), TrainConfig(epochs=6, patience=0, batch_size=32,
                                                                     device="cpu"))
    return ds, run.model


# ---------------------------------------------------------------- Cell unroll and gradients

@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("layers", [1, 2])
def test_cell_unroll_equals_fused_module(recall, kind, layers):
    model = build(ModelConfig(kind=kind, hidden=8, layers=layers, dropout=0.3), ModelIO.from_dataset(recall))
    x = recall.test.x[:4]
    with torch.no_grad():
        e = model.inputs(x)
        fused, _ = model.rnn(e)  # (B, T, H)
        steps = unroll(model, e)[-1]
    cell = torch.stack([s[0] if isinstance(s, tuple) else s for s in steps], 1)
    torch.testing.assert_close(cell, fused, rtol=1e-5, atol=1e-5)


def final_loss_from(model, ds, e, t, h_t):
    """Loss at the prediction point with the last layer's state after step t replaced by h_t, computed with
    the fused module alone (the reference the Cell unroll is checked against)."""
    _, state = model.rnn(e[:, :t + 1])
    h_n = state[0] if isinstance(state, tuple) else state  # (layers, B, H)
    h_n = torch.cat([h_n[:-1], h_t[None]])
    state = (h_n, state[1]) if isinstance(state, tuple) else h_n
    last = model.rnn(e[:, t + 1:], state)[0][:, -1] if t + 1 < e.shape[1] else h_t
    y = ds.test.y[:, -1] if ds.per_step else ds.test.y
    return nn.functional.cross_entropy(model.head(last), y, reduction="sum")


def finite_difference(f, point: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(point)
    for i in range(point.numel()):
        step = torch.zeros_like(point).flatten()
        step[i] = eps
        step = step.view_as(point)
        grad.view(-1)[i] = (f(point + step) - f(point - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("per_step", [False, True])
def test_hidden_gradient_equals_finite_differences(kind, layers, per_step):
    ds = feature_task(per_step)
    model = build(ModelConfig(kind=kind, hidden=4, layers=layers), ModelIO.from_dataset(ds)).double()
    df = gradient_through_time(model, ds.test.x, ds.test.y, ds)
    assert set(df["wrt"]) == {"hidden"} and list(df["steps_back"]) == [0, 1, 2, 3, 4]
    e = ds.test.x
    with torch.no_grad():
        states = model.rnn(e)[0]  # (B, T, H): the last layer's h_t
        reference = []
        for t in range(ds.seq_len):
            grad = finite_difference(lambda h, t=t: final_loss_from(model, ds, e, t, h), states[:, t].clone())
            reference.append(float(grad.norm(dim=-1).mean()))
    np.testing.assert_allclose(df["grad_norm"].to_numpy()[::-1], reference, rtol=1e-5)


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_input_gradient_equals_finite_differences(kind):
    ds = feature_task()
    model = build(ModelConfig(kind=kind, hidden=4, window=3, levels=2), ModelIO.from_dataset(ds)).double()
    df = gradient_through_time(model, ds.test.x, ds.test.y, ds, wrt="input")
    assert set(df["wrt"]) == {"input"}

    def loss(x):
        return nn.functional.cross_entropy(model(x), ds.test.y, reduction="sum")

    with torch.no_grad():
        grad = finite_difference(loss, ds.test.x.clone())  # (B, T, F)
    reference = grad.norm(dim=-1).mean(0).flip(0).numpy()  # by steps back
    np.testing.assert_allclose(df["grad_norm"].to_numpy(), reference, rtol=1e-5, atol=1e-12)


def test_ffnn_gradient_is_zero_beyond_its_window(recall):
    model = build(ModelConfig(kind="ffnn", hidden=8, window=5), ModelIO.from_dataset(recall))
    df = gradient_through_time(model, recall.test.x, recall.test.y, recall)  # hidden -> its inputs
    assert set(df["wrt"]) == {"input"}
    assert (df["grad_norm"][:5] > 0).all() and (df["grad_norm"][5:] == 0).all()


@pytest.mark.parametrize("cfg, seen", [(ModelConfig(kind="linear", window=6), 6),
                                       (ModelConfig(kind="tcn", hidden=8, kernel=2, levels=3), 15),
                                       (ModelConfig(kind="transformer", hidden=8), None),
                                       (ModelConfig(kind="mingru", hidden=8), None)])
def test_gradient_reaches_as_far_back_as_the_kind_sees(recall, cfg, seen):
    io = ModelIO.from_dataset(recall)
    df = gradient_through_time(build(cfg, io), recall.test.x, recall.test.y, recall, wrt="hidden")
    assert set(df["wrt"]) == {"input"} and sees(cfg, io.seq_len) == (seen or io.seq_len)
    g = df["grad_norm"].to_numpy()
    assert (g[:sees(cfg, io.seq_len)] > 0).all() and (g[sees(cfg, io.seq_len):] == 0).all()


def test_gradient_rejects_unknown_target(recall):
    model = build(ModelConfig(kind="rnn", hidden=4), ModelIO.from_dataset(recall))
    with pytest.raises(ConfigError, match=r"^wrt must be 'hidden' or 'input', got 'cell'\.$"):
        gradient_through_time(model, recall.test.x, recall.test.y, recall, wrt="cell")


def decay(recall, kind: str, init: str, steps_back: int) -> float:
    """Median over 3 seeds of ‖∂L/∂h‖ `steps_back` steps before the prediction point relative to step 0."""
    io = ModelIO.from_dataset(recall)
    ratios = []
    for seed in range(3):
        model = build(ModelConfig(kind=kind, hidden=64, init=init), io, seed)
        g = gradient_through_time(model, recall.test.x, recall.test.y, recall)["grad_norm"]
        ratios.append(g[steps_back] / g[0])
    return float(np.median(ratios))


def test_default_init_rnn_gradient_vanishes_within_ten_steps(recall):
    # the tanh RNN's gradient shrinks ≈ 0.55× per step at PyTorch's default init, ≈ 1e-3 ten steps back
    assert decay(recall, "rnn", "pytorch", 10) < 1e-2


def test_chrono_lstm_gradient_decays_far_slower_than_default_lstm(recall):
    default, chrono = decay(recall, "lstm", "pytorch", 20), decay(recall, "lstm", "chrono", 20)
    assert default < 1e-4  # the default-init LSTM decays as fast as the RNN
    assert chrono > 100 * default


def test_gradients_before_after_start_from_the_runs_initial_weights():
    ds = make_text_recall(TextRecallConfig(distance=2, n_train=64, n_val=16, n_test=16))
    run = train(ds, ModelConfig(kind="gru", hidden=4), TrainConfig(epochs=1, patience=0, seed=3, device="cpu"))
    df = gradients_before_after([run, run], ds, n=8)  # one run per label
    init = seeded_model(run.model_config, ModelIO.from_dataset(ds), 3).eval()
    expected = gradient_through_time(init, ds.test.x[:8], ds.test.y[:8], ds)["grad_norm"].to_numpy()
    before = df[df["stage"] == "at initialisation"]["grad_norm"].to_numpy()
    after = df[df["stage"] == "after training"]["grad_norm"].to_numpy()
    np.testing.assert_array_equal(before, expected)
    assert set(df["label"]) == {"GRU"} and len(after) == len(expected) and not np.array_equal(after, before)
    with pytest.raises(ConfigError, match=r"^no trained model to probe; train a comparison first\.$"):
        gradients_before_after([], ds)


# ---------------------------------------------------------------- attention

def test_attention_weights_of_one_sequence_per_layer_and_head(recall):
    model = build(ModelConfig(kind="transformer", hidden=8, heads=4, layers=2), ModelIO.from_dataset(recall))
    x = recall.test.x[0]
    w = attention_weights(model, x)
    t = recall.seq_len
    assert w.shape == (2, 4, t, t) and np.allclose(w.sum(-1), 1) and (np.triu(w, 1) == 0).all()
    with torch.no_grad():
        np.testing.assert_allclose(w, model.attention(x[None])[0].double().numpy())
    np.testing.assert_array_equal(attention_weights(model, x[None]), w)
    with pytest.raises(ConfigError, match=r"^attention weights take one sequence, got a batch of 2\.$"):
        attention_weights(model, recall.test.x[:2])
    lstm = build(ModelConfig(kind="lstm", hidden=4), ModelIO.from_dataset(recall))
    with pytest.raises(ConfigError, match=r"^attention weights exist only for models with attention; this model "
                                          r"is Recurrent\. Pick a Transformer run\.$"):
        attention_weights(lstm, x)


# ---------------------------------------------------------------- gates

def test_lstm_gates_in_range_and_reproduce_the_cell(recall):
    model = build(ModelConfig(kind="lstm", hidden=6, layers=2), ModelIO.from_dataset(recall))
    x = recall.test.x[0]
    g = gate_activations(model, x)
    t = recall.seq_len
    assert set(g) == {"input", "forget", "candidate", "output", "cell", "hidden"}
    assert all(v.shape == (t, 6) for v in g.values())
    for name in ("input", "forget", "output"):
        assert g[name].min() >= 0 and g[name].max() <= 1, name
    assert np.abs(g["candidate"]).max() <= 1
    c_prev = np.vstack([np.zeros((1, 6)), g["cell"][:-1]])
    np.testing.assert_allclose(g["cell"], g["forget"] * c_prev + g["input"] * g["candidate"], atol=1e-5)
    np.testing.assert_allclose(g["hidden"], g["output"] * np.tanh(g["cell"]), atol=1e-5)
    with torch.no_grad():
        fused = model.rnn(model.inputs(x[None]))[0][0].double().numpy()  # last layer (T, H)
    np.testing.assert_allclose(g["hidden"], fused, atol=1e-5)
    first = gate_activations(model, x[None], layer=0)
    assert not np.allclose(first["hidden"], g["hidden"])
    message = r"^layer 2 does not exist; this model has 2 recurrent layer\(s\), 0 to 1 \(-1 = last\)\.$"
    with pytest.raises(ConfigError, match=message):
        gate_activations(model, x, layer=2)


def test_gru_gates_reproduce_the_update():
    ds = feature_task(t=7, f=3)
    model = build(ModelConfig(kind="gru", hidden=5), ModelIO.from_dataset(ds)).double()
    g = gate_activations(model, ds.test.x[1])
    assert set(g) == {"reset", "update", "candidate", "hidden"}
    assert all(v.shape == (7, 5) for v in g.values())
    h_prev = np.vstack([np.zeros((1, 5)), g["hidden"][:-1]])
    np.testing.assert_allclose(g["hidden"], (1 - g["update"]) * g["candidate"] + g["update"] * h_prev,
                               atol=1e-10)
    assert 0 <= g["reset"].min() and g["update"].max() <= 1


@pytest.mark.parametrize(("kind", "name"), [("rnn", "RNN"), ("ffnn", "FFNN")])
def test_gates_exist_only_for_lstm_and_gru(recall, kind, name):
    model = build(ModelConfig(kind=kind, hidden=4), ModelIO.from_dataset(recall))
    message = rf"^gate activations exist only for LSTM and GRU; this model is {name}, which has no gates\."
    with pytest.raises(ConfigError, match=message):
        gate_activations(model, recall.test.x[0])


# ---------------------------------------------------------------- next words

def test_trained_model_names_the_answer(trained):
    ds, model = trained
    guesses = top_k_next_words(model, ds, "Thirsty Alice walks past old, to buy", k=3)
    assert guesses[0][0] == "water"
    probs = [p for _, p in guesses]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    everything = top_k_next_words(model, ds, "thirsty alice walks to buy", k=99)
    assert sorted(w for w, _ in everything) == sorted(ds.class_names)
    assert sum(p for _, p in everything) == pytest.approx(1.0)


def test_prompt_is_left_padded_and_cut_like_training_data(trained):
    ds, model = trained
    short = encode_prompt(ds, "cold bob")
    assert short.shape == (1, ds.seq_len) and short[0, :-2].eq(0).all()
    long = "sick " * 30 + "cold bob runs past the old to buy"
    cut = " ".join(long.split()[-ds.seq_len:])
    assert torch.equal(encode_prompt(ds, long), encode_prompt(ds, cut))
    assert top_k_next_words(model, ds, long) == top_k_next_words(model, ds, cut)


def test_unknown_words_are_named(trained):
    ds, model = trained
    message = (r"^unknown word\(s\) in the prompt: hungry, zebra\. The model knows only its \d+ training "
               r"words, e\.g\. starving, thirsty")
    with pytest.raises(ConfigError, match=message):
        top_k_next_words(model, ds, "Hungry zebra walks to the zebra")
    with pytest.raises(ConfigError, match=r"^the prompt has no words; try for example: "):
        top_k_next_words(model, ds, " ?! ")


def test_next_word_task_leaves_out_padding():
    cfg = TextRecallConfig(distance=2, n_train=10, n_val=10, n_test=10, objective="next_word")
    ds = make_text_recall(cfg)
    model = build(ModelConfig(kind="gru", hidden=8), ModelIO.from_dataset(ds))
    guesses = top_k_next_words(model, ds, "cold bob runs", k=len(ds.vocab))
    assert len(guesses) == len(ds.vocab) - 1 and "<pad>" not in {w for w, _ in guesses}
    probs = [p for _, p in guesses]
    assert probs == sorted(probs, reverse=True) and sum(probs) < 1


def test_next_words_need_a_text_task():
    ds = feature_task()
    model = build(ModelConfig(kind="gru", hidden=4), ModelIO.from_dataset(ds))
    with pytest.raises(ConfigError, match=r"^next-word guesses need a text task; 'toy' has no vocabulary\.$"):
        top_k_next_words(model, ds, "cold bob")


ESSAY = "Starving, Alice drives to the nearest store to buy"  # the essay's sentence as a user types it


@pytest.mark.parametrize("distance", [3, 40])
def test_an_lstm_trained_at_any_distance_answers_the_aligned_essay_sentence_with_food(distance):
    from lib.experiments import compare

    task = TextRecallConfig(distance=distance, n_train=2000, n_val=300, n_test=300)
    comp = compare(task, [ModelConfig(kind="lstm")], TrainConfig(epochs=30))
    lstm = comp.runs[0].model
    aligned = " ".join(task.align(tokenize(ESSAY)).words)
    assert top_k_next_words(lstm, comp.dataset, aligned, k=1)[0][0] == "food"
    assert top_k_next_words(lstm, comp.dataset, task.example(), k=1)[0][0] == "food"


def test_the_reference_lstm_answers_the_essay_sentence_with_food_once_its_cue_is_where_it_learned_it():
    from lib.reference import comparison

    ref = comparison()
    lstm = next(r.model for r in ref.runs if r.label == "LSTM")
    assert top_k_next_words(lstm, ref.dataset, " ".join(ref.task.align(tokenize(ESSAY)).words), k=1)[0][0] == "food"


def test_cue_step_counts_cue_lag_back_from_the_prediction_point():
    from lib.probes import cue_step
    from lib.runs import dataset
    from lib.tasks.adding import AddingConfig
    from lib.tasks.text import TextRecallConfig

    ds = dataset(TextRecallConfig(distance=3, n_train=50))
    assert cue_step(ds) == ds.seq_len - ds.cue_lag
    assert cue_step(dataset(AddingConfig(steps=10, n_train=20, n_val=20, n_test=20))) is None


def test_gradients_before_after_put_the_initial_curves_first_each_relative_to_its_value_one_step_back():
    ds = make_text_recall(TextRecallConfig(distance=2, n_train=64, n_val=16, n_test=16))
    run = train(ds, ModelConfig(kind="rnn", hidden=4), TrainConfig(epochs=1, patience=0, seed=1, device="cpu"))
    df = gradients_before_after([run], ds, n=8)
    assert list(dict.fromkeys(df["stage"])) == ["at initialisation", "after training"]
    for _, g in df.groupby("stage"):
        at1 = g.loc[g["steps_back"] == 1, "grad_norm"].iloc[0]
        np.testing.assert_allclose(g["relative"], g["grad_norm"] / at1)
        assert g.loc[g["steps_back"] == 1, "relative"].iloc[0] == 1.0
