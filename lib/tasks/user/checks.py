"""Stage 3a of user data: the checks every layout builder shares, on a table's rows and columns.

Row naming (`Rows`: rows count from 1 at the first data row, .npz sequences from 0 like NumPy; with a test file,
each names its file), column roles, numbers, missing cells, labels, the magnitudes that overflow, the time order
and the split column. Each refusal is a ConfigError naming the column, row or value and what to change.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lib.errors import ConfigError
from lib.tasks.user.arrays import FLOAT32_MAX, MAX_VALUE, is_number, printable
from lib.tasks.user.spec import SPLIT_NAMES, UploadSpec, as_dates


class Rows:
    """Rows (or sequences of a .npz) as a user counts them; with two files, each names its file."""

    def __init__(self, n_train_file: int | None = None, noun: str = "row", first: int = 1):
        self.n_train_file = n_train_file  # rows from the training file, when a test file follows them
        self.noun, self.first = noun, first  # rows count from 1, .npz sequences from 0 like NumPy

    def __call__(self, i: int) -> str:
        i, part = int(i), ""
        if self.n_train_file is not None:
            part = " of the training file" if i < self.n_train_file else " of the test file"
            i = i if i < self.n_train_file else i - self.n_train_file
        return f"{self.noun} {i + self.first}{part}"


def combine(df: pd.DataFrame, test: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray | None, Rows]:
    """One frame (training rows, then test rows), each row's file ('train' / 'test') or None, row names."""
    if test is None:
        return df.reset_index(drop=True), None, Rows()
    missing = [c for c in df.columns if c not in test.columns]
    extra = [c for c in test.columns if c not in df.columns]
    if missing or extra:
        raise ConfigError(f"the test file's columns differ from the training file's: missing "
                          f"{', '.join(missing) or 'none'}; extra {', '.join(extra) or 'none'}. Give both files "
                          f"the same columns.")
    both = pd.concat([df, test[df.columns]], ignore_index=True)
    return both, np.array(["train"] * len(df) + ["test"] * len(test)), Rows(len(df))


def check_columns(df: pd.DataFrame, spec: UploadSpec) -> None:
    chosen = [spec.target, spec.time, spec.sequence, spec.split, *spec.inputs]
    for c in chosen:
        if c is not None and c not in df.columns:
            raise ConfigError(f"column {c!r} not found; available columns: {', '.join(df.columns)}.")
    roles = [c for c in chosen if c is not None]
    if spec.layout == "series":
        roles.remove(spec.target)  # the target is also an input
    repeated = sorted({c for c in roles if roles.count(c) > 1})
    if repeated:
        raise ConfigError(f"column {repeated[0]!r} has two roles; give each column one role (target, time, "
                          f"sequence, split or input).")


