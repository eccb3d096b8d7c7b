"""Generated bad inputs against every surface a user or a file reaches, and the check that judges each one.

Surfaces: bundle import (JSON edits, generated histories, damaged bytes, edited user data), link parameters
(the value sanitiser, and real page renders in AppTest), command-line values, config construction, user data
(arrays, series, tables), uploads (CSV, TSV, Parquet, .npz, .txt: valid files damaged at their structure, through
load_table -> guess_spec -> build_dataset). `outcome` sorts each input into one of:
  accepted     valid, and the result is sound (finite data, a listable and never-reused import, ...)
  clear error  refused with the project's own error (ConfigError and its kinds) and a message
  crash        any other exception, or a traceback / unexpected exit status from the CLI
  silent wrong accepted, but the result is not sound
tests/test_fuzz.py runs these strategies and checks as property tests; benchmarks/fuzz.py draws more, from a
given seed, and counts the outcomes.
"""
from __future__ import annotations

import codecs
import contextlib
import datetime
import decimal
import hashlib
import io
import json
import math
import os
import tempfile
import types
import zipfile
from dataclasses import fields
from functools import cache
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lib import models as model_lib
from lib.bundles import HISTORY_REQUIRED, export_bundle, import_bundle
from lib.configs import from_dict
from lib.errors import ConfigError, LookbackError
from lib.models import ModelConfig, ModelIO, build_model, count_params
from lib.runs import dataset, run_config, run_one
from lib.runtime import environment
from lib.store import RunStore
from lib.tasks import make_dataset, task_from_dict
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig
from lib.tasks.user.arrays import from_arrays, from_dataframe, from_series, printable
from lib.tasks.user.build import build_dataset
from lib.tasks.user.prepared import dataset_sha256, prepare
from lib.tasks.user.read import load_table
from lib.tasks.user.spec import guess_spec
from lib.tasks.video import VideoConfig
from lib.train import TrainConfig
from tests.support.user_files import (
    flip_data,
    long_frame,
    npy_declaring,
    series_frame,
    set_encrypted,
    set_method,
    wide_frame,
    words,
    zip_of,
)

REPO = Path(__file__).resolve().parents[2]
ACCEPTED, CLEAR, CRASH, SILENT = "accepted", "clear error", "crash", "silent wrong"

# Values of the wrong kind or size for any field: the shapes JSON, a link or a command line can carry.
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-2**80, 2**80), st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 10), st.text(max_size=8),
    st.lists(st.one_of(st.integers(-5, 50), st.floats(), st.text(max_size=3)), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
NUMBER_TEXT = st.one_of(
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-1e400", "Infinity", "1e308", "2.5", "-1", "0", "1_000", "",
                     "0x10", " 7", "99999999999999999999", "9223372036854775808", "none", "abc", "1e3", "3,4"]),
    st.integers(-2**70, 2**70).map(str), st.floats().map(repr), st.text(max_size=6), st.integers(0, 40).map(str))


def outcome(check, *args) -> tuple[str, str]:
    """(kind, detail) of one input: the project's own error is clear; any other exception a crash."""
    try:
        problem = check(*args)
    except LookbackError as err:
        return (CLEAR, str(err)) if str(err) else (CRASH, "ConfigError without a message")
    except Exception as err:  # what the fuzzing looks for
        return CRASH, f"{type(err).__name__}: {err}"[:300]
    return (SILENT, problem) if problem else (ACCEPTED, "")


# -- bundle import -------------------------------------------------------------------------------------

TASK = TextRecallConfig(distance=2, n_train=60, n_val=20, n_test=20)
MODEL = ModelConfig(kind="gru", hidden=4)


@cache
def valid_bundle() -> bytes:
    """A bundle of one completed run with weights, as Lookback exports it."""
    io_ = ModelIO.from_dataset(dataset(TASK))
    torch.manual_seed(0)
    net = build_model(MODEL, io_)
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_metric": 0.2 * e,
                "epoch_seconds": 0.01, "elapsed_seconds": 0.01 * e} for e in (1, 2)]
    record = {"status": "completed", "message": "trained 2 epochs", "history": history, "best_epoch": 2,
              "test": {"loss": 0.9, "accuracy": 0.4}, "n_params": count_params(net), "env": environment()}
    with tempfile.TemporaryDirectory() as tmp, RunStore(Path(tmp) / "source.sqlite") as s:
        ids = s.save_results([{"config": run_config(TASK, MODEL, TrainConfig(epochs=2)), "seed": 0, "label": "GRU",
                               "task": TASK.name, "record": record, "state_dict": net.state_dict()}])
        return export_bundle(s, ids)


