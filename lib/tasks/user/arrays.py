"""Arrays -> a dataset: labelled sequences (`from_arrays`) or one series to forecast (`from_series`).

The library's way in for data a user already holds in NumPy or pandas, and the last stage of an upload
(build.py hands its arrays here). Every check raises ConfigError with what to change. Labelled sequences are
split by a seeded shuffle (or a given split); a series is split in time (train, then val, then test) and
windowed inside each part (lib.tasks.forecast, as for the sine task), so nothing tested on was seen in training.
"""
from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import torch

from lib.configs import INT64, cast
from lib.errors import ConfigError
from lib.tasks.base import CLASSIFICATION, REGRESSION, SequenceDataset, Split, check_bytes, majority_chance
from lib.tasks.forecast import MIN_WINDOWS, min_length, naive_baselines, segment_sizes, windows

MIN_TRAIN, MIN_EVAL = 20, 5  # sequences needed in training, and in each of validation and test
MAX_STEPS = 10_000  # steps per sequence, and the longest forecasting window or horizon
MAX_CLASSES = 1000
MAX_VALUE = 1e150  # larger magnitudes overflow float64 when squared for a standard deviation
FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_number(s: pd.Series) -> bool:
    """Whether a column holds numbers (true/false values do not count)."""
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def printable(text: str) -> bool:
    """No control, format (e.g. right-to-left override) or unassigned characters: text safe to show as a name."""
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp") for c in text)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        value = cast(name, float, value)
        if not 0.05 <= value <= 0.4:
            raise ConfigError(f"{name} must be between 0.05 and 0.4, got {value:g}.")


def _check_steps(**steps) -> None:
    """Each of `steps` (e.g. window=5) a whole number between 1 and MAX_STEPS."""
    for what, value in steps.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{what} must be a whole number of steps, at least 1; got {value!r}.")
        if value > MAX_STEPS:
            raise ConfigError(f"{what} must be at most {MAX_STEPS} steps; got {value}.")


