"""The spec of an upload (lib/tasks/user/spec.py): validation, the guessed layout, the proposal for another
layout and the columns a user names."""
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lib.configs import from_dict, to_dict
from lib.tasks.user.build import build_dataset
from lib.tasks.user.read import CorpusText, NpzArrays, load_table
from lib.tasks.user.spec import UploadSpec, choose_spec, guess_spec, layout_defaults, numeric_columns
from tests.support.user_files import long_frame, raises, series_frame, wide_frame, words


def test_spec_is_hashable_and_round_trips_through_json():
    spec = UploadSpec(layout="long", target="label", inputs=("x1", "x2"), time="step", sequence="seq",
                      length=5, missing="interpolate")
    assert hash(spec) == hash(replace(spec))
    data = json.loads(json.dumps(to_dict(spec)))
    assert data["inputs"] == ["x1", "x2"] and from_dict(UploadSpec, data) == spec


@pytest.mark.parametrize("spec, message", [
    (UploadSpec(layout="table"), "layout must be one of 'series', 'wide', 'long', 'corpus', 'arrays', got 'table'."),
    (UploadSpec(layout="wide", target="y", inputs=("a",), missing="zero"),
     "missing must be one of 'error', 'drop', 'ffill', 'interpolate', got 'zero'."),
    (UploadSpec(layout="series", target="v", inputs=("v",), window=0), "window must be between 1 and 1000, got 0."),
    (UploadSpec(layout="series", target="v", inputs=("w",)),
     "the target 'v' must be one of the inputs ('w'): a forecast sees the target's past."),
    (UploadSpec(layout="long", target="y", inputs=("a",)),
     "the long layout needs sequence (the sequence id column)."),
    (UploadSpec(layout="wide", target="y"), "the wide layout needs inputs (the step columns)."),
    (UploadSpec(layout="long", target="y", inputs=("a",), sequence="s", length=1),
     "length must be between 2 and 10000 steps (or None for the longest sequence), got 1."),
    (UploadSpec(layout="corpus", val_fraction=0.5), "val_fraction must be between 0.05 and 0.4, got 0.5."),
])
def test_spec_errors_say_what_to_change(spec, message):
    with raises(message):
        spec.validate()


def test_spec_fields_are_cast_like_other_configs():
    with raises("window must be a whole number, got 2.5."):
        UploadSpec(layout="series", window=2.5)


# ---------------------------------------------------------------- guessing the layout

def test_guess_spec_finds_each_layout():
    series = guess_spec(series_frame())
    assert (series.layout, series.time, series.target, series.inputs) == ("series", "date", "temp", ("temp", "load"))
    wide = guess_spec(wide_frame())
    assert (wide.layout, wide.target, wide.inputs) == ("wide", "label", tuple(f"t{i}" for i in range(8)))
    long = guess_spec(long_frame())
    assert (long.layout, long.sequence, long.time, long.target, long.inputs) == \
        ("long", "seq", "step", "label", ("x1", "x2"))
    assert guess_spec(CorpusText(words(50))).layout == "corpus"
    arrays = guess_spec(NpzArrays(np.zeros((4, 3)), np.array([0.5, 1.5, 2.25, 3.0])))
    assert (arrays.layout, arrays.label_kind) == ("arrays", "regression")
    with_split = guess_spec(wide_frame().assign(split="train"))
    assert with_split.split == "split" and "split" not in with_split.inputs


def test_guess_spec_picks_a_window_the_series_can_hold():
    assert guess_spec(series_frame(120)).window == 8  # 120 rows: val and test parts of 18 hold 10 windows of 9
    build_dataset(series_frame(120), guess_spec(series_frame(120)))


# ---------------------------------------------------------------- choosing a spec: the Your data page and the CLI

def test_numeric_columns_leave_out_text_and_true_false():
    df = pd.DataFrame({"a": [1, 2], "b": [True, False], "c": ["x", "y"], "d": [0.5, 1.5]})
    assert numeric_columns(df) == ["a", "d"]


