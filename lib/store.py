"""The persistent run store: one embedded SQLite file of runs, per-epoch history and optional weights.

Safe for several processes at once (WAL journal, busy timeout, `BEGIN IMMEDIATE` for every write) and
for several threads sharing one store (a lock around the connection). A run whose writer died while it
was running is marked "interrupted" when a store is opened, never shown as completed. A file that is not
a Lookback store is refused with a `StoreError` and left byte-for-byte untouched.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from lib.errors import ConfigError
from lib.runtime import __version__

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "lookback.sqlite"
ENV_VAR = "LOOKBACK_DB"
APPLICATION_ID = int.from_bytes(b"LkBk", "big")  # PRAGMA application_id: marks the file as ours
RUNNING, COMPLETED, CANCELLED, DIVERGED, FAILED, INTERRUPTED = (
    "running", "completed", "cancelled", "diverged", "failed", "interrupted")
FINAL_STATUSES = (COMPLETED, CANCELLED, DIVERGED, FAILED, INTERRUPTED)
STATUSES = (RUNNING, *FINAL_STATUSES)
BUSY_TIMEOUT_S = 30.0
_SQLITE_MAGIC = b"SQLite format 3\x00"
_LEAVE = "Lookback left it untouched; move it away or set LOOKBACK_DB to another file."

# Schema migrations: MIGRATIONS[v] takes a store from user_version v to v + 1. Append, never edit.
MIGRATIONS: list[tuple[str, ...]] = [
    (  # v1: runs, per-epoch history, weights
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            created TEXT NOT NULL,          -- ISO 8601, UTC
            updated TEXT NOT NULL,
            task TEXT NOT NULL,
            label TEXT NOT NULL,
            config TEXT NOT NULL,           -- JSON object as given by the caller
            config_hash TEXT NOT NULL,      -- sha256 of canonical JSON (sorted keys)
            seed INTEGER NOT NULL,
            status TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT '',
            metrics TEXT NOT NULL DEFAULT '{}',  -- JSON: final (test) metrics
            env TEXT NOT NULL DEFAULT '{}',      -- JSON: environment incl. the Lookback version
            version TEXT NOT NULL,               -- Lookback version of the writer
            best_epoch INTEGER,
            n_params INTEGER,
            pid INTEGER,                    -- writer process, to detect runs whose writer died
            host TEXT
        )""",
        """CREATE TABLE history (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            epoch INTEGER NOT NULL,
            record TEXT NOT NULL,           -- JSON: one epoch's record
            PRIMARY KEY (run_id, epoch)
        ) WITHOUT ROWID""",
        """CREATE TABLE weights (
            run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
            data BLOB NOT NULL              -- torch.save(state_dict)
        )""",
        "CREATE INDEX runs_reuse ON runs (config_hash, seed, version, status)",
        "CREATE INDEX runs_task ON runs (task, created)",
    ),
    (  # v2: costs, and the writer's process start time so that a reused pid is not taken for the writer
        "ALTER TABLE runs ADD COLUMN costs TEXT",
        "ALTER TABLE runs ADD COLUMN proc_start INTEGER",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)
RUN_COLUMNS = ("id", "created", "updated", "task", "label", "status", "seed", "epochs", "best_epoch",
               "n_params", "config_hash", "version", "message")


class StoreError(ConfigError):
    """The run store cannot be opened or cannot do what was asked; the message says what to do."""


def config_hash(config: Mapping) -> str:
    """sha256 of the canonical JSON of a config (sorted keys, no whitespace)."""
    return hashlib.sha256(_dumps(config, canonical=True).encode()).hexdigest()