def _check_numeric(a: np.ndarray, what: str, hint: str, unit: str = "position",
                   limit: float = MAX_VALUE) -> np.ndarray:
    """a as float64, or a ConfigError naming non-numbers, missing and infinite values, and magnitudes
    above `limit` (MAX_VALUE overflows when standardised; FLOAT32_MAX when stored as float32)."""
    if a.dtype.kind not in "biuf":  # bool, integers, floats
        got = "text" if a.dtype.kind in "USO" else f"values of type {a.dtype}"
        raise ConfigError(f"{what} must hold numbers, got {got}; {hint}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        first = np.unravel_index(int(np.flatnonzero(bad)[0]), a.shape)[0]
        raise ConfigError(f"{what} has {int(bad.sum())} missing or infinite value(s), the first at {unit} "
                          f"{first}; fill or drop them first.")
    big = np.abs(a) > limit
    if big.any():
        at = int(np.flatnonzero(big)[0])
        why = "to standardise without overflow" if limit == MAX_VALUE else "for float32 (standardize is off)"
        raise ConfigError(f"{what} holds {a.flat[at]:.3g} at {unit} {np.unravel_index(at, a.shape)[0]}, too large "
                          f"{why}; the limit is {limit:.3g}. Divide the values by a power of ten first.")
    return a


def _float32(a: np.ndarray, what: str) -> torch.Tensor:
    """a as a float32 tensor, or a ConfigError when a value does not fit (e.g. after standardising)."""
    with np.errstate(over="ignore", invalid="ignore"):
        t = torch.tensor(a, dtype=torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise ConfigError(f"{what} holds values beyond float32's range once standardised: validation or test "
                          f"values lie far outside the training part's spread. Check the data for outliers or "
                          f"turn standardize off.")
    return t


def _min_sequences(val_fraction: float, test_fraction: float) -> int:
    n = MIN_TRAIN + 2 * MIN_EVAL
    while True:
        n_train, n_val, n_test = segment_sizes(n, val_fraction, test_fraction)
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
    names = tuple(str(v) for v in labels)
    shady = next((j for j, label in enumerate(names) if not printable(label)), None)
    if shady is not None:
        raise ConfigError(f"y holds the label {names[shady]!r} at position {int(np.flatnonzero(ids == shady)[0])}, "
                          f"with control or formatting characters (such as ESC or a right-to-left override); remove "
                          f"them from the labels.")
    return ids.astype(np.int64), names


def _standardise(x: np.ndarray, train_idx: np.ndarray) -> np.ndarray:
    """Scale each feature by the training sequences' mean and std; constant features keep scale 1."""
    ref = x[train_idx].reshape(-1, x.shape[-1])  # (N_train * T, F)
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    return (x - mean) / np.where(std > 0, std, 1.0)


def split_indices(n: int, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0,
                  split=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the train, val and test sequences: the given split, or a seeded shuffle."""
    seed = cast("seed", int, seed)
    if not 0 <= seed < INT64:
        raise ConfigError(f"seed must be at least 0, got {seed}.")
    if split is None:
        _check_fractions(val_fraction, test_fraction)
        need = _min_sequences(val_fraction, test_fraction)
        if n < need:
            raise ConfigError(f"too few sequences: {n}; with val_fraction {val_fraction:g} and "
                              f"test_fraction {test_fraction:g} you need at least {need}, so that training gets "
                              f"{MIN_TRAIN} and validation and test get {MIN_EVAL} each.")
        n_train, n_val, _ = segment_sizes(n, val_fraction, test_fraction)
        order = np.random.default_rng(seed).permutation(n)
        return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]
    split = np.asarray(split).astype(str)
    if split.shape != (n,):
        raise ConfigError(f"split must give train, val or test per sequence, shape ({n},); got shape "
                          f"{split.shape}.")
    unknown = sorted(set(split.tolist()) - {"train", "val", "test"})
    if unknown:
        raise ConfigError(f"split holds {unknown[0]!r}; use train, val and test.")
    parts = tuple(np.flatnonzero(split == s) for s in ("train", "val", "test"))
    if len(parts[0]) < MIN_TRAIN or min(len(parts[1]), len(parts[2])) < MIN_EVAL:
        raise ConfigError(f"the split has {len(parts[0])} train, {len(parts[1])} val and {len(parts[2])} test "
                          f"sequences; training needs at least {MIN_TRAIN}, validation and test {MIN_EVAL} each.")
    return parts


def _sequences(X, limit: float) -> np.ndarray:
    """X as float64 (N, T, F), or a ConfigError saying what is wrong with its shape or values."""
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
    if x.shape[1] > MAX_STEPS:
        raise ConfigError(f"X has sequences of {x.shape[1]} steps; the limit is {MAX_STEPS}. Cut or downsample "
                          f"them first.")
    x = _check_numeric(x, "X", "convert or drop non-numeric features first.", unit="sequence", limit=limit)
    return x[:, :, None] if x.ndim == 2 else x  # (N, T, F)


def from_arrays(
    X,
    y,
    *,
    name: str = "my sequences",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    standardize: bool = True,
    regression: bool = False,
    split=None,
) -> SequenceDataset:
    """Sequence-to-label classification from X (N, T) or (N, T, F) numbers and y (N,) labels.

    Labels may be integers or strings; class ids follow their sorted order and class_names keep the
    original labels as text. The split is a seeded shuffle; with `standardize` each feature is scaled by
    the training sequences' mean and std (fitted on train only), and without it X and y are taken as they
    are (the upload builders scale them first, keeping padding at 0). With `regression`, y holds one number
    per sequence to predict (sequence-to-value), scaled like the features. `split` ("train", "val" or "test"
    per sequence) replaces the shuffle and the fractions.
    """
    _check_fractions(val_fraction, test_fraction)
    limit = MAX_VALUE if standardize else FLOAT32_MAX
    x = _sequences(X, limit)
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ConfigError(f"y must hold one label per sequence, shape (N,); got shape {labels.shape}.")
    if len(labels) != len(x):
        raise ConfigError(f"X has {len(x)} sequences but y has {len(labels)} labels; give exactly one label "
                          f"per sequence.")
    parts = split_indices(len(x), val_fraction, test_fraction, seed, split)
    check_bytes(4 * x.size, "the data as float32", "use fewer sequences, steps or features")
    if regression:
        target = _check_numeric(labels, "y", "give numbers to predict, or class labels without regression.",
                                limit=limit)
        if standardize:
            mean, std = target[parts[0]].mean(), target[parts[0]].std()
            if not std > 0:
                raise ConfigError(f"y is constant in the training part (every value is {mean:g}); there is "
                                  f"nothing to learn.")
            target = (target - mean) / std
        err = target[parts[2]] - target[parts[0]].mean()  # predicting the training mean
        targets = _float32(target, "y")  # (N,)
        kind, n_outputs, class_names, what = REGRESSION, 1, None, "a number to predict each"
        baselines = {"train_mean_mse": float(np.mean(err ** 2)), "train_mean_mae": float(np.mean(np.abs(err)))}
    else:
        ids, class_names = _class_ids(labels)
        if len(class_names) < 2:
            raise ConfigError(f"y has only one class ({class_names[0]!r}); a classifier needs at least two.")
        if len(class_names) > MAX_CLASSES:
            raise ConfigError(f"y has {len(class_names)} different labels; the limit is {MAX_CLASSES} classes. "
                              f"Group rare labels, or if y is a number to forecast, use from_series.")
        if len(class_names) > len(x) // 2:
            raise ConfigError(f"y has {len(class_names)} different labels for {len(x)} sequences, too few "
                              f"examples per class to learn from; if y is a number to forecast, use from_series.")
        targets = torch.from_numpy(ids)  # (N,) int64
        kind, n_outputs, what, baselines = CLASSIFICATION, len(class_names), f"{len(class_names)} classes", {}
    if standardize:
        x = _standardise(x, parts[0])
    x32 = _float32(x, "X")  # (n, T, F)
    train, val, test = (Split(x32[p], targets[p]) for p in parts)
    n, t, f = x.shape
    return SequenceDataset(
        name=name,
        description=(f"{n} sequences of {t} steps x {f} feature(s), {what}; "
                     + ("seeded shuffled split" if split is None else "the given split")
                     + (f", features{' and y' if regression else ''} standardised on the training part." if standardize
                        else ".")),
        kind=kind,
        train=train, val=val, test=test,
        seq_len=t,
        n_features=f,
        n_outputs=n_outputs,
        class_names=class_names,
        chance=majority_chance(test.y, n_outputs) if kind == CLASSIFICATION else None,
        baselines=baselines,
        distance_name="steps",
    )


def _as_series(values, limit: float) -> np.ndarray:
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
    return _check_numeric(a, "the series", "choose a numeric column.", limit=limit)


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
    target: int | None = None,
    sizes: tuple[int, int, int] | None = None,
) -> SequenceDataset:
    """Forecast the value `horizon` steps after each window of `window` values of one series.

    `values` is a 1-D array, a pandas Series or a one-column DataFrame, in time order. The series is split in
    time (train, val, test = the latest values) and windowed inside each part. With `standardize` it is
    scaled by the training part's mean and std, so metrics and baselines are in those units. Baselines:
    last value, plus the seasonal naive forecast when `season` (steps per cycle) is given.

    With `target`, `values` is (T, F): windows hold all F columns and the forecast is column `target`
    (each column standardised on its own). `sizes` (train, val, test lengths, in time order) replaces the
    fractions.
    """
    _check_fractions(val_fraction, test_fraction)
    limit = MAX_VALUE if standardize else FLOAT32_MAX
    if target is None:
        series, target = _as_series(values, limit)[:, None], 0  # (T, 1)
    else:
        series = _check_numeric(np.asarray(values), "values", "choose numeric columns.", unit="row", limit=limit)
        if (series.ndim != 2 or isinstance(target, bool) or not isinstance(target, int | np.integer)
                or not 0 <= target < series.shape[1]):
            raise ConfigError(f"with target, values must be (T, F) with target a column index below F; got "
                              f"shape {series.shape} and target {target!r}.")
    _check_steps(window=window, horizon=horizon)
    if season is not None:
        _check_steps(season=season)
    if sizes is not None:
        if (not isinstance(sizes, tuple | list) or len(sizes) != 3
                or any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0 for v in sizes)):
            raise ConfigError(f"sizes must be three whole numbers (train, val, test lengths); got {sizes!r}.")
        per_part = window + horizon + MIN_WINDOWS - 1
        if sum(sizes) != len(series) or min(sizes) < per_part:
            raise ConfigError(f"the split has {sizes[0]} train, {sizes[1]} val and {sizes[2]} test values of "
                              f"{len(series)}; each part needs at least {per_part} ({MIN_WINDOWS} windows of "
                              f"window + horizon = {window + horizon} steps): use a smaller window or larger "
                              f"parts.")
    shortest = min_length(1, horizon, val_fraction, test_fraction)
    if sizes is None and len(series) < shortest:
        raise ConfigError(f"the series is too short: {len(series)} values; forecasting {horizon} "
                          f"step(s) ahead with val_fraction {val_fraction:g} and test_fraction "
                          f"{test_fraction:g} needs at least {shortest} values ({MIN_WINDOWS} windows each "
                          f"in validation and test).")
    need = min_length(window, horizon, val_fraction, test_fraction)
    if sizes is None and len(series) < need:
        smallest = min(segment_sizes(len(series), val_fraction, test_fraction))
        raise ConfigError(f"window {window} is too long for a series of {len(series)} values: the smallest "
                          f"part ({smallest} values) must hold {MIN_WINDOWS} windows of window + horizon "
                          f"steps; use a window of at most {smallest - horizon - MIN_WINDOWS + 1} or a "
                          f"series of at least {need} values.")
    if season is not None and not 2 <= season <= window:
        raise ConfigError(f"season must be between 2 and the window ({window}) so that one window spans a "
                          f"cycle; got {season}.")
    check_bytes(4 * series.size * window, "the data as float32", "use fewer sequences, steps or features")
    sizes = sizes or segment_sizes(len(series), val_fraction, test_fraction)
    scale = ""
    if standardize:
        mean, std = series[:sizes[0]].mean(axis=0), series[:sizes[0]].std(axis=0)
        if std[target] == 0:
            raise ConfigError(f"the training part of the series is constant (every value is {mean[target]:g}); "
                              f"there is nothing to learn.")
        series = (series - mean) / np.where(std > 0, std, 1.0)
        scale = f" Standardised with the training part's mean {mean[target]:g} and std {std[target]:g}."
    bounds = np.cumsum((0, *sizes))
    train, val, test = (_windows(series[lo:hi], window, horizon, target, season)
                        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True))
    n, f = series.shape
    baselines = naive_baselines(series[:, target], int(bounds[2]), window, horizon, season)
    if not all(np.isfinite(v) for v in baselines.values()):
        raise ConfigError("the naive baselines of this series overflow once standardised: validation or test "
                          "values lie far outside the training part's spread. Check the data for outliers or turn "
                          "standardize off.")
    return SequenceDataset(
        name=name,
        description=(f"Forecast {horizon} step(s) past windows of {window} from one series of {n} values"
                     + (f" (column {target} of {f}, all {f} as inputs)" if f > 1 else "")
                     + f", split in time.{scale}"),
        kind=REGRESSION,
        train=train, val=val, test=test,
        seq_len=window,
        n_features=f,
        n_outputs=1,
        baselines=baselines,
        cue_lag=season,
        distance_name="season length in steps" if season else "steps",
    )


def _windows(segment: np.ndarray, window: int, horizon: int, target: int, distance: int | None) -> Split:
    """All windows of one time segment (n, F): inputs (N, window, F), targets (N,) from column `target`."""
    columns = [windows(segment[:, j], window, horizon) for j in range(segment.shape[1])]
    x = np.stack([c[0] for c in columns], axis=-1)  # (N, window, F)
    y = columns[target][1]
    dist = None if distance is None else torch.full((len(y),), distance, dtype=torch.int64)
    return Split(_float32(x, "the series"), _float32(y, "the series"), dist)


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
    if df.empty:
        raise ConfigError(f"the table has no rows (columns: {', '.join(map(str, df.columns)) or 'none'}); give a "
                          f"file with a header and one row per time step.")
    columns = [str(c) for c in df.columns]
    numeric = [c for c in df.columns if is_number(df[c])]
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
        missing = df[time_column].isna()
        if missing.any():
            raise ConfigError(f"time column {time_column!r} has {int(missing.sum())} missing value(s), the first "
                              f"in row {int(np.flatnonzero(missing)[0])}; fill or drop those rows first.")
        repeated = df[time_column].duplicated()
        if repeated.any():
            raise ConfigError(f"time column {time_column!r} repeats {int(repeated.sum())} value(s) (the "
                              f"first: {df[time_column][repeated].iloc[0]}); aggregate rows per time first.")
        try:
            df = df.sort_values(time_column, kind="stable")
        except TypeError as err:
            raise ConfigError(f"time column {time_column!r} mixes kinds of values (e.g. numbers and text), which "
                              f"have no order; make it all numbers or all dates.") from err
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
    _check_steps(window=window, horizon=horizon)
    return min_length(window, horizon, val_fraction, test_fraction)


__all__ = ["from_arrays", "from_dataframe", "from_series", "is_number", "printable", "required_length",
           "required_sequences", "split_indices"]
