"""Background training jobs in worker processes, shared first come first served by everyone on one server.

A job is a picklable callable (e.g. `functools.partial(compare, task, models, train_cfg, seeds)`) that accepts
the keyword arguments on_epoch, should_stop and on_run, and `store` when the job names a run store. The
`Engine` queues jobs and trains at most `plan.jobs` of them at once, each in a worker process with
`plan.threads` torch threads (`lib.hosting.plan`): whatever else the server does, such as redrawing pages for
its visitors, never competes with training for one interpreter lock, and jobs x threads stay within the cores.
The workers start once and stay, so a job starts without importing torch again.

A job that times the machine (the Costs page's measurements) is `exclusive`: it starts only when no other job
trains, and no job starts while it runs, so no other work distorts its timings. The queue stays first come
first served: jobs behind an exclusive one wait for it.

Progress, finished runs and the result come back through one queue. Cancel, the wall-clock limit and an idle
visitor set a flag that training polls every batch, so the runs finished so far are kept. When a worker dies
(e.g. killed for memory), the jobs training at that moment end with an error and the engine starts fresh
workers; queued jobs carry on.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import pickle
import queue
import secrets
import statistics
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from lib import hosting
from lib.errors import LookbackError

QUEUED, RUNNING, DONE = "queued", "running", "done"
TICK_S = 0.25  # how often the engine checks time limits and idle visitors
FIRST_RUN_S = {False: 15.0, True: 5.0}  # expected seconds per run (per measured model when exclusive) until
# a job of that kind has finished on this server
CRASHED = ("the training process stopped unexpectedly (it may have run out of memory); the runs that "
           "finished are kept. Try smaller settings.")


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
        """Stop the job: a queued job ends at once, a training one after its current batch."""
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
        self._slots: list[Job | None] = [None] * plan.jobs
        self._jobs: dict[str, Job] = {}  # unfinished jobs by id
        self._held = False  # an exclusive job trains: no other may start
        # seconds per run of recent jobs, by whether they were exclusive
        self._run_seconds: dict[bool, deque[float]] = {False: deque(maxlen=50), True: deque(maxlen=50)}
        self._closed = False
        self._start_workers()
        threading.Thread(target=self._tick, name="lookback-jobs-tick", daemon=True).start()
        # At interpreter exit concurrent.futures waits for its workers: stop the jobs first so it need not
        # wait for them to finish (hooks registered later run earlier).
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
                self._flags[job.slot] = 1

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
            running = [j for j in self._slots if j is not None]
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
        """Cancel every job and stop the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for job in list(self._jobs.values()):
                self.cancel(job, "the server is shutting down")
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- internals: call with self._lock held ------------------------------------------------------------

    def _free_slot(self) -> int | None:
        if self._held:
            return None
        return next((i for i, j in enumerate(self._slots) if j is None), None)

    def _dispatch(self) -> None:
        """Start waiting jobs in order while there is room: an exclusive job once every slot is free."""
        while self._waiting and (slot := self._free_slot()) is not None:
            job = self._waiting[0]
            if job.exclusive:
                if any(j is not None for j in self._slots):
                    return
                self._held = True
            self._waiting.popleft()
            job.state, job.slot, job.started = RUNNING, slot, time.time()
            self._slots[slot] = job
            self._flags[slot] = 0
            with _plain_main():
                future = self._pool.submit(_work, job.id, slot, job.fn, job.store_path, job.owner, job.quota)
            future.add_done_callback(lambda f, job=job, pool=self._pool: self._worker_done(job, pool, f))

    def _end(self, job: Job) -> None:
        if job.state == DONE:
            return
        if job.state == RUNNING:
            self._slots[job.slot] = None
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

    # -- workers and the threads that watch them ---------------------------------------------------------

    def _start_workers(self) -> None:
        ctx = mp.get_context("spawn")  # no fork of a server full of threads
        self._events = ctx.Queue()
        self._flags = ctx.RawArray("b", self.plan.jobs)  # 1: the job in that slot should stop
        self._pool = cf.ProcessPoolExecutor(self.plan.jobs, mp_context=ctx, initializer=_init_worker,
                                            initargs=(self.plan.threads, self._events, self._flags))
        with _plain_main():
            for _ in range(self.plan.jobs):  # start every worker now, so the first job need not wait for it
                self._pool.submit(_warm)
        threading.Thread(target=self._read, args=(self._events,), name="lookback-jobs-events",
                         daemon=True).start()

    def _read(self, events) -> None:
        """Apply the workers' messages to their jobs, until the workers are replaced or closed."""
        while True:
            try:
                job_id, kind, payload = events.get(timeout=1.0)
            except queue.Empty:
                if events is not self._events or self._closed:
                    return
                continue
            except (EOFError, OSError):
                return
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None:
                    continue
                if kind == "epoch":
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

    def _worker_done(self, job: Job, pool, future: cf.Future) -> None:
        """A worker call returned; when its process died instead, end its job and start fresh workers."""
        if future.cancelled() or future.exception() is None:
            return
        with self._lock:
            if job.state != DONE:
                job.error = CRASHED
                self._end(job)
            if pool is self._pool and not self._closed:
                pool.shutdown(wait=False, cancel_futures=True)
                self._start_workers()
                self._dispatch()

    def _tick(self) -> None:
        """Cancel jobs past the time limit, and jobs whose visitor has gone."""
        while not self._closed:
            time.sleep(TICK_S)
            now = time.monotonic()
            with self._lock:
                for job in list(self._jobs.values()):
                    if job.stop_reason is not None:
                        continue
                    if (self.limits.job_seconds and job.state == RUNNING
                            and job.seconds() > self.limits.job_seconds):
                        limit = hosting.duration(self.limits.job_seconds)
                        kept = "what was measured is kept" if job.exclusive else "the runs that finished are kept"
                        self.cancel(job, f"stopped at this server's limit of {limit} per job; {kept}")
                    elif self.limits.idle_seconds and now - job.last_seen > self.limits.idle_seconds:
                        self.cancel(job, "cancelled because its page was closed")


