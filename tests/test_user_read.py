"""Reading uploaded files (lib/tasks/user/read.py): formats, delimiters, limits and every malformed file."""
import io
import pickle
import tracemalloc
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib.tasks.user import read
from lib.tasks.user.read import MAX_UPLOAD_BYTES, NpzArrays, content_sha256, load_table
from tests.support.user_files import (
    compressed_npz,
    csv_bytes,
    flip_data,
    npy_declaring,
    npz_bytes,
    raises,
    series_frame,
    set_encrypted,
    set_method,
    zip_of,
)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_csv_delimiters_are_sniffed(sep):
    df = series_frame(50)
    loaded = load_table(csv_bytes(df, sep=sep), "data.csv")
    pd.testing.assert_frame_equal(loaded.astype({"date": object}), df.astype({"date": object}), check_exact=False)


def test_utf8_bom_tsv_and_quoted_fields_are_read():
    text = '\ufeffname\tvalue\n"smith, j"\t1.5\n"o\'hara"\t2\n'
    df = load_table(text.encode("utf-8"), "people.tsv")
    assert list(df.columns) == ["name", "value"] and df["name"].tolist() == ["smith, j", "o'hara"]
    assert df["value"].tolist() == [1.5, 2.0]


def test_parquet_and_npz_round_trip():
    df = series_frame(30)
    buf = io.BytesIO()
    df.to_parquet(buf)
    pd.testing.assert_frame_equal(load_table(buf.getvalue(), "data.parquet"), df)
    x, y = np.arange(24.0).reshape(4, 3, 2), np.array(["a", "b", "a", "b"])
    arrays = load_table(npz_bytes(X=x, y=y, split=np.array(["train", "train", "val", "test"])), "seqs.npz")
    assert isinstance(arrays, NpzArrays) and np.array_equal(arrays.x, x) and np.array_equal(arrays.y, y)
    assert arrays.split.tolist() == ["train", "train", "val", "test"]
    assert load_table(b"Hello, world.", "story.txt").text == "Hello, world."


def test_parquet_without_pyarrow_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(read, "_pyarrow_available", lambda: False)
    with raises("Parquet needs pyarrow: pip install pyarrow"):
        load_table(b"PAR1", "data.parquet")


def test_content_hash_names_the_bytes():
    assert content_sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_compressed_files_are_refused_by_their_unpacked_size(monkeypatch):
    monkeypatch.setattr(read, "MAX_UNPACKED_BYTES", 1024 ** 2)
    with raises("'d.parquet' holds 300000 rows x 1 column(s), 2 MiB as numbers (limit 1 MiB); upload fewer rows "
                "or columns."):
        load_table(_parquet_bytes(pd.DataFrame({"v": np.zeros(300_000)})), "d.parquet")
    with raises("'d.npz' unpacks to 2 MiB (limit 1 MiB); save fewer or smaller arrays."):
        load_table(npz_bytes(X=np.zeros((300, 1000)), y=np.zeros(300)), "d.npz")


# ---------------------------------------------------------------- malformed files

def _xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def _parquet_bytes(df: pd.DataFrame | None = None) -> bytes:
    buf = io.BytesIO()
    (series_frame(10) if df is None else df).to_parquet(buf)
    return buf.getvalue()