def default_path() -> Path:
    """LOOKBACK_DB when set, else data/lookback.sqlite in the repository."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


class RunStore:
    """Runs, their per-epoch history and weights in one SQLite file.

    path: the database file; default `default_path()`. Opening creates or migrates the schema and marks
    runs whose writer process has died as "interrupted".
    """

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_path()
        self._lock = threading.RLock()
        _check_file(self.path)
        self._pid = os.getpid()
        try:
            self._conn = self._connect()
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the run store {self.path} ({e}); check that its folder is "
                             f"writable or set LOOKBACK_DB to another file.") from e
        try:
            self._migrate()
            self.recover()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- writing -------------------------------------------------------------------------------------

    def start_run(self, config: dict, seed: int, label: str, task: str, env: dict) -> str:
        """Record a new run with status "running" and return its id."""
        row = _new_row(config, seed, label, task, env)
        row |= {"status": RUNNING, "pid": os.getpid(), "host": socket.gethostname(),
                "proc_start": _proc_start(os.getpid())}
        with self._write() as db:
            return _insert_run(db, row)

    def log_epoch(self, run_id: str, record: dict) -> None:
        """Append (or replace) one epoch's record of a running run; record["epoch"] numbers it."""
        with self._write() as db:
            status = self._status(db, run_id)
            if status != RUNNING:
                raise StoreError(f"run {run_id!r} is {status}, not running; start a new run to log epochs.")
            if "epoch" not in record:
                n = db.execute("SELECT COUNT(*) FROM history WHERE run_id = ?", (run_id,)).fetchone()[0]
                record = {"epoch": n + 1, **record}
            _insert_history(db, run_id, [record])
            db.execute("UPDATE runs SET updated = ? WHERE id = ?", (_now(), run_id))

    def finish_run(self, run_id: str, status: str, message: str, metrics: dict, costs: dict | None = None,
                   state_dict=None, *, best_epoch: int | None = None, n_params: int | None = None) -> None:
        """Close a running run with its final status, message, metrics and optionally costs and weights."""
        if status not in FINAL_STATUSES:
            raise StoreError(f"cannot finish a run with status {status!r}; use one of: "
                             f"{', '.join(FINAL_STATUSES)}.")
        blob = _dump_state(state_dict) if state_dict is not None else None
        with self._write() as db:
            current = self._status(db, run_id)
            if current != RUNNING:
                raise StoreError(f"run {run_id!r} is already {current}; only a running run can be finished.")
            db.execute(
                "UPDATE runs SET status = ?, message = ?, metrics = ?, costs = ?, best_epoch = ?, "
                "n_params = ?, updated = ? WHERE id = ?",
                (status, str(message), _dumps(_mapping(metrics, "metrics")),
                 None if costs is None else _dumps(_mapping(costs, "costs")), best_epoch, n_params, _now(),
                 run_id))
            if blob is not None:
                db.execute("INSERT OR REPLACE INTO weights (run_id, data) VALUES (?, ?)", (run_id, blob))

    def save_result(self, config: dict, seed: int, label: str, task: str, result_record: dict,
                    state_dict=None) -> str:
        """Store a finished run in one transaction; result_record is `lib.train.RunResult.record()`."""
        return self.save_results([{"config": config, "seed": seed, "label": label, "task": task,
                                   "record": result_record, "state_dict": state_dict}])[0]

    def save_results(self, items: Iterable[dict]) -> list[str]:
        """Store several finished runs atomically: all of them or, on any error, none.

        Each item has keys config, seed, label, task, record (as in `save_result`) and optionally
        state_dict and created (an ISO timestamp to keep, e.g. from an imported bundle).
        """
        rows = []
        for item in items:
            rec = _mapping(item["record"], "result record")
            missing = [k for k in ("status", "message", "history", "test", "env") if k not in rec]
            if missing:
                raise StoreError(f"result record lacks {', '.join(missing)}; pass RunResult.record().")
            if rec["status"] not in FINAL_STATUSES:
                raise StoreError(f"a saved result must be finished; status {rec['status']!r} is not one of: "
                                 f"{', '.join(FINAL_STATUSES)}.")
            row = _new_row(item["config"], item["seed"], item["label"], item["task"], rec["env"])
            if item.get("created"):
                row["created"] = item["created"]
            row |= {"status": rec["status"], "message": str(rec["message"]),
                    "metrics": _dumps(_mapping(rec["test"], "test metrics")),
                    "costs": None if rec.get("costs") is None else _dumps(_mapping(rec["costs"], "costs")),
                    "best_epoch": rec.get("best_epoch"), "n_params": rec.get("n_params"),
                    "pid": os.getpid(), "host": socket.gethostname()}
            history = [{"epoch": i, **r} if "epoch" not in r else r for i, r in enumerate(rec["history"], 1)]
            sd = item.get("state_dict")
            rows.append((row, history, _dump_state(sd) if sd is not None else None))
        ids = []
        with self._write() as db:
            for row, history, blob in rows:
                run_id = _insert_run(db, row)
                _insert_history(db, run_id, history)
                if blob is not None:
                    db.execute("INSERT INTO weights (run_id, data) VALUES (?, ?)", (run_id, blob))
                ids.append(run_id)
        return ids

    def delete(self, run_ids: str | Iterable[str]) -> int:
        """Delete runs with their history and weights; returns how many existed."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        with self._write() as db:
            return sum(db.execute("DELETE FROM runs WHERE id = ?", (i,)).rowcount for i in ids)

    def recover(self) -> list[str]:
        """Mark running runs whose writer process on this host has ended as interrupted; returns their ids.

        Runs written on another host are left alone: their process cannot be checked from here.
        """
        host = socket.gethostname()
        with self._read() as db:
            rows = db.execute("SELECT id, pid, proc_start FROM runs WHERE status = ? AND host = ?",
                              (RUNNING, host)).fetchall()
        dead = [(i, pid) for i, pid, start in rows if not _process_alive(pid, start)]
        if not dead:
            return []
        with self._write() as db:
            for run_id, pid in dead:
                db.execute(
                    "UPDATE runs SET status = ?, message = ?, updated = ? WHERE id = ? AND status = ?",
                    (INTERRUPTED, f"interrupted: its process (pid {pid} on {host}) ended before the run "
                                  f"finished; the history holds the epochs it logged. Run it again to get "
                                  f"a complete result.", _now(), run_id, RUNNING))
        return [i for i, _ in dead]

    # -- reading -------------------------------------------------------------------------------------

    def get(self, run_id: str) -> dict:
        """The full record of one run, with its history as a list of epoch records."""
        with self._read() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise self._unknown(run_id)
            history = [json.loads(r) for (r,) in db.execute(
                "SELECT record FROM history WHERE run_id = ? ORDER BY epoch", (run_id,))]
            has_weights = db.execute("SELECT 1 FROM weights WHERE run_id = ?", (run_id,)).fetchone()
        rec = dict(row)
        for key in ("config", "metrics", "env", "costs"):
            rec[key] = None if rec[key] is None else json.loads(rec[key])
        return rec | {"history": history, "has_weights": has_weights is not None}

    def history(self, run_id: str) -> pd.DataFrame:
        """One row per logged epoch, ordered by epoch."""
        records = self.get(run_id)["history"]
        return pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["epoch"])

    def runs(self, task: str | None = None, status: str | Iterable[str] | None = None) -> pd.DataFrame:
        """One row per run, newest first.

        Columns: RUN_COLUMNS plus test_<metric> for each final metric and cost_<name> for each scalar cost.
        """
        where, args = [], []
        if task is not None:
            where.append("task = ?")
            args.append(task)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args += statuses
        sql = ("SELECT r.*, (SELECT COUNT(*) FROM history h WHERE h.run_id = r.id) AS epochs FROM runs r"
               + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY created DESC, rowid DESC")
        with self._read() as db:
            rows = [dict(r) for r in db.execute(sql, args)]
        return _runs_frame(rows)

    def find(self, config: dict, seed: int, version: str = __version__) -> dict | None:
        """The latest completed run with this config (by hash), seed and Lookback version, if any."""
        with self._read() as db:
            row = db.execute(
                "SELECT id FROM runs WHERE config_hash = ? AND seed = ? AND version = ? AND status = ? "
                "ORDER BY created DESC, rowid DESC LIMIT 1",
                (config_hash(config), seed, version, COMPLETED)).fetchone()
        return None if row is None else self.get(row["id"])

    def load_weights(self, run_id: str) -> dict | None:
        """The run's state_dict on the CPU (loaded with weights_only=True), or None when none was saved."""
        with self._read() as db:
            row = db.execute("SELECT data FROM weights WHERE run_id = ?", (run_id,)).fetchone()
            if row is None and db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise self._unknown(run_id)
        return None if row is None else _load_state(row["data"])

    def export_json(self, run_ids: Iterable[str]) -> str:
        """Full records (config, history, metrics, environment; no weights) of the runs, as a JSON list."""
        return json.dumps([self.get(i) for i in run_ids], indent=1, default=_json_default)

    def export_csv(self, run_ids: Iterable[str], history: bool = False) -> str:
        """The runs' summary rows (as in `runs`), or with history=True their per-epoch rows, as CSV."""
        ids = list(run_ids)
        if history:
            frames = [pd.DataFrame(r["history"] or {"epoch": []}).assign(run_id=r["id"], label=r["label"])
                      for r in map(self.get, ids)]
            frame = pd.concat([pd.DataFrame(columns=["run_id", "label"]), *frames], ignore_index=True)
            frame = frame[["run_id", "label", *[c for c in frame.columns if c not in ("run_id", "label")]]]
        else:
            frame = self.runs()
            frame = frame[frame["id"].isin(ids)]
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        return buf.getvalue()

    # -- internals -----------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # durable across app crashes; WAL keeps it consistent
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StoreError(f"the run store {self.path} is closed; open a new RunStore.")
            if self._pid != os.getpid():  # forked: a SQLite connection must not cross a fork
                self._conn, self._pid = self._connect(), os.getpid()
            db = self._conn
            db.execute(begin)
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _write(self):
        return self._transaction("BEGIN IMMEDIATE")  # take the write lock up front: no upgrade deadlocks

    def _read(self):
        return self._transaction("BEGIN")  # one consistent snapshot across statements

    def _migrate(self) -> None:
        with self._read() as db:  # the common case needs no write lock
            if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                return
            if version > SCHEMA_VERSION:  # another process got there between the check and now
                raise _newer(self.path, version)
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            if app_id not in (0, APPLICATION_ID) or (app_id == 0 and _tables(db)):
                raise _foreign(self.path, _tables(db))
            for step in MIGRATIONS[version:]:
                for sql in step:
                    db.execute(sql)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _status(self, db: sqlite3.Connection, run_id: str) -> str:
        row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise self._unknown(run_id)
        return row["status"]

    def _unknown(self, run_id: str) -> StoreError:
        return StoreError(f"no run {run_id!r} in {self.path}; pick one listed by RunStore.runs().")


