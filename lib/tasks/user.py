"""Datasets from data a user brings: labelled sequences, or one series to forecast.

Everything here sits behind file uploads, so every check raises ConfigError with what to change.
Classification data is split by a seeded shuffle; a series is split in time (train, then val, then test)
and windowed inside each part, exactly like the sine task, so nothing tested on was seen in training.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lib.errors import ConfigError
from lib.tasks.base import CLASSIFICATION, REGRESSION, SequenceDataset, Split, majority_chance
from lib.tasks.sine import MIN_WINDOWS, forecast_splits, min_length, naive_baselines, segment_sizes

MIN_TRAIN, MIN_EVAL = 20, 5  # sequences needed in training, and in each of validation and test
MAX_BYTES = 2 * 1024 ** 3  # refuse inputs that would not fit comfortably in memory


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.05 <= value <= 0.4:
            raise ConfigError(f"{name} must be between 0.05 and 0.4, got {value:g}.")


def _check_numeric(a: np.ndarray, what: str, hint: str, unit: str = "position") -> np.ndarray:
    """a as float64, or a ConfigError naming non-numbers, missing and infinite values."""
    if a.dtype.kind not in "biuf":  # bool, integers, floats
        got = "text" if a.dtype.kind in "USO" else f"values of type {a.dtype}"
        raise ConfigError(f"{what} must hold numbers, got {got}; {hint}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        first = np.unravel_index(int(np.flatnonzero(bad)[0]), a.shape)[0]
        raise ConfigError(f"{what} has {int(bad.sum())} missing or infinite value(s), the first at {unit} "
                          f"{first}; fill or drop them first.")
    return a


def _check_size(n_values: int) -> None:
    if 4 * n_values > MAX_BYTES:
        raise ConfigError(f"the data would take {4 * n_values / 1024 ** 3:.1f} GiB as float32 (limit "
                          f"{MAX_BYTES / 1024 ** 3:.0f} GiB); use fewer sequences, steps or features.")


def _split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return n - n_val - n_test, n_val, n_test


def _min_sequences(val_fraction: float, test_fraction: float) -> int:
    n = MIN_TRAIN + 2 * MIN_EVAL
    while True:
        n_train, n_val, n_test = _split_sizes(n, val_fraction, test_fraction)
        if n_train >= MIN_TRAIN and min(n_val, n_test) >= MIN_EVAL:
            return n
        n += 1


def _class_ids(y: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels (N,) of any kind -> class ids (N,) int64 and their names, numbers in numeric order."""
    missing = pd.isna(y)
    if missing.any():
        raise ConfigError(f"y has {int(missing.sum())} missing label(s), the first at position "
                          f"{int(np.flatnonzero(missing)[0])}; drop those sequences or label them.")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(y == np.round(y)):
            example = y[y != np.round(y)][0]
            raise ConfigError(f"y holds non-integer numbers (e.g. {example:g}); give class labels "
                              f"(integers or strings), or use from_series to forecast a number.")
        y = y.astype(np.int64)
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        y = y.astype(str)  # strings, or a mix of kinds: compare as text
    labels, ids = np.unique(y, return_inverse=True)
    return ids.astype(np.int64), tuple(str(v) for v in labels)


def _standardise(x: np.ndarray, train_idx: np.ndarray) -> np.ndarray:
    """Scale each feature by the training sequences' mean and std; constant features keep scale 1."""
    ref = x[train_idx].reshape(-1, x.shape[-1])  # (N_train * T, F)
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    return (x - mean) / np.where(std > 0, std, 1.0)