def show(value) -> str:
    """A cell's value for a message: quoted text, or a plain number."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def numbers(df: pd.DataFrame, column: str, where: Rows) -> np.ndarray:
    """A column as float64, NaN for empty cells and inf kept; ConfigError at the first cell that is text."""
    s = df[column]
    if s.isna().all():
        raise ConfigError(f"column {column!r} has no values; fill it in, or leave it out of the inputs.")
    if is_number(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_bool_dtype(s):
        raise ConfigError(f"column {column!r} holds true/false values; use 0 and 1 to make it an input.")
    as_numbers = pd.to_numeric(s, errors="coerce")
    bad = (as_numbers.isna() & s.notna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"column {column!r} holds text, not numbers: {where(i)} is {show(s.iloc[i])}; fix that cell "
                          f"(use '.' as the decimal mark) or leave the column out of the inputs.")
    return as_numbers.to_numpy(dtype=np.float64, na_value=np.nan)


_FILL = {"rows": "'drop' (leave those rows out), 'ffill' (repeat the previous value) or 'interpolate' (linear "
                 "between neighbours)",
         "steps": "'drop' (leave those sequences out), 'ffill' (repeat the previous step) or 'interpolate' "
                  "(linear between steps)",
         "labels": "'drop' (leave those rows out)"}


def refuse_missing(bad: np.ndarray, names: list[str], where, options: str) -> None:
    """ConfigError at the first bad cell of bad (n, F) in row order, naming its column and the options."""
    if not bad.any():
        return
    i = int(np.flatnonzero(bad.any(axis=1))[0])
    j = int(np.flatnonzero(bad[i])[0])
    raise ConfigError(f"column {names[j]!r} has {int(bad[:, j].sum())} empty, NaN or infinite cell(s), the first at "
                      f"{where(i)}; fix them in the file, or set missing to {_FILL[options]}.")



def fill_note(values: np.ndarray, missing: str, n_filled: int, verbs: tuple[str, str], gap) -> str:
    """What a forward fill or interpolation did, or a ConfigError where it left a gap at the start (gap() names it)."""
    if np.isnan(values).any():
        raise ConfigError(f"{gap()}, so there is no earlier value to repeat; set missing to 'drop' or 'interpolate'.")
    return f" {n_filled} empty, NaN or infinite input value(s) were {verbs[0] if missing == 'ffill' else verbs[1]}."

def label_cells(df: pd.DataFrame, column: str) -> np.ndarray:
    """True where a label cell is empty, NaN or infinite."""
    s = df[column]
    if is_number(s):
        return ~np.isfinite(s.to_numpy(dtype=np.float64, na_value=np.nan))
    return s.isna().to_numpy()


def label_values(s: pd.Series) -> np.ndarray:
    """Label cells as float64 (numbers) or str (anything else)."""
    if is_number(s):
        return s.to_numpy(dtype=np.float64)
    return s.astype(str).to_numpy(dtype=str)


def check_labels(y: np.ndarray, column: str, spec: UploadSpec, where) -> None:
    """Label checks that name the column; y (N,) one present label per sequence, where(k) names its row."""
    numeric = y.dtype.kind in "biuf"
    if spec.label_kind == "regression":
        if not numeric:
            k = int(np.flatnonzero(pd.to_numeric(pd.Series(y), errors="coerce").isna().to_numpy())[0])
            raise ConfigError(f"label column {column!r} holds {str(y[k])!r} at {where(k)}, not a number; regression "
                              f"needs numbers, or set label_kind to 'classification'.")
        return
    if numeric and not np.all(y == np.round(y)):
        k = int(np.flatnonzero(y != np.round(y))[0])
        raise ConfigError(f"label column {column!r} holds {y[k]:g} at {where(k)}, not a class; for a number to "
                          f"predict set label_kind to 'regression', for classes use whole numbers or text.")
    classes = np.unique(y)
    shady = next((c for c in classes if not numeric and not printable(str(c))), None)
    if shady is not None:
        k = int(np.flatnonzero(y == shady)[0])
        raise ConfigError(f"label column {column!r} holds {str(shady)!r} at {where(k)}, with control or formatting "
                          f"characters (such as ESC or a right-to-left override); remove them from the labels.")
    if len(classes) < 2:
        shown = f"{classes[0]:g}" if numeric else str(classes[0])
        raise ConfigError(f"label column {column!r} has only one class ({shown!r}); a classifier needs at least "
                          f"two. Choose another label column.")
    if len(classes) > len(y) // 2:
        raise ConfigError(f"label column {column!r} has {len(classes)} different values for {len(y)} sequences, too "
                          f"few examples per class to learn from; choose another label column, or set label_kind "
                          f"to 'regression' if it is a number to predict.")


def check_scale(values: np.ndarray, names: list[str], standardize: bool, where) -> None:
    """Refuse values (n, F) that overflow when standardised, or in float32 when not; NaN is ignored."""
    limit = MAX_VALUE if standardize else FLOAT32_MAX
    big = np.abs(np.nan_to_num(values, nan=0.0)) > limit
    if not big.any():
        return
    i = int(np.flatnonzero(big.any(axis=1))[0])
    j = int(np.flatnonzero(big[i])[0])
    why = "to standardise without overflow" if standardize else "for float32 (standardize is off)"
    raise ConfigError(f"column {names[j]!r} holds {values[i, j]:.3g} at {where(i)}, too large {why}; the limit is "
                      f"{limit:.3g}. Divide the column by a power of ten first.")


def row_split(df: pd.DataFrame, spec: UploadSpec, files: np.ndarray | None, where) -> np.ndarray | None:
    """Per-row 'train' / 'val' / 'test' from the split column or the two files; None without either."""
    if files is not None:
        if spec.split is not None:
            raise ConfigError(f"both a test file and a split column ({spec.split!r}) were given; use one: set "
                              f"split to None, or upload one file.")
        return files
    if spec.split is None:
        return None
    return split_values(df[spec.split], spec.split, where)


def split_values(values: pd.Series, column: str, where) -> np.ndarray:
    text = values.astype("string").str.strip().str.lower()
    empty = text.isna().to_numpy()
    if empty.any():
        raise ConfigError(f"split column {column!r} is empty at {where(np.flatnonzero(empty)[0])}; give every row "
                          f"train, val or test.")
    mapped = text.map(SPLIT_NAMES)
    bad = mapped.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"split column {column!r} holds {show(values.iloc[i])} at {where(i)}; use train, val (or "
                          f"validation) and test.")
    return mapped.to_numpy(dtype=str)


def carve_val(split: np.ndarray, spec: UploadSpec, in_time: bool) -> tuple[np.ndarray, str]:
    """A given split, with val_fraction of the training rows moved to val when it has none."""
    if "test" not in split:
        raise ConfigError("the split has no test rows; mark some rows test (or upload a test file).")
    if "val" in split:
        return split, "the file's own train/val/test split"
    train = np.flatnonzero(split == "train")
    n_val = round(len(train) * spec.val_fraction)
    chosen = train[len(train) - n_val:] if in_time else np.random.default_rng(spec.seed).permutation(train)[:n_val]
    split = split.copy()
    split[chosen] = "val"
    how = "the latest" if in_time else f"a seeded (seed {spec.seed})"
    return split, f"the given train/test split, validation {how} {spec.val_fraction:.0%} of the training rows"


def order_values(df: pd.DataFrame, column: str, where) -> np.ndarray:
    """A time or step column as sortable float64 (numbers, or dates as nanoseconds); refuses bad cells."""
    s = df[column]
    empty = s.isna().to_numpy()
    if empty.any():
        raise ConfigError(f"time column {column!r} is empty at {where(np.flatnonzero(empty)[0])}; give every row "
                          f"its time or step.")
    if is_number(s):
        values = s.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
    else:
        parsed = as_dates(s)
        bad = parsed.isna().to_numpy()
        values = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"time column {column!r} holds {show(s.iloc[i])} at {where(i)}, which is neither a "
                          f"number nor a date; fix it, or choose another time column (or none, to use the row "
                          f"order).")
    return values


def time_blocks(split: np.ndarray, where) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) of a split that runs train, then val, then test, in time."""
    rank = np.select([split == "train", split == "val"], [0, 1], 2)
    back = np.flatnonzero(np.diff(rank) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise ConfigError(f"the split of a series must run train, then val, then test in time; {where(i)} is "
                          f"{split[i]} after {split[i - 1]} rows. Fix the split, or leave it out to split in time.")
    return tuple(int((split == s).sum()) for s in ("train", "val", "test"))


__all__ = ["Rows", "carve_val", "check_columns", "check_labels", "check_scale", "combine", "fill_note", "label_cells",
           "label_values", "numbers", "order_values", "refuse_missing", "row_split", "show", "split_values",
           "time_blocks"]