# -- file checks -------------------------------------------------------------------------------------


def _check_file(path: Path) -> None:
    """Refuse anything that is not an empty file, an empty SQLite database or a Lookback store, read-only."""
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a run store file; set LOOKBACK_DB to a file path.")
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the folder for the run store {path}: {e.strerror}; set "
                             f"LOOKBACK_DB to a writable location.") from e
        return
    try:
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as e:
        raise StoreError(f"cannot read the run store {path}: {e.strerror}; fix its permissions or set "
                         f"LOOKBACK_DB to another file.") from e
    if not header:
        return  # an empty file is an empty database
    if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
        raise StoreError(f"{path} is not a SQLite database (corrupt or some other kind of file). {_LEAVE}")
    # read-only probe: the raw header may be stale while a fresh store's first commit sits in the WAL
    try:
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            app_id = probe.execute("PRAGMA application_id").fetchone()[0]
            version = probe.execute("PRAGMA user_version").fetchone()[0]
            tables = _tables(probe)
        finally:
            probe.close()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path} is a damaged SQLite database ({e}). {_LEAVE}") from e
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
    elif app_id != 0 or tables:
        raise _foreign(path, tables)


def _tables(db: sqlite3.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def _foreign(path: Path, tables: list[str]) -> StoreError:
    shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "") or "none"
    return StoreError(f"{path} is a SQLite database of another application (tables: {shown}), not a "
                      f"Lookback run store. {_LEAVE}")