@cache
def valid_user_bundle() -> bytes:
    """A bundle of one completed run on uploaded data, with the prepared arrays it trained on."""
    frame = pd.DataFrame({"s0": np.linspace(-1, 1, 40), "s1": np.cos(np.arange(40.0)),
                          "label": ["up", "down"] * 20})
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"LOOKBACK_DB": f"{tmp}/source.sqlite"}):
        cfg = prepare(frame.to_csv(index=False).encode(), "mine.csv")
        result = run_one(cfg, MODEL, TrainConfig(epochs=2, batch_size=8), RunStore())
        return export_bundle(RunStore(), [result.run_id])


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def pack(files: dict[str, bytes]) -> bytes:
    """Zip the files, with the manifest's checksums recomputed so that the edit itself gets judged."""
    manifest = json.loads(files["manifest.json"])
    runs = manifest.get("runs") if isinstance(manifest, dict) else None
    for entry in runs if isinstance(runs, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("files"), dict):
            for name in entry["files"]:
                if f"{entry.get('id')}/{name}" in files:
                    entry["files"][name] = hashlib.sha256(files[f"{entry['id']}/{name}"]).hexdigest()
    data = manifest.get("data") if isinstance(manifest, dict) else None
    for sha in data if isinstance(data, dict) else {}:
        if f"userdata/{sha}.npz" in files:
            data[sha] = hashlib.sha256(files[f"userdata/{sha}.npz"]).hexdigest()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in {**files, "manifest.json": json.dumps(manifest).encode()}.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _paths(obj, prefix=()):
    """Every key path into nested JSON objects."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


@st.composite
def json_edits(draw) -> bytes:
    """The valid bundle with one value of one JSON member replaced by junk, or deleted."""
    files = members(valid_bundle())
    name = draw(st.sampled_from(sorted(n for n in files if n.endswith(".json"))))
    obj = json.loads(files[name])
    path = draw(st.sampled_from(list(_paths(obj))))
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        parent[path[-1]] = draw(JUNK)
    else:
        del parent[path[-1]]
    files[name] = json.dumps(obj).encode()  # NaN and infinity become JSON's NaN and Infinity
    return pack(files)


CELL = st.one_of(st.sampled_from(["nan", "inf", "-1", "1e400", "", "abc", "1_0", "0", "1"]),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-2**70, 2**70).map(str),
                 st.floats(0, 10).map(repr), st.floats(0, 10).map(repr))


@st.composite
def history_edits(draw) -> bytes:
    """The valid bundle with a generated history.csv: its own two epochs with one cell changed, or known and
    unknown columns with any cells."""
    files = members(valid_bundle())
    name = next(n for n in files if n.endswith("history.csv"))
    if draw(st.booleans()):
        rows = [line.split(",") for line in files[name].decode().splitlines()]
        line = draw(st.integers(0, len(rows) - 1))
        rows[line][draw(st.integers(0, len(rows[line]) - 1))] = draw(st.one_of(CELL, st.sampled_from(
            [*HISTORY_REQUIRED, "epoch_cpu_seconds", "c0"])))
    else:
        columns = draw(st.one_of(st.just(list(HISTORY_REQUIRED)), st.lists(
            st.sampled_from([*HISTORY_REQUIRED, "epoch_cpu_seconds", "c0", ""]), min_size=1, max_size=8)))
        rows = [columns, *draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)), max_size=4))]
        if draw(st.booleans()):
            rows = [rows[0], *([str(i), *row[1:]] for i, row in enumerate(rows[1:], 1))]
    files[name] = "\n".join(",".join(r) for r in rows).encode()
    return pack(files)


@st.composite
def byte_edits(draw) -> bytes:
    """The valid bundle with bytes flipped or cut off: a damaged download."""
    data = bytearray(valid_bundle())
    if draw(st.booleans()):
        return bytes(data[:draw(st.integers(0, len(data)))])
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


ARRAY_JUNK = st.one_of(
    hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_]),
               hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)),
    st.just(np.array([{"a": 1}], dtype=object)), st.just(np.array(["text"])), st.just(np.full((3, 5, 2), np.nan)))


@st.composite
def data_edits(draw) -> bytes:
    """The valid user-data bundle with its prepared arrays edited: one array replaced, dropped or added, the
    description junk, or the bytes damaged; with or without the manifest's record of the data."""
    files = members(valid_user_bundle())
    name = next(n for n in files if n.startswith("userdata/"))
    how = draw(st.sampled_from(["replace", "drop", "add", "meta", "bytes"]))
    if how == "bytes":
        blob = bytearray(files[name])
        for _ in range(draw(st.integers(1, 4))):
            blob[draw(st.integers(0, len(blob) - 1))] ^= draw(st.integers(1, 255))
        files[name] = bytes(blob[:draw(st.integers(0, len(blob)))]) if draw(st.booleans()) else bytes(blob)
    else:
        with np.load(io.BytesIO(files[name]), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        key = draw(st.sampled_from(sorted(arrays)))
        if how == "replace":
            arrays[key] = draw(ARRAY_JUNK)
        elif how == "drop":
            del arrays[key]
        elif how == "add":
            arrays[draw(st.sampled_from(["train_distance", "extra", "val_x"]))] = draw(ARRAY_JUNK)
        else:
            meta = json.loads(str(arrays["meta"]))
            meta[draw(st.sampled_from(sorted(meta)))] = draw(JUNK)
            arrays["meta"] = np.array(json.dumps(meta))
        out = io.BytesIO()
        np.savez_compressed(out, **arrays)  # object arrays are pickled here: an import must refuse them
        files[name] = out.getvalue()
    if draw(st.booleans()):
        manifest = json.loads(files["manifest.json"])
        manifest["data"] = draw(st.one_of(JUNK, st.just({"0" * 64: "0" * 64})))
        files["manifest.json"] = json.dumps(manifest).encode()
    return pack(files)


def check_import(data: bytes) -> str | None:
    """Import into a fresh store; what is wrong with an accepted import, if anything (None: sound)."""
    with (tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"LOOKBACK_DB": f"{tmp}/runs.sqlite"}),
          RunStore(Path(tmp) / "runs.sqlite") as store):
        try:
            report = import_bundle(store, data)
        except LookbackError:
            if not store.runs().empty:
                return "a refused bundle left runs in the store"
            raise
        frame = store.runs()  # the Runs page's listing
        if len(frame) != len(report.imported) or frame["created"].isna().any():
            return "the listing lost a run or its time"
        for run_id in report.imported:
            rec = store.get(run_id)
            if not all(set(HISTORY_REQUIRED) <= set(h) for h in rec["history"]):
                return "a history row lacks a column the Compare page reads"
            if not all(math.isfinite(v) for v in rec["metrics"].values()):
                return "a non-finite test metric"
            if store.find(rec["config"], rec["seed"], environment()["code"]) is not None:
                return "an imported run would be reused as a training's result"
        for sha in report.data:  # kept data must load as what their name says they are
            task = next(task_from_dict(c["task"]) for c in store.configs(report.imported).values()
                        if c["task"].get("sha256") == sha)
            if dataset_sha256(make_dataset(task)) != sha:
                return "kept user data do not match their SHA-256"
    return None


