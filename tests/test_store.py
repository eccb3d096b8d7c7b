"""The run store: records, reuse lookup, crash safety, concurrent writers, refusal of foreign files, faults of the
disk and of other processes, and views scoped to one visitor."""
from __future__ import annotations

import io
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lib import __version__, runtime
from lib import store as store_module
from lib.bundles import export_bundle, import_bundle
from lib.experiments import compare
from lib.models import ModelConfig, ModelIO, build_model, count_params
from lib.paths import store_path
from lib.runs import run_one
from lib.runtime import Status, code_fingerprint, environment
from lib.store import (
    APPLICATION_ID,
    MIGRATIONS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    RunStore,
    StoreError,
    config_hash,
)
from lib.tasks.text import TextRecallConfig
from lib.train import RunResult, TrainConfig

REPO = Path(__file__).resolve().parents[1]
IO = ModelIO(seq_len=6, n_features=12, n_outputs=3, tokens=True)
LEAVE = "Lookback left it untouched; move it away or set LOOKBACK_DB to another file."
TASK = TextRecallConfig(distance=2, n_train=300, n_val=100, n_test=100, seed=1)
TINY = ModelConfig(kind="ffnn", window=3, hidden=8)


def make_config(kind: str = "gru", hidden: int = 4, lr: float = 3e-3) -> dict:
    return {"task": {"distance": 3, "n_train": 40}, "model": asdict(ModelConfig(kind=kind, hidden=hidden)),
            "train": asdict(TrainConfig(lr=lr, epochs=3)), "io": asdict(IO)}


def make_result(kind: str = "gru", hidden: int = 4, status: str = "completed", acc: float = 0.75):
    """A RunResult as the engine returns it (three epochs), without spending time on training."""
    torch.manual_seed(0)
    mc = ModelConfig(kind=kind, hidden=hidden)
    model = build_model(mc, IO)
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "val_metric": 0.2 * e,
                "epoch_seconds": 0.01, "elapsed_seconds": 0.01 * e} for e in (1, 2, 3)]
    return RunResult(mc, TrainConfig(epochs=3), status, f"trained 3 epochs ({status})", history, 3,
                     {"loss": 0.5, "accuracy": acc}, count_params(model), environment(), model)


def save(store: RunStore, config: dict, seed: int, label: str, task: str, record: dict,
         state_dict=None) -> str:
    """Store one finished run through `save_results`."""
    return store.save_results([{"config": config, "seed": seed, "label": label, "task": task, "record": record,
                                "state_dict": state_dict}])[0]


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "runs.sqlite") as s:
        yield s


def _write_runs(path: str, worker: int, n_runs: int) -> None:
    """Child process of the concurrency test: its own store, n_runs runs of three epochs each."""
    store = RunStore(path)
    for i in range(n_runs):
        run_id = store.start_run(make_config(hidden=i + 1), worker, f"w{worker}-{i}", "text_recall",
                                 {"lookback": __version__})
        for epoch in (1, 2, 3):
            store.log_epoch(run_id, {"epoch": epoch, "train_loss": float(i + epoch)})
        store.finish_run(run_id, "completed", "ok", {"accuracy": i / n_runs})
    store.close()


# -- records ------------------------------------------------------------------------------------------


def test_incremental_run_is_recorded_with_history_metrics_and_weights(store):
    cfg, model = make_config(), build_model(ModelConfig(kind="gru", hidden=4), IO)
    run_id = store.start_run(cfg, 7, "GRU", "text_recall", environment())
    assert store.get(run_id)["status"] == "running"
    for epoch in (1, 2):
        store.log_epoch(run_id, {"epoch": epoch, "train_loss": 1.0 / epoch, "val_metric": 0.5})
    store.finish_run(run_id, "completed", "trained 2 epochs", {"accuracy": 0.9, "loss": 0.25},
                     model.state_dict(), best_epoch=2, n_params=count_params(model))
    rec = store.get(run_id)
    assert re.fullmatch(r"[0-9a-f]{12}", run_id)
    assert (rec["task"], rec["label"], rec["seed"], rec["status"]) == ("text_recall", "GRU", 7, "completed")
    assert rec["config"] == cfg and rec["config_hash"] == config_hash(cfg)
    assert rec["metrics"] == {"accuracy": 0.9, "loss": 0.25}
    assert "costs" not in rec
    assert rec["env"]["lookback"] == rec["version"] == __version__
    assert rec["env"]["code"] == rec["code"] == code_fingerprint()
    assert rec["pid"] == os.getpid() and rec["has_weights"] and rec["best_epoch"] == 2
    assert rec["created"] <= rec["updated"]
    assert rec["history"] == [{"epoch": 1, "train_loss": 1.0, "val_metric": 0.5},
                              {"epoch": 2, "train_loss": 0.5, "val_metric": 0.5}]
    pd.testing.assert_frame_equal(store.history(run_id), pd.DataFrame(rec["history"]))
    weights = store.load_weights(run_id)
    assert weights.keys() == model.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


