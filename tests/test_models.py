from dataclasses import replace

import pytest
import torch

from lib.errors import ConfigError
from lib.models import (
    MODEL_KINDS,
    ModelConfig,
    ModelIO,
    build_model,
    count_params,
    match_params,
    receptive_field,
    sees,
    sequential_depth,
)
from lib.probes import gate_activations

TOKENS = ModelIO(seq_len=12, n_features=30, n_outputs=6, tokens=True)
FEATURES = ModelIO(seq_len=12, n_features=3, n_outputs=1)


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
@pytest.mark.parametrize("per_step", [False, True])
def test_every_kind_shares_one_forward_signature(kind, per_step):
    io = ModelIO(12, 30, 30 if per_step else 6, tokens=True, per_step=per_step)
    out = build_model(ModelConfig(kind=kind, hidden=8, layers=2), io)(torch.randint(1, 30, (4, 12)))
    assert out.shape == ((4, 12, 30) if per_step else (4, 6))


def test_ffnn_sees_only_its_window():
    model = build_model(ModelConfig(kind="ffnn", window=3, hidden=8), FEATURES).eval()
    x = torch.randn(2, 12, 3)
    y = x.clone()
    y[:, :9] = torch.randn(2, 9, 3)  # change everything before the last 3 steps
    assert torch.equal(model(x), model(y))
    y[:, 9] += 1.0
    assert not torch.equal(model(x), model(y))


def test_per_step_ffnn_window_matches_last_step_model():
    io_last, io_step = ModelIO(12, 30, 6, True), ModelIO(12, 30, 6, True, per_step=True)
    torch.manual_seed(0)
    last = build_model(ModelConfig(kind="ffnn", window=4, hidden=8), io_last).eval()
    step = build_model(ModelConfig(kind="ffnn", window=4, hidden=8), io_step).eval()
    step.load_state_dict(last.state_dict())
    x = torch.randint(1, 30, (3, 12))
    torch.testing.assert_close(step(x)[:, -1], last(x))
    torch.testing.assert_close(step(x)[:, 6], last(x[:, :7]))


def test_chrono_init_sets_lstm_gate_biases():
    model = build_model(ModelConfig(kind="lstm", hidden=16), TOKENS)
    b = model.rnn.bias_ih_l0.detach()
    forget, inp = b[16:32], b[:16]
    assert (forget > 0).all() and (forget <= torch.log(torch.tensor(11.0))).all()
    torch.testing.assert_close(inp, -forget)
    assert torch.count_nonzero(model.rnn.bias_hh_l0) == 0
    w = model.rnn.weight_hh_l0.detach()[16:32]
    torch.testing.assert_close(w @ w.T, torch.eye(16), atol=1e-5, rtol=0)


def test_pytorch_init_is_kept_when_asked():
    model = build_model(ModelConfig(kind="lstm", hidden=16, init="pytorch"), TOKENS)
    assert torch.count_nonzero(model.rnn.bias_hh_l0) == 64


