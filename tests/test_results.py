"""lib.results: a result's settings in the widgets' words, what changed, and files that carry them."""
import json
from dataclasses import replace

import pandas as pd
import pytest

from lib import results
from lib.errors import ConfigError
from lib.models import ModelConfig
from lib.results import Settings, config_frame, human_table, parse_numbers, side_by_side
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig

MODELS = (ModelConfig(kind="ffnn", window=5), ModelConfig(kind="rnn"), ModelConfig(kind="lstm"))


def story(**train) -> Settings:
    return Settings(TextRecallConfig(distance=20), MODELS, TrainConfig(**train), (0, 1, 2))


def test_the_header_names_task_knobs_models_training_and_seeds():
    lines = dict(story().describe("accuracy"))
    assert lines["Task"] == "Text recall · distance 20 · objective classify the final word · training sentences 4,000"
    assert lines["Models"].startswith("FFNN w5, RNN, LSTM · hidden units 64 · layers 1")
    assert lines["Training"].startswith("up to 60 epochs (stops after 10 epochs without a better validation "
                                        "accuracy; the epoch with the best validation accuracy is kept and tested)")
    assert lines["Seeds"] == "0, 1, 2"
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
    csv = results.with_settings(summary, story())
    assert list(csv["task"]) == ["text_recall"] * 2 and list(csv["task.distance"]) == [20, 20]
    assert list(csv["train.epochs"]) == [60, 60] and list(csv["seeds"]) == ["0, 1, 2"] * 2
    assert list(csv["model.hidden"]) == [64, 64]
    data = json.loads(results.json_with_settings(summary, story()))
    assert data["settings"]["task"] == {"name": "text_recall", "distance": 20, "distance_max": None,
                                        "objective": "classify", "n_train": 4000, "n_val": 1000, "n_test": 1000,
                                        "seed": 0}
    assert data["settings"]["seeds"] == [0, 1, 2] and data["rows"][1] == {"label": "LSTM", "metric": 1.0}


def test_distances_are_parsed_or_refused_in_words():
    assert parse_numbers("0, 10,20, 10", "distances") == (0, 10, 20)
    with pytest.raises(ConfigError) as err:
        parse_numbers("0, ten", "distances")
    assert str(err.value) == "distances must be whole numbers separated by commas, e.g. 0, 10, 20; “ten” is not one."
    with pytest.raises(ConfigError, match="give at least one of the distances"):
        parse_numbers(" , ", "distances")


def test_run_configs_become_columns_a_reader_knows():
    good = {"task": {"name": "text_recall", "distance": 40, "objective": "classify", "n_train": 2000},
            "model": {"kind": "lstm", "hidden": 32, "layers": 1, "window": 5, "init": "auto"},
            "train": {"lr": 0.01, "batch_size": 64, "epochs": 30, "patience": 5}}
    junk = {"task": [1, 2], "model": {"kind": ["x"], "init": {"a": 1}}, "train": "?"}
    frame = config_frame({"a1": good, "b2": junk})
    row = frame.loc["a1"]
    assert (row["task"], row["distance"], row["model"], row["init"], row["learning rate"]) == (
        "Text recall", 40, "LSTM", "chrono + orthogonal", 0.01)
    assert pd.isna(row["window"])  # only windowed kinds have a window
    assert str(frame["hidden"].dtype) == "Int64"  # whole numbers stay whole beside a run that lacks them
    assert frame.loc["b2", "task"] == "" and frame.loc["b2", "model"] == "x"


def test_side_by_side_marks_the_rows_that_differ():
    rows = pd.DataFrame({"lr": [0.01, 0.01], "epochs": [10, 20], "window": [5.0, None]}, index=["a", "b"])
    table = side_by_side(rows, ["run a", "run b"])
    assert list(table.columns) == ["differs", "run a", "run b"]
    assert table["differs"].to_dict() == {"lr": False, "epochs": True, "window": True}
    assert table.loc["window"].tolist()[1:] == ["5", "—"]  # text cells, whole numbers without ".0"
    assert list(side_by_side(rows, ["run a", "run b"], only_differences=True).index) == ["epochs", "window"]


def test_cost_tables_get_human_column_names():
    report = pd.DataFrame({"label": ["LSTM"], "n_params": [10], "epoch_seconds": [0.1], "torch": ["2"]})
    assert list(human_table(report).columns) == ["model", "parameters", "wall s / epoch"]


def test_a_budget_and_windows_are_part_of_the_settings():
    s = replace(story(), windows=(1, 5), budget=20_000)
    models = dict(s.describe())["Models"]
    assert "FFNN windows 1, 5" in models and "parameter budget 20,000" in models
