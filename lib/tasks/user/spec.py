"""Stage 2 of user data: how a loaded file becomes sequences (`UploadSpec`), and choosing one.

`guess_spec` proposes a spec from the columns' names and contents; `layout_defaults` gives the proposal for
another layout (what the Your data page shows when a user switches layout); `choose_spec` changes the guess
by the columns a user names (what `python -m lib study` does with its options). Every choice is explicit,
hashable and JSON round-trippable with lib.configs.to_dict / from_dict; build.py turns a spec into a dataset.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import MISSING as REQUIRED
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lib.configs import Checked, check_knobs, knob
from lib.errors import ConfigError
from lib.seasons import history_window
from lib.tasks.forecast import min_length
from lib.tasks.user.arrays import MAX_STEPS, is_number
from lib.tasks.user.read import INDEX, CorpusText, NpzArrays, Source

LAYOUTS = ("series", "wide", "long", "corpus", "arrays")
LABEL_KINDS = ("classification", "regression")
MISSING = ("error", "drop", "ffill", "interpolate")
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}
MAX_WINDOW = 1000  # steps per forecasting or corpus window

# column names that suggest a role, for guess_spec only
_TIME_NAMES = {"time", "date", "datetime", "timestamp", "ds", "t", "step", "year", "month", "day", "hour",
               "minute", "period", "order", "index", "position", "pos", "frame", "tick"}
_ID_NAMES = {"id", "sequence", "seq", "series", "sequence_id", "series_id", "seq_id", "sample", "sample_id",
             "subject", "unit", "unit_id", "group", "case", "case_id", "track", "track_id"}
_LABEL_NAMES = {"label", "labels", "class", "target", "y", "category", "outcome", "activity", "kind", "type"}
_SPLIT_COLUMNS = {"split", "fold", "subset", "set", "partition"}


@dataclass(frozen=True)
class UploadSpec(Checked):
    """How to turn one uploaded table, array file or corpus into a dataset; guess_spec proposes one."""

    layout: str = knob(REQUIRED, "Layout", choices=LAYOUTS)  # "series", "wide", "long", "corpus", "arrays" (.npz)
    target: str | None = None  # series: the column to forecast; wide and long: the label column
    inputs: tuple[str, ...] = ()  # series: input columns, the target among them; wide: step columns in
    #                               order; long: feature columns
    time: str | None = None  # series: time column, long: step-order column; None: the row order
    sequence: str | None = None  # long: the sequence id column
    split: str | None = None  # column of train/val/test (or train/test) per row; None: seeded or in time
    label_kind: str = knob("classification", "Label kind", choices=LABEL_KINDS)  # wide, long, arrays: or
    # "regression" for a numeric label
    window: int = knob(24, "Window", low=1, high=MAX_WINDOW)  # series and corpus: steps per input window
    horizon: int = knob(1, "Horizon", low=1, high=MAX_WINDOW)  # series: steps from the window's last row to
    # the forecast row
    length: int | None = knob(None, "Length", low=2, high=MAX_STEPS, unit="steps",  # long: steps per sequence
                              note="(or None for the longest sequence)")  # (last kept, shorter left-padded)
    missing: str = knob("error", "Missing", choices=MISSING)  # empty, NaN or infinite cells: "error", "drop",
    # "ffill" or "interpolate"
    vocab_size: int = knob(2000, "Vocab size", low=2, high=100_000)  # corpus: most frequent training words
    # kept; the rest become <unk>
    val_fraction: float = knob(0.15, "Val fraction", low=0.05, high=0.4)
    test_fraction: float = knob(0.15, "Test fraction", low=0.05, high=0.4)
    seed: int = knob(0, "Seed", low=0, high=2 ** 32 - 1)  # the shuffled split of labelled sequences
    standardize: bool = True  # scale inputs (and a regression label) by the training part's mean and std

    def validate(self) -> None:
        check_knobs(self)
        needs = {"series": ("target",), "wide": ("target", "inputs"), "long": ("sequence", "target", "inputs")}
        for field in needs.get(self.layout, ()):
            if not getattr(self, field):
                what = "column" if field != "inputs" else "columns"
                raise ConfigError(f"the {self.layout} layout needs {field} (the {_ROLE[field][self.layout]} "
                                  f"{what}).")
        if self.layout == "series" and self.target not in self.inputs:
            raise ConfigError(f"the target {self.target!r} must be one of the inputs "
                              f"({', '.join(map(repr, self.inputs)) or 'none chosen'}): a forecast sees the "
                              f"target's past.")


_ROLE = {"target": {"series": "forecast", "wide": "label", "long": "label"},
         "inputs": {"wide": "step", "long": "feature"},
         "sequence": {"long": "sequence id"}}


def _split_column(df: pd.DataFrame) -> str | None:
    """A split-named column whose cells are mostly split names; build_dataset names any other cell."""
    for c in df.columns:
        if c.lower() in _SPLIT_COLUMNS:
            values = df[c].dropna().astype(str).str.strip().str.lower()
            if len(values) and values.isin(list(SPLIT_NAMES)).mean() >= 0.5:
                return c
    return None


def as_dates(s: pd.Series) -> pd.Series:
    """Text as datetimes, NaT where a cell is not a date; pandas infers the format from the first cell."""
    with warnings.catch_warnings():  # cells in other formats are parsed one by one, with a warning
        warnings.simplefilter("ignore", UserWarning)
        return pd.to_datetime(s, errors="coerce")


def _looks_like_dates(s: pd.Series) -> bool:
    head = s.dropna().head(20)
    return len(head) > 0 and not is_number(s) and bool(as_dates(head).notna().all())


def _history(df: pd.DataFrame, column: str | None) -> int:
    """The window to prefer for forecasting `column`: a detected season and half again (lib.seasons)."""
    values = pd.to_numeric(df[column], errors="coerce").dropna() if column in df.columns else pd.Series(dtype=float)
    return history_window(values.to_numpy(dtype=np.float64))


def _largest_window(n_rows: int, horizon: int, val_fraction: float, test_fraction: float,
                    preferred: int = 24) -> int:
    """The largest window up to `preferred` that a series of n_rows accepts (1 when none does)."""
    w = preferred
    while w > 1 and min_length(w, horizon, val_fraction, test_fraction) > n_rows:
        w -= 1
    return w


def guess_spec(source: Source) -> UploadSpec:
    """A first guess at the layout and the columns' roles, from names and contents; override any field.

    A repeated id column and a label make the long layout; a label without one the wide layout; otherwise
    a series, forecasting the first numeric column that is not the time column.
    """
    if isinstance(source, CorpusText):
        return UploadSpec(layout="corpus", window=20)
    if isinstance(source, NpzArrays):
        y = np.asarray(source.y)  # build_dataset names a y of the wrong shape
        return UploadSpec(layout="arrays", label_kind=_guess_label_kind(pd.Series(y)) if y.ndim == 1 else
                          "classification")
    df = source
    split = _split_column(df)
    numeric = [c for c in numeric_columns(df) if c not in (split, INDEX)]  # a row index is never an input
    if not numeric:
        raise ConfigError(f"the table has no numeric column (columns: {', '.join(df.columns)}); a series or "
                          f"sequence needs numbers.{_text_among_numbers(df)}")
    others = [c for c in df.columns if c != split]
    times = [c for c in others if (c.lower() in _TIME_NAMES and is_number(df[c])) or _looks_like_dates(df[c])]
    times.sort(key=lambda c: c == INDEX)  # a row index exported with the table orders rows last of all
    ids = [c for c in others if c.lower() in _ID_NAMES and c not in times]
    labels = [c for c in others if c.lower() in _LABEL_NAMES and c not in times + ids]
    labels += [c for c in others if c not in times + ids + labels and not is_number(df[c])
               and 2 <= df[c].nunique() <= len(df) // 2]
    sequence = next((c for c in ids if df[c].duplicated().any()), None)
    if sequence is not None and labels:
        order = next((c for c in times), None)
        inputs = tuple(c for c in numeric if c not in (sequence, order, labels[0]))
        return UploadSpec(layout="long", sequence=sequence, time=order, target=labels[0], inputs=inputs,
                          split=split, label_kind=_guess_label_kind(df[labels[0]]))
    if labels:
        inputs = tuple(c for c in numeric if c not in ids + times + labels[:1])
        return UploadSpec(layout="wide", target=labels[0], inputs=inputs, split=split,
                          label_kind=_guess_label_kind(df[labels[0]]))
    time = times[0] if times else None
    inputs = tuple(c for c in numeric if c != time)
    if not inputs:
        raise ConfigError(f"the only numeric column is the time column {time!r}; add a column of values to "
                          f"forecast.")
    spec = UploadSpec(layout="series", time=time, target=inputs[0], inputs=inputs, split=split)
    return replace(spec, window=_largest_window(len(df), 1, spec.val_fraction, spec.test_fraction,
                                                _history(df, spec.target)))


def _text_among_numbers(df: pd.DataFrame) -> str:
    """Advice for a table without numbers: the first column of numbers but for a few cells names one of those."""
    for c in df.columns:
        parsed = pd.to_numeric(df[c], errors="coerce")
        text = (parsed.isna() & df[c].notna()).to_numpy()
        if 0 < text.sum() <= parsed.notna().sum():
            i = int(np.flatnonzero(text)[0])
            return (f" Column {c!r} holds numbers but for row {i + 1} ({df[c].iloc[i]!r}); fix that cell (a repeated "
                    f"header or a note in the data) or delete its row.")
    return " Check the separator and the decimal mark (use '.')."


def _guess_label_kind(y: pd.Series) -> str:
    """Regression for numbers that are not whole, classification otherwise."""
    if is_number(y):
        values = y.dropna().to_numpy(dtype=np.float64)
        if np.isfinite(values).all() and not np.all(values == np.round(values)):
            return "regression"
    return "classification"


def numeric_columns(df: pd.DataFrame) -> list[str]:
    """The columns that hold numbers (not true/false), in the table's order."""
    return [c for c in df.columns if is_number(df[c])]