# -- link parameters -----------------------------------------------------------------------------------

KEYS = ["w_cmp_n", "w_cmp_dist", "w_cmp_window", "w_cmp_seeds", "w_cmp_noise", "w_cmp_dropout", "w_win_hi",
        "w_mem_window", "w_cost_match", "w_probe_clip", "w_cmp_task", "w_cmp_kinds", "w_mem_dists", "w_cmp_lr"]
PAGE_KEYS = {"w_cmp": "compare", "w_win": "window", "w_mem": "memory", "w_cost": "costs", "w_probe": "probe"}


def check_link_value(key: str, text: str) -> str | None:
    """pages._form.link_value: a kept value is never NaN or infinite, and a numeric setting's is in bounds; a
    dropped or changed value comes with the note the page shows (counted as a clear error)."""
    from pages import _form

    value, note = _form.link_value(key, text)
    if (value == text) != (note is None):
        return "a changed value without a note, or a note without a change"
    if value is None:
        raise ConfigError(note)  # dropped, and the page says so
    with contextlib.suppress(ValueError):
        if not math.isfinite(float(value)):
            return f"{value!r} reaches a widget"
    name = key.rsplit("_", 1)[-1]
    if name in _form.LIMITS:
        lo, hi = _form.LIMITS[name]
        number = float(value)
        if not lo <= number <= hi or (isinstance(lo, int) and isinstance(hi, int) and not number.is_integer()):
            return f"{value!r} is outside {key}'s bounds {lo}..{hi}"
    if note:
        raise ConfigError(note)  # clamped, and the page says so
    return None


