"""Uploaded files -> tables -> SequenceDatasets: parsing, layout detection and the layout's builder.

`load_table(data, filename)` reads CSV/TSV, Parquet, NumPy .npz or a .txt corpus from bytes; `guess_spec`
proposes an `UploadSpec` (every choice explicit, hashable, JSON round-trippable with lib.configs.to_dict /
from_dict) that a user can override; `build_dataset(source, spec, test=None)` builds the dataset. Every
problem a file can have raises ConfigError naming the column, row or value and what to change; nothing is
dropped, filled, padded or cut unless the spec says so, and the dataset description reports what was.

Rows count from 1 at the first data row (the line after a CSV's header is row 1).
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import importlib.util
import io
import re
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import PurePath

import numpy as np
import pandas as pd
import torch

from lib.configs import Checked
from lib.errors import ConfigError
from lib.tasks.base import CLASSIFICATION, SequenceDataset, Split, majority_chance
from lib.tasks.forecast import min_length, segment_sizes
from lib.tasks.user import (
    FLOAT32_MAX,
    MAX_STEPS,
    MAX_VALUE,
    MIN_EVAL,
    MIN_TRAIN,
    from_arrays,
    from_series,
    split_indices,
)

DELIMITERS = ",;\t|"
MAX_UPLOAD_BYTES = 64 * 1024 ** 2  # refuse bigger files before parsing them
MAX_UNPACKED_BYTES = 512 * 1024 ** 2  # a .npz's arrays or a Parquet file's data, uncompressed
MAX_COLUMNS = 10_000
MAX_WINDOW = 1000  # steps per forecasting or corpus window

LAYOUTS = ("series", "wide", "long", "corpus", "arrays")
LABEL_KINDS = ("classification", "regression")
MISSING = ("error", "drop", "ffill", "interpolate")
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}
PAD, UNK = "<pad>", "<unk>"
WORD = re.compile(r"[\w']+")  # the same words lib.probes.tokenize finds, so prompts match training text

# column names that suggest a role, for guess_spec only
_TIME_NAMES = {"time", "date", "datetime", "timestamp", "ds", "t", "step", "year", "month", "day", "hour",
               "minute", "period", "order", "index", "position", "pos", "frame", "tick"}
_ID_NAMES = {"id", "sequence", "seq", "series", "sequence_id", "series_id", "seq_id", "sample", "sample_id",
             "subject", "unit", "unit_id", "group", "case", "case_id", "track", "track_id"}
_LABEL_NAMES = {"label", "labels", "class", "target", "y", "category", "outcome", "activity", "kind", "type"}
_SPLIT_COLUMNS = {"split", "fold", "subset", "set", "partition"}


# ---------------------------------------------------------------- sources

@dataclass(frozen=True, eq=False)
class CorpusText:
    """A plain-text corpus for next-word prediction."""

    text: str


@dataclass(frozen=True, eq=False)
class NpzArrays:
    """Labelled sequences from a .npz: x (N, T) or (N, T, F) numbers, y (N,) labels, split (N,) or None."""

    x: np.ndarray
    y: np.ndarray
    split: np.ndarray | None = None


Source = pd.DataFrame | CorpusText | NpzArrays


def content_sha256(data: bytes) -> str:
    """The hex SHA-256 of an uploaded file's bytes: with an UploadSpec, it names a dataset exactly."""
    return hashlib.sha256(data).hexdigest()


def _pyarrow_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def load_table(data: bytes, filename: str, max_bytes: int = MAX_UPLOAD_BYTES) -> Source:
    """The contents of an uploaded file, by its extension.

    .csv/.tsv (any delimiter csv.Sniffer finds; UTF-8 with or without BOM) and .parquet give a DataFrame;
    .npz (arrays X and y, optionally split; never unpickled) gives NpzArrays; .txt gives CorpusText.
    """
    name = PurePath(filename).name or "the file"
    if len(data) > max_bytes:
        raise ConfigError(f"{name!r} is {len(data) / 1024 ** 2:.1f} MiB; the limit is {max_bytes / 1024 ** 2:g} "
                          f"MiB. Upload fewer rows or columns, or a compressed format such as Parquet.")
    ext = PurePath(name).suffix.lower()
    if ext in (".csv", ".tsv"):
        return _read_csv(data, name, "\t" if ext == ".tsv" else ",")
    if ext in (".parquet", ".pq"):
        return _read_parquet(data, name)
    if ext == ".npz":
        return _read_npz(data, name)
    if ext == ".txt":
        return CorpusText(_decode(data, name, "upload a text with the words to learn from"))
    hint = " In Excel use File > Save As > CSV UTF-8." if ext in (".xls", ".xlsx", ".xlsm", ".ods") else ""
    raise ConfigError(f"{name!r} has an unsupported type ({ext or 'no extension'}); upload .csv, .tsv, "
                      f".parquet, .npz (arrays X and y) or .txt (a text corpus).{hint}")


def _sniff_binary(data: bytes, name: str) -> None:
    """Refuse files that are not text, naming what they look like."""
    if data.startswith(b"PK\x03\x04"):
        what = "an Excel workbook" if b"xl/" in data[:4096] or b"[Content_Types]" in data[:4096] else "a zip archive"
        raise ConfigError(f"{name!r} is {what}, not CSV text; save it as CSV (in Excel: File > Save As > "
                          f"CSV UTF-8) and upload that.")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ConfigError(f"{name!r} is an old-style Excel (.xls) workbook, not CSV text; save it as CSV (in "
                          f"Excel: File > Save As > CSV UTF-8) and upload that.")
    if data.startswith(b"PAR1"):
        raise ConfigError(f"{name!r} is a Parquet file; rename it to end in .parquet.")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(f"{name!r} is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8) and upload it "
                          f"again.")
    if b"\x00" in data[:65536]:
        raise ConfigError(f"{name!r} holds binary data (NUL bytes), not text; export it as CSV (UTF-8) and "
                          f"upload that.")