@pytest.mark.parametrize(("cfg", "io", "message"), [
    (ModelConfig(kind="mamba"), TOKENS,
     "unknown model 'mamba'; choose one of: ffnn, rnn, gru, lstm, linear, tcn, transformer, mingru."),
    (ModelConfig(kind="lstm", hidden=0), TOKENS, r"hidden units \(hidden\) must be between 1 and 4096, got 0\."),
    (ModelConfig(kind="ffnn", window=13), TOKENS,
     r"FFNN window 13 is longer than the sequence \(12 steps\); choose a window between 1 and 12."),
    (ModelConfig(kind="gru", layers=9), TOKENS, "layers must be between 1 and 4, got 9."),
    (ModelConfig(kind="rnn", dropout=1.0), TOKENS, r"dropout must be in \[0, 1\), got 1\."),
    (ModelConfig(kind="rnn", init="chrono"), TOKENS,
     "init 'chrono' does not apply to rnn; choose one of: auto, pytorch, orthogonal."),
    (ModelConfig(kind="linear", window=13), TOKENS,
     r"Linear window 13 is longer than the sequence \(12 steps\); choose a window between 1 and 12."),
    (ModelConfig(kind="tcn", kernel=1), TOKENS, r"tcn kernel size \(kernel\) must be between 2 and 8 steps, got 1\."),
    (ModelConfig(kind="tcn", levels=13), TOKENS, r"tcn levels \(levels\) must be between 1 and 12, got 13\."),
    (ModelConfig(kind="transformer", hidden=30, heads=4), TOKENS,
     r"hidden units \(30\) must be a multiple of the attention heads \(4\); choose for example 28 hidden units\."),
    (ModelConfig(kind="linear", variant="nlinear"), TOKENS,
     r"NLinear adds each feature's last value back to its own output, so it needs as many features per step as "
     r"outputs \(a series forecast\); this task has 30 tokens and 6 output\(s\)\. Choose the plain or DLinear "
     r"variant\."),
    (ModelConfig(kind="linear", variant="slinear"), TOKENS,
     r"linear variant \(variant\) must be one of 'linear', 'nlinear', 'dlinear', got 'slinear'\."),
])
def test_invalid_configs_say_what_to_change(cfg, io, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        build_model(cfg, io)


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_parameter_matching_lands_near_the_budget(kind):
    base = ModelConfig(kind=kind, window=6)
    cfg = match_params(base, TOKENS, 20_000)
    if "hidden" not in MODEL_KINDS[kind].reads:  # no hidden units to size: the model stays as it is
        assert cfg == base
        return
    unit = cfg.heads if "heads" in MODEL_KINDS[kind].reads else 1
    assert cfg.hidden % unit == 0
    n = count_params(build_model(cfg, TOKENS))
    step = count_params(build_model(ModelConfig(kind=kind, window=6, hidden=cfg.hidden + unit), TOKENS)) - n
    assert abs(n - 20_000) <= step


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_the_registry_describes_each_kind(kind):
    spec = MODEL_KINDS[kind]
    model = build_model(ModelConfig(kind=kind, hidden=4, window=3), TOKENS)
    assert spec.recurrent == (spec.memory == "recurrence")
    assert spec.recurrent or not isinstance(getattr(model, "rnn", None), torch.nn.RNNBase)
    assert spec.windowed == (getattr(model, "window", None) == 3) == (spec.memory == "window")
    assert spec.title and not (spec.fused_on_cpu and not spec.recurrent)
    assert spec.default_init in spec.inits and ("init" in spec.reads) == (len(spec.inits) > 1)
    for name in spec.reads:  # every field it reads changes its model, or its parameters' shapes
        assert name in ModelConfig.__dataclass_fields__


def test_labels_name_what_tells_models_of_a_kind_apart():
    labels = {ModelConfig(kind="ffnn", window=3).label, ModelConfig(kind="lstm").label,
              ModelConfig(kind="linear", window=8).label, ModelConfig(kind="linear", window=8, variant="dlinear").label,
              ModelConfig(kind="linear", window=8, variant="nlinear").label,
              ModelConfig(kind="tcn", kernel=3, levels=4).label, ModelConfig(kind="tcn", kernel=2, levels=4).label,
              ModelConfig(kind="transformer").label, ModelConfig(kind="mingru").label}
    assert labels == {"FFNN w3", "LSTM", "Linear w8", "DLinear w8", "NLinear w8", "TCN k3 n4", "TCN k2 n4",
                      "Transformer", "minGRU"}


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_gate_names_are_the_gates_the_probe_reports(kind):
    model = build_model(ModelConfig(kind=kind, hidden=4), TOKENS)
    x = torch.randint(1, 30, (12,))
    names = MODEL_KINDS[kind].gate_names
    if not names:
        with pytest.raises(ConfigError, match="^gate activations exist only for"):
            gate_activations(model, x)
        return
    gates = gate_activations(model, x)
    for name in names:
        assert gates[name].shape == (12, 4)
        assert ((gates[name] >= 0) & (gates[name] <= 1)).all()  # sigmoid gates


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_every_kind_is_causal(kind):
    """Per-step outputs before step t do not change when the inputs from t on do."""
    io = ModelIO(12, 3, 2, per_step=True)
    model = build_model(ModelConfig(kind=kind, hidden=8, layers=2, window=4, kernel=2, levels=3), io).eval()
    x = torch.randn(3, 12, 3)
    y = x.clone()
    y[:, 7:] = torch.randn(3, 5, 3)
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


@pytest.mark.parametrize(("kernel", "levels"), [(2, 1), (2, 3), (3, 2), (4, 3)])
def test_tcn_sees_exactly_its_receptive_field(kernel, levels):
    cfg = ModelConfig(kind="tcn", hidden=16, kernel=kernel, levels=levels)
    field = receptive_field(cfg)
    assert field == 1 + 2 * (kernel - 1) * (2 ** levels - 1) == sees(cfg, 200)
    t = field + 5
    model = build_model(cfg, ModelIO(t, 3, 4)).eval()
    x = torch.randn(8, t, 3, requires_grad=True)
    model(x).sum().backward()
    reached = x.grad.abs().sum((0, 2)) > 0  # (T,): the steps the last output depends on
    assert reached.tolist() == [False] * (t - field) + [True] * field


def test_how_far_back_each_kind_sees():
    assert sees(ModelConfig(kind="ffnn", window=7), 50) == sees(ModelConfig(kind="linear", window=7)) == 7
    assert sees(ModelConfig(kind="tcn", kernel=3, levels=4)) == 61
    for kind in ("rnn", "gru", "lstm", "transformer", "mingru"):
        assert sees(ModelConfig(kind=kind), 50) == 50 and sees(ModelConfig(kind=kind)) is None


def test_what_runs_one_after_another_grows_with_the_length_only_for_a_recurrence():
    depth = {kind: [sequential_depth(ModelConfig(kind=kind, layers=2, levels=3), t) for t in (10, 1000)]
             for kind in MODEL_KINDS}
    assert depth == {"ffnn": [2, 2], "linear": [1, 1], "tcn": [6, 6], "transformer": [2, 2], "mingru": [2, 2],
                     "rnn": [20, 2000], "gru": [20, 2000], "lstm": [20, 2000]}


@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize(("t", "dtype"), [(12, torch.float32), (300, torch.float64)])
def test_mingru_parallel_scan_equals_its_sequential_recurrence(per_step, t, dtype):
    io = ModelIO(t, 30, 5, tokens=True, per_step=per_step)
    model = build_model(ModelConfig(kind="mingru", hidden=8, layers=2), io).to(dtype).eval()
    x = torch.randint(0, 30, (4, t))
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.recurrence(x), rtol=1e-5, atol=1e-5)
        _, state = model.step(x[:, 0])
        assert [h.shape for h in state] == [(4, 8), (4, 8)]  # O(H) state per layer


