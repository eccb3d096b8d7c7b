"""Background training jobs, each in a process of its own, shared first come first served by everyone on one server.

A job is a picklable callable (e.g. `functools.partial(compare, task, models, train_cfg, seeds)`) that accepts
the keyword arguments on_epoch, should_stop and on_run, and `store` when the job names a run store. The
`Engine` queues jobs and trains at most `plan.jobs` of them at once, each in a worker process with
`plan.threads` torch threads (`lib.hosting.plan`): whatever else the server does, such as redrawing pages for
its visitors, never competes with training for one interpreter lock, and jobs x threads stay within the cores.

One process per job: each slot keeps a spawned worker that has imported torch before its job comes; it trains
that one job and exits, and the slot gets a fresh worker. Each worker has a pipe and a stop flag of its own
and shares no pool, queue or lock with another, so a worker that dies (e.g. killed for memory) ends its own
job with CRASHED and nothing else; the queue carries on. Workers are not daemonic, so a job may start
processes of its own (e.g. joblib's). A worker ends with its server however the server ends, `kill -9`
included (`lib.hosting.end_with`; the engine's own thread starts every worker, as the kernel's parent-death
signal follows the thread that started a process), and so do the processes a job forks to train its runs
(lib.backends). Its unfinished run then reads "interrupted" (lib.store).

A job that times the machine (the Costs page's measurements) is `exclusive`: it starts only when no other job
trains and every worker is ready (none importing torch beside it), and no job starts while it runs, so no
other work distorts its timings. The queue stays first come first served: jobs behind an exclusive one wait
for it.

Cancel, the wall-clock limit, an idle visitor and the server's shutdown set the job's stop flag, which
training polls every batch, so the runs finished so far are kept; a worker that has not ended STOP_GRACE_S
later is killed. A queued job ends at once.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import multiprocessing.connection
import multiprocessing.spawn
import os
import pickle
import secrets
import statistics
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from lib import hosting
from lib.errors import LookbackError

QUEUED, RUNNING, DONE = "queued", "running", "done"
TICK_S = 0.25  # how often the engine checks time limits, idle visitors and its workers
STOP_GRACE_S = 15.0  # a worker asked to stop, or done with its job, that has not ended by then is killed
RESPAWN_S = 5.0  # a slot whose worker ended without a job waits this long for the next one (no spawn loop)
FIRST_RUN_S = {False: 15.0, True: 5.0}  # expected seconds per run (per measured model when exclusive) until
# a job of that kind has finished on this server
CRASHED = ("the training process stopped unexpectedly (it may have run out of memory); the runs that "
           "finished are kept. Try smaller settings.")
WORKER = "lookback-worker"  # the name of every worker process
_log = logging.getLogger(__name__)


class JobRefused(LookbackError):
    """A job was not accepted; the message says why and what to do."""


class Job:
    """One submitted job; its state, progress and outcome are read by any page rerun of its session.

    title, total_runs and epochs describe it for a progress bar; meta is whatever the page needs to show the
    outcome. owner: the visitor it belongs to (None where visitors are not told apart: one job per visitor
    is then up to the page). store_path: the run store the job writes into (as `owner`, with `quota`).
    exclusive: the job times the machine, so it trains alone (see the module docstring); what it sends to
    on_run (e.g. one measured row per model) counts towards total_runs.
    """

    def __init__(self, title: str, fn: Callable, total_runs: int, epochs: int, meta: dict | None = None,
                 owner: str | None = None, store_path: str | None = None, quota: int | None = None,
                 exclusive: bool = False):
        self.id = secrets.token_hex(6)
        self.title, self.fn, self.total_runs, self.epochs = title, fn, total_runs, epochs
        self.exclusive = exclusive
        self.meta = meta or {}
        self.owner, self.store_path, self.quota = owner, store_path, quota
        self.progress: dict[tuple[str, int], dict] = {}  # (label, seed) -> latest epoch record
        self.curves: dict[tuple[str, int], list[dict]] = {}  # (label, seed) -> every epoch record so far
        self.finished: list = []  # RunResults (what on_run received) in the order they finished
        self.result = None
        self.error: str | None = None
        self.state = QUEUED
        self.stop_reason: str | None = None  # set when Cancel, the time limit or idleness stopped it
        self.submitted, self.started, self.ended = time.time(), None, None
        self.last_seen = time.monotonic()
        self.slot: int | None = None
        self._engine: Engine | None = None
        self._answered = False  # a result or an error came back
        self._done = threading.Event()

    def __repr__(self) -> str:
        return f"Job({self.title!r}, {self.state}, owner={self.owner!r})"

    @property
    def running(self) -> bool:
        """Queued or training."""
        return self.state != DONE

    @property
    def cancelled(self) -> bool:
        return self.stop_reason is not None

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the job: a queued job ends at once, a training one after its current batch (its worker is
        killed if it has not ended STOP_GRACE_S later)."""
        if self._engine is not None:
            self._engine.cancel(self, reason)

    def touch(self) -> None:
        """Mark the job's page as seen now; a job unseen for the idle limit is cancelled."""
        self.last_seen = time.monotonic()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job is done; False when `timeout` seconds passed first."""
        return self._done.wait(timeout)

    def seconds(self) -> float:
        """Seconds it has trained (so far, or in all)."""
        if self.started is None:
            return 0.0
        return (self.ended or time.time()) - self.started

    def fraction(self) -> float:
        """Share of the job done, counting finished runs and epochs of the runs in flight."""
        finished = list(self.finished)
        done = {(r.label, r.train_config.seed) for r in finished if hasattr(r, "train_config")}
        in_flight = sum(r["epoch"] for key, r in list(self.progress.items()) if key not in done)
        return min(1.0, (len(finished) + in_flight / max(self.epochs, 1)) / max(self.total_runs, 1))


class Engine:
    """The job queue and worker processes of one server; see the module docstring."""

    def __init__(self, limits: hosting.Limits, plan: hosting.Plan):
        self.limits, self.plan = limits, plan
        self._lock = threading.RLock()
        self._waiting: deque[Job] = deque()
        self._workers: list[_Worker | None] = [None] * plan.jobs  # one per slot
        self._respawn_at = [0.0] * plan.jobs  # time.monotonic() before which a slot gets no new worker
        self._jobs: dict[str, Job] = {}  # unfinished jobs by id
        self._held = False  # an exclusive job trains: no other may start
        # seconds per run of recent jobs, by whether they were exclusive
        self._run_seconds: dict[bool, deque[float]] = {False: deque(maxlen=50), True: deque(maxlen=50)}
        self._closed = False
        self._pid = os.getpid()  # a process forked from this one inherits the exit hook below, not the engine
        self._ctx = mp.get_context("spawn")  # no fork of a server full of threads
        self._thread = threading.Thread(target=self._loop, name="lookback-jobs", daemon=True)
        self._thread.start()
        # At interpreter exit multiprocessing waits for its (non-daemonic) workers: stop the jobs first so it
        # need not wait for them to finish (hooks registered later run earlier).
        threading._register_atexit(self.close)

    # -- the visitor's side ------------------------------------------------------------------------------

    def submit(self, job: Job) -> Job:
        """Queue the job, or raise JobRefused: its owner has a job already, or the queue is full."""
        with self._lock:
            if self._closed:
                raise JobRefused("this server is shutting down; try again in a minute.")
            mine = self.job_of(job.owner) if job.owner is not None else None
            if mine is not None:
                raise JobRefused(f"you already have a job on this server (“{mine.title}”, "
                                 f"{'waiting' if mine.state == QUEUED else 'training'}); wait for it to finish or "
                                 f"cancel it first: one job per visitor.")
            if (self.limits.queue is not None and (self._waiting or self._free_slot() is None)
                    and len(self._waiting) >= self.limits.queue):
                raise JobRefused(f"the training queue is full ({len(self._waiting)} waiting); try again in a few "
                                 f"minutes.")
            job._engine = self
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._dispatch()
        return job

    def job_of(self, owner: str) -> Job | None:
        """The unfinished job of this owner, if any."""
        with self._lock:
            return next((j for j in self._jobs.values() if j.owner == owner), None)

    def cancel(self, job: Job, reason: str = "cancelled") -> None:
        with self._lock:
            if job.state == DONE:
                return
            job.stop_reason = job.stop_reason or reason
            if job.state == QUEUED:
                self._waiting.remove(job)
                self._end(job)
            else:
                worker = self._workers[job.slot]
                worker.stop.value = 1
                worker.kill_at = worker.kill_at or time.monotonic() + STOP_GRACE_S

    def position(self, job: Job) -> tuple[int, int] | None:
        """(1-based place in the queue, jobs waiting), or None when the job is not waiting."""
        with self._lock:
            if job.state != QUEUED:
                return None
            return list(self._waiting).index(job) + 1, len(self._waiting)

    def expected_seconds(self, job: Job) -> float:
        """How long the job should train: its runs times the recent seconds per run, within the time limit."""
        with self._lock:
            recent = self._run_seconds[job.exclusive]
            per_run = statistics.median(recent) if recent else FIRST_RUN_S[job.exclusive]
        seconds = job.total_runs * per_run
        return min(seconds, self.limits.job_seconds) if self.limits.job_seconds else seconds

    def estimated_start(self, job: Job) -> float:
        """Seconds until a queued job should start training (0 once it trains)."""
        with self._lock:
            if job.state != QUEUED:
                return 0.0
            running = [j for j in self._jobs.values() if j.state == RUNNING]
            ahead = list(self._waiting)[:list(self._waiting).index(job)]
        left = [self._left(j) for j in running]
        if any(j.exclusive for j in running):  # it holds every slot
            left = left * self.plan.jobs
        return hosting.estimated_start(left, self.plan.jobs, [(self.expected_seconds(j), j.exclusive) for j in ahead],
                                       exclusive=job.exclusive)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def close(self) -> None:
        """Cancel every job and end the workers: at once when idle, else once their job stops (or is killed).
        Nothing in a process forked from the engine's (e.g. a training worker): the lock may have been held by
        the engine's thread, which the fork did not copy, so waiting for it would never end."""
        if os.getpid() != self._pid:
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for job in list(self._jobs.values()):
                self.cancel(job, "the server is shutting down")
        self._thread.join(STOP_GRACE_S + 10 * TICK_S)

    # -- internals: call with self._lock held ------------------------------------------------------------

    def _free_slot(self, exclusive: bool = False) -> int | None:
        """A slot whose worker is ready and has no job; for an exclusive job, only when every slot's is."""
        if self._held:
            return None
        free = [i for i, w in enumerate(self._workers) if w is not None and w.ready and w.job is None]
        if exclusive and len(free) < len(self._workers):
            return None
        return free[0] if free else None

    def _dispatch(self) -> None:
        """Send waiting jobs in order to free workers; an exclusive one once every worker is free."""
        while self._waiting and (slot := self._free_slot(self._waiting[0].exclusive)) is not None:
            job, worker = self._waiting.popleft(), self._workers[slot]
            try:
                payload = pickle.dumps((job.fn, job.store_path, job.owner, job.quota, dict(os.environ)))
            except Exception as err:  # e.g. a lambda or a local function
                job.error = f"this job cannot be sent to a training process: {type(err).__name__}: {err}"
                self._end(job)
                continue
            try:
                worker.conn.send_bytes(payload)
            except OSError:  # the worker died idle; it is replaced, and the job stays first
                worker.ready = False
                self._waiting.appendleft(job)
                continue
            worker.job, self._held = job, job.exclusive
            job.state, job.slot, job.started = RUNNING, slot, time.time()

    def _end(self, job: Job) -> None:
        if job.state == DONE:
            return
        if job.state == RUNNING:
            self._held = self._held and not job.exclusive
            if job.finished:
                self._run_seconds[job.exclusive].append((time.time() - job.started) / len(job.finished))
        job.state, job.ended = DONE, time.time()
        self._jobs.pop(job.id, None)
        job._done.set()
        if not self._closed:
            self._dispatch()

    def _left(self, job: Job) -> float:
        """Seconds a training job should still need: from its progress once it has some, else its estimate."""
        elapsed, done = job.seconds(), job.fraction()
        left = elapsed * (1 - done) / done if done > 0.05 else self.expected_seconds(job) - elapsed
        if self.limits.job_seconds:
            left = min(left, self.limits.job_seconds - elapsed)
        return max(left, 0.0)

    # -- the engine's thread: workers, their messages, the limits ------------------------------------------

    def _loop(self) -> None:
        """Start workers, apply what they send, end the jobs of those that exit, and stop jobs past a limit;
        until the engine is closed and every worker has ended."""
        while True:
            with self._lock:
                if self._closed and not any(self._workers):
                    return
                self._spawn()
                watched = {}
                for worker in filter(None, self._workers):
                    watched[worker.proc.sentinel] = worker
                    if worker.open:
                        watched[worker.conn] = worker
            ready = mp.connection.wait(list(watched), timeout=TICK_S)
            with self._lock:
                try:
                    for worker in {id(watched[r]): watched[r] for r in ready}.values():
                        self._receive(worker)
                    for slot, worker in enumerate(self._workers):
                        if worker is not None and not worker.proc.is_alive():
                            self._reap(slot, worker)
                    self._police()
                    self._dispatch()
                except Exception:  # never leave the queue without its thread
                    _log.exception("the job engine hit an error; it carries on")

    def _spawn(self) -> None:
        """A fresh worker for every empty slot. Only this thread starts workers: a worker's parent-death
        signal fires when the thread that started it ends, and this one lasts as long as the workers."""
        now = time.monotonic()
        for slot, worker in enumerate(self._workers):
            if worker is None and not self._closed and now >= self._respawn_at[slot]:
                self._respawn_at[slot] = now + RESPAWN_S  # should the start fail
                self._workers[slot] = _Worker(self._ctx, self.plan.threads)

    def _receive(self, worker: _Worker) -> None:
        """Apply everything the worker has sent so far."""
        try:
            while worker.open and worker.conn.poll():
                self._apply(worker, *worker.conn.recv())
        except (EOFError, OSError):  # it closed its end, or died (perhaps in the middle of a message)
            worker.open = False

    def _apply(self, worker: _Worker, kind: str, payload) -> None:
        job = worker.job
        if kind == "ready":
            worker.ready = True
        elif job is None or job.state == DONE:
            return
        elif kind == "epoch":
            label, seed, record = payload
            job.progress[(label, seed)] = record
            job.curves.setdefault((label, seed), []).append(record)
        elif kind == "run":
            job.finished.append(pickle.loads(payload))
        elif kind == "result":
            job.result, job._answered = pickle.loads(payload), True
        elif kind == "error":
            job.error, job._answered = payload, True
        elif kind == "end":
            if not job._answered:
                job.error = "training ended without a result; try again."
            self._end(job)
            worker.kill_at = time.monotonic() + STOP_GRACE_S  # it exits now

    def _reap(self, slot: int, worker: _Worker) -> None:
        """The worker has exited: end its job (CRASHED, unless it answered or the engine stopped it) and free
        its slot for a fresh worker."""
        self._receive(worker)  # what it sent before it exited
        worker.proc.join()
        job = worker.job
        if job is not None and job.state != DONE:
            if not (job._answered or worker.killed):
                job.error = CRASHED
            self._end(job)
        worker.conn.close()
        worker.proc.close()
        self._workers[slot] = None
        if job is not None:  # a worker that ended without a job is replaced only after RESPAWN_S
            self._respawn_at[slot] = 0.0

    def _police(self) -> None:
        """Stop jobs past the time limit and jobs whose visitor has gone; kill workers past their grace, and
        idle ones once the engine is closed."""
        now = time.monotonic()
        for job in list(self._jobs.values()):
            if job.stop_reason is not None:
                continue
            if self.limits.job_seconds and job.state == RUNNING and job.seconds() > self.limits.job_seconds:
                limit = hosting.duration(self.limits.job_seconds)
                kept = "what was measured is kept" if job.exclusive else "the runs that finished are kept"
                self.cancel(job, f"stopped at this server's limit of {limit} per job; {kept}")
            elif self.limits.idle_seconds and now - job.last_seen > self.limits.idle_seconds:
                self.cancel(job, "cancelled because its page was closed")
        for worker in filter(None, self._workers):
            overdue = worker.kill_at is not None and now > worker.kill_at
            if not worker.killed and (overdue or (self._closed and worker.job is None)):
                worker.proc.kill()
                worker.killed = True