def check_page(key: str, text: str) -> str | None:
    """Open the key's page with ?key=text in AppTest: an exception box is a crash."""
    from streamlit.testing.v1 import AppTest

    from pages._run import _open_store

    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"LOOKBACK_DB": f"{tmp}/pages.sqlite"}):
        _open_store.clear()
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
        at.query_params[key] = text
        at.run()
        at.switch_page(f"pages/{PAGE_KEYS[key.rsplit('_', 1)[0]]}.py").run()
        _open_store.clear()
    if at.exception:
        raise RuntimeError(f"the page shows an exception: {at.exception[0].value}")
    return None


# -- command-line values -------------------------------------------------------------------------------


def _no_training(task, models, train_cfg, seeds, **options):
    """experiments.compare without the training: every check that runs before it."""
    task.validate()
    train_cfg.validate()
    for m in models:
        model_lib.validate(m, ModelIO(seq_len=60, n_features=8, n_outputs=2))
    return types.SimpleNamespace(summary=lambda: pd.DataFrame({"label": [m.label for m in models]}))


SETTINGS = [*TextRecallConfig.__dataclass_fields__, "bogus"]
MODEL_SPECS = st.one_of(st.sampled_from(["lstm", "gru", "rnn", "ffnn", "transformer", "lstm:", "ffnn:window"]),
                        st.builds(lambda kind, field, text: f"{kind}:{field}={text}",
                                  st.sampled_from(["lstm", "ffnn", "gru"]),
                                  st.sampled_from(["hidden", "window", "layers", "dropout", "init", "x"]), NUMBER_TEXT))
CLI_ARGS = st.builds(
    lambda setting, text, spec, option, option_text: ["compare", "--no-store", "--quiet", "--set", f"{setting}={text}",
                                                      "--models", spec, f"{option}={option_text}"],
    st.sampled_from(SETTINGS), NUMBER_TEXT, MODEL_SPECS,
    st.sampled_from(["--seeds", "--epochs", "--lr", "--batch-size", "--patience", "--jobs"]), NUMBER_TEXT)


def check_cli(argv: list[str]) -> str | None:
    """`python -m lib` with training stubbed out: exit 0, or exit 2 with one error line and no traceback."""
    from lib.cli import main

    err = io.StringIO()
    with mock.patch("lib.experiments.compare", _no_training), contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    if code == 2:
        if "Traceback" in err.getvalue() or err.getvalue().count("error:") != 1:
            raise RuntimeError(f"exit 2 without one clean error line: {err.getvalue()[-300:]}")
        raise ConfigError(err.getvalue().strip())
    if code != 0:
        raise RuntimeError(f"exit status {code}")
    return None


# -- config construction -------------------------------------------------------------------------------

CONFIGS = {c.__name__: c for c in (TrainConfig, ModelConfig, TextRecallConfig, SineConfig, VideoConfig)}


@st.composite
def config_values(draw) -> tuple[str, dict]:
    name = draw(st.sampled_from(sorted(CONFIGS)))
    names = sorted(f.name for f in fields(CONFIGS[name]) if f.init)
    return name, draw(st.dictionaries(st.sampled_from([*names, "bogus"]), JUNK, max_size=4))


def check_config(name: str, values: dict, constructor: bool = False) -> str | None:
    """from_dict (or the constructor, on known fields) then validate(): a config, or a ConfigError."""
    cls = CONFIGS[name]
    cfg = cls(**{k: v for k, v in values.items() if k != "bogus"}) if constructor else from_dict(cls, values)
    if isinstance(cfg, ModelConfig):
        model_lib.validate(cfg, ModelIO(seq_len=20, n_features=8, n_outputs=3))
    else:
        cfg.validate()
    return None


# -- user data -------------------------------------------------------------------------------------------

VALUES = st.one_of(st.floats(-1e3, 1e3), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([1e300, -1e308, 1e39, 1e-300, 0.0]))
ARRAYS = st.tuples(hnp.arrays(np.float64, st.tuples(st.integers(25, 60), st.integers(1, 5)), elements=VALUES),
                   st.sampled_from(["alternating", "unique", "constant", "floats"]), st.booleans(), st.booleans(),
                   st.one_of(st.integers(0, 10), JUNK))
