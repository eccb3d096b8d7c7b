"""Small tables, arrays and texts in each upload layout, shared by the tests of lib/tasks/user/."""
import io
import re
import struct
import zipfile

import numpy as np
import pandas as pd
import pytest

from lib.errors import ConfigError


def raises(message: str):
    """pytest.raises for a ConfigError whose message is exactly `message`."""
    return pytest.raises(ConfigError, match="^" + re.escape(message) + "$")


def csv_bytes(df: pd.DataFrame, **kwargs) -> bytes:
    return df.to_csv(index=False, **kwargs).encode()


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def series_frame(n=300, seed=0) -> pd.DataFrame:
    """Two noisy waves by date: 'load' follows 'temp' two steps later."""
    rng = np.random.default_rng(seed)
    temp = np.sin(np.arange(n + 2) / 6) + 0.1 * rng.standard_normal(n + 2)
    return pd.DataFrame({"date": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
                         "temp": temp[2:], "load": 10 + 3 * temp[:-2]})


def wide_frame(n=60, t=8, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = np.where(np.arange(n) % 2 == 0, "up", "down")
    steps = rng.standard_normal((n, t)) + np.where(label == "up", 1.0, -1.0)[:, None] * np.arange(t) / t
    return pd.DataFrame({"id": np.arange(n), **{f"t{i}": steps[:, i] for i in range(t)}, "label": label})


def long_frame(n=40, seed=0) -> pd.DataFrame:
    """n sequences, lengths 3..6 steps, two features, shuffled rows; label 'a'/'b' by sequence parity."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        for step in range(3 + s % 4):
            rows.append({"seq": f"s{s}", "step": step, "x1": float(s * 10 + step), "x2": float(-step),
                         "label": "ab"[s % 2]})
    df = pd.DataFrame(rows)
    return df.iloc[rng.permutation(len(df))].reset_index(drop=True)


def words(n: int, seed=0) -> str:
    rng = np.random.default_rng(seed)
    vocab = ["the", "cat", "sat", "on", "mat", "and", "a", "dog", "ran", "far"]
    return " ".join(rng.choice(vocab, size=n, p=[0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.04, 0.03, 0.03]))


def labelled_csv(n: int = 60, steps: int = 6, seed: int = 0) -> bytes:
    """Wide layout: step columns s0..s5 and a label that is the sign of the last step."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, steps)).round(3)
    frame = pd.DataFrame(x, columns=[f"s{i}" for i in range(steps)]).assign(label=np.where(x[:, -1] > 0, "up", "down"))
    return frame.to_csv(index=False).encode()


# ---------------------------------------------------------------- damaged archives (.npz and zip members)

def npy_declaring(shape: tuple, descr: str = "<f8", data: bytes = b"\0" * 1024) -> bytes:
    """A .npy whose header declares `shape` of `descr`, followed by `data` (whatever the header says)."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _local_headers(data: bytes):
    """(offset, member name, offset of its data) of each local file header in a zip."""
    at = data.find(b"PK\x03\x04")
    while at >= 0:
        name_len, extra_len = struct.unpack_from("<HH", data, at + 26)
        yield at, bytes(data[at + 30:at + 30 + name_len]).decode(errors="replace"), at + 30 + name_len + extra_len
        at = data.find(b"PK\x03\x04", at + 4)


def flip_data(data: bytes, member: str = "X.npy", at: int = 40) -> bytes:
    """Two bytes of a member's (deflate) data flipped, `at` bytes into it."""
    b = bytearray(data)
    for _, name, start in _local_headers(b):
        if name == member:
            b[start + at] ^= 0xFF
            b[start + at + 1] ^= 0x55
    return bytes(b)


def set_method(data: bytes, member: str = "X.npy", method: int = 99) -> bytes:
    """A member's compression method (local and central headers) set to `method`."""
    b = bytearray(data)
    for sig, off, name_at, start in ((b"PK\x03\x04", 8, 26, 30), (b"PK\x01\x02", 10, 28, 46)):
        i = b.find(sig)
        while i >= 0:
            name_len = struct.unpack_from("<H", b, i + name_at)[0]
            if bytes(b[i + start:i + start + name_len]).decode(errors="replace") == member:
                struct.pack_into("<H", b, i + off, method)
            i = b.find(sig, i + 4)
    return bytes(b)


def set_encrypted(data: bytes) -> bytes:
    """The 'encrypted' flag set on every member (local and central headers)."""
    b = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        while i >= 0:
            struct.pack_into("<H", b, i + off, struct.unpack_from("<H", b, i + off)[0] | 1)
            i = b.find(sig, i + 4)
    return bytes(b)


def compressed_npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