class _Worker:
    """A slot's worker process and the engine's end of its pipe; it trains at most one job."""

    def __init__(self, ctx, threads: int):
        self.conn, child = ctx.Pipe()
        self.stop = ctx.RawValue("b", 0)  # 1: its job should stop
        self.proc = ctx.Process(target=_serve, args=(child, self.stop, threads, os.getpid()),
                                name=WORKER, daemon=False)
        self.proc.start()
        child.close()
        self.ready = False  # it has loaded what jobs use and waits for its job
        self.job: Job | None = None
        self.open = True  # its pipe has not reached its end
        self.kill_at: float | None = None  # time.monotonic() after which the engine kills it
        self.killed = False


# -- the worker process -----------------------------------------------------------------------------------


def _without_main(prepare: Callable[[str], dict]) -> Callable[[str], dict]:
    """multiprocessing's spawn first runs the parent's __main__ module (by its file or name) in the new process.
    While Streamlit runs a page, __main__ is the page's script, and a worker must not run the app: a worker
    starts without it. (Hiding __main__ while a worker starts would race with Streamlit's script threads,
    which install their own for every script run.)"""
    def preparation_data(name: str) -> dict:
        data = prepare(name)
        if name == WORKER:
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    preparation_data.lookback = True
    return preparation_data