def _decode(data: bytes, name: str, wanted: str = "upload a file with a header row and data rows") -> str:
    _sniff_binary(data, name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise ConfigError(f"{name!r} is not UTF-8 text: byte 0x{data[err.start]:02X} on line {line}, column "
                          f"{column} is not valid UTF-8 (the file may be Latin-1 or Windows-1252); save it as "
                          f"UTF-8 and upload it again.") from None
    if not text.strip():
        raise ConfigError(f"{name!r} is empty; {wanted}.")
    return text


def _sniff_delimiter(text: str, default: str) -> str:
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[:sample.rfind("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:  # irregular rows or one column: the header's most frequent candidate, else by extension
        header = sample.lstrip("\ufeff").split("\n", 1)[0]
        best = max(DELIMITERS, key=header.count)
        return best if header.count(best) else default


def _read_csv(data: bytes, name: str, default_sep: str) -> pd.DataFrame:
    text = _decode(data, name)
    sep = _sniff_delimiter(text, default_sep)
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=sep, skipinitialspace=True)
    header = next(reader)
    _check_header([h.strip() for h in header], name)
    for row in reader:  # pandas fills short rows with NaN and mis-reads long first rows; refuse both
        if row and len(row) != len(header):
            shown = sep.replace("\t", "tab")
            raise ConfigError(f"line {reader.line_num} of {name!r} has {len(row)} field(s) but the header has "
                              f"{len(header)} (separator {shown!r}); give every row one value per column, "
                              f"leaving missing values empty.")
    body = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    try:
        df = pd.read_csv(io.BytesIO(body), sep=sep, index_col=False, skipinitialspace=True, low_memory=False,
                         encoding="utf-8")
    except (ValueError, pd.errors.ParserError) as err:
        raise ConfigError(f"could not read {name!r} as CSV: {err}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return _check_rows(df, name)


def _read_parquet(data: bytes, name: str) -> pd.DataFrame:
    if not _pyarrow_available():
        raise ConfigError("Parquet needs pyarrow: pip install pyarrow")
    import pyarrow.parquet as pq  # optional: only Parquet needs it

    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        unpacked = 8 * meta.num_rows * meta.num_columns  # encoded sizes can be far smaller: count 8 bytes a cell
        if unpacked > MAX_UNPACKED_BYTES:
            raise ConfigError(f"{name!r} holds {meta.num_rows} rows x {meta.num_columns} column(s), "
                              f"{unpacked / 1024 ** 2:.0f} MiB as numbers (limit {MAX_UNPACKED_BYTES / 1024 ** 2:.0f} "
                              f"MiB); upload fewer rows or columns.")
        _check_header([str(c) for c in meta.schema.names], name)
        df = pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    except ConfigError:
        raise
    except Exception as err:  # pyarrow raises its own error types for damaged files
        raise ConfigError(f"{name!r} is not a readable Parquet file ({type(err).__name__}); export it again, or "
                          f"upload a CSV.") from None
    names = [str(c) for c in df.columns]
    _check_header(names, name)
    df.columns = names
    return _check_rows(df.reset_index(drop=True), name)


def _check_header(names: list[str], name: str) -> None:
    if len(names) > MAX_COLUMNS:
        raise ConfigError(f"{name!r} has {len(names)} columns (limit {MAX_COLUMNS}); keep fewer columns, or "
                          f"give long sequences one row per step (the long layout).")
    for i, column in enumerate(names):
        if not column:
            raise ConfigError(f"column {i + 1} of {name!r} has no name; give every column a name in the header "
                              f"row.")
        if column in names[:i]:
            raise ConfigError(f"column name {column!r} appears twice in {name!r} (columns "
                              f"{names.index(column) + 1} and {i + 1}); give every column a distinct name.")


def _check_rows(df: pd.DataFrame, name: str) -> pd.DataFrame:
    if len(df) == 0:
        raise ConfigError(f"{name!r} has a header but no data rows; add the data below the header.")
    if len(df) == 1:
        raise ConfigError(f"{name!r} has only one data row; a series or a set of sequences needs many rows.")
    return df


def _read_npz(data: bytes, name: str) -> NpzArrays:
    if not data.startswith(b"PK"):
        what = "a Python pickle, which is never loaded" if data[:1] == b"\x80" else "not a NumPy .npz archive"
        raise ConfigError(f"{name!r} is {what}; save the arrays with numpy.savez({name!r}, X=X, y=y).")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise ConfigError(f"{name!r} unpacks to {unpacked / 1024 ** 2:.0f} MiB (limit "
                              f"{MAX_UNPACKED_BYTES / 1024 ** 2:.0f} MiB); save fewer or smaller arrays.")
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        keys = list(npz.files)
        missing = [k for k in ("X", "y") if k not in keys]
        if missing:
            raise ConfigError(f"{name!r} holds arrays {', '.join(keys) or '(none)'}; it needs X (N sequences, "
                              f"shape (N, T) or (N, T, F)) and y (N labels): save with numpy.savez(path, X=X, "
                              f"y=y).")
        arrays = {}
        for key in ("X", "y", "split"):
            if key in keys:
                try:
                    arrays[key] = npz[key]
                except ValueError as err:
                    if "allow_pickle" not in str(err):
                        raise
                    raise ConfigError(f"array {key} in {name!r} holds Python objects, which are never "
                                      f"unpickled; save numbers (and labels as a string array, e.g. "
                                      f"y.astype(str)).") from None
    except ConfigError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise ConfigError(f"could not read {name!r} as a NumPy .npz archive ({err}); save it with "
                          f"numpy.savez(path, X=X, y=y).") from None
    return NpzArrays(arrays["X"], arrays["y"], arrays.get("split"))


# ---------------------------------------------------------------- the spec

@dataclass(frozen=True)
class UploadSpec(Checked):
    """How to turn one uploaded table, array file or corpus into a dataset; guess_spec proposes one."""

    layout: str  # "series", "wide", "long", "corpus" or "arrays" (a .npz)
    target: str | None = None  # series: the column to forecast; wide and long: the label column
    inputs: tuple[str, ...] = ()  # series: input columns, the target among them; wide: step columns in
    #                               order; long: feature columns
    time: str | None = None  # series: time column, long: step-order column; None: the row order
    sequence: str | None = None  # long: the sequence id column
    split: str | None = None  # column of train/val/test (or train/test) per row; None: seeded or in time
    label_kind: str = "classification"  # wide, long, arrays: or "regression" for a numeric label
    window: int = 24  # series and corpus: steps per input window
    horizon: int = 1  # series: steps from the window's last row to the forecast row
    length: int | None = None  # long: steps per sequence (last ones kept, shorter left-padded); None: longest
    missing: str = "error"  # empty, NaN or infinite cells: "error", "drop", "ffill" or "interpolate"
    vocab_size: int = 2000  # corpus: most frequent training words kept; the rest become <unk>
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0  # the shuffled split of labelled sequences
    standardize: bool = True  # scale inputs (and a regression label) by the training part's mean and std

    def validate(self) -> None:
        for field, value, allowed in (("layout", self.layout, LAYOUTS), ("label_kind", self.label_kind, LABEL_KINDS),
                                      ("missing", self.missing, MISSING)):
            if value not in allowed:
                raise ConfigError(f"{field} must be one of {', '.join(map(repr, allowed))}; got {value!r}.")
        for field, value in (("val_fraction", self.val_fraction), ("test_fraction", self.test_fraction)):
            if not 0.05 <= value <= 0.4:
                raise ConfigError(f"{field} must be between 0.05 and 0.4, got {value:g}.")
        for field, value, lo, hi in (("window", self.window, 1, MAX_WINDOW), ("horizon", self.horizon, 1, MAX_WINDOW),
                                     ("vocab_size", self.vocab_size, 2, 100_000), ("seed", self.seed, 0, 2 ** 32 - 1)):
            if not lo <= value <= hi:
                raise ConfigError(f"{field} must be between {lo} and {hi}, got {value}.")
        if self.length is not None and not 2 <= self.length <= MAX_STEPS:
            raise ConfigError(f"length must be between 2 and {MAX_STEPS} steps (or None for the longest "
                              f"sequence), got {self.length}.")
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


# ---------------------------------------------------------------- guessing the layout

def _is_number(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _split_column(df: pd.DataFrame) -> str | None:
    for c in df.columns:
        if c.lower() in _SPLIT_COLUMNS:
            values = set(df[c].dropna().astype(str).str.strip().str.lower())
            if values and values <= set(SPLIT_NAMES):
                return c
    return None


def _dates(s: pd.Series) -> pd.Series:
    """Text as datetimes, NaT where a cell is not a date; pandas infers the format from the first cell."""
    with warnings.catch_warnings():  # cells in other formats are parsed one by one, with a warning
        warnings.simplefilter("ignore", UserWarning)
        return pd.to_datetime(s, errors="coerce")


def _looks_like_dates(s: pd.Series) -> bool:
    head = s.dropna().head(20)
    return len(head) > 0 and not _is_number(s) and bool(_dates(head).notna().all())


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
        return UploadSpec(layout="arrays", label_kind=_guess_label_kind(pd.Series(np.asarray(source.y))))
    df = source
    split = _split_column(df)
    numeric = [c for c in df.columns if _is_number(df[c]) and c != split]
    if not numeric:
        raise ConfigError(f"the table has no numeric column (columns: {', '.join(df.columns)}); a series or "
                          f"sequence needs numbers. Check the separator and the decimal mark (use '.').")
    others = [c for c in df.columns if c != split]
    times = [c for c in others if c.lower() in _TIME_NAMES or _looks_like_dates(df[c])]
    ids = [c for c in others if c.lower() in _ID_NAMES and c not in times]
    labels = [c for c in others if c.lower() in _LABEL_NAMES and c not in times + ids]
    labels += [c for c in others if c not in times + ids + labels and not _is_number(df[c])
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
    return replace(spec, window=_largest_window(len(df), 1, spec.val_fraction, spec.test_fraction))


def _guess_label_kind(y: pd.Series) -> str:
    """Regression for numbers that are not whole, classification otherwise."""
    if _is_number(y):
        values = y.dropna().to_numpy(dtype=np.float64)
        if np.isfinite(values).all() and not np.all(values == np.round(values)):
            return "regression"
    return "classification"


# ---------------------------------------------------------------- shared checks

class _Rows:
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


def _combine(df: pd.DataFrame, test: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray | None, _Rows]:
    """One frame (training rows, then test rows), each row's file ('train' / 'test') or None, row names."""
    if test is None:
        return df.reset_index(drop=True), None, _Rows()
    missing = [c for c in df.columns if c not in test.columns]
    extra = [c for c in test.columns if c not in df.columns]
    if missing or extra:
        raise ConfigError(f"the test file's columns differ from the training file's: missing "
                          f"{', '.join(missing) or 'none'}; extra {', '.join(extra) or 'none'}. Give both files "
                          f"the same columns.")
    both = pd.concat([df, test[df.columns]], ignore_index=True)
    return both, np.array(["train"] * len(df) + ["test"] * len(test)), _Rows(len(df))


def _check_columns(df: pd.DataFrame, spec: UploadSpec) -> None:
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


def _show(value) -> str:
    """A cell's value for a message: quoted text, or a plain number."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _numbers(df: pd.DataFrame, column: str, where: _Rows) -> np.ndarray:
    """A column as float64, NaN for empty cells and inf kept; ConfigError at the first cell that is text."""
    s = df[column]
    if s.isna().all():
        raise ConfigError(f"column {column!r} has no values; fill it in, or leave it out of the inputs.")
    if _is_number(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_bool_dtype(s):
        raise ConfigError(f"column {column!r} holds true/false values; use 0 and 1 to make it an input.")
    as_numbers = pd.to_numeric(s, errors="coerce")
    bad = (as_numbers.isna() & s.notna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"column {column!r} holds text, not numbers: {where(i)} is {_show(s.iloc[i])}; fix that cell "
                          f"(use '.' as the decimal mark) or leave the column out of the inputs.")
    return as_numbers.to_numpy(dtype=np.float64, na_value=np.nan)


_FILL = {"rows": "'drop' (leave those rows out), 'ffill' (repeat the previous value) or 'interpolate' (linear "
                 "between neighbours)",
         "steps": "'drop' (leave those sequences out), 'ffill' (repeat the previous step) or 'interpolate' "
                  "(linear between steps)",
         "labels": "'drop' (leave those rows out)"}


def _refuse_missing(bad: np.ndarray, names: list[str], where, options: str) -> None:
    """ConfigError at the first bad cell of bad (n, F) in row order, naming its column and the options."""
    if not bad.any():
        return
    i = int(np.flatnonzero(bad.any(axis=1))[0])
    j = int(np.flatnonzero(bad[i])[0])
    raise ConfigError(f"column {names[j]!r} has {int(bad[:, j].sum())} empty, NaN or infinite cell(s), the first at "
                      f"{where(i)}; fix them in the file, or set missing to {_FILL[options]}.")



def _fill_note(values: np.ndarray, missing: str, n_filled: int, verbs: tuple[str, str], gap) -> str:
    """What a forward fill or interpolation did, or a ConfigError where it left a gap at the start (gap() names it)."""
    if np.isnan(values).any():
        raise ConfigError(f"{gap()}, so there is no earlier value to repeat; set missing to 'drop' or 'interpolate'.")
    return f" {n_filled} empty, NaN or infinite input value(s) were {verbs[0] if missing == 'ffill' else verbs[1]}."

def _label_cells(df: pd.DataFrame, column: str) -> np.ndarray:
    """True where a label cell is empty, NaN or infinite."""
    s = df[column]
    if _is_number(s):
        return ~np.isfinite(s.to_numpy(dtype=np.float64, na_value=np.nan))
    return s.isna().to_numpy()


def _labels(s: pd.Series) -> np.ndarray:
    """Label cells as float64 (numbers) or str (anything else)."""
    if _is_number(s):
        return s.to_numpy(dtype=np.float64)
    return s.astype(str).to_numpy(dtype=str)


def _check_labels(y: np.ndarray, column: str, spec: UploadSpec, where) -> None:
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
    if len(classes) < 2:
        shown = f"{classes[0]:g}" if numeric else str(classes[0])
        raise ConfigError(f"label column {column!r} has only one class ({shown!r}); a classifier needs at least "
                          f"two. Choose another label column.")
    if len(classes) > len(y) // 2:
        raise ConfigError(f"label column {column!r} has {len(classes)} different values for {len(y)} sequences, too "
                          f"few examples per class to learn from; choose another label column, or set label_kind "
                          f"to 'regression' if it is a number to predict.")


def _check_scale(values: np.ndarray, names: list[str], standardize: bool, where) -> None:
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


def _row_split(df: pd.DataFrame, spec: UploadSpec, files: np.ndarray | None, where) -> np.ndarray | None:
    """Per-row 'train' / 'val' / 'test' from the split column or the two files; None without either."""
    if files is not None:
        if spec.split is not None:
            raise ConfigError(f"both a test file and a split column ({spec.split!r}) were given; use one: set "
                              f"split to None, or upload one file.")
        return files
    if spec.split is None:
        return None
    return _split_values(df[spec.split], spec.split, where)


def _split_values(values: pd.Series, column: str, where) -> np.ndarray:
    text = values.astype("string").str.strip().str.lower()
    empty = text.isna().to_numpy()
    if empty.any():
        raise ConfigError(f"split column {column!r} is empty at {where(np.flatnonzero(empty)[0])}; give every row "
                          f"train, val or test.")
    mapped = text.map(SPLIT_NAMES)
    bad = mapped.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"split column {column!r} holds {_show(values.iloc[i])} at {where(i)}; use train, val (or "
                          f"validation) and test.")
    return mapped.to_numpy(dtype=str)


def _carve_val(split: np.ndarray, spec: UploadSpec, in_time: bool) -> tuple[np.ndarray, str]:
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


# ---------------------------------------------------------------- building

def build_dataset(source: Source, spec: UploadSpec, test: Source | None = None,
                  name: str = "my data") -> SequenceDataset:
    """The dataset `spec` describes, from a loaded file (and a separate test file, kept as the test split).

    series: forecast `target` `horizon` rows past windows of all `inputs`, split in time. wide / long /
    arrays: one label per sequence, classification or (label_kind "regression") sequence-to-value.
    corpus: the next word at every position of word windows, split in text order.
    """
    spec.validate()
    wanted = {"corpus": CorpusText, "arrays": NpzArrays}.get(spec.layout, pd.DataFrame)
    for what, s in (("the file", source), ("the test file", test)):
        if s is not None and not isinstance(s, wanted):
            raise ConfigError(f"the {spec.layout} layout needs {_KIND[wanted]}, but {what} is {_KIND[type(s)]}; "
                              f"choose the layout that fits the file.")
    build = {"series": _build_series, "wide": _build_wide, "long": _build_long, "corpus": _build_corpus,
             "arrays": _build_arrays}[spec.layout]
    return build(source, spec, test, name)


_KIND = {pd.DataFrame: "a table", CorpusText: "a .txt corpus", NpzArrays: "a .npz of arrays"}


def _fill_steps(x: np.ndarray, how: str) -> np.ndarray:
    """NaN in x (N, T, F) filled along the steps of each sequence: 'ffill' or 'interpolate' (linear)."""
    n, t, f = x.shape
    frame = pd.DataFrame(x.transpose(0, 2, 1).reshape(n * f, t))  # one row per (sequence, feature)
    frame = frame.ffill(axis=1) if how == "ffill" else frame.interpolate(axis=1, limit_direction="both")
    return frame.to_numpy().reshape(n, f, t).transpose(0, 2, 1)


def _fill_groups(values: np.ndarray, groups: np.ndarray, how: str) -> np.ndarray:
    """NaN in values (n, F), rows sorted by group then step, filled within each group."""
    if how == "ffill":
        return pd.DataFrame(values).groupby(groups).ffill().to_numpy(dtype=np.float64)
    out = values.copy()
    index = np.arange(len(values), dtype=np.float64)
    for j in range(values.shape[1]):  # linear in row position, flat beyond a group's first/last value
        known = pd.Series(np.where(np.isnan(values[:, j]), np.nan, index))
        prev = known.groupby(groups).ffill().to_numpy()
        nxt = known.groupby(groups).bfill().to_numpy()
        lo, hi = np.where(np.isnan(prev), nxt, prev), np.where(np.isnan(nxt), prev, nxt)
        ok = ~np.isnan(lo)
        a, b = lo[ok].astype(np.int64), hi[ok].astype(np.int64)
        w = np.divide(index[ok] - a, b - a, out=np.zeros(len(a)), where=b != a)
        out[ok, j] = values[a, j] * (1 - w) + values[b, j] * w
    return out


def _assign_split(n: int, given: np.ndarray | None, spec: UploadSpec) -> tuple[np.ndarray, str]:
    """Each sequence's part: the given split (val carved from train when missing) or a seeded shuffle."""
    if given is not None:
        return _carve_val(given, spec, in_time=False)
    split = np.empty(n, dtype="<U5")
    for part, index in zip(("train", "val", "test"), split_indices(n, spec.val_fraction, spec.test_fraction,
                                                                   spec.seed), strict=True):
        split[index] = part
    return split, (f"a seeded shuffle (seed {spec.seed}): {1 - spec.val_fraction - spec.test_fraction:.0%} train, "
                   f"{spec.val_fraction:.0%} val, {spec.test_fraction:.0%} test")


def _labelled(x: np.ndarray, steps: np.ndarray, y: np.ndarray, column: str, where, split: np.ndarray | None,
              spec: UploadSpec, name: str, what: str, notes: str) -> SequenceDataset:
    """x (N, T, F) finite, its last steps[i] steps real and the rest zero padding; y (N,) present labels."""
    n, t, f = x.shape
    _check_labels(y, column, spec, where)
    split, how = _assign_split(n, split, spec)
    real = np.arange(t)[None, :] >= (t - steps)[:, None]  # (N, T)
    scaled = ""
    if spec.standardize:  # on the training sequences' real steps; padding stays 0
        ref = x[(split == "train")[:, None] & real]  # (steps, F)
        if len(ref):
            mean, std = ref.mean(axis=0), ref.std(axis=0)
            x = np.where(real[:, :, None], (x - mean) / np.where(std > 0, std, 1.0), 0.0)
        scaled = " Inputs standardised on the training part" + (" (padding stays 0)." if (~real).any() else ".")
    regression = spec.label_kind == "regression"
    if regression:
        y = y.astype(np.float64)
        if spec.standardize:
            train_y = y[split == "train"]
            mean, std = train_y.mean(), train_y.std()
            if not std > 0:
                raise ConfigError(f"label column {column!r} is constant in the training part (every value is "
                                  f"{mean:g}); there is nothing to learn.")
            y = (y - mean) / std
            scaled += f" Label standardised with the training part's mean {mean:g} and std {std:g}."
    ds = from_arrays(x, y, name=name, val_fraction=spec.val_fraction, test_fraction=spec.test_fraction,
                     seed=spec.seed, standardize=False, regression=regression, split=split)
    task = f"{ds.n_outputs} classes" if ds.kind == CLASSIFICATION else "one number per sequence (regression)"
    return replace(ds, name=name, description=f"{what}: {n} sequences of {t} steps x {f} feature(s), {task}; "
                                              f"split by {how}.{scaled}{notes}")


def _sequences(x: np.ndarray, bad: np.ndarray, names: list[str], y: np.ndarray, no_label: np.ndarray,
               label: str, split: np.ndarray | None, where, spec: UploadSpec, name: str,
               what: str) -> SequenceDataset:
    """Equal-length sequences x (N, T, F), NaN where bad (N, K) names a cell by names[k], to a dataset."""
    if spec.missing == "error":
        _refuse_missing(bad, names, where, "steps")
    if spec.missing != "drop":
        _refuse_missing(no_label[:, None], [label], where, "labels")
    keep, notes = ~no_label, ""
    if bad.any() and spec.missing == "drop":
        keep &= ~bad.any(axis=1)
        notes = f" {int(bad.any(axis=1).sum())} sequence(s) with empty, NaN or infinite steps were dropped."
    elif bad.any():
        n_bad = int(np.isnan(x).sum())
        x = _fill_steps(x, spec.missing)
        if np.isnan(x).any():
            i = int(np.flatnonzero(np.isnan(x).any(axis=(1, 2)))[0])
            raise ConfigError(f"{where(i)} starts with empty steps, so there is no earlier value to repeat; set "
                              f"missing to 'drop' or 'interpolate'.")
        verb = "repeated from the previous step" if spec.missing == "ffill" else "interpolated along the steps"
        notes = f" {n_bad} empty, NaN or infinite step value(s) were {verb}."
    if no_label.any():
        notes += f" {int(no_label.sum())} sequence(s) without a label were dropped."
    rows = np.flatnonzero(keep)
    x = x[keep]
    if len(names) == x.shape[2]:  # names are features
        _check_scale(x.reshape(-1, x.shape[2]), names, spec.standardize, lambda i: where(rows[i // x.shape[1]]))
    else:  # names are the steps of one feature
        _check_scale(x[:, :, 0], names, spec.standardize, lambda i: where(rows[i]))
    return _labelled(x, np.full(len(x), x.shape[1]), y[keep], label, lambda k: where(rows[k]),
                     split[keep] if split is not None else None, spec, name, what, notes)


def _build_wide(df: pd.DataFrame, spec: UploadSpec, test: pd.DataFrame | None, name: str) -> SequenceDataset:
    df, files, where = _combine(df, test)
    _check_columns(df, spec)
    names = list(spec.inputs)
    x = np.stack([_numbers(df, c, where) for c in names], axis=1)[:, :, None]  # (N, T, 1)
    x = np.where(np.isfinite(x), x, np.nan)
    return _sequences(x, np.isnan(x[:, :, 0]), names, _labels(df[spec.target]), _label_cells(df, spec.target),
                      spec.target, _row_split(df, spec, files, where), where, spec, name,
                      f"Labelled sequences from {len(names)} step columns, label {spec.target!r}")


def _build_arrays(source: NpzArrays, spec: UploadSpec, test: NpzArrays | None, name: str) -> SequenceDataset:
    x, y = np.asarray(source.x), np.asarray(source.y)
    split = None if source.split is None else np.asarray(source.split)
    where = _Rows(noun="sequence", first=0)
    if test is not None:
        if split is not None or test.split is not None:
            raise ConfigError("both a test file and a split array were given; use one.")
        tx = np.asarray(test.x)
        if tx.shape[1:] != x.shape[1:]:
            raise ConfigError(f"the test file's X has shape {tx.shape}, the training file's {x.shape}; give both "
                              f"the same steps and features.")
        split, where = np.array(["train"] * len(x) + ["test"] * len(tx)), _Rows(len(x), "sequence", 0)
        x, y = np.concatenate([x, tx]), np.concatenate([y, np.asarray(test.y)])
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"X must hold numbers, got an array of dtype {x.dtype}; save X as floats.")
    if x.ndim not in (2, 3) or 0 in x.shape:
        raise ConfigError(f"X must have shape (N, T) or (N, T, F) with at least one step and feature; got shape "
                          f"{x.shape}.")
    if y.shape != (len(x),) or y.dtype.kind not in "biufU":
        raise ConfigError(f"y must hold one number or string label per sequence, shape ({len(x)},); got shape "
                          f"{y.shape} of dtype {y.dtype}.")
    if split is not None and test is None:
        if split.shape != (len(x),):
            raise ConfigError(f"split must hold train, val or test per sequence, shape ({len(x)},); got shape "
                              f"{split.shape}.")
        split = _split_values(pd.Series(split.astype(str)), "split", where)
    x = x.astype(np.float64).reshape(len(x), x.shape[1], -1)  # (N, T, F)
    x = np.where(np.isfinite(x), x, np.nan)
    labels = y.astype(np.float64) if y.dtype.kind in "biuf" else y.astype(str)
    no_label = ~np.isfinite(labels) if labels.dtype.kind == "f" else np.zeros(len(y), dtype=bool)
    return _sequences(x, np.isnan(x).any(axis=1), [f"X[..., {j}]" for j in range(x.shape[2])], labels, no_label,
                      "y", split, where, spec, name, "Labelled sequences from X and y")


def _order_values(df: pd.DataFrame, column: str, where) -> np.ndarray:
    """A time or step column as sortable float64 (numbers, or dates as nanoseconds); refuses bad cells."""
    s = df[column]
    empty = s.isna().to_numpy()
    if empty.any():
        raise ConfigError(f"time column {column!r} is empty at {where(np.flatnonzero(empty)[0])}; give every row "
                          f"its time or step.")
    if _is_number(s):
        values = s.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
    else:
        parsed = _dates(s)
        bad = parsed.isna().to_numpy()
        values = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"time column {column!r} holds {_show(s.iloc[i])} at {where(i)}, which is neither a "
                          f"number nor a date; fix it, or choose another time column (or none, to use the row "
                          f"order).")
    return values


def _build_series(df: pd.DataFrame, spec: UploadSpec, test: pd.DataFrame | None, name: str) -> SequenceDataset:
    df, files, where = _combine(df, test)
    _check_columns(df, spec)
    split = _row_split(df, spec, files, where)
    order = "in row order"
    if spec.time is not None:
        t, shown = _order_values(df, spec.time, where), df[spec.time]
        step = np.diff(t)
        if (step <= 0).any():
            i = int(np.flatnonzero(step <= 0)[0]) + 1
            if step[i - 1] == 0:
                raise ConfigError(f"time column {spec.time!r} repeats {_show(shown.iloc[i])} at {where(i)} and the row "
                                  f"before; give each row its own time, or aggregate rows per time first.")
            if files is not None and i == where.n_train_file:
                raise ConfigError(f"the test file starts at {_show(shown.iloc[i])}, before the training file ends "
                                  f"({_show(shown.iloc[i - 1])}); the test rows must come after the training rows.")
            raise ConfigError(f"time column {spec.time!r} is not in order: {where(i)} ({_show(shown.iloc[i])}) "
                              f"comes after {_show(shown.iloc[i - 1])}; sort the rows by {spec.time!r} first.")
        order = f"ordered by {spec.time!r}"
    names = list(spec.inputs)
    values = np.stack([_numbers(df, c, where) for c in names], axis=1)  # (T, F)
    values = np.where(np.isfinite(values), values, np.nan)
    bad = np.isnan(values)
    keep, notes = np.ones(len(values), dtype=bool), ""
    if spec.missing == "error":
        _refuse_missing(bad, names, where, "rows")
    elif bad.any() and spec.missing == "drop":
        keep = ~bad.any(axis=1)
        notes = f" {int((~keep).sum())} row(s) with empty, NaN or infinite inputs were dropped."
    elif bad.any():
        values = pd.DataFrame(values)
        values = (values.ffill() if spec.missing == "ffill" else values.interpolate(limit_direction="both")).to_numpy()
        notes = _fill_note(values, spec.missing, int(bad.sum()), ("repeated from the previous row", "interpolated"),
                           lambda: f"column {names[int(np.flatnonzero(np.isnan(values).any(axis=0))[0])]!r} "
                                   f"starts with empty cells ({where(0)})")
    rows = np.flatnonzero(keep)
    values = values[keep]
    _check_scale(values, names, spec.standardize, lambda i: where(rows[i]))
    sizes, how = None, (f"in time: {1 - spec.val_fraction - spec.test_fraction:.0%} train, then "
                        f"{spec.val_fraction:.0%} val, then {spec.test_fraction:.0%} test")
    if split is not None:
        split, how = _carve_val(split[keep], spec, in_time=True)
        sizes = _time_blocks(split, lambda i: where(rows[i]))
    target = names.index(spec.target)
    if spec.standardize:
        n_train = sizes[0] if sizes else segment_sizes(len(values), spec.val_fraction, spec.test_fraction)[0]
        if np.ptp(values[:n_train, target]) == 0:
            raise ConfigError(f"the target {spec.target!r} is constant in the training part (every value is "
                              f"{values[0, target]:g}); there is nothing to learn.")
    ds = from_series(values, spec.window, spec.horizon, target=target, name=name, val_fraction=spec.val_fraction,
                     test_fraction=spec.test_fraction, standardize=spec.standardize, sizes=sizes)
    scaled = " Each column standardised with the training part's mean and std." if spec.standardize else ""
    return replace(ds, name=name, description=(
        f"Forecast {spec.target!r} {spec.horizon} row(s) past windows of {spec.window} rows of "
        f"{', '.join(map(repr, names))}; {len(values)} rows {order}, split {how}.{scaled}{notes}"))


def _time_blocks(split: np.ndarray, where) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) of a split that runs train, then val, then test, in time."""
    rank = np.select([split == "train", split == "val"], [0, 1], 2)
    back = np.flatnonzero(np.diff(rank) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise ConfigError(f"the split of a series must run train, then val, then test in time; {where(i)} is "
                          f"{split[i]} after {split[i - 1]} rows. Fix the split, or leave it out to split in time.")
    return tuple(int((split == s).sum()) for s in ("train", "val", "test"))


def _build_long(df: pd.DataFrame, spec: UploadSpec, test: pd.DataFrame | None, name: str) -> SequenceDataset:
    df, files, where = _combine(df, test)
    _check_columns(df, spec)
    split = _row_split(df, spec, files, where)
    ids = df[spec.sequence]
    if ids.isna().any():
        raise ConfigError(f"sequence column {spec.sequence!r} is empty at {where(np.flatnonzero(ids.isna())[0])}; "
                          f"give every row its sequence id.")
    names = list(spec.inputs)
    values = np.stack([_numbers(df, c, where) for c in names], axis=1)  # (rows, F)
    values = np.where(np.isfinite(values), values, np.nan)
    bad, no_label = np.isnan(values), _label_cells(df, spec.target)
    if spec.missing == "error":
        _refuse_missing(bad, names, where, "rows")
    if spec.missing != "drop":
        _refuse_missing(no_label[:, None], [spec.target], where, "labels")
    keep, notes = ~no_label, ""
    if spec.missing == "drop":
        keep &= ~bad.any(axis=1)
        if (~keep).any():
            notes = f" {int((~keep).sum())} row(s) with empty, NaN or infinite cells were dropped."
    key = ids.astype(str) if files is None else files + "\x00" + ids.astype(str)  # one id in two files: two sequences
    code = pd.factorize(key.to_numpy(dtype=str), sort=False)[0]  # sequences in order of first appearance
    step = _order_values(df, spec.time, where) if spec.time else np.arange(len(df), dtype=np.float64)
    rows = np.flatnonzero(keep)
    rows = rows[np.lexsort((step[rows], code[rows]))]  # by sequence, then step
    code, step, values = code[rows], step[rows], values[rows]
    start = np.r_[True, np.diff(code) != 0]  # each sequence's first row
    repeat = ~start[1:] & (np.diff(step) == 0)
    if repeat.any():
        a, b = sorted(rows[int(np.flatnonzero(repeat)[0]):][:2])
        raise ConfigError(f"sequence {_show(ids.iloc[a])} repeats step {_show(df[spec.time].iloc[a])} ({where(a)} and "
                          f"{where(b)}); give each step of a sequence its own {spec.time!r}.")
    first = rows[np.maximum.accumulate(np.where(start, np.arange(len(rows)), 0))]  # the sequence's first row
    for column, cells in ((spec.target, df[spec.target].astype(str).to_numpy()),
                          (spec.split, split)):
        if cells is None:
            continue
        differs = cells[rows] != cells[first]
        if differs.any():
            k = int(np.flatnonzero(differs)[0])
            what = f"label column {column!r}" if column == spec.target else "the split"
            raise ConfigError(f"{what} changes within sequence {_show(ids.iloc[rows[k]])}: {_show(cells[first[k]])} at "
                              f"{where(first[k])}, {_show(cells[rows[k]])} at {where(rows[k])}; give each sequence one "
                              f"{'label' if column == spec.target else 'split'}.")
    if bad[rows].any():  # fill within each sequence, in step order
        values = _fill_groups(values, code, spec.missing)
        def gap() -> str:
            r = rows[int(np.flatnonzero(np.isnan(values).any(axis=1))[0])]
            return f"sequence {_show(ids.iloc[r])} starts with empty cells ({where(r)})"
        notes = _fill_note(values, spec.missing, int(bad[rows].sum()),
                           ("repeated from the previous step", "interpolated within sequences"), gap)
    seq_rows = rows[start]  # first row of each sequence, in sequence order
    lengths = np.diff(np.r_[np.flatnonzero(start), len(rows)])
    if (lengths == 1).any():
        r = seq_rows[int(np.flatnonzero(lengths == 1)[0])]
        raise ConfigError(f"sequence {_show(ids.iloc[r])} has only 1 step ({where(r)}); every sequence needs at "
                          f"least 2 steps. Drop it from the file, or check that {spec.sequence!r} is the sequence "
                          f"column.")
    if spec.length is None and lengths.max() > MAX_STEPS:
        r = seq_rows[int(np.argmax(lengths))]
        raise ConfigError(f"sequence {_show(ids.iloc[r])} has {lengths.max()} steps (limit {MAX_STEPS}); set length to "
                          f"keep the last steps of each sequence.")
    length = spec.length or int(lengths.max())
    seq = np.cumsum(start) - 1  # each kept row's sequence index
    from_end = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(rows))  # 1 at each sequence's last step
    inside = from_end <= length
    _check_scale(values[inside], names, spec.standardize, lambda i: where(rows[np.flatnonzero(inside)[i]]))
    x = np.zeros((len(lengths), length, len(names)))
    x[seq[inside], length - from_end[inside]] = values[inside]  # left-padded with zeros, or cut to the last steps
    n_short, n_cut = int((lengths < length).sum()), int((lengths > length).sum())
    notes += (f" Rule: sequences shorter than {length} steps are left-padded with zeros ({n_short} of {len(lengths)}"
              f"), longer ones keep their last {length} steps ({n_cut} of {len(lengths)}).")
    order = f"steps ordered by {spec.time!r}" if spec.time else "steps in row order"
    return _labelled(x, np.minimum(lengths, length), _labels(df[spec.target])[seq_rows], spec.target,
                     lambda k: where(seq_rows[k]), split[seq_rows] if split is not None else None, spec, name,
                     f"Labelled sequences by {spec.sequence!r} ({order}), label {spec.target!r}", notes)


def _min_words(window: int, val_fraction: float, test_fraction: float) -> int:
    """The fewest words whose train / val / test parts hold MIN_TRAIN / MIN_EVAL / MIN_EVAL windows."""
    n = (MIN_TRAIN + 2 * MIN_EVAL) * window + 3
    while True:
        n_train, n_val, n_test = segment_sizes(n, val_fraction, test_fraction)
        if (n_train - 1) // window >= MIN_TRAIN and min(n_val - 1, n_test - 1) // window >= MIN_EVAL:
            return n
        n += 1


def _build_corpus(source: CorpusText, spec: UploadSpec, test: CorpusText | None, name: str) -> SequenceDataset:
    w = spec.window
    words = WORD.findall(source.text.lower())
    if test is None:
        need = _min_words(w, spec.val_fraction, spec.test_fraction)
        if len(words) < need:
            raise ConfigError(f"the corpus has {len(words)} words; next-word windows of {w} words with val_fraction "
                              f"{spec.val_fraction:g} and test_fraction {spec.test_fraction:g} need at least {need} "
                              f"words ({MIN_TRAIN} windows to train on, {MIN_EVAL} each to validate and test); use a "
                              f"longer text or a smaller window.")
        sizes = segment_sizes(len(words), spec.val_fraction, spec.test_fraction)
        bounds = np.cumsum((0, *sizes))
        parts = [words[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        how = (f"in text order: {1 - spec.val_fraction - spec.test_fraction:.0%} train, {spec.val_fraction:.0%} "
               f"val, {spec.test_fraction:.0%} test")
    else:
        n_val = round(len(words) * spec.val_fraction)
        parts = [words[:len(words) - n_val], words[len(words) - n_val:], WORD.findall(test.text.lower())]
        how = f"the test file; validation the last {spec.val_fraction:.0%} of the training text"
        for part, text, least in zip(("training", "validation", "test"), parts, (MIN_TRAIN, MIN_EVAL, MIN_EVAL),
                                     strict=True):
            if (len(text) - 1) // w < least:
                raise ConfigError(f"the {part} text has {len(text)} words, too few for {least} next-word windows of "
                                  f"{w} words; use longer texts or a smaller window.")
    counts = Counter(parts[0])
    kept = sorted(counts, key=lambda word: (-counts[word], word))[:spec.vocab_size]
    vocab = (PAD, UNK, *kept)
    ids = {word: i for i, word in enumerate(vocab)}
    splits, n_unk, n_words = [], 0, 0
    for part in parts:
        tokens = np.array([ids.get(word, 1) for word in part], dtype=np.int64)
        n_unk, n_words = n_unk + int((tokens == 1).sum()), n_words + len(tokens)
        n = (len(tokens) - 1) // w
        x = tokens[:n * w].reshape(n, w)  # (N, window) word ids
        y = tokens[1:n * w + 1].reshape(n, w)  # (N, window) the next word at every position
        splits.append(Split(torch.from_numpy(x), torch.from_numpy(y)))
    return SequenceDataset(
        name=name,
        description=(f"Next word at every position of {w}-word windows from a corpus of {n_words} words, split "
                     f"{how}. Vocabulary: the {len(kept)} most frequent training words (of {len(counts)} "
                     f"distinct); {n_unk} word(s) ({n_unk / n_words:.1%}) outside it read as {UNK}."),
        kind=CLASSIFICATION,
        train=splits[0], val=splits[1], test=splits[2],
        seq_len=w,
        n_features=len(vocab),
        n_outputs=len(vocab),
        per_step=True,
        vocab=vocab,
        class_names=vocab,
        chance=majority_chance(splits[2].y, len(vocab)),
        distance_name="words",
    )


__all__ = ["LAYOUTS", "MAX_UPLOAD_BYTES", "CorpusText", "NpzArrays", "UploadSpec", "build_dataset", "content_sha256",
           "guess_spec", "load_table"]
