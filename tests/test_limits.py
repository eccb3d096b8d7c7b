import pytest

from lib.limits import PHASES, binding, core_layer, step_limits
from lib.models import ModelConfig, ModelIO, build_model


@pytest.mark.parametrize(("kind", "step", "core", "roofline", "expected"), [
    ("ffnn", 3.0, 1.0, 0.9, "per-op overhead"),  # the work around the layer takes twice the layer
    ("rnn", 1.0, 0.9, 0.1, "sequential steps"),  # a recurrent layer far above its arithmetic
    ("tcn", 1.0, 0.9, 0.1, "per-op overhead"),  # far above its arithmetic, with nothing that must run in order
    ("lstm", 1.0, 0.9, 0.8, "arithmetic"),
])
def test_the_binding_constraint_follows_the_three_times(kind, step, core, roofline, expected):
    assert binding(kind, step, core, roofline) == expected


def test_the_core_layer_is_the_largest_module_the_model_calls(tiny_text):
    model = build_model(ModelConfig(kind="lstm", hidden=16), ModelIO.from_dataset(tiny_text))
    core, inputs = core_layer(model, tiny_text.train.x[:4])
    assert core is model.rnn and inputs[0].shape[:2] == tiny_text.train.x[:4].shape


@pytest.mark.parametrize("kind", ["ffnn", "gru"])
def test_step_limits_measure_every_phase(tiny_text, kind):
    r = step_limits(tiny_text, ModelConfig(kind=kind, hidden=8, window=3), 1e5, steps=3, gflops=10.0)
    assert r["roofline_s"] == pytest.approx(1e5 * 64 / 10e9)  # train FLOPs x batch / rate
    assert set(r["phases_s"]) == set(PHASES) and all(v > 0 for v in r["phases_s"].values())
    assert r["step_s"] == pytest.approx(sum(r["phases_s"].values()))
    assert r["core_layer_s"] > 0 and r["roofline_s"] > 0 and r["binding"] in (
        "per-op overhead", "sequential steps", "arithmetic")