HUGE_HEADER = (",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join("1" * 100_000) + "\n").encode()

LOAD_ERRORS = [
    (b"", "empty.csv", "'empty.csv' is empty; upload a file with a header row and data rows."),
    (b"\n  \n", "blank.csv", "'blank.csv' is empty; upload a file with a header row and data rows."),
    (b"time,value\n", "d.csv", "'d.csv' has a header but no data rows; add the data below the header."),
    (b"time,value\n1,2\n", "d.csv", "'d.csv' has only one data row; a series or a set of sequences needs many rows."),
    (_xlsx(), "d.csv", "'d.csv' is an Excel workbook, not CSV text; save it as CSV (in Excel: File > Save As > CSV "
                       "UTF-8) and upload that."),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "d.csv",
     "'d.csv' is an old-style Excel (.xls) workbook, not CSV text; save it as CSV (in Excel: File > Save As > CSV "
     "UTF-8) and upload that."),
    (b"a,b\n1,\x002\n3,4\n", "d.csv",
     "'d.csv' holds binary data, not text: a NUL byte on line 2, column 3; remove the NUL bytes, or save the file "
     "again as UTF-8 text (in Excel: CSV UTF-8)."),
    (_parquet_bytes(), "d.csv", "'d.csv' is a Parquet file; rename it to end in .parquet."),
    ("a,b\n1,2\n3,4\n".encode("utf-16"), "d.csv",
     "'d.csv' is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8) and upload it again."),
    ("name,value\ncaf\u00e9,1\nbar,2\n".encode("latin-1"), "d.csv",
     "'d.csv' is not UTF-8 text: byte 0xE9 on line 2, column 4 is not valid UTF-8 (the file may be Latin-1 or "
     "Windows-1252); save it as UTF-8 and upload it again."),
    (b"a,b,c\n1,2,3\n4,5,6,7\n", "d.csv", "line 3 of 'd.csv' has 4 field(s) but the header has 3 (separator ','); "
                                          "give every row one value per column, leaving missing values empty."),
    (b"a;b;c\n1;2;3\n4;5\n7;8;9\n", "d.csv", "line 3 of 'd.csv' has 2 field(s) but the header has 3 (separator "
                                             "';'); give every row one value per column, leaving missing values "
                                             "empty."),
    (b"a,b,a\n1,2,3\n4,5,6\n", "d.csv",
     "column name 'a' appears twice in 'd.csv' (columns 1 and 3); give every column a distinct name."),
    (b"a,,c\n1,2,3\n4,5,6\n", "d.csv", "column 2 of 'd.csv' has no name; give every column a name in the header row."),
    (HUGE_HEADER, "wide.csv", "'wide.csv' has 100000 columns (limit 10000); keep fewer columns, or give long "
                              "sequences one row per step (the long layout)."),
    (b"a" * (MAX_UPLOAD_BYTES + 1), "big.csv", "'big.csv' is 64.0 MiB; the limit is 64 MiB. Upload fewer rows or "
                                               "columns, or a compressed format such as Parquet."),
    (b"a,b\n1,2\n", "book.xlsx", "'book.xlsx' has an unsupported type (.xlsx); upload .csv, .tsv, .parquet, .npz "
                                 "(arrays X and y) or .txt (a text corpus). In Excel use File > Save As > CSV UTF-8."),
    (b"PAR1 not really", "d.parquet",
     "'d.parquet' is not a readable Parquet file (ArrowInvalid); export it again, or upload a CSV."),
    (npz_bytes(X=np.array([[1, 2], [3, 4]], dtype=object), y=np.array([0, 1])), "s.npz",
     "array X in 's.npz' holds Python objects, which are never unpickled; save numbers (and labels as a string "
     "array, e.g. y.astype(str))."),
    (pickle.dumps({"X": [[1.0, 2.0]], "y": [0]}), "s.npz",
     "'s.npz' is a Python pickle, which is never loaded; save the arrays with numpy.savez('s.npz', X=X, y=y)."),
    (npz_bytes(X=np.zeros((4, 3))), "s.npz", "'s.npz' holds arrays X; it needs X (N sequences, shape (N, T) or "
                                             "(N, T, F)) and y (N labels): save with numpy.savez(path, X=X, y=y)."),
    (b"", "corpus.txt", "'corpus.txt' is empty; upload a text with the words to learn from."),
]


@pytest.mark.parametrize("data, filename, message", LOAD_ERRORS, ids=[f"{i}-{c[1]}" for i, c in enumerate(LOAD_ERRORS)])
def test_malformed_files_are_refused_with_what_to_change(data, filename, message):
    with raises(message):
        load_table(data, filename)


# ---------------------------------------------------------------- regressions of the reliability audit (finding 2, 4)

def test_a_cell_longer_than_the_limit_is_refused_with_its_row():
    with raises("line 2 of 'a.csv' has a cell of more than 131072 characters (the limit); shorten it, or close the "
                "quote (\") that opens it."):
        load_table(b"t,value\n1," + b"9" * 200_000 + b"\n2,3\n", "a.csv")
    with raises("line 3 of 'a.tsv' has a cell of more than 131072 characters (the limit); shorten it, or close the "
                "quote (\") that opens it."):
        load_table(b"t\tvalue\n1\t2\n2\t\"" + b"x" * 140_000 + b"\n3\t4\n", "a.tsv")  # a quote never closed


def test_a_column_name_longer_than_the_limit_is_refused():
    with raises("the header row of 'a.csv' has a column name of more than 131072 characters (limit 1000); shorten "
                "it, or close the quote (\") that opens it."):
        load_table(b"t," + b"v" * 300_000 + b"\n1,2\n2,3\n", "a.csv")
    with raises("column 2 of 'a.csv' has a name of 2000 characters (limit 1000); give it a shorter name."):
        load_table(b"t," + b"v" * 2000 + b"\n1,2\n2,3\n", "a.csv")


def test_a_nul_byte_after_the_first_64_kib_is_named_with_its_line():
    rows = "".join(f"{i},{i % 7}.5\n" for i in range(20_000)).encode()
    data = b"t,v\n" + rows[:70_000] + b"\x00" + rows[70_000:]
    with raises("'a.csv' holds binary data, not text: a NUL byte on line 7903, column 2; remove the NUL bytes, or "
                "save the file again as UTF-8 text (in Excel: CSV UTF-8)."):
        load_table(data, "a.csv")