def test_save_results_stores_run_result_records(store):
    result = make_result()
    run_id = save(store, make_config(), 0, result.label, "text_recall", result.record(),
                               result.model.state_dict())
    rec = store.get(run_id)
    assert rec["status"] == "completed" and rec["message"] == "trained 3 epochs (completed)"
    assert rec["history"] == result.history and rec["metrics"] == result.test
    assert rec["n_params"] == result.n_params and rec["best_epoch"] == 3
    assert rec["env"] == result.env
    assert store.load_weights(run_id)["head.weight"].shape == (3, 4)


def test_runs_lists_one_flat_row_per_run_newest_first_with_filters(store):
    first = save(store, make_config(), 0, "GRU", "text_recall", make_result().record())
    second = save(store, make_config("lstm"), 0, "LSTM", "sine", make_result("lstm").record())
    running = store.start_run(make_config(), 1, "GRU", "text_recall", environment())
    store.finish_run(running, Status.CANCELLED, "cancelled during epoch 1", {})
    frame = store.runs()
    assert list(frame.columns) == [
        "id", "created", "updated", "task", "label", "status", "seed", "epochs", "best_epoch",
        "test_accuracy", "test_loss", "n_params", "config_hash", "version", "code", "origin", "message"]
    assert list(frame["id"]) == [running, second, first]
    assert list(frame["epochs"]) == [0, 3, 3]
    assert frame.loc[frame["id"] == first, "test_accuracy"].item() == 0.75
    assert isinstance(frame["created"].dtype, pd.DatetimeTZDtype)
    assert list(store.runs(task="sine")["id"]) == [second]
    assert list(store.runs(status="cancelled")["id"]) == [running]
    assert set(store.runs(task="text_recall", status=["completed", "cancelled"])["id"]) == {first, running}
    empty = store.runs(task="nothing")
    assert empty.empty and list(empty.columns) == list(RUN_COLUMNS)


def test_find_reuses_only_a_completed_run_with_same_config_seed_and_code(store):
    cfg, code = make_config(), code_fingerprint()
    assert store.find(cfg, 0, code) is None
    older = save(store, cfg, 0, "GRU", "text_recall", make_result().record())
    newer = save(store, cfg, 0, "GRU", "text_recall", make_result().record())
    save(store, cfg, 0, "GRU", "text_recall", make_result(status="diverged").record())
    store.start_run(cfg, 0, "GRU", "text_recall", environment())  # running: never reused
    reordered = {"train": cfg["train"], "io": cfg["io"], "model": cfg["model"], "task": cfg["task"]}
    assert store.find(reordered, 0, code)["id"] == newer != older  # key order does not matter
    assert store.find(cfg, 1, code) is None  # other seed
    assert store.find(make_config(lr=1e-3), 0, code) is None  # other config
    assert store.find(cfg, 0, "0123456789abcdef") is None  # other result-defining sources
    edited = save(store, cfg, 0, "GRU", "text_recall",
                  {**make_result().record(), "env": {**environment(), "code": "0123456789abcdef"}})
    assert store.find(cfg, 0, "0123456789abcdef")["id"] == edited
    assert store.find(cfg, 0, code)["id"] == newer
    unknown = {k: v for k, v in environment().items() if k != "code"}  # no fingerprint: never reused
    save(store, cfg, 0, "GRU", "text_recall", {**make_result().record(), "env": unknown})
    assert store.find(cfg, 0, code)["id"] == newer