def test_mingru_layer_follows_its_equations():
    from lib.models import _MinGRULayer

    torch.manual_seed(0)
    layer = _MinGRULayer(3, 4)
    x = torch.randn(2, 6, 3)
    k, c = layer.gates(x).chunk(2, -1)
    z, cand = k.sigmoid(), torch.where(c >= 0, c + 0.5, c.sigmoid())
    h, steps = torch.zeros(2, 4), []
    for t in range(6):
        h = (1 - z[:, t]) * h + z[:, t] * cand[:, t]
        steps.append(h)
    torch.testing.assert_close(layer(x), torch.stack(steps, 1))


def test_transformer_attention_weights_are_what_its_forward_averages_with():
    io = ModelIO(9, 3, 2)
    model = build_model(ModelConfig(kind="transformer", hidden=8, heads=4, layers=2), io).eval()
    x = torch.randn(5, 9, 3)
    with torch.no_grad():
        w = model.attention(x)  # (B, layers, heads, T, T)
        assert w.shape == (5, 2, 4, 9, 9)
        torch.testing.assert_close(w.sum(-1), torch.ones(5, 2, 4, 9))
        assert (w.triu(1) == 0).all()  # no step attends to a later one
        block = model.blocks[0]
        h = block.norm1(model._embed(x))
        _, _, v = block.attn._qkv(h)
        mixed = (w[:, 0] @ v).transpose(1, 2).flatten(2)  # (B, T, d)
        torch.testing.assert_close(block.attn.out(mixed), block.attn(h), rtol=1e-5, atol=1e-5)


def test_linear_variants_compute_what_they_say():
    io = ModelIO(10, 1, 1)
    x = torch.randn(4, 10, 1)
    plain = build_model(ModelConfig(kind="linear", window=6), io)
    expected = x[:, -6:, 0] @ plain.head.weight.T + plain.head.bias
    torch.testing.assert_close(plain(x), expected)
    nlinear = build_model(ModelConfig(kind="linear", window=6, variant="nlinear"), io)
    w = x[:, -6:, 0]
    torch.testing.assert_close(nlinear(x), (w - w[:, -1:]) @ nlinear.head.weight.T + nlinear.head.bias + w[:, -1:])
    dlinear = build_model(ModelConfig(kind="linear", window=6, variant="dlinear"), io)
    assert dlinear.kernel == 5  # 25 clipped to the window, made odd
    padded = torch.cat([w[:, :1], w[:, :1], w, w[:, -1:], w[:, -1:]], 1)  # edges repeated
    trend = torch.stack([padded[:, i:i + 5].mean(1) for i in range(6)], 1)
    expected = trend @ dlinear.trend.weight.T + dlinear.trend.bias + (w - trend) @ dlinear.head.weight.T
    torch.testing.assert_close(dlinear(x), expected + dlinear.head.bias)


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_a_kind_reads_exactly_the_fields_it_declares(kind):
    """Changing a field the kind reads changes its model (outputs or parameters); any other field does not."""
    base = ModelConfig(kind=kind, hidden=8, window=3, heads=2, levels=2, kernel=2)
    changes = {"hidden": 12, "layers": 2, "window": 4, "embed_dim": 5, "variant": "dlinear", "kernel": 3,
               "levels": 3, "heads": 4}
    x = torch.randint(1, 30, (3, 12))
    torch.manual_seed(0)
    before = build_model(base, TOKENS).eval()
    for name, value in changes.items():
        torch.manual_seed(0)
        after = build_model(replace(base, **{name: value}), TOKENS).eval()
        same = count_params(after) == count_params(before) and torch.equal(before(x), after(x))
        assert same != (name in MODEL_KINDS[kind].reads), name