def _newer(path: Path, version: int) -> StoreError:
    return StoreError(f"{path} was written by a newer Lookback (schema version {version}; this one reads up "
                      f"to {SCHEMA_VERSION}); upgrade Lookback or set LOOKBACK_DB to another file.")


# -- writer liveness ---------------------------------------------------------------------------------


def _proc_start(pid: int) -> int | None:
    """The process start time in clock ticks since boot (Linux /proc), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22, counted after "pid (comm)"


def _process_alive(pid: int | None, start: int | None) -> bool:
    """False only when sure: no such process, a zombie, or a different process under the same pid."""
    if pid is None or os.name == "nt":  # on Windows os.kill(pid, 0) would send CTRL+C
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True  # no /proc (macOS): the pid exists, trust it
    if fields[0] == "Z":
        return False
    return start is None or int(fields[19]) == start


# -- rows and JSON -----------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _json_default(obj):
    if hasattr(obj, "item"):  # NumPy scalars and 0-d tensors
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _dumps(obj, canonical: bool = False) -> str:
    try:
        if canonical:
            return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
        return json.dumps(obj, default=_json_default)
    except (TypeError, ValueError) as e:
        raise StoreError(f"cannot store a value as JSON: {e}; pass plain numbers, strings, lists and "
                         f"dicts (e.g. dataclasses.asdict of a config).") from e


def _mapping(value, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise StoreError(f"{what} must be a dict, got {type(value).__name__}.")
    return value


def _new_row(config, seed, label, task, env) -> dict:
    config, env = _mapping(config, "config"), _mapping(env, "environment")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StoreError(f"seed must be an integer, got {seed!r}.")
    version = str(env.get("lookback") or __version__)
    now = _now()
    return {"created": now, "updated": now, "task": str(task), "label": str(label),
            "config": _dumps(config), "config_hash": config_hash(config), "seed": seed, "message": "",
            "env": _dumps({**env, "lookback": version}), "version": version}


def _insert_run(db: sqlite3.Connection, row: dict) -> str:
    cols = ", ".join(["id", *row])
    marks = ", ".join("?" * (len(row) + 1))
    while True:  # 48 random bits; retry on the rare collision
        run_id = secrets.token_hex(6)
        try:
            db.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", (run_id, *row.values()))
            return run_id
        except sqlite3.IntegrityError:
            if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise


def _insert_history(db: sqlite3.Connection, run_id: str, records: list[dict]) -> None:
    rows = []
    for rec in records:
        epoch = _mapping(rec, "epoch record").get("epoch")
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise StoreError(f"an epoch record's 'epoch' must be an integer, got {epoch!r}.")
        rows.append((run_id, epoch, _dumps(rec)))
    db.executemany("INSERT OR REPLACE INTO history (run_id, epoch, record) VALUES (?, ?, ?)", rows)


def _dump_state(state_dict) -> bytes:
    import torch

    if not isinstance(state_dict, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise StoreError("weights must be a state_dict mapping names to tensors (model.state_dict()).")
    buf = io.BytesIO()
    # clone: a view would otherwise drag its whole storage into the file
    torch.save({k: v.detach().cpu().clone() for k, v in state_dict.items()}, buf)
    return buf.getvalue()


def _load_state(blob: bytes) -> dict:
    import torch

    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


def _runs_frame(rows: list[dict]) -> pd.DataFrame:
    metric_cols: dict[str, None] = {}
    cost_cols: dict[str, None] = {}
    out = []
    for r in rows:
        flat = {c: r[c] for c in RUN_COLUMNS}
        for k, v in sorted(json.loads(r["metrics"] or "{}").items()):
            flat[f"test_{k}"] = v
            metric_cols[f"test_{k}"] = None
        costs = json.loads(r["costs"]) if r.get("costs") else {}
        for k, v in sorted(costs.items()):
            if isinstance(v, int | float) and not isinstance(v, bool):
                flat[f"cost_{k}"] = v
                cost_cols[f"cost_{k}"] = None
        out.append(flat)
    head = list(RUN_COLUMNS[:RUN_COLUMNS.index("n_params")])
    columns = [*head, *sorted(metric_cols), *sorted(cost_cols), *RUN_COLUMNS[len(head):]]
    frame = pd.DataFrame.from_records(out, columns=columns)
    for col in ("created", "updated"):
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    return frame


__all__ = ["COMPLETED", "FINAL_STATUSES", "INTERRUPTED", "RUNNING", "SCHEMA_VERSION", "STATUSES", "RunStore",
           "StoreError", "config_hash", "default_path"]