# -- the worker process -----------------------------------------------------------------------------------


@contextmanager
def _plain_main() -> Iterator[None]:
    """A spawned process first re-imports the parent's __main__ module from its file. While Streamlit runs a
    page, __main__ is the app script, and a worker must not run the app: hide it while workers start."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


_events = None
_flags = None


def _init_worker(threads: int, events, flags) -> None:
    global _events, _flags
    _events, _flags = events, flags
    import torch

    torch.set_num_threads(threads)


def _warm() -> None:
    """Import what jobs use, so that the first one starts at once."""
    from lib import experiments, store  # noqa: F401 (loaded now rather than by the first job)


def _work(job_id: str, slot: int, fn: Callable, store_path: str | None, owner: str | None,
          quota: int | None) -> None:
    from lib.experiments import Comparison
    from lib.runs import dataset
    from lib.store import RunStore

    def send(kind: str, payload=None) -> None:
        _events.put((job_id, kind, payload))

    store = None
    try:
        kwargs = {}
        if store_path is not None:
            store = kwargs["store"] = RunStore(store_path, owner=owner, quota=quota)
        # Runs and the result go as bytes pickled here: the queue's own pickler would move their tensors to
        # shared memory from its feeder thread, and torch work on a second thread starts a second OpenMP
        # thread team, which slowed every later epoch of this worker several-fold.
        result = fn(on_epoch=lambda label, seed, record: send("epoch", (label, seed, record)),
                    should_stop=lambda: _flags[slot] != 0, on_run=lambda run: send("run", pickle.dumps(run)),
                    **kwargs)
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
        if hosting.hosted():  # keep a worker's memory to the job it trains
            dataset.cache_clear()
        send("end")


__all__ = ["DONE", "QUEUED", "RUNNING", "Engine", "Job", "JobRefused"]
