"""Building datasets from uploads (lib/tasks/user/build.py and checks.py): each layout, the shipped examples
and every malformed table."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from lib.paths import EXAMPLES
from lib.probes import tokenize
from lib.tasks import CLASSIFICATION, REGRESSION
from lib.tasks.user.build import WORD, build_dataset
from lib.tasks.user.read import CorpusText, NpzArrays, load_table
from lib.tasks.user.spec import UploadSpec, guess_spec
from tests.support.user_files import csv_bytes, long_frame, npz_bytes, raises, series_frame, wide_frame, words


def test_corpus_words_match_the_probe_tokenizer():
    text = "Don't stop: the cat's 2 mats, said O'Hara!"
    assert WORD.findall(text.lower()) == tokenize(text)


# ---------------------------------------------------------------- building: series

def test_series_forecasts_the_target_from_all_inputs_split_in_time():
    df = series_frame()
    spec = replace(guess_spec(df), target="load", window=10, horizon=2)
    ds = build_dataset(df, spec, name="load")
    assert ds.kind == REGRESSION and ds.n_features == 2 and ds.seq_len == 10 and ds.name == "load"
    assert (len(ds.train), len(ds.val), len(ds.test)) == (210 - 11, 45 - 11, 45 - 11)
    values = df[["temp", "load"]].to_numpy()
    mean, std = values[:210].mean(axis=0), values[:210].std(axis=0)
    scaled = ((values - mean) / std).astype(np.float32)
    assert np.allclose(ds.val.x[0].numpy(), scaled[210:220]) and ds.val.y[0] == pytest.approx(scaled[221, 1])
    assert ds.test.y[-1] == pytest.approx(scaled[-1, 1])
    assert "last_value_mse" in ds.baselines
    assert ds.description == (
        "Forecast 'load' 2 row(s) past windows of 10 rows of 'temp', 'load'; 300 rows ordered by 'date', split in "
        "time: 70% train, then 15% val, then 15% test. Each column standardised with the training part's mean "
        "and std.")


def test_series_keeps_the_users_split_exactly():
    df = series_frame().assign(split=["train"] * 200 + ["val"] * 40 + ["test"] * 60)
    ds = build_dataset(df, replace(guess_spec(df), window=5))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (200 - 5, 40 - 5, 60 - 5)
    two_way = df.assign(split=["train"] * 200 + ["test"] * 100)
    ds = build_dataset(two_way, replace(guess_spec(two_way), window=5))  # val: the latest 15% of train
    assert (len(ds.train), len(ds.val), len(ds.test)) == (170 - 5, 30 - 5, 100 - 5)


def test_series_from_two_files_tests_on_the_second():
    df = series_frame()
    spec = replace(guess_spec(df), window=5)
    ds = build_dataset(df.iloc[:240], spec, test=df.iloc[240:])
    assert (len(ds.train), len(ds.val), len(ds.test)) == (204 - 5, 36 - 5, 60 - 5)
    assert "the given train/test split, validation the latest 15% of the training rows" in ds.description


@pytest.mark.parametrize("missing, expected", [
    ("drop", [1.0, 2.0, 4.0]), ("ffill", [1.0, 2.0, 2.0, 4.0]), ("interpolate", [1.0, 2.0, 3.0, 4.0])])
def test_missing_values_are_handled_only_as_chosen(missing, expected):
    df = pd.DataFrame({"v": np.r_[[1.0, 2.0, np.nan, 4.0], np.sin(np.arange(200))]})
    ds = build_dataset(df, UploadSpec(layout="series", target="v", inputs=("v",), window=3, missing=missing,
                                      standardize=False))
    assert ds.train.x[:2, :, 0].flatten().tolist()[:3] == expected[:3]
    assert ("were dropped" if missing == "drop" else "were") in ds.description


# ---------------------------------------------------------------- building: labelled sequences

def test_wide_sequences_classify_with_a_seeded_split():
    df = wide_frame()
    ds = build_dataset(df, guess_spec(df))
    assert ds.kind == CLASSIFICATION and ds.class_names == ("down", "up") and ds.train.x.shape[1:] == (8, 1)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (42, 9, 9)
    again = build_dataset(df, guess_spec(df))
    assert torch.equal(ds.test.x, again.test.x)
    other = build_dataset(df, replace(guess_spec(df), seed=1))
    assert not torch.equal(ds.test.x, other.test.x)


def test_wide_split_column_is_kept_and_validation_carved_from_train():
    df = wide_frame().assign(split=["test" if i % 5 == 0 else "train" for i in range(60)])
    ds = build_dataset(df, guess_spec(df))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (41, 7, 12)
    test_rows = df[df.split == "test"][[f"t{i}" for i in range(8)]].to_numpy()
    raw = build_dataset(df, replace(guess_spec(df), standardize=False))
    assert np.allclose(raw.test.x[:, :, 0].numpy(), test_rows)


def test_regression_label_predicts_one_number_per_sequence():
    df = wide_frame()
    df["label"] = df[[f"t{i}" for i in range(8)]].sum(axis=1) + 0.5
    spec = guess_spec(df)
    assert spec.label_kind == "regression"
    ds = build_dataset(df, spec)
    assert ds.kind == REGRESSION and ds.n_outputs == 1 and ds.train.y.dtype == torch.float32
    assert set(ds.baselines) == {"train_mean_mse", "train_mean_mae"}
    assert ds.train.y.mean().item() == pytest.approx(0.0, abs=1e-5)


def test_long_sequences_pad_left_and_cut_to_the_last_steps_by_a_stated_rule():
    df = long_frame()
    spec = replace(guess_spec(df), standardize=False)
    ds = build_dataset(df, spec)
    assert ds.seq_len == 6 and ds.n_features == 2
    x = torch.cat([ds.train.x, ds.val.x, ds.test.x])
    s3 = next(i for i in range(len(x)) if x[i, -1, 0] == 2.0)  # sequence s0: 3 steps, x1 = 0, 1, 2
    assert x[s3, :, 0].tolist() == [0, 0, 0, 0, 1, 2] and x[s3, :, 1].tolist() == [0, 0, 0, 0, -1, -2]
    assert "Rule: sequences shorter than 6 steps are left-padded with zeros (30 of 40), longer ones keep their " \
           "last 6 steps (0 of 40)." in ds.description
    cut = build_dataset(df, replace(spec, length=4))
    x = torch.cat([cut.train.x, cut.val.x, cut.test.x])
    assert any(row[:, 0].tolist() == [32.0, 33.0, 34.0, 35.0] for row in x)  # s3: steps 0-5, last four kept
    assert "(10 of 40), longer ones keep their last 4 steps (20 of 40)." in cut.description


def test_long_standardising_leaves_the_padding_at_zero():
    ds = build_dataset(long_frame(), guess_spec(long_frame()))
    x = torch.cat([ds.train.x, ds.val.x, ds.test.x])
    lengths = (x.abs().sum(-1) > 0).sum(1)
    assert x[lengths == 3][:, :3].abs().max() == 0.0
    assert "padding stays 0" in ds.description


def test_long_missing_values_interpolate_within_each_sequence():
    df = long_frame().sort_values(["seq", "step"]).reset_index(drop=True)
    df.loc[(df.seq == "s3") & (df.step == 2), "x1"] = np.nan
    spec = replace(guess_spec(df), missing="interpolate", standardize=False)
    ds = build_dataset(df, spec)
    x = torch.cat([ds.train.x, ds.val.x, ds.test.x])
    assert any(row[:, 0].tolist() == [30.0, 31.0, 32.0, 33.0, 34.0, 35.0] for row in x)


def test_arrays_layout_builds_from_npz_with_its_split():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 5, 3)), np.array(["a", "b"] * 20)
    split = np.array(["train"] * 28 + ["val"] * 6 + ["test"] * 6)
    ds = build_dataset(load_table(npz_bytes(X=x, y=y, split=split), "d.npz"), UploadSpec(layout="arrays"))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (28, 6, 6) and ds.n_features == 3


def test_corpus_predicts_the_next_word_with_a_capped_vocabulary():
    text = words(2000)
    ds = build_dataset(CorpusText(text), UploadSpec(layout="corpus", window=10, vocab_size=6))
    assert ds.per_step and ds.vocab[:2] == ("<pad>", "<unk>") and len(ds.vocab) == 8 and ds.vocab[2] == "the"
    assert torch.equal(ds.train.x[0, 1:], ds.train.y[0, :-1]) and ds.train.y[0, -1] == ds.train.x[1, 0]
    n_unk = sum(w not in ds.vocab for w in text.split())
    assert f"{n_unk} word(s)" in ds.description and "outside it read as <unk>" in ds.description


def test_wide_missing_steps_are_filled_along_each_row_or_the_row_dropped():
    df = _csv(_with(wide_frame(), 3, "t5", ""))
    spec = replace(guess_spec(df), standardize=False)
    filled = build_dataset(df, replace(spec, missing="interpolate"))
    x = torch.cat([filled.train.x, filled.val.x, filled.test.x])[:, :, 0]
    row = df.loc[3, [f"t{i}" for i in range(8)]].to_numpy(dtype=float).copy()
    row[5] = (row[4] + row[6]) / 2
    assert any(np.allclose(r.numpy(), row) for r in x)
    assert "1 empty, NaN or infinite step value(s) were interpolated along the steps." in filled.description
    dropped = build_dataset(df, replace(spec, missing="drop"))
    assert len(dropped.train) + len(dropped.val) + len(dropped.test) == 59
    assert "1 sequence(s) with empty, NaN or infinite steps were dropped." in dropped.description


def test_two_files_of_labelled_sequences_keep_the_test_file_as_test():
    df = wide_frame(80)
    ds = build_dataset(df.iloc[:60], guess_spec(df), test=df.iloc[60:])
    assert (len(ds.train), len(ds.val), len(ds.test)) == (51, 9, 20)
    long = long_frame()
    ds = build_dataset(long, guess_spec(long), test=long)  # the same ids in two files are two sequences
    assert len(ds.test) == 40 and len(ds.train) + len(ds.val) == 40
    x, y = np.random.default_rng(0).standard_normal((40, 4)), np.arange(40) % 2
    ds = build_dataset(NpzArrays(x, y), UploadSpec(layout="arrays"), test=NpzArrays(x[:10], y[:10]))
    assert len(ds.test) == 10 and len(ds.train) == 34


def test_corpus_with_a_test_file_validates_on_the_end_of_the_training_text():
    ds = build_dataset(CorpusText(words(1000)), UploadSpec(layout="corpus", window=10),
                       test=CorpusText(words(200, 1)))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (84, 14, 19)
    assert "split the test file; validation the last 15% of the training text." in ds.description


# ---------------------------------------------------------------- the shipped examples

def test_shipped_examples_are_small_documented_and_build():
    assert all(p.stat().st_size < 1_000_000 for p in EXAMPLES.glob("*.csv"))
    readme = (EXAMPLES / "README.md").read_text()
    assert readme.count("public domain") >= 2
    sun = load_table((EXAMPLES / "sunspots_monthly.csv").read_bytes(), "sunspots_monthly.csv")
    ds = build_dataset(sun, guess_spec(sun))
    assert ds.kind == REGRESSION and len(sun) == 3120
    temps = load_table((EXAMPLES / "city_temperatures.csv").read_bytes(), "city_temperatures.csv")
    ds = build_dataset(temps, guess_spec(temps))
    assert ds.class_names == ("san francisco", "seattle") and ds.seq_len == 24
    assert "left-padded with zeros (2 of 730)" in ds.description


def _series(values, **columns) -> pd.DataFrame:
    return pd.DataFrame({"v": values, **columns})


WAVE = np.sin(np.arange(200) / 5)
SERIES = UploadSpec(layout="series", target="v", inputs=("v",), window=5)
WIDE = UploadSpec(layout="wide", target="label", inputs=tuple(f"t{i}" for i in range(8)))
LONG = UploadSpec(layout="long", target="label", inputs=("x1", "x2"), time="step", sequence="seq")
DATES = pd.date_range("2020-01-01", periods=200, freq="D").strftime("%Y-%m-%d")


def _with(df: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    df = df.copy()
    df[column] = df[column].astype(object)
    df.loc[row, column] = value
    return df


def _csv(df: pd.DataFrame) -> pd.DataFrame:
    """The frame as it reads back from CSV, so empty cells and text behave as in a real upload."""
    return load_table(csv_bytes(df), "d.csv")


BUILD_ERRORS = [
    ("no numeric column", pd.DataFrame({"a": ["x", "y"], "b": ["u", "v"]}), None,
     "the table has no numeric column (columns: a, b); a series or sequence needs numbers. Check the separator "
     "and the decimal mark (use '.')."),
    ("label with one class", wide_frame().assign(label="up"), WIDE,
     "label column 'label' has only one class ('up'); a classifier needs at least two. Choose another label "
     "column."),
    ("label with a class per row", wide_frame().assign(label=[f"c{i}" for i in range(60)]), WIDE,
     "label column 'label' has 60 different values for 60 sequences, too few examples per class to learn from; "
     "choose another label column, or set label_kind to 'regression' if it is a number to predict."),
    ("fractional labels as classes", wide_frame().assign(label=np.arange(60) / 7), WIDE,
     "label column 'label' holds 0.142857 at row 2, not a class; for a number to predict set label_kind to "
     "'regression', for classes use whole numbers or text."),
    ("text label as regression", wide_frame(), replace(WIDE, label_kind="regression"),
     "label column 'label' holds 'up' at row 1, not a number; regression needs numbers, or set label_kind to "
     "'classification'."),
    ("empty label", _csv(_with(wide_frame(), 6, "label", "")), WIDE,
     "column 'label' has 1 empty, NaN or infinite cell(s), the first at row 7; fix them in the file, or set "
     "missing to 'drop' (leave those rows out)."),
    ("NaN cell", _csv(_with(_series(WAVE), 17, "v", "NaN")), SERIES,
     "column 'v' has 1 empty, NaN or infinite cell(s), the first at row 18; fix them in the file, or set missing "
     "to 'drop' (leave those rows out), 'ffill' (repeat the previous value) or 'interpolate' (linear between "
     "neighbours)."),
    ("inf cell", _csv(_with(_with(_series(WAVE), 30, "v", "inf"), 40, "v", "-inf")), SERIES,
     "column 'v' has 2 empty, NaN or infinite cell(s), the first at row 31; fix them in the file, or set missing "
     "to 'drop' (leave those rows out), 'ffill' (repeat the previous value) or 'interpolate' (linear between "
     "neighbours)."),
    ("empty cell in a step column", _csv(_with(wide_frame(), 3, "t5", "")), WIDE,
     "column 't5' has 1 empty, NaN or infinite cell(s), the first at row 4; fix them in the file, or set missing "
     "to 'drop' (leave those sequences out), 'ffill' (repeat the previous step) or 'interpolate' (linear between "
     "steps)."),
    ("ffill with nothing before", _csv(_with(_series(WAVE), 0, "v", "")), replace(SERIES, missing="ffill"),
     "column 'v' starts with empty cells (row 1), so there is no earlier value to repeat; set missing to 'drop' "
     "or 'interpolate'."),
    ("text in a numeric column", _csv(_with(_series(WAVE), 9, "v", "12,5")), SERIES,
     "column 'v' holds text, not numbers: row 10 is '12,5'; fix that cell (use '.' as the decimal mark) or leave "
     "the column out of the inputs."),
    ("values near 1e308", _series(np.r_[WAVE[:-1], 1.7e308]), SERIES,
     "column 'v' holds 1.7e+308 at row 200, too large to standardise without overflow; the limit is 1e+150. "
     "Divide the column by a power of ten first."),
    ("values beyond float32 unscaled", _series(np.r_[1e39, WAVE[1:]]), replace(SERIES, standardize=False),
     "column 'v' holds 1e+39 at row 1, too large for float32 (standardize is off); the limit is 3.4e+38. Divide "
     "the column by a power of ten first."),
    ("time column unparsable", _series(WAVE, date=_with(pd.DataFrame({"d": DATES}), 12, "d", "soon")["d"]),
     replace(SERIES, time="date"),
     "time column 'date' holds 'soon' at row 13, which is neither a number nor a date; fix it, or choose another "
     "time column (or none, to use the row order)."),
    ("time column repeated", _series(WAVE, date=_with(pd.DataFrame({"d": DATES}), 5, "d", DATES[4])["d"]),
     replace(SERIES, time="date"),
     "time column 'date' repeats '2020-01-05' at row 6 and the row before; give each row its own time, or "
     "aggregate rows per time first."),
    ("time column unsorted", _series(WAVE, date=DATES[np.r_[0:50, 51, 50, 52:200]]), replace(SERIES, time="date"),
     "time column 'date' is not in order: row 52 ('2020-02-20') comes after '2020-02-21'; sort the rows by 'date' "
     "first."),
    ("time column empty", _csv(_series(WAVE, date=_with(pd.DataFrame({"d": DATES}), 3, "d", "")["d"])),
     replace(SERIES, time="date"), "time column 'date' is empty at row 4; give every row its time or step."),
    ("series too short for the window", _series(WAVE[:100]), replace(SERIES, window=20),
     "window 20 is too long for a series of 100 values: the smallest part (15 values) must hold 10 windows of "
     "window + horizon steps; use a window of at most 5 or a series of at least 197 values."),
    ("constant target", _series(np.ones(200)), SERIES,
     "the target 'v' is constant in the training part (every value is 1); there is nothing to learn."),
    ("column not found", _series(WAVE), replace(SERIES, target="value", inputs=("value",)),
     "column 'value' not found; available columns: v."),
    ("column with two roles", _series(WAVE, t=np.arange(200)), replace(SERIES, time="t", inputs=("v", "t")),
     "column 't' has two roles; give each column one role (target, time, sequence, split or input)."),
    ("split column with an unknown part", _series(WAVE, split=["train"] * 150 + ["holdout"] * 50),
     replace(SERIES, split="split"),
     "split column 'split' holds 'holdout' at row 151; use train, val (or validation) and test."),
    ("split without test rows", _series(WAVE, split=["train"] * 170 + ["val"] * 30), replace(SERIES, split="split"),
     "the split has no test rows; mark some rows test (or upload a test file)."),
    ("series split out of time order", _series(WAVE, split=["train"] * 100 + ["test"] * 50 + ["train"] * 50),
     replace(SERIES, split="split"),
     "the split of a series must run train, then val, then test in time; row 151 is train after test rows. Fix "
     "the split, or leave it out to split in time."),
    ("a sequence with one step", long_frame().iloc[lambda d: ~((d.seq == "s4") & (d.step > 0)).to_numpy()], LONG,
     "sequence 's4' has only 1 step (row 111); every sequence needs at least 2 steps. Drop it from the file, or "
     "check that 'seq' is the sequence column."),
    ("a step repeated in a sequence", _with(long_frame(), 12, "step", 3), LONG,  # row 13: s1, step 2
     "sequence 's1' repeats step 3 (row 13 and row 111); give each step of a sequence its own 'step'."),
    ("label changes within a sequence", _with(long_frame(), 12, "label", "a"), LONG,
     "label column 'label' changes within sequence 's1': 'b' at row 127, 'a' at row 13; give each sequence one "
     "label."),
    ("a column with no values", _csv(_series(WAVE, w=np.nan)), replace(SERIES, inputs=("v", "w")),
     "column 'w' has no values; fill it in, or leave it out of the inputs."),
    ("huge value in a step column", _with(wide_frame(), 4, "t6", -3e200), WIDE,
     "column 't6' holds -3e+200 at row 5, too large to standardise without overflow; the limit is 1e+150. Divide "
     "the column by a power of ten first."),
    ("numeric ids shown as numbers", long_frame().assign(seq=lambda d: d.seq.str[1:].astype(int))
     .iloc[lambda d: ~((d.seq == 4) & (d.step > 0)).to_numpy()], LONG,
     "sequence 4 has only 1 step (row 111); every sequence needs at least 2 steps. Drop it from the file, or check "
     "that 'seq' is the sequence column."),
    ("split changes within a sequence", long_frame().assign(split=["test"] + ["train"] * 179),
     replace(LONG, split="split"),
     "the split changes within sequence 's31': 'test' at row 1, 'train' at row 102; give each sequence one split."),
    ("too few sequences", wide_frame(20), WIDE,
     "too few sequences: 20; with val_fraction 0.15 and test_fraction 0.15 you need at least 31, so that training "
     "gets 20 and validation and test get 5 each."),
]


@pytest.mark.parametrize("case, df, spec, message", BUILD_ERRORS, ids=[c[0] for c in BUILD_ERRORS])
def test_malformed_tables_are_refused_with_what_to_change(case, df, spec, message):
    with raises(message):
        build_dataset(df, spec or guess_spec(df))


@pytest.mark.parametrize("source, spec, test, message", [
    (CorpusText("the cat sat on the mat"), UploadSpec(layout="corpus", window=20), None,
     "the corpus has 6 words; next-word windows of 20 words with val_fraction 0.15 and test_fraction 0.15 need "
     "at least 671 words (20 windows to train on, 5 each to validate and test); use a longer text or a smaller "
     "window."),
    (CorpusText(words(2000)), UploadSpec(layout="corpus", window=20), CorpusText("too short"),
     "the test text has 2 words, too few for 5 next-word windows of 20 words; use longer texts or a smaller "
     "window."),
    (NpzArrays(np.zeros(10), np.zeros(10)), UploadSpec(layout="arrays"), None,
     "X must have shape (N, T) or (N, T, F) with at least one step and feature; got shape (10,)."),
    (NpzArrays(np.zeros((10, 3)), np.zeros((10, 2))), UploadSpec(layout="arrays"), None,
     "y must hold one number or string label per sequence, shape (10,); got shape (10, 2) of dtype float64."),
    (NpzArrays(np.r_[np.zeros((39, 4)), [[0, np.nan, 0, 0]]], np.arange(40) % 2), UploadSpec(layout="arrays"), None,
     "column 'X[..., 0]' has 1 empty, NaN or infinite cell(s), the first at sequence 39; fix them in the file, or "
     "set missing to 'drop' (leave those sequences out), 'ffill' (repeat the previous step) or 'interpolate' "
     "(linear between steps)."),
    (series_frame(), UploadSpec(layout="corpus"), None,
     "the corpus layout needs a .txt corpus, but the file is a table; choose the layout that fits the file."),
    (series_frame().iloc[:200], replace(SERIES, target="temp", inputs=("temp",), time="date"),
     series_frame().iloc[150:], "the test file starts at '2020-05-30', before the training file ends "
                                "('2020-07-18'); the test rows must come after the training rows."),
    (series_frame(), replace(SERIES, target="temp", inputs=("temp",)), series_frame().drop(columns="load"),
     "the test file's columns differ from the training file's: missing load; extra none. Give both files the "
     "same columns."),
])
def test_other_malformed_sources_are_refused(source, spec, test, message):
    with raises(message):
        build_dataset(source, spec, test=test)


# ---------------------------------------------------------------- regressions of the reliability audit (finding 5)

def test_a_bad_value_in_the_split_column_is_refused_with_its_row():
    df = series_frame(200).assign(split=["train"] * 140 + ["val"] * 29 + ["test"] * 30 + ["foo"])
    with raises("split column 'split' holds 'foo' at row 200; use train, val (or validation) and test."):
        build_dataset(df, guess_spec(df))


@pytest.mark.parametrize("label, shown", [("x\x1b[31m", "'x\\x1b[31m'"), ("y\u202e", "'y\\u202e'")])
def test_labels_with_control_or_bidi_characters_are_refused_with_their_row(label, shown):
    df = wide_frame()
    df.loc[3, "label"] = label
    with raises(f"label column 'label' holds {shown} at row 4, with control or formatting characters (such as ESC or "
                f"a right-to-left override); remove them from the labels."):
        build_dataset(df, guess_spec(df))
    x = np.zeros((60, 4))
    y = np.where(np.arange(60) % 2 == 0, "up", "down").astype(object)
    y[7] = label
    with raises(f"label column 'y' holds {shown} at sequence 7, with control or formatting characters (such as ESC "
                f"or a right-to-left override); remove them from the labels."):
        build_dataset(load_table(npz_bytes(X=x, y=y.astype(str)), "s.npz"), UploadSpec(layout="arrays"))


def test_a_corpus_of_one_repeated_word_is_refused():
    with raises("the training part of the corpus is one word repeated ('word'), so the next word is always the same; "
                "there is nothing to learn. Use a text of varied words."):
        build_dataset(CorpusText("word " * 10_000), UploadSpec(layout="corpus"))