@pytest.mark.parametrize("data", [
    "".join(f"{i};{i % 7},5\n" for i in range(200)),  # ';' separated
    "".join(f'{i},"{i % 7},5"\n' for i in range(200)),  # ',' separated, quoted cells
], ids=["semicolons", "quoted"])
def test_numbers_with_a_decimal_comma_are_named_with_what_to_change(data):
    sep = ";" if ";" in data else ","
    with raises("column 'v' of 'a.csv' holds numbers written with a comma ('0,5' in row 1); Lookback reads '.' as the "
                "decimal mark: save the file with '.' decimals and no thousands separators (in a spreadsheet, set the "
                "decimal separator to '.')."):
        load_table(f"t{sep}v\n{data}".encode(), "a.csv")


def test_a_blank_first_header_cell_is_read_as_the_index_column():
    frame = series_frame(50)
    loaded = load_table(frame.to_csv().encode(), "exported.csv")  # pandas' export: ",date,temp,load"
    assert list(loaded.columns) == ["index", "date", "temp", "load"] and loaded["index"].tolist() == list(range(50))
    r_export = b'"","a","b"\n"1",1.5,2\n"2",2.5,3\n"3",0.5,1\n'  # R's write.csv
    assert list(load_table(r_export, "r.csv").columns) == ["index", "a", "b"]
    taken = load_table(b",index,b\n0,5,1\n1,6,2\n", "t.csv")
    assert list(taken.columns) == ["Unnamed: 0", "index", "b"]


def test_parquet_nested_columns_are_refused_with_their_names():
    frame = pd.DataFrame({"t": range(400), "value": range(400), "l": [[1, 2]] * 400, "s": [{"a": 1}] * 400})
    with raises("column(s) 'l' (list<element: int64>), 's' (struct<a: int64>) of 'a.parquet' hold lists, structs or "
                "maps; give each cell one number, text or date (e.g. one column per list item) and export the file "
                "again."):
        load_table(_parquet_bytes(frame), "a.parquet")
    buf = io.BytesIO()  # a map's fields are named key and value, like the table's own 'value' column
    pq.write_table(pa.table({"t": range(40), "value": range(40),
                             "m": pa.array([[("k", 1)]] * 40, type=pa.map_(pa.string(), pa.int64()))}), buf)
    with raises("column(s) 'm' (map<string, int64 ('m')>) of 'a.parquet' hold lists, structs or maps; give each cell "
                "one number, text or date (e.g. one column per list item) and export the file again."):
        load_table(buf.getvalue(), "a.parquet")


_ARRAYS = {"X": np.random.default_rng(0).normal(size=(60, 8)), "y": np.arange(60) % 2}
_REMEDY = "save the arrays again with numpy.savez(path, X=X, y=y)."


@pytest.mark.parametrize("data, fault", [
    (flip_data(compressed_npz(**_ARRAYS)),
     "zlib.error: Error -3 while decompressing data: invalid bit length repeat"),
    (flip_data(npz_bytes(**_ARRAYS), at=200), "BadZipFile: Bad CRC-32 for file 'X.npy'"),
    (set_method(compressed_npz(**_ARRAYS)),
     "array X is packed with compression method 99; NumPy writes stored or deflated members"),
    (set_encrypted(compressed_npz(**_ARRAYS)), "array X is encrypted"),
    (compressed_npz(**_ARRAYS)[:-30], "BadZipFile: File is not a zip file"),
    (zip_of({"X.npy": npy_declaring((-1, 5))}), "array X declares shape (-1, 5)"),
    (zip_of({"X.npy": b"\x93NUMPY\x03\x00" + bytes(20)}),
     "array X is in .npy format version 3.0, which Lookback does not read"),
], ids=["deflate stream", "stored data", "method 99", "encrypted", "truncated", "negative shape", "npy version 3"])
def test_damaged_npz_members_are_refused_with_what_to_change(data, fault):
    with raises(f"'a.npz' cannot be read ({fault}); {_REMEDY}"):
        load_table(data, "a.npz")


def test_a_small_npz_declaring_a_huge_array_is_refused_before_allocating():
    data = zip_of({"X.npy": npy_declaring((100_000, 100_000)), "y.npy": npz_bytes()})
    assert len(data) < 2500
    with raises("array X in 'a.npz' declares shape (100000, 100000) of float64, 74.5 GiB (limit 512 MiB); save fewer "
                "or smaller arrays."):
        load_table(data, "a.npz")


def test_a_truncated_npz_member_is_refused_before_its_array_is_allocated():
    data = zip_of({"X.npy": npy_declaring((10_000, 5_000)), "y.npy": b""})  # 381 MiB declared, 1 KiB held
    tracemalloc.start()
    try:
        with raises(f"'a.npz' cannot be read (array X declares shape (10000, 5000) of float64, more than its 1152 "
                    f"bytes hold: the file is truncated or damaged); {_REMEDY}"):
            load_table(data, "a.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 ** 2
