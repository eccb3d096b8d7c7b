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
    (ModelConfig(kind="transformer"), TOKENS, "unknown model 'transformer'; choose one of: ffnn, rnn, gru, lstm."),
    (ModelConfig(kind="lstm", hidden=0), TOKENS, r"hidden units \(hidden\) must be between 1 and 4096, got 0\."),
    (ModelConfig(kind="ffnn", window=13), TOKENS,
     r"FFNN window 13 is longer than the sequence \(12 steps\); choose a window between 1 and 12."),
    (ModelConfig(kind="gru", layers=9), TOKENS, "layers must be between 1 and 4, got 9."),
    (ModelConfig(kind="rnn", dropout=1.0), TOKENS, r"dropout must be in \[0, 1\), got 1\."),
    (ModelConfig(kind="rnn", init="chrono"), TOKENS,
     "init 'chrono' does not apply to rnn; choose one of: auto, pytorch, orthogonal."),
])
def test_invalid_configs_say_what_to_change(cfg, io, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        build_model(cfg, io)


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_parameter_matching_lands_near_the_budget(kind):
    cfg = match_params(ModelConfig(kind=kind, window=6), TOKENS, 20_000)
    n = count_params(build_model(cfg, TOKENS))
    step = count_params(build_model(ModelConfig(kind=kind, window=6, hidden=cfg.hidden + 1), TOKENS)) - n
    assert abs(n - 20_000) <= step


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_the_registry_describes_each_kind(kind):
    spec = MODEL_KINDS[kind]
    model = build_model(ModelConfig(kind=kind, hidden=4, window=3), TOKENS)
    assert spec.recurrent == isinstance(getattr(model, "rnn", None), torch.nn.RNNBase)
    assert spec.windowed == (getattr(model, "window", None) == 3)
    assert ModelConfig(kind=kind, window=3).label == (f"{kind.upper()} w3" if spec.windowed else kind.upper())
    assert spec.title and not (spec.fused_on_cpu and not spec.recurrent)


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