def test_delete_removes_runs_with_their_history_and_weights(store):
    result = make_result()
    keep = save(store, make_config(), 0, "GRU", "text_recall", result.record())
    gone = save(store, make_config(), 1, "GRU", "text_recall", result.record(),
                             result.model.state_dict())
    assert store.delete([gone, "no-such-run"]) == 1
    assert store.delete(keep) == 1  # one id as a plain string
    assert store.runs().empty
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM weights").fetchone()[0] == 0


def test_exports_selected_runs_as_json_and_csv(store):
    a = save(store, make_config(), 0, "GRU", "text_recall", make_result().record())
    save(store, make_config(), 1, "GRU", "text_recall", make_result().record())
    records = json.loads(store.export_json([a]))
    assert [r["id"] for r in records] == [a] and records[0]["history"] == store.get(a)["history"]
    summary = pd.read_csv(io.StringIO(store.export_csv([a])))
    assert list(summary["id"]) == [a] and summary["test_accuracy"].item() == 0.75
    epochs = pd.read_csv(io.StringIO(store.export_csv([a], history=True)))
    assert list(epochs.columns[:3]) == ["run_id", "label", "epoch"] and list(epochs["epoch"]) == [1, 2, 3]


def test_misuse_gets_actionable_messages(store):
    run_id = store.start_run(make_config(), 0, "GRU", "text_recall", environment())
    with pytest.raises(StoreError, match=re.escape(
            "cannot finish a run with status 'done'; use one of: completed, cancelled, diverged, failed, "
            "interrupted.")):
        store.finish_run(run_id, "done", "", {})
    store.finish_run(run_id, "failed", "out of memory", {})
    with pytest.raises(StoreError, match=re.escape(
            f"run {run_id!r} is already failed; only a running run can be finished.")):
        store.finish_run(run_id, "completed", "", {})
    with pytest.raises(StoreError, match=re.escape(
            f"run {run_id!r} is failed, not running; start a new run to log epochs.")):
        store.log_epoch(run_id, {"epoch": 1})
    with pytest.raises(StoreError, match=re.escape(
            f"no run 'nope' in {store.path}; pick one listed by RunStore.runs().")):
        store.get("nope")
    with pytest.raises(StoreError, match=re.escape(
            "cannot store a value as JSON: object is not JSON serialisable; pass plain numbers")):
        store.start_run({"bad": object()}, 0, "GRU", "text_recall", {})
    with pytest.raises(StoreError, match=re.escape("seed must be an integer, got '0'.")):
        store.start_run(make_config(), "0", "GRU", "text_recall", {})