STEPS = st.one_of(st.integers(1, 20), JUNK)
SERIES = st.tuples(hnp.arrays(np.float64, st.integers(0, 300), elements=VALUES), STEPS, STEPS, st.booleans(),
                   st.sampled_from([None, 2, 5, 12]))
TIMES = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=2), st.none())
@st.composite
def table_values(draw) -> list:
    """Up to 200 values in [-1000, 1000] with up to two of VALUES (NaN, infinity, huge or tiny) put in."""
    values = draw(st.lists(st.floats(-1e3, 1e3), min_size=draw(st.sampled_from([0, 5, 60, 150])), max_size=200))
    for _ in range(draw(st.integers(0, 2)) if values else 0):
        values[draw(st.integers(0, len(values) - 1))] = draw(VALUES)
    return values


TABLES = st.tuples(table_values(), st.sampled_from(["none", "reversed", "junk"]), st.lists(TIMES, max_size=200))


def _non_finite(ds) -> str | None:
    for part, split in (("train", ds.train), ("val", ds.val), ("test", ds.test)):
        if not (bool(torch.isfinite(split.x.float()).all()) and bool(torch.isfinite(split.y.float()).all())):
            return f"non-finite values in the {part} split"
    if not all(math.isfinite(v) for v in ds.baselines.values()):
        return "a non-finite baseline"
    return None


def check_arrays(x, labels: str, standardize: bool, regression: bool, seed) -> str | None:
    y = {"alternating": np.arange(len(x)) % 2, "unique": np.arange(len(x)), "constant": np.zeros(len(x)),
         "floats": x[:, 0]}[labels]
    return _non_finite(from_arrays(x, y, standardize=standardize, regression=regression, seed=seed))


def check_series(values, window, horizon, standardize: bool, season) -> str | None:
    return _non_finite(from_series(values, window, horizon, standardize=standardize, season=season))


def check_table(values: list, time_kind: str, junk: list) -> str | None:
    """A table of values with no time column, times in reverse order, or junk times (cut to one length)."""
    if time_kind == "junk":
        values = values[:len(junk)]
    times = {"none": range(len(values)), "reversed": range(len(values), 0, -1), "junk": junk[:len(values)]}[time_kind]
    frame = pd.DataFrame({"t": pd.Series(list(times), dtype=object), "v": values})
    return _non_finite(from_dataframe(frame, "v", 3, time_column=None if time_kind == "none" else "t"))


# -- uploads: load_table -> guess_spec -> build_dataset ---------------------------------------------------

READ, SPEC, BUILD = "read", "spec", "build"  # the stages an upload reaches
LABELS = ["up", "down", "x\x1b[31m", "y\u202e", "<script>", "ünï", "", " ", "nan", "1", "1.5"]
JUNK_CELLS = ["nan", "inf", "-inf", "1e400", "", "abc", "1_000", "\u0663", "True", "1,5", '"', "NULL", "1e-320",
              "0x10", "  ", "\u00a0", "9" * 400]


def _table(kind: str, n: int, seed: int) -> pd.DataFrame:
    """A valid table of `kind`: a series, labelled sequences (wide or long), or a series with a split column."""
    if kind == "wide":
        return wide_frame(max(n, 4), 6, seed)
    if kind == "long":
        return long_frame(max(n, 4), seed)
    frame = series_frame(max(n, 3), seed)
    if kind == "split":
        position = np.arange(len(frame)) / len(frame)
        frame = frame.assign(split=np.select([position < 0.7, position < 0.85], ["train", "val"], "test"))
    return frame


CELL_EDITS, LINE_EDITS = ("cell", "label", "double", "blank"), ("drop field", "add field", "quote")


def _line_edit(lines: list[str], draw, sep: str, hows: tuple[str, ...]) -> None:
    """One edit of a CSV's lines (in place): a field lost or added, a cell replaced, a line doubled, ..."""
    i = draw(st.integers(0, len(lines) - 1))
    cells = lines[i].split(sep)
    how = draw(st.sampled_from(hows))
    j = draw(st.integers(0, len(cells) - 1))
    if how == "drop field" and len(cells) > 1:
        del cells[j]
    elif how == "add field":
        cells.insert(j, draw(st.sampled_from(JUNK_CELLS)))
    elif how in ("cell", "label"):
        cells[j] = draw(st.sampled_from(JUNK_CELLS if how == "cell" else LABELS))
    elif how == "double":
        lines.insert(i, lines[i])
    elif how == "blank":
        lines.insert(i, "")
    else:
        cells[j] = '"' + cells[j]  # a quote that never closes
    lines[i] = sep.join(cells)


