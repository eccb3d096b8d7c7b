"""lib.settings: a result's settings in the widgets' words, what changed, and files that carry them."""
import json
from dataclasses import replace

import pandas as pd

from lib import settings
from lib.models import ModelConfig
from lib.settings import Settings
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig

MODELS = (ModelConfig(kind="ffnn", window=5), ModelConfig(kind="rnn"), ModelConfig(kind="lstm"))


def story(**train) -> Settings:
    return Settings(TextRecallConfig(distance=20), MODELS, TrainConfig(**train), (0, 1, 2))


def test_the_header_names_task_knobs_models_training_and_seeds():
    lines = dict(story().describe("accuracy"))
    assert lines["Task"] == ("Text recall · distance 20 · objective classify the final word · cue words 6 · training "
                             "sentences 4,000")
    assert lines["Models"].startswith("FFNN w5, RNN, LSTM · hidden units 64 · layers 1")
    assert lines["Training"].startswith("up to 60 epochs (stops after 20 epochs without a better validation "
                                        "accuracy; the epoch with the best validation accuracy is kept and tested)")
    assert lines["Seeds"] == "0, 1, 2 (3 seeds)"
    no_stop = dict(story(patience=0).describe("accuracy"))["Training"]
    assert no_stop.startswith("up to 60 epochs (no early stopping;")


def test_changes_name_each_setting_that_differs_in_widget_words():
    form = Settings(TextRecallConfig(distance=10, n_train=2000), MODELS[1:], TrainConfig(epochs=5), (0,))
    assert story().changes(form) == ["distance 20 → 10", "training sentences 4,000 → 2,000",
                                     "models FFNN w5, RNN, LSTM → RNN, LSTM", "max epochs 60 → 5", "seeds 0, 1, 2 → 0"]
    assert story().changes(story()) == []
    assert story().changes(Settings(SineConfig(), MODELS, TrainConfig(), (0,))) == ["task Text recall → Sine waves"]
    assert story().changes(None) == ["the settings above cannot be trained as they are"]


def test_the_device_and_a_training_seed_are_not_settings_of_a_result():
    assert story(device="cpu", seed=3) == story()


def test_a_distance_sweep_ignores_the_task_s_own_distance():
    a = Settings(TextRecallConfig(distance=20), MODELS, TrainConfig(), (0,), distances=(0, 10))
    b = Settings(TextRecallConfig(distance=3), MODELS, TrainConfig(), (0,), distances=(0, 10))
    assert a == b and a.changes(b) == []
    assert dict(a.describe())["Task"].endswith("distances 0, 10")
    assert a.planned_runs == 3 * 1 * 2


def test_downloads_carry_the_settings():
    summary = pd.DataFrame({"label": ["RNN", "LSTM"], "metric": [0.5, 1.0]})
    csv = settings.with_settings(summary, story())
    assert list(csv["task"]) == ["text_recall"] * 2 and list(csv["task.distance"]) == [20, 20]
    assert list(csv["train.epochs"]) == [60, 60] and list(csv["seeds"]) == ["0, 1, 2"] * 2
    assert list(csv["model.hidden"]) == [64, 64]
    data = json.loads(settings.json_with_settings(summary, story()))
    assert data["settings"]["task"] == {"name": "text_recall", "distance": 20, "distance_max": None,
                                        "objective": "classify", "cues": 6, "n_train": 4000, "n_val": 1000,
                                        "n_test": 1000, "seed": 0}
    assert data["settings"]["seeds"] == [0, 1, 2] and data["rows"][1] == {"label": "LSTM", "metric": 1.0}


def test_a_budget_and_windows_are_part_of_the_settings():
    s = replace(story(), windows=(1, 5), budget=20_000)
    models = dict(s.describe())["Models"]
    assert "FFNN windows 1, 5" in models and "parameter budget 20,000" in models