def test_layout_defaults_keep_the_guess_for_its_layout_and_propose_roles_for_another():
    df = long_frame()
    guess = guess_spec(df)
    assert layout_defaults(df, "long", guess) is guess
    wide = layout_defaults(df, "wide", guess)
    assert (wide.layout, wide.target, wide.sequence, wide.time, wide.inputs) == (
        "wide", "label", None, "step", ("x1", "x2"))
    series = layout_defaults(df, "series")
    assert (series.layout, series.target, series.inputs, series.time) == ("series", "x1", ("x1", "x2"), "step")
    long = layout_defaults(wide_frame(), "long")  # guessed wide: the first other column becomes the sequence id
    assert (long.target, long.sequence, long.inputs) == ("label", "id", tuple(f"t{i}" for i in range(8)))
    corpus = CorpusText(words(50))
    assert layout_defaults(corpus, "series") == guess_spec(corpus)  # a file that is no table keeps its guess


def test_a_one_column_table_proposes_no_sequence_column_rather_than_failing():
    long = layout_defaults(pd.DataFrame({"v": np.arange(100.0)}), "long")
    assert (long.target, long.sequence, long.inputs) == ("v", None, ())
    with raises("the long layout needs sequence (the sequence id column)."):
        long.validate()


def test_choose_spec_follows_the_columns_a_user_names():
    frame = pd.DataFrame({"day": range(50), "a": np.arange(50.0), "b": np.ones(50), "kind": ["x", "y"] * 25})
    series = choose_spec(frame, target="b", window=8)
    assert (series.layout, series.target, series.inputs, series.time, series.window) == (
        "series", "b", ("a", "b"), "day", 8)
    wide = choose_spec(frame.drop(columns="day"), label="kind", regression=False)
    assert (wide.layout, wide.target, wide.inputs) == ("wide", "kind", ("a", "b"))
    with raises("give a target (a column to forecast) or a label (one per sequence), not both; got target 'a' and "
                "label 'kind'."):
        choose_spec(frame, target="a", label="kind")


def test_choose_spec_with_only_a_layout_proposes_what_the_page_proposes():
    df = long_frame()
    assert choose_spec(df) == guess_spec(df)
    assert choose_spec(df, layout="wide", window=None) == layout_defaults(df, "wide")
    assert choose_spec(df, layout="wide", inputs=("x2",)).inputs == ("x2",)


# ---------------------------------------------------------------- regressions of the reliability audit (finding 5)

def test_a_blank_first_header_cell_is_offered_as_the_time_column():
    df = load_table(series_frame(100).drop(columns="date").to_csv().encode(), "exported.csv")  # ",temp,load"
    spec = guess_spec(df)
    assert (spec.layout, spec.time, spec.target, spec.inputs) == ("series", "index", "temp", ("temp", "load"))
    assert build_dataset(df, spec).n_features == 2
    wide = guess_spec(load_table(wide_frame().to_csv().encode(), "wide.csv"))
    assert (wide.layout, wide.target, wide.inputs) == ("wide", "label", tuple(f"t{i}" for i in range(8)))


def test_a_time_named_text_column_that_holds_no_dates_is_not_the_time_column():
    df = load_table(series_frame(100).drop(columns="date").set_axis([f"r{i}" for i in range(100)]).to_csv().encode(),
                    "r.csv")  # R's row names, as text
    spec = guess_spec(df)
    assert (spec.layout, spec.time, spec.inputs) == ("series", None, ("temp", "load"))
    assert "300 rows" not in build_dataset(df, spec).description


def test_a_split_column_with_one_bad_value_is_still_the_split():
    df = series_frame(200).assign(split=["train"] * 140 + ["val"] * 29 + ["test"] * 30 + ["foo"])
    assert guess_spec(df).split == "split"
    folds = series_frame(200).assign(fold=np.arange(200) % 5)  # k-fold numbers are no train/val/test split
    assert guess_spec(folds).split is None


def test_a_row_index_column_is_never_an_input_and_orders_only_tables_without_a_time():
    for frame, time in ((series_frame(50), "date"), (long_frame(), "step")):
        spec = guess_spec(load_table(frame.to_csv().encode(), "exported.csv"))
        assert spec.time == time and "index" not in spec.inputs and spec.target != "index"


def test_a_table_of_numbers_read_as_text_names_the_cell_that_is_not_a_number():
    lines = series_frame(50).to_csv(index=False).splitlines()
    lines.insert(3, lines[0])  # the header again, as when two exports are pasted together
    with raises("the table has no numeric column (columns: date, temp, load); a series or sequence needs numbers. "
                "Column 'temp' holds numbers but for row 3 ('temp'); fix that cell (a repeated header or a note in the "
                "data) or delete its row."):
        guess_spec(load_table("\n".join(lines).encode(), "a.csv"))
