"""Stage 1 of user data: an uploaded file's bytes -> a table, a corpus or arrays (`load_table`).

Reads CSV/TSV (sniffing the delimiter), Parquet, NumPy .npz (never unpickled) and .txt; refuses files over the
size limits, files that are not what their name says (Excel, UTF-16, binary), malformed headers, rows or cells
(too long, decimal commas, nested Parquet values) and damaged archives, each with a ConfigError that says what to
change. `read_npz` is the one reader of .npz archives, also of prepared data and bundles (prepared.py): it checks
each array's .npy header against the size limit before anything is allocated. Nothing about the file's meaning
is decided here (see spec.py).
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import importlib.util
import io
import math
import re
import tokenize
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

import numpy as np
import pandas as pd

from lib.errors import ConfigError, LookbackError

DELIMITERS = ",;\t|"
MAX_UPLOAD_BYTES = 64 * 1024 ** 2  # refuse bigger files before parsing them
MAX_UNPACKED_BYTES = 512 * 1024 ** 2  # a .npz's arrays or a Parquet file's data, uncompressed
MAX_COLUMNS = 10_000
MAX_CELL_CHARS = 131_072  # the csv module's field limit: longer cells (or an unclosed quote) are refused
MAX_NAME_CHARS = 1000  # characters per column name
INDEX = "index"  # the name given to a blank first header cell (pandas' and R's export of a row index)
_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+(?:[eE][-+]?\d+)?")


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
    at = data.find(b"\x00")
    if at >= 0:
        line, column = data.count(b"\n", 0, at) + 1, at - (data.rfind(b"\n", 0, at) + 1) + 1
        raise ConfigError(f"{name!r} holds binary data, not text: a NUL byte on line {line}, column {column}; "
                          f"remove the NUL bytes, or save the file again as UTF-8 text (in Excel: CSV UTF-8).")


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
    header = _check_fields(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=sep,
                                      skipinitialspace=True), name, sep)
    body = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    try:
        df = pd.read_csv(io.BytesIO(body), sep=sep, index_col=False, skipinitialspace=True, low_memory=False,
                         encoding="utf-8")
    except (ValueError, pd.errors.ParserError) as err:
        raise ConfigError(f"could not read {name!r} as CSV: {err}") from None
    df.columns = [header[0] if i == 0 and c == "Unnamed: 0" else str(c).strip() for i, c in enumerate(df.columns)]
    return _check_decimal_commas(_check_rows(df, name), name)


def _check_fields(reader, name: str, sep: str) -> list[str]:
    """The header row's names, a blank first one named INDEX; refuses long cells and rows of another width."""
    header = None
    try:
        header = [h.strip() for h in next(reader)]
        if len(header) > 1 and not header[0]:
            header[0] = INDEX if INDEX not in header else "Unnamed: 0"  # pandas' name for it
        _check_header(header, name)
        for row in reader:  # pandas fills short rows with NaN and mis-reads long first rows; refuse both
            if row and len(row) != len(header):
                raise ConfigError(f"line {reader.line_num} of {name!r} has {len(row)} field(s) but the header has "
                                  f"{len(header)} (separator {sep.replace(chr(9), 'tab')!r}); give every row one "
                                  f"value per column, leaving missing values empty.")
    except csv.Error as err:
        if "field limit" not in str(err):
            raise ConfigError(f"could not read line {reader.line_num} of {name!r} as CSV ({err}).") from None
        if header is None:
            raise ConfigError(f"the header row of {name!r} has a column name of more than {MAX_CELL_CHARS} characters "
                              f"(limit {MAX_NAME_CHARS}); shorten it, or close the quote (\") that opens it.") from None
        raise ConfigError(f"line {reader.line_num} of {name!r} has a cell of more than {MAX_CELL_CHARS} characters "
                          f"(the limit); shorten it, or close the quote (\") that opens it.") from None
    return header