def test_location_comes_from_argument_then_lookback_db_then_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("LOOKBACK_DB", raising=False)
    assert store_path() == REPO / "data" / "lookback.sqlite"
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "env" / "x.sqlite"))
    with RunStore() as s:
        assert s.path == tmp_path / "env" / "x.sqlite" and s.path.exists()
    with RunStore(tmp_path / "arg.sqlite") as s:
        assert s.path == tmp_path / "arg.sqlite"
    with sqlite3.connect(tmp_path / "arg.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# -- crash safety -------------------------------------------------------------------------------------


def test_run_of_a_dead_writer_becomes_interrupted_and_keeps_its_epochs(tmp_path):
    path = tmp_path / "runs.sqlite"
    code = ("import sys; from lib.store import RunStore; s = RunStore(sys.argv[1]); "
            "r = s.start_run({'model': {}}, 0, 'LSTM', 'text_recall', {}); "
            "s.log_epoch(r, {'epoch': 1, 'train_loss': 2.0}); print(r)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
                         check=True, cwd=REPO)
    run_id = out.stdout.strip()  # the child exited without finishing the run
    with RunStore(path) as s:
        rec = s.get(run_id)
        assert rec["status"] == "interrupted"
        assert rec["message"].startswith(
            f"interrupted: its process (pid {rec['pid']} on {rec['host']}) ended before the run finished")
        assert rec["history"] == [{"epoch": 1, "train_loss": 2.0}]
        assert s.runs(status="completed").empty
        assert s.find({"model": {}}, 0, code_fingerprint()) is None


def test_reused_pid_is_not_taken_for_the_writer_but_a_live_writer_keeps_running(store):
    alive = store.start_run(make_config(), 0, "GRU", "text_recall", {})
    reused = store.start_run(make_config(), 1, "GRU", "text_recall", {})
    with sqlite3.connect(store.path) as db:  # same pid as ours, but a process that started a minute earlier
        db.execute("UPDATE runs SET proc_created = proc_created - 60 WHERE id = ?", (reused,))
    with RunStore(store.path) as reopened:
        assert reopened.get(alive)["status"] == "running"
        assert reopened.get(reused)["status"] == "interrupted"
    with sqlite3.connect(store.path) as db:  # a run written on another host cannot be checked: left alone
        db.execute("UPDATE runs SET host = 'elsewhere', pid = 999999999 WHERE id = ?", (alive,))
    assert store.recover() == [] and store.get(alive)["status"] == "running"


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "runs.sqlite")
    RunStore(path).close()
    ctx = multiprocessing.get_context("fork")  # cheap; no store is open here while forking
    workers = [ctx.Process(target=_write_runs, args=(path, w, 100)) for w in (0, 1)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    with RunStore(path) as s:
        frame = s.runs()
        assert len(frame) == 200 and set(frame["status"]) == {"completed"}
        assert set(frame["label"]) == {f"w{w}-{i}" for w in (0, 1) for i in range(100)}
        assert (frame["epochs"] == 3).all()
        assert s.history(frame["id"].iloc[0])["epoch"].tolist() == [1, 2, 3]


def _open_at_once(path: str, barrier) -> None:
    barrier.wait()
    try:
        RunStore(path).close()
    except StoreError as e:
        print(e, flush=True)
        os._exit(1)


def test_processes_opening_a_new_store_at_the_same_moment_all_open_it(tmp_path):
    """E.g. two jobs of a fresh server start at once: none finds the file another has just created still empty."""
    ctx = multiprocessing.get_context("fork")
    for i in range(10):
        path, barrier = str(tmp_path / f"runs{i}.sqlite"), ctx.Barrier(4)
        procs = [ctx.Process(target=_open_at_once, args=(path, barrier)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        assert [p.exitcode for p in procs] == [0] * 4
        with RunStore(path) as s:
            assert s.runs().empty
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".new")) == []  # nothing left beside


# -- foreign, damaged and older files -----------------------------------------------------------------


def test_random_bytes_are_refused_and_left_untouched(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(os.urandom(4096))
    before = path.read_bytes()
    with pytest.raises(StoreError, match=re.escape(
            f"{path} is not a SQLite database (corrupt or some other kind of file). {LEAVE}")):
        RunStore(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite"]


def test_other_applications_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO users (name) VALUES ('ada')")
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=re.escape(
            f"{path} is a SQLite database of another application (tables: users), not a Lookback run "
            f"store. {LEAVE}")):
        RunStore(path)
    assert path.read_bytes() == before
    tagged = tmp_path / "tagged.db"  # another application's id, even without tables
    with sqlite3.connect(tagged) as db:
        db.execute("PRAGMA application_id = 42")
    db.close()
    with pytest.raises(StoreError, match=re.escape(f"{tagged} is a SQLite database of another application "
                                                   f"(tables: none)")):
        RunStore(tagged)


def test_damaged_store_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as s:
        save(s, make_config(), 0, "GRU", "text_recall", make_result().record())
    data = bytearray(path.read_bytes())
    data[100:] = bytes(len(data) - 100)  # keep the header, wipe every page
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=re.escape(f"{path} is a damaged SQLite database (")):
        RunStore(path)
    assert path.read_bytes() == bytes(data)


def test_store_from_a_newer_lookback_is_refused(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=re.escape(
            f"{path} was written by a newer Lookback (schema version {SCHEMA_VERSION + 1}; this one reads up "
            f"to {SCHEMA_VERSION}); upgrade Lookback or set LOOKBACK_DB to another file.")):
        RunStore(path)
    assert path.read_bytes() == before


def test_version_1_store_is_migrated_and_keeps_its_runs(tmp_path):
    path = tmp_path / "runs.sqlite"
    v1 = (
        "CREATE TABLE runs (id TEXT PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL, "
        "task TEXT NOT NULL, label TEXT NOT NULL, config TEXT NOT NULL, config_hash TEXT NOT NULL, "
        "seed INTEGER NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', "
        "metrics TEXT NOT NULL DEFAULT '{}', env TEXT NOT NULL DEFAULT '{}', version TEXT NOT NULL, "
        "best_epoch INTEGER, n_params INTEGER, pid INTEGER, host TEXT)",
        "CREATE TABLE history (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, "
        "epoch INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (run_id, epoch)) WITHOUT ROWID",
        "CREATE TABLE weights (run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE, "
        "data BLOB NOT NULL)",
    )
    cfg = {"model": {"kind": "rnn"}}
    db = sqlite3.connect(path)
    for sql in v1:
        db.execute(sql)
    db.execute("INSERT INTO runs VALUES ('old1', '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00', "
               "'text_recall', 'RNN', ?, ?, 3, 'completed', 'done', '{\"accuracy\": 0.5}', "
               "'{\"lookback\": \"0.0.9\"}', '0.0.9', 1, 99, NULL, NULL)",
               (json.dumps(cfg), config_hash(cfg)))
    db.execute("INSERT INTO history VALUES ('old1', 1, '{\"epoch\": 1, \"train_loss\": 0.7}')")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    assert len(MIGRATIONS) == SCHEMA_VERSION >= 3
    with RunStore(path) as s:
        rec = s.get("old1")
        assert (rec["status"], rec["code"], rec["proc_created"]) == ("completed", None, None)
        assert rec["history"] == [{"epoch": 1, "train_loss": 0.7}]
        assert s.find(cfg, 3, code_fingerprint()) is None  # made by unknown code: never reused
        assert s.runs()["test_accuracy"].tolist() == [0.5]
        new = s.start_run(cfg, 3, "RNN", "text_recall", environment())
        s.finish_run(new, "completed", "", {})
        assert s.find(cfg, 3, code_fingerprint())["id"] == new
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _old_schema(path: Path, version: int) -> sqlite3.Connection:
    """A database with the first `version` migration steps: they are append-only, so its schema is that version's."""
    db = sqlite3.connect(path)
    for step in MIGRATIONS[:version]:
        for sql in step:
            db.execute(sql)
    return db


def _close_as(db: sqlite3.Connection, version: int) -> None:
    """Mark the database as Lookback's run store of that schema version, and close it."""
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


def test_version_2_store_loses_its_dead_columns_and_its_running_runs_are_checked(tmp_path):
    path = tmp_path / "runs.sqlite"
    db = _old_schema(path, 2)
    cfg = {"model": {"kind": "gru"}}
    row = ("'2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00', 'text_recall', 'GRU', ?, ?, 0, ?, "
           "'', '{}', '{\"lookback\": \"0.1.0\"}', '0.1.0'")
    db.execute(f"INSERT INTO runs (id, created, updated, task, label, config, config_hash, seed, status, message, "
               f"metrics, env, version, costs) VALUES ('done', {row}, '{{\"flops\": 5}}')",
               (json.dumps(cfg), config_hash(cfg), "completed"))
    db.execute(f"INSERT INTO runs (id, created, updated, task, label, config, config_hash, seed, status, message, "
               f"metrics, env, version, pid, host, proc_start) VALUES ('live', {row}, ?, ?, 12345)",
               (json.dumps(cfg), config_hash(cfg), "running", 999_999_999, socket.gethostname()))
    _close_as(db, 2)
    with RunStore(path) as s:
        assert s.get("done")["status"] == "completed" and s.get("done")["code"] is None
        assert s.get("live")["status"] == "interrupted"  # pid 999999999 does not exist
    with sqlite3.connect(path) as db:
        columns = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
        indexed = [r[2] for r in db.execute("PRAGMA index_info(runs_reuse)")]
    db.close()
    assert {"code", "proc_created"} <= columns and not {"costs", "proc_start"} & columns
    assert indexed == ["config_hash", "seed", "code", "status"]


def test_a_store_of_the_previous_schema_gains_the_owner_column(tmp_path):
    path = tmp_path / "v3.sqlite"
    db = _old_schema(path, 3)
    db.execute("INSERT INTO runs (id, created, updated, task, label, config, config_hash, seed, status, version) "
               "VALUES ('old', '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00', 'text_recall', 'GRU', "
               "'{}', 'h', 0, 'completed', '0.1.0')")
    _close_as(db, 3)
    with RunStore(path) as s:
        assert s.get("old")["owner"] is None
        assert s.scoped("alice").runs().empty
        assert list(s.runs()["id"]) == ["old"]


def test_a_change_to_the_result_defining_sources_stops_reuse(tmp_path, monkeypatch, tiny_text_config):
    lib = REPO / "lib"
    copy = tmp_path / "lib"
    shutil.copytree(lib / "tasks", copy / "tasks")
    for name in ("train.py", "models.py"):
        shutil.copy(lib / name, copy / name)
    original = code_fingerprint()
    assert code_fingerprint(copy) == original
    (copy / "tasks" / "base.py").write_text((lib / "tasks" / "base.py").read_text() + "\n")
    edited = code_fingerprint(copy)
    assert re.fullmatch(r"[0-9a-f]{16}", edited) and edited != original
    (copy / "train.py").write_text((lib / "train.py").read_text().replace("def ", "def_", 1))  # the same size
    assert code_fingerprint(copy) not in (original, edited)

    model, tc = ModelConfig(kind="rnn", hidden=4), TrainConfig(epochs=1, patience=0, device="cpu")
    with RunStore(tmp_path / "runs.sqlite") as s:
        first = run_one(tiny_text_config, model, tc, s)
        assert run_one(tiny_text_config, model, tc, s).run_id == first.run_id  # same sources: reused
        monkeypatch.setattr(runtime, "code_fingerprint", lambda root=None: edited)
        second = run_one(tiny_text_config, model, tc, s)
        assert second.run_id != first.run_id and not second.message.startswith("reused")
        assert (s.get(first.run_id)["code"], s.get(second.run_id)["code"]) == (original, edited)
        assert run_one(tiny_text_config, model, tc, s).run_id == second.run_id  # reused under the new code


# -- faults: an empty or damaged file, a lock, read-only files, a full disk, a dead writer ------------


def test_a_zero_byte_store_is_refused_not_replaced_by_an_empty_one(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"")
    with pytest.raises(StoreError, match=re.escape(f"{path} is empty (0 bytes): it is not a run store, or a run "
                                                   f"store that was cut short and lost its runs.")):
        RunStore(path)
    assert path.read_bytes() == b"" and sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite"]


def _store_with_runs(path: Path, n: int = 30) -> None:
    with RunStore(path) as s:
        record = {"status": "completed", "message": "ok", "test": {"accuracy": 0.5}, "env": environment(),
                  "history": [{"epoch": e, "train_loss": 1.0 / e} for e in range(1, 20)]}
        s.save_results([{"config": {"i": i, "pad": "x" * 2000}, "seed": 0, "label": "GRU", "task": "text_recall",
                         "record": record, "state_dict": {"w": torch.randn(2000)}} for i in range(n)])


def test_damaged_pages_after_the_first_are_a_store_error(tmp_path):
    path = tmp_path / "runs.sqlite"
    _store_with_runs(path)
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(np.random.default_rng(0).bytes(path.stat().st_size - 4096))
    with pytest.raises(StoreError, match=re.escape(f"the run store {path} is a damaged SQLite database (")):
        with RunStore(path) as s:
            s.runs()


def test_damaged_weights_are_a_store_error(tmp_path):
    path = tmp_path / "runs.sqlite"
    _store_with_runs(path, 1)
    with RunStore(path) as s:
        (run_id,) = s.runs()["id"]
        with sqlite3.connect(path) as db:
            (blob,) = db.execute("SELECT data FROM weights").fetchone()
            db.execute("UPDATE weights SET data = ?", (blob[:300] + bytes(40) + blob[340:],))
        with pytest.raises(StoreError, match=re.escape(f"the weights of run {run_id!r} in {path} are damaged (")):
            s.load_weights(run_id)


def test_a_write_lock_held_past_the_busy_timeout_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as s:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match=re.escape(
                    f"the run store {path} is locked by another process (database is locked), longer than the "
                    f"0.2 s Lookback waits;")):
                s.start_run({}, 0, "GRU", "text_recall", environment())
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert s.runs().empty


