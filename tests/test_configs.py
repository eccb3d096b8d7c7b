"""Configs: one round trip through JSON for every config, and field-typed casting that names what is wrong."""
import json
import math
import re
from dataclasses import fields

import pytest

from lib.configs import from_dict, to_dict
from lib.errors import ConfigError
from lib.models import ModelConfig, ModelIO
from lib.tasks import TASKS
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig
from lib.tasks.video import VideoConfig
from lib.train import TrainConfig

CONFIGS = [
    *(cls() for cls, _ in TASKS.values()),
    TextRecallConfig(distance=5, distance_max=9, objective="next_word", seed=7),
    SineConfig(periods=(12.5,), amplitudes=(2.0,), noise=0.0, horizon=3),
    VideoConfig(gap=7, gap_mode="noise", features="pca", max_speed=2.0),
    ModelConfig(),
    ModelConfig(kind="ffnn", window=9, hidden=128, dropout=0.25, init="pytorch"),
    TrainConfig(),
    TrainConfig(optimizer="adamw", lr=0.5, weight_decay=1e-4, seed=2 ** 63 - 1, device="cpu"),
    ModelIO(seq_len=7, n_features=12, n_outputs=3, tokens=True),
]


def raises(message: str):
    return pytest.raises(ConfigError, match="^" + re.escape(message) + "$")


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: type(c).__name__)
def test_every_config_survives_a_json_round_trip(cfg):
    data = json.loads(json.dumps(to_dict(cfg)))
    back = from_dict(type(cfg), data)
    assert back == cfg and hash(back) == hash(cfg)
    assert to_dict(back) == data  # ints stay ints, floats floats, tuples lists


def test_values_are_cast_to_their_fields_types():
    sine = SineConfig(periods=[24, 8], amplitudes=(1, 0.5))
    assert sine == SineConfig() and hash(sine) == hash(SineConfig())
    assert all(type(v) is float for v in sine.periods + sine.amplitudes)
    assert type(ModelConfig(hidden=64.0).hidden) is int and type(TrainConfig(lr=1).lr) is float
    assert TextRecallConfig(distance_max=None).distance_max is None


@pytest.mark.parametrize("cls, values, expected", [
    (SineConfig, {"periods": "24", "amplitudes": "1"}, SineConfig(periods=(24.0,), amplitudes=(1.0,))),
    (SineConfig, {"periods": "24, 8", "noise": "0"}, SineConfig(noise=0.0)),
    (TextRecallConfig, {"distance": "3", "distance_max": "none"}, TextRecallConfig(distance=3)),
    (TextRecallConfig, {"distance_max": "30", "objective": "next_word"},
     TextRecallConfig(distance_max=30, objective="next_word")),
    (ModelConfig, {"kind": "ffnn", "hidden": "1e3", "dropout": "0.1"},
     ModelConfig(kind="ffnn", hidden=1000, dropout=0.1)),
])
def test_command_line_text_is_read_by_the_fields_type(cls, values, expected):
    assert from_dict(cls, values, text=True) == expected


BAD = [
    (ModelConfig, {"hidden": 2.5}, "hidden must be a whole number, got 2.5."),
    (ModelConfig, {"hidden": "abc"}, "hidden must be a whole number, got 'abc'."),
    (ModelConfig, {"hidden": True}, "hidden must be a whole number, got True."),
    (ModelConfig, {"window": math.nan}, "window must be a whole number, got nan."),
    (ModelConfig, {"kind": 5}, "kind must be text, got 5."),
    (ModelConfig, {"dropout": None}, "dropout must be a finite number, got None."),
    (TrainConfig, {"lr": math.nan}, "lr must be a finite number, got nan."),
    (TrainConfig, {"weight_decay": math.inf}, "weight_decay must be a finite number, got inf."),
    (TrainConfig, {"clip": "1"}, "clip must be a finite number, got '1'."),
    (TrainConfig, {"min_delta": False}, "min_delta must be a finite number, got False."),
    (TrainConfig, {"seed": 2 ** 64},
     "seed must fit in 64 bits (between -9223372036854775808 and 9223372036854775807), got "
     "18446744073709551616."),
    (TrainConfig, {"epochs": 2.5}, "epochs must be a whole number, got 2.5."),
    (SineConfig, {"periods": 24}, "periods must be a list, got 24."),
    (SineConfig, {"periods": "24"}, "periods must be a list, got '24'."),
    (SineConfig, {"amplitudes": (1.0, math.inf)}, "amplitudes[1] must be a finite number, got inf."),
    (TextRecallConfig, {"distance_max": 2.5}, "distance_max must be a whole number, got 2.5."),
    (TextRecallConfig, {"n_train": 300.5}, "n_train must be a whole number, got 300.5."),
    (VideoConfig, {"max_speed": "fast"}, "max_speed must be a finite number, got 'fast'."),
]


@pytest.mark.parametrize("cls, values, message", BAD)
def test_constructors_and_from_dict_refuse_values_a_field_cannot_hold(cls, values, message):
    with raises(message):
        cls(**values)
    with raises(message):
        from_dict(cls, values)


@pytest.mark.parametrize(("field", "value"), [("weight_decay", math.nan), ("weight_decay", math.inf),
                                              ("min_delta", math.nan), ("clip", math.nan), ("epochs", 2.5)])
def test_train_configs_refuse_non_finite_and_fractional_values(field, value):
    with pytest.raises(ConfigError, match=re.escape(f"{field} must be")):
        from_dict(TrainConfig, {field: value})


@pytest.mark.parametrize("cls, values, message", [
    (ModelConfig, {"hidden": "2.5"}, "hidden must be a whole number, got 2.5."),
    (ModelConfig, {"window": "none"}, "window must be a whole number, got 'none'."),
    (TrainConfig, {"lr": "nan"}, "lr must be a finite number, got nan."),
    (TextRecallConfig, {"distance": "abc"}, "distance must be a whole number, got 'abc'."),
    (SineConfig, {"periods": "24,x"}, "periods[1] must be a finite number, got 'x'."),
])
def test_command_line_text_a_field_cannot_hold_is_refused(cls, values, message):
    with raises(message):
        from_dict(cls, values, text=True)


def test_unknown_names_are_refused_with_the_valid_ones():
    with raises("unknown parameter(s) for task 'video': colour, size; valid: canvas, features, gap, gap_mode, "
                "max_speed, n_components, n_test, n_train, n_val, seed, visible."):
        from_dict(VideoConfig, {"size": 3, "colour": "red", "gap": 2})
    valid = ", ".join(sorted(f.name for f in fields(ModelConfig)))
    with raises(f"unknown parameter(s) for ModelConfig: widht; valid: {valid}."):
        from_dict(ModelConfig, {"widht": 3})
