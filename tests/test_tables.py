"""lib.tables: runs with their configs as columns, filtered and grouped; runs side by side; cost tables."""
import io

import pandas as pd

from lib.tables import (
    config_frame,
    filled,
    filter_runs,
    group_runs,
    human_table,
    runs_csv,
    runs_table,
    side_by_side,
)


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


GOOD = {"task": {"name": "text_recall", "distance": 40, "objective": "classify", "n_train": 2000},
        "model": {"kind": "lstm", "hidden": 32, "layers": 1, "init": "auto"},
        "train": {"lr": 0.01, "batch_size": 64, "epochs": 30, "patience": 5}}


def run_list() -> pd.DataFrame:
    """Three runs as RunStore.runs lists them: two with a config, one whose config is gone."""
    return pd.DataFrame({"id": ["a1", "b2", "c3"], "task": ["text_recall", "text_recall", "sine"],
                         "label": ["LSTM", "LSTM", "GRU"], "status": ["completed", "diverged", "completed"],
                         "epochs": [10, 4, 6], "test_accuracy": [0.9, 0.5, None], "test_mse": [None, None, 0.2]},
                        index=[7, 8, 9])


def test_the_run_list_gets_its_configs_as_columns_and_names_those_some_run_has():
    configs = {"a1": GOOD, "b2": {**GOOD, "model": {**GOOD["model"], "hidden": 64}}}
    table, keys = runs_table(run_list(), configs)
    assert list(table.index) == [7, 8, 9] and list(table["id"]) == ["a1", "b2", "c3"]
    assert list(table["task"]) == ["Text recall", "Text recall", "Sine waves"]  # c3: the title, without a config
    assert table["hidden"].tolist()[:2] == [32, 64] and pd.isna(table.loc[9, "hidden"])
    assert "task" not in keys and "window" not in keys  # no run has a window
    assert keys[:3] == ["distance", "objective", "training sentences"] and "hidden" in keys


def test_filters_keep_the_runs_that_match_every_choice_and_an_empty_choice_keeps_all():
    table, _ = runs_table(run_list(), {"a1": GOOD, "b2": {**GOOD, "model": {**GOOD["model"], "hidden": 64}}})
    assert list(filter_runs(table)["id"]) == ["a1", "b2", "c3"]
    assert list(filter_runs(table, tasks=["Text recall"])["id"]) == ["a1", "b2"]
    assert list(filter_runs(table, statuses=["completed"])["id"]) == ["a1", "c3"]
    assert list(filter_runs(table, key="hidden", values=["64"])["id"]) == ["b2"]  # compared as text
    assert list(filter_runs(table, key="hidden")["id"]) == ["a1", "b2", "c3"]  # a column without values: no filter
    assert filter_runs(table, tasks=["Sine waves"], statuses=["diverged"]).empty


def test_groups_count_runs_and_average_their_test_metrics_and_epochs():
    table, keys = runs_table(run_list(), {"a1": GOOD, "b2": GOOD})
    by_label = group_runs(table, "label")
    assert list(by_label.columns) == ["label", "runs", "mean test accuracy", "mean test mse", "mean epochs"]
    assert by_label["label"].tolist() == ["GRU", "LSTM"] and by_label["runs"].tolist() == [1, 2]
    assert by_label["mean test accuracy"].tolist()[1] == 0.7 and by_label["mean epochs"].tolist() == [6.0, 7.0]
    by_hidden = group_runs(table, "hidden")  # grouped as text; a run without the setting is in no group
    assert by_hidden["hidden"].tolist() == ["32"] and by_hidden["runs"].tolist() == [2]
    assert filled(table.iloc[2:], keys) == [] and filled(table, ["test_mse", "window"]) == ["test_mse"]


def test_the_runs_csv_has_the_tables_columns_first_then_every_filled_one_in_the_runs_order():
    configs = {"a1": GOOD, "b2": {**GOOD, "model": {**GOOD["model"], "hidden": 64}}}
    table, _ = runs_table(run_list(), configs)
    csv = pd.read_csv(io.StringIO(runs_csv(table, ["b2", "a1"], ["id", "label", "distance"])))
    assert list(csv.columns[:3]) == ["id", "label", "distance"]
    assert list(csv["id"]) == ["b2", "a1"] and list(csv["hidden"]) == [64, 32] and list(csv["distance"]) == [40, 40]
    assert {"training sentences", "learning rate", "test_accuracy", "status"} <= set(csv.columns)
    assert "test_mse" not in csv.columns and "window" not in csv.columns  # no value in these runs