def from_arrays(
    X,
    y,
    *,
    name: str = "my sequences",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    standardize: bool = True,
) -> SequenceDataset:
    """Sequence-to-label classification from X (N, T) or (N, T, F) numbers and y (N,) labels.

    Labels may be integers or strings; class ids follow their sorted order and class_names keep the
    original labels as text. The split is a seeded shuffle; with `standardize` each feature is scaled by
    the training sequences' mean and std (fitted on train only).
    """
    _check_fractions(val_fraction, test_fraction)
    try:
        x = np.asarray(X)
    except ValueError as err:
        raise ConfigError("X holds sequences of different lengths; pad or cut them to one length first.") \
            from err
    if x.dtype == object and x.ndim == 1:
        raise ConfigError("X holds sequences of different lengths; pad or cut them to one length first.")
    if x.ndim not in (2, 3):
        raise ConfigError(f"X must have shape (N, T) or (N, T, F): N sequences of T steps with F features "
                          f"each; got shape {x.shape}.")
    if 0 in x.shape[1:]:
        raise ConfigError(f"X must have at least one step and one feature per sequence; got shape {x.shape}.")
    x = _check_numeric(x, "X", "convert or drop non-numeric features first.", unit="sequence")
    if x.ndim == 2:
        x = x[:, :, None]  # (N, T, 1)
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ConfigError(f"y must hold one label per sequence, shape (N,); got shape {labels.shape}.")
    if len(labels) != len(x):
        raise ConfigError(f"X has {len(x)} sequences but y has {len(labels)} labels; give exactly one label "
                          f"per sequence.")
    need = _min_sequences(val_fraction, test_fraction)
    if len(x) < need:
        raise ConfigError(f"too few sequences: {len(x)}; with val_fraction {val_fraction:g} and "
                          f"test_fraction {test_fraction:g} you need at least {need}, so that training gets "
                          f"{MIN_TRAIN} and validation and test get {MIN_EVAL} each.")
    _check_size(x.size)
    ids, class_names = _class_ids(labels)
    if len(class_names) < 2:
        raise ConfigError(f"y has only one class ({class_names[0]!r}); a classifier needs at least two.")
    if len(class_names) > len(x) // 2:
        raise ConfigError(f"y has {len(class_names)} different labels for {len(x)} sequences, too few "
                          f"examples per class to learn from; if y is a number to forecast, use from_series.")
    n_train, n_val, _ = _split_sizes(len(x), val_fraction, test_fraction)
    order = np.random.default_rng(seed).permutation(len(x))
    parts = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]
    if standardize:
        x = _standardise(x, parts[0])
    train, val, test = (Split(torch.tensor(x[p], dtype=torch.float32), torch.from_numpy(ids[p]))
                        for p in parts)  # x (n, T, F) float32, y (n,) int64
    n, t, f = x.shape
    return SequenceDataset(
        name=name,
        description=(f"{n} sequences of {t} steps x {f} feature(s), {len(class_names)} classes; seeded "
                     f"shuffled split" + (", features standardised on the training part." if standardize
                                          else ".")),
        kind=CLASSIFICATION,
        train=train, val=val, test=test,
        seq_len=t,
        n_features=f,
        n_outputs=len(class_names),
        class_names=class_names,
        chance=majority_chance(test.y, len(class_names)),
        distance_name="steps",
    )


def _as_series(values) -> np.ndarray:
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            names = ", ".join(map(str, values.columns))
            raise ConfigError(f"values has {values.shape[1]} columns ({names}); pick one with "
                              f"from_dataframe(df, value_column=...).")
        values = values.iloc[:, 0]
    a = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ConfigError(f"values must be one series (a 1-D array or one column); got shape {a.shape}.")
    return _check_numeric(a, "the series", "choose a numeric column.")