if not getattr(mp.spawn.get_preparation_data, "lookback", False):  # once, however often this module loads
    mp.spawn.get_preparation_data = _without_main(mp.spawn.get_preparation_data)


def _serve(conn, stop, threads: int, server: int) -> None:
    """A worker: end with the server, load what jobs use, then train the one job the engine sends."""
    hosting.end_with(server)
    import torch

    torch.set_num_threads(threads)
    from lib import experiments, store  # noqa: F401 (loaded before the job comes, so that it starts at once)

    conn.send(("ready", None))
    try:
        fn, store_path, owner, quota, environ = pickle.loads(conn.recv_bytes())
    except EOFError:  # the engine closed without a job for it
        return
    os.environ.clear()
    os.environ.update(environ)  # the server's, as it was when the job was submitted (LOOKBACK_HOSTED, ...)
    _work(conn, lambda: stop.value != 0, fn, store_path, owner, quota)
    # The job has ended and its store is closed. Skip the interpreter's teardown: with torch loaded it takes
    # seconds, and the slot's next worker starts only once this one has exited.
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _work(conn, should_stop: Callable[[], bool], fn: Callable, store_path: str | None, owner: str | None,
          quota: int | None) -> None:
    """Train one job, sending its progress, finished runs and result (or error) to the engine, then "end"."""
    from lib.experiments import Comparison
    from lib.store import RunStore

    def send(kind: str, payload=None) -> None:
        conn.send((kind, payload))

    store = None
    try:
        kwargs = {}
        if store_path is not None:
            store = kwargs["store"] = RunStore(store_path, owner=owner, quota=quota)
        # Runs and the result go as bytes pickled here: multiprocessing's own pickler would move their tensors
        # to shared memory through a helper thread, and torch work on a second thread starts a second OpenMP
        # thread team, which slowed every later epoch of a worker several-fold.
        result = fn(on_epoch=lambda label, seed, record: send("epoch", (label, seed, record)),
                    should_stop=should_stop, on_run=lambda run: send("run", pickle.dumps(run)), **kwargs)
        if isinstance(result, Comparison):  # the page has the dataset already: send the runs only
            result = replace(result, dataset=None)
        send("result", pickle.dumps(result))
    except LookbackError as err:
        send("error", hosting.shown(str(err), store_path))
    except Exception as err:  # shown to the visitor instead of ending the worker
        detail = "" if hosting.hosted() else "\n" + traceback.format_exc(limit=3)
        send("error", hosting.shown(f"training failed unexpectedly: {type(err).__name__}: {err}{detail}",
                                   store_path))
    finally:
        if store is not None:
            store.close()
        send("end")


__all__ = ["CRASHED", "DONE", "QUEUED", "RUNNING", "Engine", "Job", "JobRefused"]