def _as_unprivileged(code: str, path: Path) -> subprocess.CompletedProcess:
    """Run `code` in a Python child that file permissions bind: as root, without the capabilities that
    override them (setpriv drops them from the bounding set, so the child never gets them)."""
    env = {**os.environ, "LOOKBACK_DB": str(path), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file permissions cannot bind a child process")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]
    return subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


OPEN_AND_WRITE = """
    from lib.store import RunStore, StoreError
    try:
        RunStore().start_run({}, 0, "GRU", "text_recall", {})
    except StoreError as e:
        print(e)
"""


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_store_is_named_and_left_untouched(tmp_path_factory, what):
    folder = tmp_path_factory.mktemp("ro", numbered=True)
    path = folder / "runs.sqlite"
    RunStore(path).close()
    before = path.read_bytes()
    folder.chmod(0o755 if what == "file" else 0o555)
    path.chmod(0o444 if what == "file" else 0o644)
    try:
        out = _as_unprivileged(OPEN_AND_WRITE, path)
    finally:
        folder.chmod(0o755)
    assert out.stdout.strip() == (f"the run store {path} is read-only (its {what} cannot be written), so no run "
                                  f"could be saved; make it writable or set LOOKBACK_DB to a writable file."), out
    assert path.read_bytes() == before


def test_a_full_disk_is_named_and_nothing_of_the_write_is_kept(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    code = f"""
        import resource, signal, torch
        from lib.store import RunStore, StoreError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing us
        store = RunStore()
        resource.setrlimit(resource.RLIMIT_FSIZE, ({2**20}, {2**20}))
        try:
            store.save_results([{{"config": {{}}, "seed": 0, "label": "GRU", "task": "text_recall",
                                 "record": {{"status": "completed", "message": "", "history": [], "test": {{}},
                                            "env": {{}}}}, "state_dict": {{"w": torch.randn(2**20)}}}}])
        except StoreError as e:
            print(e)
    """
    out = _as_unprivileged(code, path)
    assert out.stdout.startswith(f"the run store {path} could not be read or written (disk I/O error): the disk "
                                 f"may be full, failing or over a file-size limit."), out
    with RunStore(path) as s:
        assert s.runs().empty


def test_a_run_whose_final_write_fails_on_a_full_disk_is_stored_failed_not_running(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    code = f"""
        import os, resource, signal
        from lib.models import ModelConfig
        from lib.runs import run_one
        from lib.store import RunStore, StoreError
        from lib.tasks.text import TextRecallConfig
        from lib.train import TrainConfig
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing us

        def fill_disk(record):  # after the last epoch is stored: room for a small write, not for the weights
            room = max(os.path.getsize(p) for p in ("{path}", "{path}-wal") if os.path.exists(p)) + 2**18
            resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

        task = TextRecallConfig(distance=2, n_train=300, n_val=100, n_test=100, seed=1)
        try:  # 2 MB of weights
            run_one(task, ModelConfig(kind="gru", hidden=256), TrainConfig(epochs=1), store=RunStore(),
                    on_epoch=fill_disk)
        except StoreError as e:
            print(e)
    """
    out = _as_unprivileged(code, path)
    assert "could not be read or written (disk I/O error)" in out.stdout, out
    with RunStore(path) as s:
        runs = s.runs()
        assert list(runs["status"]) == [Status.FAILED]  # never left "running" while its process lives on
        assert runs["message"][0].startswith(f"its result could not be stored: the run store {path} could not be "
                                             f"read or written (disk I/O error)")
        assert list(runs["epochs"]) == [1] and s.load_weights(runs["id"][0]) is None


def test_a_run_whose_process_died_shows_interrupted_in_an_open_store_within_seconds(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as app_store:  # opened first, as the app's cached store is
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
            import sys, time
            from lib.store import RunStore
            RunStore(sys.argv[1]).start_run({}, 0, "GRU", "text_recall", {})
            print("started", flush=True)
            time.sleep(600)
        """), str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        assert child.stdout.readline().strip() == "started"
        assert app_store.runs()["status"].tolist() == [Status.RUNNING]
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + store_module.RECOVER_EVERY_S + 5
        while app_store.runs()["status"].tolist() != [Status.INTERRUPTED] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert app_store.runs()["status"].tolist() == [Status.INTERRUPTED]


# -- visitors' runs in one store: views scoped to one owner (hosted mode) -----------------------------


def _train(store, epochs=2) -> list[str]:
    comp = compare(TASK, [TINY], TrainConfig(epochs=epochs), (0,), store=store)
    return [r.run_id for r in comp.runs]


def test_visitors_see_reuse_and_delete_only_their_own_runs(store):
    alice, bob = store.scoped("alice"), store.scoped("bob")
    (a,) = _train(alice)
    assert list(alice.runs()["id"]) == [a]
    assert bob.runs().empty
    with pytest.raises(StoreError, match="^no run "):
        bob.get(a)
    with pytest.raises(StoreError, match="^no run "):
        bob.load_weights(a)
    assert bob.delete([a]) == 0
    assert alice.get(a)["owner"] == "alice"
    (b,) = _train(bob)  # the same config and seed: bob trains his own instead of reusing alice's
    assert b != a
    (again,) = _train(alice)
    assert again == a  # alice reuses her own
    assert set(store.runs()["id"]) == {a, b}  # unscoped (local use, the CLI): every run
    assert alice.delete([a, b]) == 1
    assert list(store.runs()["id"]) == [b]


def test_a_visitor_cannot_log_to_or_finish_anothers_run(store):
    run = store.scoped("alice").start_run({"model": {}}, 0, "GRU", "text_recall", {})
    bob = store.scoped("bob")
    with pytest.raises(StoreError, match="^no run "):
        bob.log_epoch(run, {"epoch": 1, "train_loss": 1.0})
    with pytest.raises(StoreError, match="^no run "):
        bob.finish_run(run, "cancelled", "", {})
    assert store.get(run)["status"] == "running"


def test_an_imported_bundle_belongs_to_the_importer_and_is_never_reused_for_others(store):
    ids = _train(store.scoped("maker"))
    bundle = export_bundle(store.scoped("maker"), ids)
    mallory, alice = store.scoped("mallory"), store.scoped("alice")
    (imported,) = import_bundle(mallory, bundle).imported
    assert store.get(imported)["owner"] == "mallory"
    (trained,) = _train(alice)
    assert trained not in (imported, *ids)
    assert alice.get(trained)["history"]  # alice's own training, not a reused import


def test_the_storage_quota_refuses_a_write_beyond_it_and_writes_nothing(store):
    maker = store.scoped("maker")
    bundle = export_bundle(maker, [r.run_id for r in compare(TASK, [TINY], TrainConfig(epochs=2), (0, 1),
                                                              store=maker).runs])
    alice = store.scoped("alice", quota=2)
    (first,) = _train(alice, epochs=3)
    assert _train(alice, epochs=3) == [first]  # reusing a stored run writes nothing
    with pytest.raises(StoreError) as err:
        import_bundle(alice, bundle)
    assert str(err.value) == ("keeping 2 more run(s) would exceed the limit of 2 runs per visitor (1 kept now); "
                              "delete runs you no longer need, or export them as a bundle first.")
    assert list(alice.runs()["id"]) == [first]
    compare(TASK, [TINY], TrainConfig(epochs=2), (1,), store=alice)
    with pytest.raises(StoreError, match="^keeping 1 more run"):
        compare(TASK, [TINY], TrainConfig(epochs=2), (2,), store=alice)
    assert len(alice.runs()) == 2
    assert store.scoped("bob", quota=2).start_run({"model": {}}, 0, "GRU", "text_recall", {})


def test_closing_a_view_leaves_the_store_open(store):
    store.scoped("alice").close()
    assert store.runs().empty