def from_series(
    values,
    window: int,
    horizon: int = 1,
    *,
    name: str = "my series",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    season: int | None = None,
    standardize: bool = True,
) -> SequenceDataset:
    """Forecast the value `horizon` steps after each window of `window` values of one series.

    `values` is a 1-D array, a pandas Series or a one-column DataFrame, in time order. The series is split in
    time (train, val, test = the latest values) and windowed inside each part. With `standardize` it is
    scaled by the training part's mean and std, so metrics and baselines are in those units. Baselines:
    last value, plus the seasonal naive forecast when `season` (steps per cycle) is given.
    """
    _check_fractions(val_fraction, test_fraction)
    series = _as_series(values)
    for what, value in (("window", window), ("horizon", horizon)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{what} must be a whole number of steps, at least 1; got {value!r}.")
    shortest = min_length(1, horizon, test_fraction, val_fraction)
    if len(series) < shortest:
        raise ConfigError(f"the series is too short: {len(series)} values; forecasting {horizon} "
                          f"step(s) ahead with val_fraction {val_fraction:g} and test_fraction "
                          f"{test_fraction:g} needs at least {shortest} values ({MIN_WINDOWS} windows each "
                          f"in validation and test).")
    need = min_length(window, horizon, test_fraction, val_fraction)
    if len(series) < need:
        smallest = min(segment_sizes(len(series), val_fraction, test_fraction))
        raise ConfigError(f"window {window} is too long for a series of {len(series)} values: the smallest "
                          f"part ({smallest} values) must hold {MIN_WINDOWS} windows of window + horizon "
                          f"steps; use a window of at most {smallest - horizon - MIN_WINDOWS + 1} or a "
                          f"series of at least {need} values.")
    if season is not None and not 2 <= season <= window:
        raise ConfigError(f"season must be between 2 and the window ({window}) so that one window spans a "
                          f"cycle; got {season}.")
    _check_size(len(series) * window)
    n_train = segment_sizes(len(series), val_fraction, test_fraction)[0]
    scale = ""
    if standardize:
        mean, std = series[:n_train].mean(), series[:n_train].std()
        if std == 0:
            raise ConfigError(f"the training part of the series is constant (every value is {mean:g}); "
                              f"there is nothing to learn.")
        series = (series - mean) / std
        scale = f" Standardised with the training part's mean {mean:g} and std {std:g}."
    train, val, test, test_start = forecast_splits(series, window, horizon, val_fraction, test_fraction,
                                                   distance=season)
    return SequenceDataset(
        name=name,
        description=(f"Forecast {horizon} step(s) past windows of {window} from one series of {len(series)} "
                     f"values, split in time.{scale}"),
        kind=REGRESSION,
        train=train, val=val, test=test,
        seq_len=window,
        n_features=1,
        n_outputs=1,
        baselines=naive_baselines(series, test_start, window, horizon, season),
        cue_lag=season,
        distance_name="season length in steps" if season else "steps",
    )


def from_dataframe(
    df: pd.DataFrame,
    value_column: str,
    window: int,
    horizon: int = 1,
    *,
    time_column: str | None = None,
    **kwargs,
) -> SequenceDataset:
    """from_series on one numeric column of a table, sorted by `time_column` when given.

    Remaining keyword arguments go to from_series; the dataset is named after the column by default.
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"expected a pandas DataFrame, got {type(df).__name__}.")
    columns = [str(c) for c in df.columns]
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool]
    for column in (value_column, time_column):
        if column is not None and column not in df.columns:
            raise ConfigError(f"column {column!r} not found; available columns: "
                              f"{', '.join(columns) if columns else '(none)'}.")
    if value_column not in numeric:
        dtype = df[value_column].dtype
        text = pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)
        holds = "text" if text else f"dtype {dtype}"
        raise ConfigError(f"column {value_column!r} is not numeric (it holds {holds}); choose a numeric "
                          f"column: {', '.join(map(str, numeric)) if numeric else '(the table has none)'}.")
    if time_column is not None:
        repeated = df[time_column].duplicated()
        if repeated.any():
            raise ConfigError(f"time column {time_column!r} repeats {int(repeated.sum())} value(s) (the "
                              f"first: {df[time_column][repeated].iloc[0]}); aggregate rows per time first.")
        df = df.sort_values(time_column, kind="stable")
    kwargs.setdefault("name", str(value_column))
    return from_series(df[value_column], window, horizon, **kwargs)


def required_sequences(val_fraction: float = 0.15, test_fraction: float = 0.15) -> int:
    """The fewest labelled sequences from_arrays accepts with these fractions."""
    _check_fractions(val_fraction, test_fraction)
    return _min_sequences(val_fraction, test_fraction)


def required_length(window: int, horizon: int = 1, val_fraction: float = 0.15,
                    test_fraction: float = 0.15) -> int:
    """The shortest series from_series accepts for this window and horizon."""
    _check_fractions(val_fraction, test_fraction)
    return min_length(window, horizon, test_fraction, val_fraction)


__all__ = ["from_arrays", "from_dataframe", "from_series", "required_length", "required_sequences"]
