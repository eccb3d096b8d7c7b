"""Arrays -> datasets (lib/tasks/user/arrays.py): labelled sequences and series, their splits, scaling and every
input error."""
import numpy as np
import pandas as pd
import pytest
import torch

from lib.tasks import CLASSIFICATION, REGRESSION
from lib.tasks.user.arrays import (
    from_arrays,
    from_dataframe,
    from_series,
    is_number,
    required_length,
    required_sequences,
)
from tests.support.user_files import raises


def same_tensors(a, b) -> bool:
    return all(torch.equal(getattr(a, s).x, getattr(b, s).x) and torch.equal(getattr(a, s).y, getattr(b, s).y)
               for s in ("train", "val", "test"))


def test_only_numbers_that_are_not_true_false_count_as_numbers():
    assert is_number(pd.Series([1, 2])) and is_number(pd.Series([0.5, np.nan]))
    assert not is_number(pd.Series([True, False])) and not is_number(pd.Series([True, None], dtype="boolean"))
    assert not is_number(pd.Series(["1", "2"]))


# ---------------------------------------------------------------- labelled sequences

def _labelled(n=100, t=6, f=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(5.0, 3.0, size=(n, t, f)), np.array(["cat", "dog", "emu", "dog"] * (n // 4))


def test_from_arrays_builds_a_seeded_shuffled_split_with_named_classes():
    x, y = _labelled()
    ds = from_arrays(x, y, seed=1)
    assert ds.kind == CLASSIFICATION and ds.class_names == ("cat", "dog", "emu") and ds.n_outputs == 3
    assert (len(ds.train), len(ds.val), len(ds.test)) == (70, 15, 15)
    assert ds.train.x.shape == (70, 6, 2) and ds.train.x.dtype == torch.float32
    assert ds.train.y.dtype == torch.int64 and ds.seq_len == 6 and ds.n_features == 2
    assert same_tensors(ds, from_arrays(x, y, seed=1))
    assert not torch.equal(ds.train.y, from_arrays(x, y, seed=2).train.y)
    means = ds.train.x.flatten(0, 1).mean(0)  # standardised with training statistics only
    assert torch.allclose(means, torch.zeros(2), atol=1e-5)
    raw = from_arrays(x, y, seed=1, standardize=False)  # every sequence once, still with its own label
    found = []
    for split in (raw.train, raw.val, raw.test):
        idx = [int(np.abs(x - s.numpy()).sum(axis=(1, 2)).argmin()) for s in split.x]
        np.testing.assert_allclose(x[idx], split.x.numpy(), rtol=1e-6)
        assert [raw.class_names[int(c)] for c in split.y] == list(y[idx])
        found += idx
    assert sorted(found) == list(range(100))


def test_from_arrays_accepts_2d_inputs_and_orders_numeric_labels_as_numbers():
    x = np.random.default_rng(0).normal(size=(40, 5))
    ds = from_arrays(x, [2, 10, 1, 10] * 10)
    assert ds.train.x.shape[1:] == (5, 1) and ds.class_names == ("1", "2", "10")
    assert ds.chance == pytest.approx(float(torch.bincount(ds.test.y).max()) / len(ds.test))


def test_from_arrays_needs_this_many_sequences():
    assert required_sequences() == 31
    x, y = _labelled(n=32)
    from_arrays(x[:31], y[:31])  # exactly enough


@pytest.mark.parametrize("make, message", [
    (lambda x, y: (np.zeros(100), y),
     "X must have shape (N, T) or (N, T, F): N sequences of T steps with F features each; got shape (100,)."),
    (lambda x, y: (np.zeros((100, 2, 2, 2)), y),
     "X must have shape (N, T) or (N, T, F): N sequences of T steps with F features each; "
     "got shape (100, 2, 2, 2)."),
    (lambda x, y: ([[1.0, 2.0], [1.0]], [0, 1]),
     "X holds sequences of different lengths; pad or cut them to one length first."),
    (lambda x, y: (np.zeros((100, 0)), y),
     "X must have at least one step and one feature per sequence; got shape (100, 0)."),
    (lambda x, y: (np.full((100, 3), "a"), y),
     "X must hold numbers, got text; convert or drop non-numeric features first."),
    (lambda x, y: (x, y[:90]),
     "X has 100 sequences but y has 90 labels; give exactly one label per sequence."),
    (lambda x, y: (x, np.zeros((100, 2))),
     "y must hold one label per sequence, shape (N,); got shape (100, 2)."),
    (lambda x, y: (np.where(np.arange(600).reshape(100, 6, 1) % 97 == 40, np.nan, x[..., :1]), y),
     "X has 6 missing or infinite value(s), the first at sequence 6; fill or drop them first."),
    (lambda x, y: (np.where(np.arange(600).reshape(100, 6, 1) == 599, np.inf, x[..., :1]), y),
     "X has 1 missing or infinite value(s), the first at sequence 99; fill or drop them first."),
    (lambda x, y: (x[:12], y[:12]),
     "too few sequences: 12; with val_fraction 0.15 and test_fraction 0.15 you need at least 31, so that "
     "training gets 20 and validation and test get 5 each."),
    (lambda x, y: (x, ["a"] * 100), "y has only one class ('a'); a classifier needs at least two."),
    (lambda x, y: (x, np.arange(100)),
     "y has 100 different labels for 100 sequences, too few examples per class to learn from; if y is a "
     "number to forecast, use from_series."),
    (lambda x, y: (x, np.linspace(0.0, 1.0, 100)),
     "y holds non-integer numbers (e.g. 0.010101); give class labels (integers or strings), or use "
     "from_series to forecast a number."),
    (lambda x, y: (x, [None] + list(y[1:])),
     "y has 1 missing label(s), the first at position 0; drop those sequences or label them."),
])
def test_from_arrays_errors_say_what_to_change(make, message):
    with raises(message):
        from_arrays(*make(*_labelled()))


def test_from_arrays_rejects_fractions_out_of_range():
    x, y = _labelled()
    with raises("val_fraction must be between 0.05 and 0.4, got 0.6."):
        from_arrays(x, y, val_fraction=0.6)
    with raises("test_fraction must be between 0.05 and 0.4, got 0."):
        from_arrays(x, y, test_fraction=0.0)
    with raises("too few sequences: 60; with val_fraction 0.05 and test_fraction 0.05 you need at least "
                "91, so that training gets 20 and validation and test get 5 each."):
        from_arrays(x[:60], y[:60], val_fraction=0.05, test_fraction=0.05)


# ---------------------------------------------------------------- series

def _wave(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return 100.0 + 10.0 * np.sin(2 * np.pi * np.arange(n) / 12) + rng.normal(0.0, 1.0, n)


def test_from_series_splits_in_time_and_scales_with_the_training_part():
    values = _wave()
    ds = from_series(values, window=24, horizon=2, season=12)
    assert ds.kind == REGRESSION and ds.seq_len == 24 and ds.cue_lag == 12
    assert (len(ds.train), len(ds.val), len(ds.test)) == (280 - 25, 60 - 25, 60 - 25)
    mean, std = values[:280].mean(), values[:280].std()
    scaled = ((values - mean) / std).astype(np.float32)
    assert np.array_equal(ds.val.x[0, :, 0].numpy(), scaled[280:304]) and ds.val.y[0] == scaled[305]
    assert np.array_equal(ds.test.x[-1, :, 0].numpy(), scaled[-26:-2]) and ds.test.y[-1] == scaled[-1]
    err = ds.test.x[:, -1, 0].double() - ds.test.y.double()
    assert ds.baselines["last_value_mse"] == pytest.approx(float((err ** 2).mean()), rel=1e-5)
    assert ds.baselines["seasonal_naive_mse"] < ds.baselines["last_value_mse"]
    raw = from_series(values, window=24, standardize=False)
    assert set(raw.baselines) == {"last_value_mse", "last_value_mae"} and raw.cue_lag is None
    assert raw.train.y[0].item() == pytest.approx(values[24], rel=1e-6)


def test_from_series_accepts_a_series_a_one_column_frame_and_a_sorted_table():
    values = _wave()
    expected = from_series(values, window=12)
    assert same_tensors(expected, from_series(pd.Series(values), window=12))
    assert same_tensors(expected, from_series(pd.DataFrame({"v": values}), window=12))
    table = pd.DataFrame({"t": np.arange(400), "v": values, "city": "x"}).sample(frac=1.0, random_state=0)
    ds = from_dataframe(table, "v", 12, time_column="t")
    assert same_tensors(expected, ds) and ds.name == "v"


def test_from_series_needs_this_many_values():
    assert required_length(1) == 71 and required_length(24, 2) == 231
    from_series(_wave(231), window=24, horizon=2)  # exactly enough


@pytest.mark.parametrize("values, kwargs, message", [
    (np.zeros((10, 3)), {}, "values must be one series (a 1-D array or one column); got shape (10, 3)."),
    (pd.DataFrame({"a": [1.0], "b": [2.0]}), {},
     "values has 2 columns (a, b); pick one with from_dataframe(df, value_column=...)."),
    (np.array(["1.5", "2"]), {}, "the series must hold numbers, got text; choose a numeric column."),
    (np.r_[np.arange(100.0), np.inf, np.nan], {},
     "the series has 2 missing or infinite value(s), the first at position 100; fill or drop them first."),
    (np.arange(50.0), {},
     "the series is too short: 50 values; forecasting 1 step(s) ahead with val_fraction 0.15 and "
     "test_fraction 0.15 needs at least 71 values (10 windows each in validation and test)."),
    (np.arange(1000.0), {"window": 500},
     "window 500 is too long for a series of 1000 values: the smallest part (150 values) must hold 10 "
     "windows of window + horizon steps; use a window of at most 140 or a series of at least 3397 values."),
    (np.arange(70_000.0), {"window": 9000},
     "the data as float32 would take 2.3 GiB (limit 2 GiB); use fewer sequences, steps or features."),
    (np.arange(1000.0), {"window": 0}, "window must be a whole number of steps, at least 1; got 0."),
    (np.arange(1000.0), {"window": 2.5}, "window must be a whole number of steps, at least 1; got 2.5."),
    (np.arange(1000.0), {"horizon": -1}, "horizon must be a whole number of steps, at least 1; got -1."),
    (np.arange(1000.0), {"season": 12},
     "season must be between 2 and the window (5) so that one window spans a cycle; got 12."),
    (np.ones(1000), {},
     "the training part of the series is constant (every value is 1); there is nothing to learn."),
])
def test_from_series_errors_say_what_to_change(values, kwargs, message):
    kwargs = {"window": 5, **kwargs}
    with raises(message):
        from_series(values, **kwargs)


@pytest.mark.parametrize("df, column, kwargs, message", [
    (pd.DataFrame({"a": [1.0], "b": ["x"]}), "c", {}, "column 'c' not found; available columns: a, b."),
    (pd.DataFrame({"a": [1.0], "b": ["x"]}), "b", {},
     "column 'b' is not numeric (it holds text); choose a numeric column: a."),
    (pd.DataFrame({"b": ["x"]}), "b", {},
     "column 'b' is not numeric (it holds text); choose a numeric column: (the table has none)."),
    (pd.DataFrame({"a": [1.0, 2.0]}), "a", {"time_column": "t"},
     "column 't' not found; available columns: a."),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "t": ["mon", "tue", "mon"]}), "a", {"time_column": "t"},
     "time column 't' repeats 1 value(s) (the first: mon); aggregate rows per time first."),
    ([1.0, 2.0], "a", {}, "expected a pandas DataFrame, got list."),
])
def test_from_dataframe_errors_say_what_to_change(df, column, kwargs, message):
    with raises(message):
        from_dataframe(df, column, 5, **kwargs)


def test_from_arrays_takes_a_given_split_and_a_regression_label():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 6)), rng.standard_normal(40) * 5 + 3
    split = np.array(["train"] * 30 + ["val"] * 5 + ["test"] * 5)
    ds = from_arrays(x, y, regression=True, split=split)
    assert ds.kind == REGRESSION and ds.chance is None and (len(ds.train), len(ds.val), len(ds.test)) == (30, 5, 5)
    scaled = (y - y[:30].mean()) / y[:30].std()
    assert np.allclose(ds.test.y.numpy(), scaled[35:], atol=1e-6)
    assert ds.baselines["train_mean_mse"] == pytest.approx(float(np.mean(scaled[35:] ** 2)))
    with raises("the split has 30 train, 5 val and 4 test sequences; training needs at least 20, validation and "
                "test 5 each."):
        from_arrays(x[:39], y[:39], regression=True, split=split[:39])
    with raises("split holds 'dev'; use train, val and test."):
        from_arrays(x, y, regression=True, split=np.r_[split[:-1], ["dev"]])