@st.composite
def csv_uploads(draw, ext: str = ".csv") -> tuple[bytes, str]:
    """A CSV/TSV in some layout, maybe with decimal commas or a row-index column (a blank first header cell), then
    one family of structure-aware damage, or all: lines edited, a huge cell or name, another encoding, NUL bytes
    (also past the first 64 KiB), bytes flipped or the file cut short."""
    kind = draw(st.sampled_from(["series", "wide", "long", "split"]))
    n = draw(st.sampled_from([2, 40, 200, 3000] if kind == "series" else [2, 40, 200]))
    frame = _table(kind, n, draw(st.integers(0, 3)))
    sep = "\t" if ext == ".tsv" else draw(st.sampled_from([",", ",", ";", "|"]))
    comma = draw(st.integers(0, 4)) == 0  # decimal commas, as a European spreadsheet writes them
    lines = frame.to_csv(index=draw(st.booleans()), sep=sep, decimal="," if comma else ".").splitlines()
    damage = draw(st.sampled_from(["none", "cells", "cells", "lines", "huge", "encoding", "bytes", "all"]))
    for _ in range(draw(st.integers(1, 3)) if damage in ("cells", "lines", "all") else 0):
        _line_edit(lines, draw, sep, CELL_EDITS if damage == "cells" else (*CELL_EDITS, *LINE_EDITS))
    if damage in ("huge", "all"):
        at = draw(st.integers(0, len(lines) - 1))
        size = draw(st.sampled_from([1001, 131_072, 131_073, 200_000]))
        lines[at] = lines[at] + sep + "9" * size if draw(st.booleans()) else "h" * size + sep + lines[at]
    data = ("\r\n" if draw(st.booleans()) else "\n").join(lines).encode()
    if damage in ("encoding", "all"):
        encoding = draw(st.sampled_from(["bom", "utf-16", "latin-1", "cp1252"]))
        data = (codecs.BOM_UTF8 + data if encoding == "bom"
                else data.decode().replace("u", "\u00fc").encode(encoding, errors="replace"))
    for _ in range(draw(st.integers(1, 2)) if damage in ("bytes", "all") else 0):
        at = draw(st.integers(0, max(len(data) - 1, 0)))  # a NUL byte, a byte flipped, or the file cut short
        data = draw(st.sampled_from([data[:at] + b"\x00" + data[at:], data[:at],
                                     data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1:] if data else data]))
    return data, "upload" + ext