def layout_defaults(source: Source, layout: str, guess: UploadSpec | None = None) -> UploadSpec:
    """The proposal for `layout`: the guess (guess_spec's, or `guess`) when it is that layout; for another
    layout of a table, the guessed time and split columns, a target (the guessed one, else the last text
    column, else the last column) and the remaining numeric columns as inputs."""
    guess = guess_spec(source) if guess is None else guess
    if layout == guess.layout or not isinstance(source, pd.DataFrame):
        return guess
    df, numeric = source, numeric_columns(source)
    texts = [c for c in df.columns if c not in numeric and c not in (guess.time, guess.sequence, guess.split)]
    base = UploadSpec(layout=layout, time=guess.time, split=guess.split)
    if layout == "series":
        inputs = [c for c in numeric if c not in (guess.time, guess.sequence, guess.split)]
        return replace(base, target=inputs[0] if inputs else None, inputs=tuple(inputs))
    target = guess.target or (texts[-1] if texts else df.columns[-1])
    sequence = (guess.sequence or next((c for c in df.columns if c != target), None)) if layout == "long" else None
    inputs = [c for c in numeric if c not in (target, sequence, guess.time, guess.split)]
    return replace(base, target=target, sequence=sequence, inputs=tuple(inputs))


def choose_spec(source: Source, *, target: str | None = None, label: str | None = None, sequence: str | None = None,
                time: str | None = None, split: str | None = None, inputs: Sequence[str] = (),
                regression: bool = False, **options) -> UploadSpec:
    """guess_spec's proposal, changed by the columns a user names.

    target: forecast this column (the series layout, every other numeric column an input unless `inputs`
    says otherwise). label: one label per sequence (long layout with a sequence column, else wide; numeric
    columns the inputs unless `inputs` says otherwise), a number to predict with `regression`. Neither: the
    guessed layout, or layout_defaults for the `layout` option, with the given columns. options: other
    UploadSpec fields (layout, window, horizon, missing, ...), None for the default.
    """
    guess = guess_spec(source)
    if target is not None and label is not None:
        raise ConfigError(f"give a target (a column to forecast) or a label (one per sequence), not both; got "
                          f"target {target!r} and label {label!r}.")
    changes = {k: v for k, v in options.items() if v is not None}
    if not isinstance(source, pd.DataFrame):
        if target is not None or label is not None:
            raise ConfigError(f"target and label name columns of a table; a {guess.layout} file has none, so leave "
                              f"them out.")
        return replace(guess, label_kind="regression" if regression else guess.label_kind, **changes)
    numeric = numeric_columns(source)
    split = split if split is not None else guess.split
    if target is not None:
        if time is None:  # the guess's time column, guessed again without its label when it was not a series
            series = guess if guess.layout == "series" else guess_spec(source.drop(columns=guess.target))
            time = series.time if series.layout == "series" else None
        default = tuple(c for c in numeric if c not in (time, split))
        spec = UploadSpec(layout="series", target=target, time=time, split=split,
                          inputs=tuple(inputs) or ((target,) if target not in default else ()) + default)
    elif label is not None:
        sequence = sequence if sequence is not None else guess.sequence
        time = time if time is not None else guess.time if guess.layout == "long" else None
        default = tuple(c for c in numeric if c not in (label, sequence, time, split))
        spec = UploadSpec(layout="long" if sequence else "wide", target=label, sequence=sequence, time=time,
                          split=split, inputs=tuple(inputs) or default,
                          label_kind="regression" if regression else "classification")
    else:  # the proposal for the layout asked for (the guess's own by default), with the columns named
        base = layout_defaults(source, changes.get("layout", guess.layout), guess)
        named = {k: v for k, v in (("sequence", sequence), ("time", time), ("inputs", tuple(inputs))) if v}
        spec = replace(base, split=split, label_kind="regression" if regression else base.label_kind, **named)
    spec = replace(spec, **changes)
    if spec.layout == "series" and "window" not in changes:  # as guess_spec: the longest that fits, up to 24
        spec = replace(spec, window=_largest_window(len(source), spec.horizon, spec.val_fraction, spec.test_fraction,
                                                    _history(source, spec.target)))
    return spec


__all__ = ["LABEL_KINDS", "LAYOUTS", "MAX_WINDOW", "MISSING", "SPLIT_NAMES", "UploadSpec", "as_dates", "choose_spec",
           "guess_spec", "layout_defaults", "numeric_columns"]