def test_from_series_windows_every_column_and_forecasts_the_target():
    values = np.stack([np.arange(200.0), -np.arange(200.0) ** 2], axis=1)  # (T, 2)
    ds = from_series(values, window=4, horizon=2, target=1, standardize=False, sizes=(120, 40, 40))
    assert ds.n_features == 2 and (len(ds.train), len(ds.val), len(ds.test)) == (115, 35, 35)
    assert np.array_equal(ds.val.x[0].numpy(), values[120:124]) and ds.val.y[0] == values[125, 1]
    last_value = values[163:198, 1] - values[165:200, 1]  # test targets are rows 165-199, two rows after
    assert ds.baselines["last_value_mse"] == pytest.approx(float(np.mean(last_value ** 2)))
    with raises("the split has 120 train, 70 val and 10 test values of 200; each part needs at least 14 (10 windows "
                "of window + horizon = 5 steps): use a smaller window or larger parts."):
        from_series(values, window=4, target=0, sizes=(120, 70, 10))


def test_from_arrays_refuses_labels_with_control_or_formatting_characters():
    y = np.array(["a", "b"] * 30, dtype=object)
    y[5] = "b\u202egnp.exe"
    with raises("y holds the label 'b\\u202egnp.exe' at position 5, with control or formatting characters (such as ESC "
                "or a right-to-left override); remove them from the labels."):
        from_arrays(np.zeros((60, 3)), y)