PARQUET_EXTRA = {  # columns of other Arrow types, nested ones among them
    "list": lambda n: pa.array([[1, 2]] * n), "struct": lambda n: pa.array([{"a": 1}] * n),
    "map": lambda n: pa.array([[("k", 1)]] * n, type=pa.map_(pa.string(), pa.int64())),
    "dictionary": lambda n: pa.array(["a", "b"] * (n // 2) + ["a"] * (n % 2)).dictionary_encode(),
    "bool": lambda n: pa.array([True, False] * (n // 2) + [True] * (n % 2)),
    "timestamp": lambda n: pa.array(np.arange(n) * 86_400 * 10**9, type=pa.timestamp("ns", tz="UTC")),
    "duration": lambda n: pa.array(pd.to_timedelta(np.arange(n), unit="s")),
    "decimal": lambda n: pa.array([decimal.Decimal(i) / 4 for i in range(n)]),
    "binary": lambda n: pa.array([b"\x00\xff"] * n), "null": lambda n: pa.nulls(n),
    "uint64": lambda n: pa.array(np.arange(n, dtype=np.uint64) * 2**60),
    "float16": lambda n: pa.array(np.arange(n, dtype=np.float16)),
    "time": lambda n: pa.array([datetime.time(i % 24) for i in range(n)]),
}


@st.composite
def parquet_uploads(draw) -> tuple[bytes, str]:
    """A Parquet table in some layout, with columns of other Arrow types (lists, structs, maps, decimals, ...)
    added or replacing one, then bytes flipped or cut."""
    import pyarrow.parquet as pq

    frame = _table(draw(st.sampled_from(["series", "wide", "long", "split"])), draw(st.sampled_from([2, 40, 200])),
                   draw(st.integers(0, 3)))
    table = pa.Table.from_pandas(frame, preserve_index=draw(st.booleans()))
    for kind in draw(st.lists(st.sampled_from(sorted(PARQUET_EXTRA)), max_size=2)):
        column = PARQUET_EXTRA[kind](len(table))
        if draw(st.booleans()):
            table = table.append_column(f"extra_{kind}", column)
        else:
            table = table.set_column(draw(st.integers(0, table.num_columns - 1)), f"as_{kind}", column)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression=draw(st.sampled_from(["snappy", "none", "zstd"])))
    data = bytearray(buf.getvalue())
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] ^= draw(st.integers(1, 255))
    return bytes(data[:draw(st.integers(0, len(data)))] if draw(st.integers(0, 5)) == 0 else data), "upload.parquet"


NPY_DESCRS = ["<f8", "<f4", "<i8", "|u1", "|b1", ">f8", "<c16", "<U3", "|S2", "|V8", "|O", "<M8[s]", "<m8[s]",
              [("a", "<f8")], "bogus"]
NPY_SHAPES = st.one_of(st.tuples(st.integers(-2, 80), st.integers(-1, 12)), st.just(()),
                       st.sampled_from([(10**5, 10**5), (2**62, 2), (60, 8, 2), (60,), (10**9,), (0, 8)]))


def _npz_arrays(draw) -> dict[str, np.ndarray]:
    """X, y and maybe split: valid, or one of them of the wrong kind, shape or values."""
    n, t = draw(st.sampled_from([2, 40, 60])), draw(st.sampled_from([1, 8]))
    rng = np.random.default_rng(draw(st.integers(0, 3)))
    x = rng.normal(size=(n, t) if draw(st.booleans()) else (n, t, 2))
    y = {"ints": np.arange(n) % 2, "text": np.where(np.arange(n) % 2, "up", "down"),
         "floats": rng.normal(size=n), "labels": np.array(draw(st.lists(st.sampled_from(LABELS), min_size=n,
                                                                         max_size=n)))}[
        draw(st.sampled_from(["ints", "text", "floats", "labels"]))]
    arrays = {"X": x, "y": y}
    if draw(st.booleans()):
        arrays["split"] = np.array(["train"] * (n - n // 3) + ["val"] * (n // 6) + ["test"] * (n // 3 - n // 6))
    key = draw(st.sampled_from([None, None, None, "X", "y", "split"]))
    if key is not None:
        arrays[key] = draw(st.one_of(ARRAY_JUNK, st.just(np.asfortranarray(x)), st.just(x.astype(">f8")),
                                     st.just(x.astype(np.complex128)), st.just(x * 1e300),
                                     st.just(np.array(["train", "foo"] * (n // 2))), st.just(x[:, :0])))
    return arrays


@st.composite
def npz_uploads(draw) -> tuple[bytes, str]:
    """An .npz of X and y (stored or deflated), then damage at the zip and .npy level: a member's deflate stream
    or data flipped, its compression method or encrypted flag set, its .npy header rewritten (any shape and
    dtype, e.g. 10^10 floats in a 2 KB file), the archive cut short or any bytes flipped."""
    arrays = _npz_arrays(draw)
    buf = io.BytesIO()
    (np.savez_compressed if draw(st.booleans()) else np.savez)(buf, **arrays)  # object arrays are pickled
    data = buf.getvalue()
    member = draw(st.sampled_from(sorted(arrays))) + ".npy"
    how = draw(st.sampled_from(["none", "none", "none", "data", "method", "encrypted", "header", "header", "cut",
                                "bytes"]))
    if how == "data":
        data = flip_data(data, member, draw(st.integers(0, 120)))
    elif how == "method":
        data = set_method(data, member, draw(st.sampled_from([1, 6, 9, 12, 14, 93, 99])))
    elif how == "encrypted":
        data = set_encrypted(data)
    elif how == "header":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            files = {n: zf.read(n) for n in zf.namelist()}
        body = np.ascontiguousarray(arrays[member[:-4]]).tobytes() if arrays[member[:-4]].dtype != object else b""
        files[member] = npy_declaring(draw(NPY_SHAPES), draw(st.sampled_from(NPY_DESCRS)), body)
        data = zip_of(files, draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])))
    elif how == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "bytes":
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            b[draw(st.integers(0, len(b) - 1))] ^= draw(st.integers(1, 255))
        data = bytes(b)
    return data, "upload.npz"


@st.composite
def txt_uploads(draw) -> tuple[bytes, str]:
    """A text corpus: plain words, one word repeated, punctuation only, control or bidi characters, other
    encodings, NUL bytes, cut short."""
    n = draw(st.sampled_from([5, 700, 3000]))
    text = draw(st.sampled_from([words(n), "word " * n, "... !!! ?? " * n, "caf\u00e9 na\u00efve " * n,
                                 (words(n) + " ") * 2]))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["\x1b[31m", "\u202e", "\x00", "\ufeff", "\U0001f600", "x" * 5000,
                                                 "\r", "\u2028"])) + text[at:]
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"])), errors="replace")
    return data[:draw(st.integers(0, len(data)))] if draw(st.integers(0, 5)) == 0 else data, "upload.txt"


def _expected_classes(labels: np.ndarray) -> set[str]:
    """The class names a builder must give labels (N,): whole numbers as integers, text as it is."""
    if labels.dtype.kind in "iuf":
        return {str(int(v)) for v in labels}
    return {str(v) for v in labels}


def _layout_problem(source, spec, ds) -> str | None:
    """What a built dataset gets wrong about its file, if anything (None: consistent)."""
    n = len(ds.train) + len(ds.val) + len(ds.test)
    if spec.layout == "corpus":
        return None if ds.vocab[:2] == ("<pad>", "<unk>") and int(ds.train.x.max()) < len(ds.vocab) else \
            "a word id outside the vocabulary"
    if spec.layout == "series":
        expected = len(source) - 3 * (spec.window + spec.horizon - 1)  # windows in each of three parts
        if n != expected or ds.seq_len != spec.window or ds.n_features != len(spec.inputs):
            return f"{n} windows of {ds.seq_len} x {ds.n_features} from {len(source)} rows; expected {expected}"
        return None
    if spec.layout == "arrays":
        x, labels = np.asarray(source.x), np.asarray(source.y)
        shape = (len(x), x.shape[1], int(np.prod(x.shape[2:])))
    else:
        rows = source if spec.layout == "wide" else source.drop_duplicates(spec.sequence)
        labels = rows[spec.target].to_numpy()
        if spec.layout == "wide":
            shape = (len(source), len(spec.inputs), 1)
        else:
            shape = (source[spec.sequence].astype(str).nunique(), ds.seq_len, len(spec.inputs))
    if (n, ds.seq_len, ds.n_features) != shape:
        return f"{(n, ds.seq_len, ds.n_features)} sequences x steps x features from a file of {shape}"
    if ds.kind == "classification" and set(ds.class_names) != _expected_classes(labels):
        return f"classes {ds.class_names[:5]} are not the file's labels"
    return None


def check_upload(data: bytes, filename: str, reached: list | None = None) -> str | None:
    """An upload through load_table, guess_spec and build_dataset (each stage reached is appended to `reached`):
    a sound dataset consistent with the file, or a clear error."""
    reached = [] if reached is None else reached
    source = load_table(data, filename)
    reached.append(READ)
    spec = guess_spec(source)
    reached.append(SPEC)
    ds = build_dataset(source, spec)
    reached.append(BUILD)
    if ds.class_names and not all(printable(c) for c in ds.class_names):
        return "a class name with control or formatting characters"
    return _non_finite(ds) or _layout_problem(source, spec, ds)


UPLOADS = {
    "uploads: CSV": (csv_uploads(".csv"), check_upload),
    "uploads: TSV": (csv_uploads(".tsv"), check_upload),
    "uploads: Parquet": (parquet_uploads(), check_upload),
    "uploads: .npz": (npz_uploads(), check_upload),
    "uploads: .txt": (txt_uploads(), check_upload),
}


# surface -> (strategy of argument tuples, check)
SURFACES = {
    "bundle import: JSON edits": (st.tuples(json_edits()), check_import),
    "bundle import: histories": (st.tuples(history_edits()), check_import),
    "bundle import: damaged bytes": (st.tuples(byte_edits()), check_import),
    "bundle import: user data": (st.tuples(data_edits()), check_import),
    "link values": (st.tuples(st.sampled_from(KEYS), NUMBER_TEXT), check_link_value),
    "command-line values": (st.tuples(CLI_ARGS), check_cli),
    "config construction": (config_values(), check_config),
    "config constructors": (config_values().map(lambda nv: (*nv, True)), check_config),
    "user data: arrays": (ARRAYS, check_arrays),
    "user data: series": (SERIES, check_series),
    "user data: tables": (TABLES, check_table),
    **UPLOADS,
}
PAGE_SURFACE = (st.tuples(st.sampled_from([k for k in KEYS if k.rsplit("_", 1)[0] in PAGE_KEYS]), NUMBER_TEXT),
                check_page)
