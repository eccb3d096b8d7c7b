"""Stage 1 of user data: an uploaded file's bytes -> a table, a corpus or arrays (`load_table`).

Reads CSV/TSV (sniffing the delimiter), Parquet, NumPy .npz (never unpickled) and .txt; refuses files over the
size limits, files that are not what their name says (Excel, UTF-16, binary) and malformed headers or rows, each
with a ConfigError that says what to change. Nothing about the file's meaning is decided here (see spec.py).
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import importlib.util
import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import pandas as pd

from lib.errors import ConfigError, LookbackError

DELIMITERS = ",;\t|"
MAX_UPLOAD_BYTES = 64 * 1024 ** 2  # refuse bigger files before parsing them
MAX_UNPACKED_BYTES = 512 * 1024 ** 2  # a .npz's arrays or a Parquet file's data, uncompressed
MAX_COLUMNS = 10_000


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
    except LookbackError:
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
    except LookbackError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise ConfigError(f"could not read {name!r} as a NumPy .npz archive ({err}); save it with "
                          f"numpy.savez(path, X=X, y=y).") from None
    return NpzArrays(arrays["X"], arrays["y"], arrays.get("split"))


__all__ = ["MAX_UPLOAD_BYTES", "CorpusText", "NpzArrays", "Source", "content_sha256", "load_table"]
