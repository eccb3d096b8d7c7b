"""The persistent run store: one embedded SQLite file of runs, per-epoch history and optional weights.

Safe for several processes at once (WAL journal, busy timeout, `BEGIN IMMEDIATE` for every write) and
for several threads sharing one store (a lock around the connection). A run whose writer died while it
was running is marked "interrupted" when a store is opened and, in a long-lived process, within
RECOVER_EVERY_S of a listing; it is never shown as completed. `find` returns a completed run trained here
(never an imported one) only for the same config, seed and code fingerprint (`lib.runtime.code_fingerprint`).
A file that is not a Lookback store, an empty file, or a store that cannot be written is refused with a
`StoreError` and left byte-for-byte untouched; every SQLite fault later on (a held lock, a full disk, a
damaged page) is a `StoreError` that says what happened and what to do.

A store opened for an owner (a visitor of a shared server, see `RunStore.scoped`) stamps the runs it writes
with that owner and reads, reuses, exports and deletes only those: visitors never see, reuse or delete each
other's runs. Unscoped (local use, the CLI) it sees every run.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import psutil

from lib import __version__
from lib.errors import LookbackError
from lib.paths import store_path
from lib.runtime import Status

APPLICATION_ID = int.from_bytes(b"LkBk", "big")  # PRAGMA application_id: marks the file as ours
BUSY_TIMEOUT_S = 30.0
# Process create times are wall-clock readings that clock adjustments can shift a little; within this many
# seconds they count as the same process. A pid reused by another process starts later than that.
CREATE_TIME_TOLERANCE_S = 2.0
RECOVER_EVERY_S = 2.0  # a listing checks running runs' writers at most this often
ORIGINS = ("trained", "imported")  # where a run's result comes from; only trained runs are reused
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
    (  # v3 (DROP COLUMN needs SQLite 3.35+): the reuse key gets the code fingerprint, the writer is told
        # apart by its create time, and the never-written costs column goes
        "ALTER TABLE runs DROP COLUMN costs",
        "ALTER TABLE runs DROP COLUMN proc_start",
        "ALTER TABLE runs ADD COLUMN proc_created REAL",  # writer's create time, seconds since the epoch
        "ALTER TABLE runs ADD COLUMN code TEXT",  # fingerprint of the result-defining sources; NULL: unknown
        "DROP INDEX IF EXISTS runs_reuse",
        "CREATE INDEX runs_reuse ON runs (config_hash, seed, code, status)",
    ),
    (  # v4: the visitor a run belongs to on a shared server; NULL: no owner (local use, the CLI)
        "ALTER TABLE runs ADD COLUMN owner TEXT",
        "CREATE INDEX runs_owner ON runs (owner, created)",
    ),
    (  # v5: trained here, or imported from a bundle (listed, never reused as a training's result)
        "ALTER TABLE runs ADD COLUMN origin TEXT NOT NULL DEFAULT 'trained'",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)
RUN_COLUMNS = ("id", "created", "updated", "task", "label", "status", "seed", "epochs", "best_epoch",
               "n_params", "config_hash", "version", "code", "origin", "message")


class StoreError(LookbackError):
    """The run store cannot be opened or cannot do what was asked; the message says what to do."""


def config_hash(config: Mapping) -> str:
    """sha256 of the canonical JSON of a config (sorted keys, no whitespace)."""
    return hashlib.sha256(_dumps(config, canonical=True).encode()).hexdigest()


class RunStore:
    """Runs, their per-epoch history and weights in one SQLite file.

    path: the database file; default `lib.paths.store_path()`. Opening creates or migrates the schema and marks
    runs whose writer process has died as "interrupted". owner and quota: as in `scoped`.
    """

    def __init__(self, path: str | os.PathLike | None = None, owner: str | None = None,
                 quota: int | None = None):
        self.path = Path(path) if path is not None else store_path()
        self.owner, self.quota = owner, quota
        self._view = False
        self._lock = threading.RLock()
        self._recovered = 0.0  # time.monotonic() of the last recover()
        _check_file(self.path)
        self._pid = os.getpid()
        try:
            self._conn = self._connect()
        except sqlite3.Error as e:
            raise _fault(self.path, e) from e
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

    def scoped(self, owner: str | None, quota: int | None = None) -> RunStore:
        """This store as one owner sees it, sharing its connection: the runs it writes belong to `owner`, and
        it lists, gets, finds, exports and deletes only that owner's runs. quota: the most runs the owner may
        keep; a write beyond it raises StoreError and writes nothing. owner None: every run, no quota."""
        view = copy.copy(self)
        view.owner, view.quota, view._view = owner, quota, True
        return view

    def close(self) -> None:
        if self._view:  # the connection belongs to the store the view was made from
            return
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- writing -------------------------------------------------------------------------------------

    def start_run(self, config: dict, seed: int, label: str, task: str, env: dict) -> str:
        """Record a new run with status "running" and return its id."""
        row = _new_row(config, seed, label, task, env)
        row |= {"status": Status.RUNNING, "pid": os.getpid(), "host": socket.gethostname(),
                "proc_created": psutil.Process().create_time(), "owner": self.owner}
        with self._write() as db:
            self._check_quota(db, 1)
            return _insert_run(db, row)

    def log_epoch(self, run_id: str, record: dict) -> None:
        """Append (or replace) one epoch's record of a running run; record["epoch"] numbers it."""
        with self._write() as db:
            status = self._status(db, run_id)
            if status != Status.RUNNING:
                raise StoreError(f"run {run_id!r} is {status}, not running; start a new run to log epochs.")
            if "epoch" not in record:
                n = db.execute("SELECT COUNT(*) FROM history WHERE run_id = ?", (run_id,)).fetchone()[0]
                record = {"epoch": n + 1, **record}
            _insert_history(db, run_id, [record])
            db.execute("UPDATE runs SET updated = ? WHERE id = ?", (_now(), run_id))

    def finish_run(self, run_id: str, status: str, message: str, metrics: dict, state_dict=None, *,
                   best_epoch: int | None = None, n_params: int | None = None) -> None:
        """Close a running run with its final status, message, metrics and optionally weights."""
        if status not in Status.finished():
            raise StoreError(f"cannot finish a run with status {status!r}; use one of: "
                             f"{', '.join(Status.finished())}.")
        blob = _dump_state(state_dict) if state_dict is not None else None
        with self._write() as db:
            current = self._status(db, run_id)
            if current != Status.RUNNING:
                raise StoreError(f"run {run_id!r} is already {current}; only a running run can be finished.")
            db.execute(
                "UPDATE runs SET status = ?, message = ?, metrics = ?, best_epoch = ?, n_params = ?, updated = ? "
                "WHERE id = ?",
                (str(status), str(message), _dumps(_mapping(metrics, "metrics")), best_epoch, n_params, _now(),
                 run_id))
            if blob is not None:
                db.execute("INSERT OR REPLACE INTO weights (run_id, data) VALUES (?, ?)", (run_id, blob))

    def save_results(self, items: Iterable[dict]) -> list[str]:
        """Store several finished runs atomically: all of them or, on any error, none.

        Each item has keys config, seed, label, task, record (`lib.train.RunResult.record()`) and optionally
        state_dict, created (an ISO timestamp to keep, e.g. from an imported bundle) and origin (one of
        ORIGINS, default "trained"). The record's env supplies the Lookback version and code fingerprint.
        """
        rows = []
        for item in items:
            rec = _mapping(item["record"], "result record")
            missing = [k for k in ("status", "message", "history", "test", "env") if k not in rec]
            if missing:
                raise StoreError(f"result record lacks {', '.join(missing)}; pass RunResult.record().")
            if rec["status"] not in Status.finished():
                raise StoreError(f"a saved result must be finished; status {rec['status']!r} is not one of: "
                                 f"{', '.join(Status.finished())}.")
            row = _new_row(item["config"], item["seed"], item["label"], item["task"], rec["env"])
            if item.get("created"):
                row["created"] = item["created"]
            row["origin"] = item.get("origin", "trained")
            if row["origin"] not in ORIGINS:
                raise StoreError(f"origin must be one of {', '.join(ORIGINS)}, got {row['origin']!r}.")
            row |= {"status": str(rec["status"]), "message": str(rec["message"]),
                    "metrics": _dumps(_mapping(rec["test"], "test metrics")),
                    "best_epoch": rec.get("best_epoch"), "n_params": rec.get("n_params"),
                    "pid": os.getpid(), "host": socket.gethostname(), "owner": self.owner}
            history = [{"epoch": i, **r} if "epoch" not in r else r for i, r in enumerate(rec["history"], 1)]
            sd = item.get("state_dict")
            rows.append((row, history, _dump_state(sd) if sd is not None else None))
        ids = []
        with self._write() as db:
            self._check_quota(db, len(rows))
            for row, history, blob in rows:
                run_id = _insert_run(db, row)
                _insert_history(db, run_id, history)
                if blob is not None:
                    db.execute("INSERT INTO weights (run_id, data) VALUES (?, ?)", (run_id, blob))
                ids.append(run_id)
        return ids

    def delete(self, run_ids: str | Iterable[str]) -> int:
        """Delete runs with their history and weights; returns how many existed (scoped: of the owner's)."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        mine, args = self._mine()
        with self._write() as db:
            return sum(db.execute(f"DELETE FROM runs WHERE id = ? AND {mine}", (i, *args)).rowcount for i in ids)

    def owners(self) -> dict[str, int]:
        """How many runs each owner keeps (runs without an owner are not counted); unscoped stores only."""
        if self.owner is not None:
            raise StoreError("a store scoped to one owner cannot list the others; use the unscoped store.")
        with self._read() as db:
            return dict(db.execute("SELECT owner, COUNT(*) FROM runs WHERE owner IS NOT NULL GROUP BY owner"))

    def recover(self) -> list[str]:
        """Mark running runs whose writer process on this host has ended as interrupted; returns their ids.

        Runs written on another host are left alone: their process cannot be checked from here.
        """
        host = socket.gethostname()
        self._recovered = time.monotonic()
        with self._read() as db:
            rows = db.execute("SELECT id, pid, proc_created FROM runs WHERE status = ? AND host = ?",
                              (Status.RUNNING, host)).fetchall()
        dead = [(i, pid) for i, pid, created in rows if not _process_alive(pid, created)]
        if not dead:
            return []
        with self._write() as db:
            for run_id, pid in dead:
                db.execute(
                    "UPDATE runs SET status = ?, message = ?, updated = ? WHERE id = ? AND status = ?",
                    (Status.INTERRUPTED,
                     f"interrupted: its process (pid {pid} on {host}) ended before the run finished; the history "
                     f"holds the epochs it logged. Run it again to get a complete result.",
                     _now(), run_id, Status.RUNNING))
        return [i for i, _ in dead]

    # -- reading -------------------------------------------------------------------------------------

    def get(self, run_id: str) -> dict:
        """The full record of one run, with its history as a list of epoch records."""
        mine, args = self._mine()
        with self._read() as db:
            row = db.execute(f"SELECT * FROM runs WHERE id = ? AND {mine}", (run_id, *args)).fetchone()
            if row is None:
                raise self._unknown(run_id)
            history = [json.loads(r) for (r,) in db.execute(
                "SELECT record FROM history WHERE run_id = ? ORDER BY epoch", (run_id,))]
            has_weights = db.execute("SELECT 1 FROM weights WHERE run_id = ?", (run_id,)).fetchone()
        rec = dict(row)
        for key in ("config", "metrics", "env"):
            rec[key] = json.loads(rec[key])
        return rec | {"history": history, "has_weights": has_weights is not None}

    def history(self, run_id: str) -> pd.DataFrame:
        """One row per logged epoch, ordered by epoch."""
        records = self.get(run_id)["history"]
        return pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["epoch"])

    def configs(self, run_ids: Iterable[str]) -> dict[str, dict]:
        """The config of each of these runs by id (unknown ids and, scoped, other owners' runs left out); a
        config that is not a JSON object reads as {}."""
        ids, mine, args = list(run_ids), *self._mine()
        out = {}
        with self._read() as db:
            for start in range(0, len(ids), 500):  # SQLite limits the parameters of one statement
                chunk = ids[start:start + 500]
                rows = db.execute(f"SELECT id, config FROM runs WHERE id IN ({', '.join('?' * len(chunk))}) "
                                  f"AND {mine}", (*chunk, *args))
                for row in rows:
                    try:
                        config = json.loads(row["config"])
                    except ValueError:
                        config = {}
                    out[row["id"]] = config if isinstance(config, dict) else {}
        return out

    def runs(self, task: str | None = None, status: str | Iterable[str] | None = None) -> pd.DataFrame:
        """One row per run, newest first.

        Columns: RUN_COLUMNS plus test_<metric> for each final metric, before n_params. Running runs whose
        writer has died since the last check (at most RECOVER_EVERY_S ago) are marked interrupted first.
        """
        if time.monotonic() - self._recovered >= RECOVER_EVERY_S:
            self.recover()
        mine, owner = self._mine()
        where, args = [mine], list(owner)
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

    def find(self, config: dict, seed: int, code: str) -> dict | None:
        """The latest completed run trained here with this config (by hash), seed and code fingerprint (the
        "code" of `lib.runtime.environment()`), if any. Runs with no recorded fingerprint, and imported runs
        (whose numbers nobody here computed), are never found."""
        mine, args = self._mine()
        with self._read() as db:
            row = db.execute(
                f"SELECT id FROM runs WHERE config_hash = ? AND seed = ? AND code = ? AND status = ? AND {mine} "
                "AND origin = 'trained' ORDER BY created DESC, rowid DESC LIMIT 1",
                (config_hash(config), seed, code, Status.COMPLETED, *args)).fetchone()
        return None if row is None else self.get(row["id"])

    def load_weights(self, run_id: str) -> dict | None:
        """The run's state_dict on the CPU (loaded with weights_only=True), or None when none was saved."""
        mine, args = self._mine()
        with self._read() as db:
            if db.execute(f"SELECT 1 FROM runs WHERE id = ? AND {mine}", (run_id, *args)).fetchone() is None:
                raise self._unknown(run_id)
            row = db.execute("SELECT data FROM weights WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _load_state(row["data"], run_id, self.path)

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
        """One transaction; any SQLite error in it becomes a StoreError naming the fault (see _fault)."""
        with self._lock:
            if self._conn is None:
                raise StoreError(f"the run store {self.path} is closed; open a new RunStore.")
            try:
                if self._pid != os.getpid():  # forked: a SQLite connection must not cross a fork
                    self._conn, self._pid = self._connect(), os.getpid()
                db = self._conn
                db.execute(begin)
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        try:
                            db.execute("ROLLBACK")
                        except sqlite3.Error:
                            pass  # the original error says more; SQLite rolls back on its own when it can
                    raise
            except sqlite3.Error as e:
                raise _fault(self.path, e) from e

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

    def _mine(self) -> tuple[str, tuple]:
        """SQL condition and arguments that select this store's runs: the owner's, or every run unscoped."""
        return ("owner = ?", (self.owner,)) if self.owner is not None else ("1", ())

    def _check_quota(self, db: sqlite3.Connection, adding: int) -> None:
        if self.owner is None or self.quota is None:
            return
        kept = db.execute("SELECT COUNT(*) FROM runs WHERE owner = ?", (self.owner,)).fetchone()[0]
        if kept + adding > self.quota:
            raise StoreError(f"keeping {adding} more run(s) would exceed the limit of {self.quota} runs per "
                             f"visitor ({kept} kept now); delete runs you no longer need, or export them as a "
                             f"bundle first.")

    def _status(self, db: sqlite3.Connection, run_id: str) -> str:
        mine, args = self._mine()
        row = db.execute(f"SELECT status FROM runs WHERE id = ? AND {mine}", (run_id, *args)).fetchone()
        if row is None:
            raise self._unknown(run_id)
        return row["status"]

    def _unknown(self, run_id: str) -> StoreError:
        return StoreError(f"no run {run_id!r} in {self.path}; pick one listed by RunStore.runs().")


# -- file checks -------------------------------------------------------------------------------------


def _create(path: Path) -> None:
    """A new store's file, made beside it and linked into place whole: a process that opens the same new store
    at the same moment finds no file or a SQLite database, never an empty file (which it would refuse). Where
    that cannot be done (e.g. no hard links, a read-only folder), SQLite creates the file on connecting."""
    new = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    try:
        db = sqlite3.connect(new)
        try:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # a header: a database, still without tables
            db.commit()
            db.execute("PRAGMA journal_mode = WAL")  # kept in the file: no opener has to switch it under the others
        finally:
            db.close()
        os.link(new, path)
    except (OSError, sqlite3.Error):  # FileExistsError: another process made it first, as it should be
        pass
    finally:
        new.unlink(missing_ok=True)


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
        _create(path)
        return
    try:
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as e:
        raise StoreError(f"cannot read the run store {path}: {e.strerror}; fix its permissions or set "
                         f"LOOKBACK_DB to another file.") from e
    if not header:
        raise StoreError(f"{path} is empty (0 bytes): it is not a run store, or a run store that was cut short "
                         f"and lost its runs. {_LEAVE} To start a new store there, delete the empty file.")
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        what = "file" if not os.access(path, os.W_OK) else "folder"
        raise StoreError(f"the run store {path} is read-only (its {what} cannot be written), so no run could be "
                         f"saved; make it writable or set LOOKBACK_DB to a writable file.")
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
    except sqlite3.Error as e:
        raise _fault(path, e) from e
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
    elif app_id != 0 or tables:
        raise _foreign(path, tables)


# SQLite's primary result codes -> what happened to the store file, and what to do about it
_FAULTS = {
    sqlite3.SQLITE_READONLY: "is read-only ({e}), so no run can be saved; make the file and its folder writable "
                             "or set LOOKBACK_DB to a writable file.",
    sqlite3.SQLITE_PERM: "cannot be written ({e}); make the file and its folder writable or set LOOKBACK_DB to a "
                         "writable file.",
    sqlite3.SQLITE_BUSY: "is locked by another process ({e}), longer than the {timeout:g} s Lookback waits; let "
                         "that process (another training, or a tool with the file open) finish, then try again.",
    sqlite3.SQLITE_LOCKED: "is locked by another connection ({e}); let it finish, then try again.",
    sqlite3.SQLITE_FULL: "cannot grow: the disk is full ({e}). Free disk space or set LOOKBACK_DB to a file on "
                         "another disk; nothing of this write was saved.",
    sqlite3.SQLITE_IOERR: "could not be read or written ({e}): the disk may be full, failing or over a file-size "
                          "limit. Free disk space or set LOOKBACK_DB to a file on another disk; nothing of this "
                          "write was saved.",
    sqlite3.SQLITE_CORRUPT: "is a damaged SQLite database ({e}). " + _LEAVE + " `sqlite3 FILE .recover` may "
                            "rescue its runs.",
    sqlite3.SQLITE_NOTADB: "is not a SQLite database ({e}). " + _LEAVE,
    sqlite3.SQLITE_CANTOPEN: "cannot be opened ({e}); check that its folder exists and can be read and written, "
                             "or set LOOKBACK_DB to another file.",
}


def _fault(path: Path, e: sqlite3.Error) -> StoreError:
    """A StoreError saying what a SQLite error means for the store at `path`, and what to do."""
    code = getattr(e, "sqlite_errorcode", None)
    text = _FAULTS.get(code & 0xFF if isinstance(code, int) else None,
                       "failed ({e}); set LOOKBACK_DB to another file if this persists.")
    return StoreError(f"the run store {path} " + text.format(e=e, timeout=BUSY_TIMEOUT_S))


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


def _process_alive(pid: int | None, created: float | None) -> bool:
    """False only when sure: no such process, a zombie, or another process that got the pid later."""
    if pid is None:
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return created is None or abs(proc.create_time() - created) <= CREATE_TIME_TOLERANCE_S
    except psutil.NoSuchProcess:  # includes a zombie whose details cannot be read
        return False
    except psutil.AccessDenied:
        return True  # exists, owned by someone else


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
            "env": _dumps({**env, "lookback": version}), "version": version, "code": env.get("code")}


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


def _load_state(blob: bytes, run_id: str, path: Path) -> dict:
    import torch

    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged blob fails in many ways (bad zip, bad seek, unpickling)
        raise StoreError(f"the weights of run {run_id!r} in {path} are damaged ({type(e).__name__}: {e}); delete "
                         f"the run and train it again.") from e


def _runs_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=RUN_COLUMNS)
    metrics = pd.json_normalize([json.loads(r["metrics"]) for r in rows])
    metrics = metrics[sorted(metrics.columns)].add_prefix("test_").set_index(frame.index)
    at = RUN_COLUMNS.index("n_params")
    frame = pd.concat([frame.iloc[:, :at], metrics, frame.iloc[:, at:]], axis=1)
    for col in ("created", "updated"):  # a time that is not ISO 8601 shows as empty instead of hiding every run
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601", errors="coerce")
    return frame


__all__ = ["SCHEMA_VERSION", "RunStore", "StoreError", "config_hash"]
