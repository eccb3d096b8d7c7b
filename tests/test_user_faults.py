"""User data that overflow or are given wrongly are refused as ConfigErrors that say what to change (regressions
for the reliability audit; the builders are lib/tasks/user/arrays.py)."""
import re

import numpy as np
import pandas as pd
import pytest

from lib.errors import ConfigError
from lib.tasks.user.arrays import from_arrays, from_dataframe, from_series, required_length

SERIES = np.sin(np.arange(400) / 5)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: from_series(SERIES * 1e308, 5),
     "the series holds 1.99e+307 at position 1, too large to standardise without overflow; the limit is 1e+150."),
    (lambda: from_arrays(np.random.default_rng(0).uniform(0.5, 1.5, (60, 4)) * 1e308, np.arange(60) % 2),
     "X holds 1.14e+308 at sequence 0, too large to standardise without overflow; the limit is 1e+150."),
    (lambda: from_series(SERIES * 1e39, 5, standardize=False),
     "the series holds 3.89e+38 at position 2, too large for float32 (standardize is off); the limit is 3.4e+38."),
])
def test_user_data_that_overflows_is_refused(make, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()


def test_user_data_whose_test_part_lies_far_outside_the_training_spread_is_refused():
    values = np.r_[np.sin(np.arange(300)) * 1e-30, np.ones(100) * 1e30]
    with pytest.raises(ConfigError, match=re.escape("holds values beyond float32's range once standardised")):
        from_series(values, 5)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: from_arrays(np.zeros((60, 5)), np.arange(60) % 2, seed=-1), "seed must be at least 0, got -1."),
    (lambda: from_arrays(np.zeros((60, 5)), np.arange(60) % 2, seed="abc"), "seed must be a whole number, got 'abc'."),
    (lambda: from_arrays(np.zeros((60, 5)), np.arange(60) % 2, val_fraction="0.1"),
     "val_fraction must be a finite number, got '0.1'."),
    (lambda: from_series(SERIES, True), "window must be a whole number of steps, at least 1; got True."),
    (lambda: required_length("abc"), "window must be a whole number of steps, at least 1; got 'abc'."),
    (lambda: required_length(-5), "window must be a whole number of steps, at least 1; got -5."),
    (lambda: from_dataframe(pd.DataFrame({"t": list(range(100)) + [str(i) for i in range(100)],
                                          "v": np.arange(200.0)}), "v", 3, time_column="t"),
     "time column 't' mixes kinds of values (e.g. numbers and text), which have no order;"),
    (lambda: from_dataframe(pd.DataFrame({"t": [1.0, np.nan, *range(2, 200)], "v": np.arange(200.0)}), "v", 3,
                            time_column="t"),
     "time column 't' has 1 missing value(s), the first in row 1; fill or drop those rows first."),
    (lambda: from_dataframe(pd.DataFrame({"value": []}), "value", 3),
     "the table has no rows (columns: value); give a file with a header and one row per time step."),
    (lambda: from_arrays(np.zeros((1000, 2)), np.arange(1000) % 600),
     "y has 600 different labels for 1000 sequences, too few examples per class to learn from;"),
    (lambda: from_arrays(np.zeros((4000, 2)), np.repeat(np.arange(2000), 2)),
     "y has 2000 different labels; the limit is 1000 classes."),
    (lambda: from_arrays(np.zeros((31, 10_001)), np.arange(31) % 2),
     "X has sequences of 10001 steps; the limit is 10000."),
])
def test_user_data_mistakes_are_config_errors(make, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()