def test_new_settings_round_trip_and_old_configs_keep_their_meaning():
    from lib.cli import parse_model
    from lib.configs import from_dict, to_dict

    old = {"kind": "lstm", "hidden": 64, "layers": 1, "dropout": 0.0, "window": 5, "embed_dim": 16, "init": "auto"}
    assert from_dict(ModelConfig, old) == ModelConfig()  # a stored config from before the new kinds
    tcn = parse_model("tcn:levels=4,kernel=3")
    assert tcn == ModelConfig(kind="tcn", levels=4, kernel=3) and tcn.label == "TCN k3 n4"
    assert parse_model("linear:window=8,variant=dlinear").label == "DLinear w8"
    for cfg in (tcn, parse_model("transformer:heads=4"), parse_model("mingru")):
        assert from_dict(ModelConfig, to_dict(cfg)) == cfg
        model = build_model(cfg, TOKENS)
        again = build_model(cfg, TOKENS)
        again.load_state_dict(model.state_dict())  # weight-normalised TCN weights too
        x = torch.randint(1, 30, (2, 12))
        assert torch.equal(model.eval()(x), again.eval()(x))


# ---------------------------------------------------------------- science (slow)

@pytest.mark.slow
def test_a_tcn_recalls_the_cue_only_when_its_receptive_field_covers_it():
    from lib.tasks.text import TextRecallConfig, cue_lag, make_text_recall
    from lib.train import TrainConfig, train

    ds = make_text_recall(TextRecallConfig(distance=10, n_train=2000, n_val=300, n_test=500))
    short, covering = (ModelConfig(kind="tcn", hidden=32, kernel=3, levels=n) for n in (2, 3))
    assert receptive_field(short) < cue_lag(10) <= receptive_field(covering)  # 13 < 15 <= 29
    fit = TrainConfig(epochs=20, patience=5, device="cpu")
    assert train(ds, short, fit).test["accuracy"] <= ds.chance + 0.08  # chance 1/6: the cue is out of reach
    assert train(ds, covering, fit).test["accuracy"] >= 0.95


@pytest.mark.slow
def test_the_linear_model_matches_least_squares_on_a_noiseless_series():
    import numpy as np

    from lib.tasks.sine import SineConfig, make_sine
    from lib.train import TrainConfig, predict, train

    ds = make_sine(SineConfig(noise=0.0, seq_len=24, length=2000))  # a sum of two sines: an exact AR(4)
    run = train(ds, ModelConfig(kind="linear", window=24), TrainConfig(epochs=300, patience=0, lr=1e-2, device="cpu"))

    def design(split):
        return np.c_[split.x[:, :, 0].double().numpy(), np.ones(len(split))]  # the window and a bias

    coef, *_ = np.linalg.lstsq(design(ds.train), ds.train.y.double().numpy(), rcond=None)
    ols = design(ds.test) @ coef
    ours = predict(run.model, ds.test.x)[:, 0].double().numpy()
    scale = float(ds.test.y.std())
    assert np.sqrt(np.mean((ols - ds.test.y.double().numpy()) ** 2)) < 1e-6 * scale  # OLS is exact here
    assert np.sqrt(np.mean((ours - ols) ** 2)) < 1e-3 * scale


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["transformer", "mingru"])
def test_attention_and_mingru_recall_the_cue_at_distance_40(kind):
    from lib.tasks.text import TextRecallConfig, make_text_recall
    from lib.train import TrainConfig, train

    ds = make_text_recall(TextRecallConfig(distance=40, n_train=2000, n_val=300, n_test=500))
    run = train(ds, ModelConfig(kind=kind, hidden=32), TrainConfig(epochs=30, patience=5, device="cpu"))
    assert run.test["accuracy"] >= 0.95


def test_a_tcn_survives_pickling_as_a_finished_run_from_a_worker_does():
    import pickle

    io = ModelIO(seq_len=30, n_features=3, n_outputs=2)
    model = build_model(ModelConfig(kind="tcn"), io).eval()
    x = torch.randn(4, 30, 3)
    again = pickle.loads(pickle.dumps(model))
    assert torch.equal(model(x), again(x)) and not again.training