def _check_decimal_commas(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Refuse a text column whose every cell is a number written with a comma (1,5): a decimal comma."""
    for column in df.columns:
        if df[column].dtype == object or pd.api.types.is_string_dtype(df[column].dtype):
            cells = df[column].dropna().astype(str).str.strip()
            cells = cells[cells != ""]
            if len(cells) and cells.str.fullmatch(_DECIMAL_COMMA).all():
                raise ConfigError(f"column {column!r} of {name!r} holds numbers written with a comma "
                                  f"({cells.iloc[0]!r} in row {cells.index[0] + 1}); Lookback reads '.' as the "
                                  f"decimal mark: save the file with '.' decimals and no thousands separators (in a "
                                  f"spreadsheet, set the decimal separator to '.').")
    return df


def _read_parquet(data: bytes, name: str) -> pd.DataFrame:
    if not _pyarrow_available():
        raise ConfigError("Parquet needs pyarrow: pip install pyarrow")
    import pyarrow.parquet as pq  # optional: only Parquet needs it

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        meta = parquet.metadata
        unpacked = 8 * meta.num_rows * meta.num_columns  # encoded sizes can be far smaller: count 8 bytes a cell
        if unpacked > MAX_UNPACKED_BYTES:
            raise ConfigError(f"{name!r} holds {meta.num_rows} rows x {meta.num_columns} column(s), "
                              f"{unpacked / 1024 ** 2:.0f} MiB as numbers (limit {MAX_UNPACKED_BYTES / 1024 ** 2:.0f} "
                              f"MiB); upload fewer rows or columns.")
        _check_header([str(c) for c in parquet.schema_arrow.names], name)  # (meta.schema names nested fields too)
        _check_flat(parquet.schema_arrow, name)
        table = pq.read_table(io.BytesIO(data))
        table.validate(full=True)  # e.g. text that is not UTF-8, which pandas would only meet later
        df = table.to_pandas()
    except LookbackError:
        raise
    except Exception as err:  # pyarrow raises its own error types for damaged files
        raise ConfigError(f"{name!r} is not a readable Parquet file ({type(err).__name__}); export it again, or "
                          f"upload a CSV.") from None
    names = [str(c) for c in df.columns]
    _check_header(names, name)
    df.columns = names
    return _check_rows(df.reset_index(drop=True), name)


def _check_flat(schema, name: str) -> None:
    """Refuse Parquet columns of lists, structs or maps, naming them: a cell must hold one value."""
    import pyarrow as pa

    nested = [f"{field.name!r} ({field.type})" for field in schema if pa.types.is_nested(field.type)]
    if nested:
        raise ConfigError(f"column(s) {', '.join(nested)} of {name!r} hold lists, structs or maps; give each cell one "
                          f"number, text or date (e.g. one column per list item) and export the file again.")


def _check_header(names: list[str], name: str) -> None:
    if len(names) > MAX_COLUMNS:
        raise ConfigError(f"{name!r} has {len(names)} columns (limit {MAX_COLUMNS}); keep fewer columns, or "
                          f"give long sequences one row per step (the long layout).")
    for i, column in enumerate(names):
        if not column:
            raise ConfigError(f"column {i + 1} of {name!r} has no name; give every column a name in the header "
                              f"row.")
        if len(column) > MAX_NAME_CHARS:
            raise ConfigError(f"column {i + 1} of {name!r} has a name of {len(column)} characters (limit "
                              f"{MAX_NAME_CHARS}); give it a shorter name.")
        if column in names[:i]:
            raise ConfigError(f"column name {column!r} appears twice in {name!r} (columns "
                              f"{names.index(column) + 1} and {i + 1}); give every column a distinct name.")


def _check_rows(df: pd.DataFrame, name: str) -> pd.DataFrame:
    if len(df) == 0:
        raise ConfigError(f"{name!r} has a header but no data rows; add the data below the header.")
    if len(df) == 1:
        raise ConfigError(f"{name!r} has only one data row; a series or a set of sequences needs many rows.")
    return df


class _NpzFault(ConfigError):
    """Why a .npz cannot be read, without a remedy: `kind` is "size", "objects" or "damaged"."""

    def __init__(self, message: str, kind: str = "damaged"):
        super().__init__(message)
        self.kind = kind


_NPZ_REMEDY = {"size": "save fewer or smaller arrays",
               "objects": "save numbers (and labels as a string array, e.g. y.astype(str))",
               "damaged": "save the arrays again with numpy.savez(path, X=X, y=y)"}


def _mib(n: int) -> str:
    return f"{n / 1024 ** 3:.1f} GiB" if n >= 1024 ** 3 else f"{n / 1024 ** 2:.0f} MiB"


def read_npz(source: bytes | Path | BinaryIO, what: str, limit: int,
             keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a .npz archive (those of `keys` it holds, or all), never unpickled.

    The zip's declared sizes and each member's .npy header (shape and dtype) are checked against `limit` bytes
    before anything is unpacked or allocated. Every fault (too large, Python objects, encrypted or unknown
    compression, damaged or truncated data) raises ConfigError naming `what` and the fault, without a remedy.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
            if unpacked > limit:
                raise _NpzFault(f"{what} unpacks to {_mib(unpacked)} (limit {_mib(limit)})", "size")
            members = {i.filename.removesuffix(".npy"): i for i in zf.infolist() if i.filename.endswith(".npy")}
            chosen = [k for k in (members if keys is None else keys) if k in members]
            sizes = [_npy_bytes(zf, members[k], k, what, limit) for k in chosen]
            if sum(sizes) > limit:
                raise _NpzFault(f"{what} declares arrays of {_mib(sum(sizes))} (limit {_mib(limit)})", "size")
            arrays = {}
            for key in chosen:
                with zf.open(members[key]) as f:
                    arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
                    while f.read(2 ** 20):  # to the end, so that the member's CRC is checked
                        pass
            return arrays
    except LookbackError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError, RuntimeError,
            KeyError, OverflowError, SyntaxError, tokenize.TokenError) as err:  # zipfile's and numpy's (headers)
        kind = "zlib.error" if isinstance(err, zlib.error) else type(err).__name__  # zlib's is named "error"
        raise _NpzFault(f"{what} cannot be read ({kind}: {err})") from None


def _npy_bytes(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, what: str, limit: int) -> int:
    """The bytes a member's .npy header declares, checked against `limit` and the member's own size."""
    if info.flag_bits & 0x1:
        raise _NpzFault(f"{what} cannot be read (array {key} is encrypted)")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _NpzFault(f"{what} cannot be read (array {key} is packed with compression method "
                        f"{info.compress_type}; NumPy writes stored or deflated members)")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise _NpzFault(f"{what} cannot be read (array {key} is in .npy format version {version[0]}."
                            f"{version[1]}, which Lookback does not read)")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        start = f.tell()
    if dtype.hasobject:
        raise _NpzFault(f"array {key} in {what} holds Python objects, which are never unpickled", "objects")
    if any(n < 0 for n in shape):
        raise _NpzFault(f"{what} cannot be read (array {key} declares shape {shape})")
    need = math.prod(shape) * max(dtype.itemsize, 1)  # (a zero-size dtype still counts its elements)
    if need > limit:
        raise _NpzFault(f"array {key} in {what} declares shape {shape} of {dtype}, {_mib(need)} (limit "
                        f"{_mib(limit)})", "size")
    if start + math.prod(shape) * dtype.itemsize > info.file_size:
        raise _NpzFault(f"{what} cannot be read (array {key} declares shape {shape} of {dtype}, more than its "
                        f"{info.file_size} bytes hold: the file is truncated or damaged)")
    return need


def _read_npz(data: bytes, name: str) -> NpzArrays:
    if not data.startswith(b"PK"):
        what = "a Python pickle, which is never loaded" if data[:1] == b"\x80" else "not a NumPy .npz archive"
        raise ConfigError(f"{name!r} is {what}; save the arrays with numpy.savez({name!r}, X=X, y=y).")
    try:
        arrays = read_npz(data, repr(name), MAX_UNPACKED_BYTES, keys=("X", "y", "split"))
        if "X" not in arrays or "y" not in arrays:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                held = [n.removesuffix(".npy") for n in zf.namelist()]
            raise ConfigError(f"{name!r} holds arrays {', '.join(held) or '(none)'}; it needs X (N sequences, shape "
                              f"(N, T) or (N, T, F)) and y (N labels): save with numpy.savez(path, X=X, y=y).")
    except _NpzFault as err:
        raise ConfigError(f"{err}; {_NPZ_REMEDY[err.kind]}.") from None
    return NpzArrays(arrays["X"], arrays["y"], arrays.get("split"))


__all__ = ["MAX_UPLOAD_BYTES", "CorpusText", "NpzArrays", "Source", "content_sha256", "load_table", "read_npz"]
