"""Reading uploaded files (lib/tasks/user/read.py): formats, delimiters, limits and every malformed file."""
import io
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from lib.tasks.user import read
from lib.tasks.user.read import MAX_UPLOAD_BYTES, NpzArrays, content_sha256, load_table
from tests.support.user_files import csv_bytes, npz_bytes, raises, series_frame


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
     "'d.csv' holds binary data (NUL bytes), not text; export it as CSV (UTF-8) and upload that."),
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
