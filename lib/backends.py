"""Where a comparison's runs train: on this machine, or on a Ray cluster.

"local" trains runs in this process one after another when one worker is planned, else in forked worker
processes on this machine (one torch thread each by default), each writing the run store itself, reporting
every epoch back and ending with the process that forked them (no orphan trains on). `RayBackend` sends each
run to a Ray cluster as one task that declares its resources (CPUs, and one GPU for CUDA runs); this process
(the driver) alone writes the run store, so workers never share a SQLite file, and it passes each epoch's
record to the caller as the workers report it. Ray is an optional extra, imported only when a Ray backend is
used.
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import queue
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lib.errors import ConfigError
from lib.hosting import available_cores, end_with, run_workers

if TYPE_CHECKING:  # imported where used, so that the progress actor's process never loads torch
    from lib.models import ModelConfig
    from lib.runs import RunRecorder
    from lib.train import RunResult, TrainConfig

BACKENDS = ("local", "ray")
INSTALL_RAY = "Ray is not installed; pip install -r requirements-cluster.txt"
LIB = Path(__file__).resolve().parent  # shipped to the workers, so a cluster needs no copy of Lookback
POLL_S = 0.1  # how often the driver collects progress and checks for a cancel
STOP_POLL_S = 0.2  # how often a running task asks whether the sweep was cancelled
CANCEL_GRACE_S = 1.5  # a task still running this long after a cancel is stopped by killing its worker


@dataclass(frozen=True)
class RayBackend:
    """Train each run as one task on a Ray cluster.

    address: the cluster ("host:6379", "ray://host:10001" or "auto"); None: the RAY_ADDRESS environment
    variable, else a new Ray instance on this machine. cpus_per_run: the CPUs each task declares, which is
    also its torch thread count, so results equal a serial run at that many threads.
    """

    address: str | None = None
    cpus_per_run: int = 1

    def validate(self) -> None:
        if isinstance(self.cpus_per_run, bool) or not isinstance(self.cpus_per_run, int) or self.cpus_per_run < 1:
            raise ConfigError(f"cpus_per_run must be a whole number of at least 1, got {self.cpus_per_run!r}.")


def resolve(backend: str | RayBackend | None) -> str | RayBackend:
    """"local" (None too) or a RayBackend."""
    if backend is None:
        return "local"
    if isinstance(backend, RayBackend):
        backend.validate()
        return backend
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}.")
    return RayBackend() if backend == "ray" else backend


# -- worker processes on this machine ------------------------------------------------------------------


def start_order(kinds: Sequence[str]) -> list[int]:
    """The order in which worker processes start runs of these model kinds (indices into kinds): windowed runs,
    the quick ones, last, so that no slow run starts when the others are done."""
    from lib.models import MODEL_KINDS

    return sorted(range(len(kinds)), key=lambda i: MODEL_KINDS[kinds[i]].windowed)


def worker_plan(n_jobs: int | None, n_tasks: int) -> tuple[int, int]:
    """(workers, torch threads per worker) for n_tasks runs: n_jobs workers (None or -1: one per torch thread
    this process may use, which the job engine sets from lib.hosting.plan), within that thread budget."""
    import torch

    budget = torch.get_num_threads()
    if n_jobs is not None and n_jobs > 0:
        budget = min(n_jobs, max(budget, available_cores()))
    return run_workers(budget, n_tasks)


def _context():
    """fork where the OS has it: a worker starts in milliseconds with torch and the dataset already loaded
    (spawn would import torch again, about 3 s here)."""
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() and os.name == "posix"
                          and sys.platform != "darwin" else "spawn")


_pool_state: dict = {}  # in a worker: its progress queue, the stop flag and its torch threads


def _init_pool(threads: int, progress, stop, parent: int) -> None:
    end_with(parent)  # a worker whose sweep's process was killed trains no further (no orphan)
    import torch

    torch.set_num_threads(threads)
    _pool_state.update(progress=progress, stop=stop)


def _pool_run(key: int, task_cfg, model_cfg, train_cfg, store_args, force) -> RunResult | None:
    """One run in a worker; None when the sweep was stopped before it started."""
    from lib.runs import run_one

    progress, stop = _pool_state["progress"], _pool_state["stop"]
    if stop.is_set():
        return None
    on_epoch = None if progress is None else (lambda rec: progress.put((key, rec)))
    if store_args is None:
        return run_one(task_cfg, model_cfg, train_cfg, force=force, on_epoch=on_epoch, should_stop=stop.is_set)
    from lib.store import RunStore

    with RunStore(*store_args) as store:  # the caller's store, as its owner and quota see it
        return run_one(task_cfg, model_cfg, train_cfg, store, force, on_epoch, stop.is_set)


def run_in_processes(task_cfg, specs: Sequence[tuple[ModelConfig, TrainConfig]], store=None, force: bool = False,
                     n_jobs: int | None = None, on_epoch: Callable[[int, dict], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> Iterator[tuple[int, RunResult]]:
    """Train (model, train config) specs in worker processes on this machine (see `worker_plan`), each worker
    writing the run store itself; yields (spec index, run) as runs finish. on_epoch(index, record) is called
    here for every epoch a worker reports; should_stop is polled here and stops the workers' runs at their
    next batch (they end cancelled), and runs not started yet never start."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    workers, threads = worker_plan(n_jobs, len(specs))
    ctx = _context()
    progress, stop = (ctx.Queue() if on_epoch is not None else None), ctx.Event()
    store_args = None if store is None else (str(store.path), store.owner, store.quota)
    order = start_order([model_cfg.kind for model_cfg, _ in specs])
    init = (threads, progress, stop, os.getpid())
    with ProcessPoolExecutor(workers, ctx, initializer=_init_pool, initargs=init) as pool:
        pending = {pool.submit(_pool_run, i, task_cfg, *specs[i], store_args, force): i for i in order}
        try:
            while pending:
                done, _ = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                _drain(progress, on_epoch)
                if should_stop is not None and not stop.is_set() and should_stop():
                    stop.set()
                    for future in pending:
                        future.cancel()
                for future in done:
                    key = pending.pop(future)
                    if not future.cancelled() and (run := future.result()) is not None:
                        yield key, run
                pending = {f: k for f, k in pending.items() if not f.cancelled()}
        finally:
            stop.set()  # a caller that stops iterating (or an error) ends the runs still training
            _drain(progress, on_epoch)


def _drain(progress, on_epoch) -> None:
    while progress is not None:
        try:
            key, record = progress.get_nowait()
        except queue.Empty:
            return
        on_epoch(key, record)


# -- connecting --------------------------------------------------------------------------------------

_connected: str | None = None  # the address this process connected to, when it did the connecting
_hub = None  # this connection's progress actor (see _Hub), made on first use
_sweeps = itertools.count()  # tells the sweeps that share the hub apart


def _ray():
    try:
        import ray
    except ImportError as err:
        raise ConfigError(f"{INSTALL_RAY}.") from err
    return ray


def connect(address: str | None = None):
    """Connect this process to a Ray cluster (see RayBackend.address) once, and return the `ray` module.

    A connection made earlier, here or by the caller's own ray.init(), is kept unless another address is
    asked for. The connection ships lib/ to the workers (runtime_env py_modules); a caller who connects
    itself passes `runtime_env={"py_modules": [str(lib.backends.LIB)]}` or installs Lookback on every node.
    """
    global _connected, _hub
    ray = _ray()
    target = address or os.environ.get("RAY_ADDRESS") or "local"
    if ray.is_initialized():
        if address is None or target == _connected:
            return ray
        ray.shutdown()
    _hub = None  # an actor of an earlier connection is gone
    options = {"address": target, "runtime_env": {"py_modules": [str(LIB)]}, "logging_level": "WARNING",
               "log_to_driver": False}
    if target == "local":
        options |= {"num_cpus": os.cpu_count() or 1, "include_dashboard": False}
    try:
        ray.init(**options)
    except ConnectionError as err:
        raise ConfigError(f"cannot connect to the Ray cluster at {target!r} ({err}); start one with "
                          f"`ray start --head`, or fix --address / RAY_ADDRESS. A cluster with token "
                          f"authentication also needs RAY_AUTH_MODE=token and its token here.") from err
    _connected = target
    return ray


# -- the worker side ---------------------------------------------------------------------------------


class _Hub:
    """A Ray actor between the tasks and the driver, one per connection: progress events one way, cancel
    flags the other, kept apart by sweep number."""

    def __init__(self):
        self.events: dict[int, list[tuple]] = {}
        self.stopped: set[int] = set()

    def put(self, sweep: int, key: int, kind: str, payload) -> None:
        self.events.setdefault(sweep, []).append((key, kind, payload))

    def drain(self, sweep: int) -> list[tuple]:
        return self.events.pop(sweep, [])

    def cancel(self, sweep: int) -> None:
        self.stopped.add(sweep)

    def cancelled(self, sweep: int) -> bool:
        return sweep in self.stopped

    def close(self, sweep: int) -> None:
        self.events.pop(sweep, None)
        self.stopped.discard(sweep)


def _progress_hub(ray):
    global _hub
    if _hub is None:
        _hub = ray.remote(_Hub).options(num_cpus=0).remote()
    return _hub


class _StopFlag:
    """The engine's should_stop for a task: asks the hub every STOP_POLL_S seconds without waiting for the
    answer (a task that waits in ray.get lends its CPU to another task, which would crowd the node)."""

    def __init__(self, hub, sweep: int):
        self.hub, self.sweep, self.next, self.stop, self.asked = hub, sweep, 0.0, False, None

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.stop or now < self.next:
            return self.stop
        if self.asked is None:
            self.asked = self.hub.cancelled.remote(self.sweep).future()
        elif self.asked.done():
            self.stop, self.asked = self.asked.result(), None
        self.next = now + STOP_POLL_S
        return self.stop


def _train_task(ds, model_cfg: ModelConfig, train_cfg: TrainConfig, threads: int, hub, sweep: int,
                key: int) -> RunResult:
    """One run on a Ray worker; reports "start" (with its environment) and each epoch to the hub.

    Reports are not waited for (see _StopFlag): the result may reach the driver before its last reports,
    so the driver takes the history from the result.
    """
    import torch

    from lib.runtime import environment, resolve_device
    from lib.train import train

    torch.set_num_threads(threads)
    env = environment(resolve_device(train_cfg.device)) | {"node": socket.gethostname()}

    hub.put.remote(sweep, key, "start", env)
    result = train(ds, model_cfg, train_cfg, on_epoch=lambda rec: hub.put.remote(sweep, key, "epoch", rec),
                   should_stop=_StopFlag(hub, sweep))
    result.env = env | result.env
    result.model = result.model.cpu()  # the driver may have no GPU to unpickle CUDA tensors onto
    return result


# -- the driver side ---------------------------------------------------------------------------------


@dataclass
class _Run:
    """A run the driver has sent to the cluster."""

    recorder: RunRecorder  # its configs, and its record in the run store once started
    env: dict | None = None  # set by the task's "start" report
    history: list[dict] = field(default_factory=list)  # the epochs reported so far


def run_on_ray(
    task_cfg,
    specs: Sequence[tuple[ModelConfig, TrainConfig]],
    backend: RayBackend,
    store=None,
    force: bool = False,
    on_epoch: Callable[[str, int, dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_run: Callable[[RunResult], None] | None = None,
) -> tuple[list[RunResult], bool]:
    """Train (model, train config) specs on a Ray cluster; returns (runs in spec order, cancelled).

    Stored identical runs are reused unless force=True. on_epoch(label, seed, record) is called here as
    the tasks report epochs, on_run as each run finishes. When should_stop() turns True, queued tasks are
    dropped and running ones end as "cancelled" within about CANCEL_GRACE_S seconds; finished runs are
    kept. A run whose worker or node dies ends "failed" with a message saying so; the others go on. An
    exception raised by the training itself marks its run failed, cancels the rest and is raised here.
    """
    sweep = _RaySweep(connect(backend.address), task_cfg, specs, backend, store, on_epoch, on_run)
    todo = sweep.reuse(force)
    if todo:
        sweep.submit(todo)
        sweep.wait(should_stop)
    return sweep.outcome()


class _RaySweep:
    """One run_on_ray call, driven from this process: the runs it sent to the cluster and what they reported.
    It writes the run store alone, through each run's lib.runs.RunRecorder."""

    def __init__(self, ray, task_cfg, specs, backend: RayBackend, store, on_epoch, on_run):
        from lib.runs import dataset

        self.ray, self.task_cfg, self.specs, self.backend, self.store = ray, task_cfg, specs, backend, store
        self.on_epoch, self.on_run = on_epoch, on_run
        self.ds = dataset(task_cfg)
        self.finished: dict[int, RunResult] = {}  # spec index -> its result, reused or trained
        self.runs: dict[int, _Run] = {}  # spec index -> its run on the cluster, until it ends
        self.pending: dict = {}  # ObjectRef -> spec index, until its task returns
        self.hub, self.sweep = None, None  # the progress actor, and this sweep's number on it
        self.cancel_at: float | None = None  # when should_stop() turned True
        self.forced = False  # whether the tasks still running after CANCEL_GRACE_S were killed

    def done(self, key: int, result: RunResult) -> None:
        self.finished[key] = result
        if self.on_run is not None:
            self.on_run(result)

    def reuse(self, force: bool) -> list[int]:
        """Take the stored identical runs (unless force); the spec indexes left to train."""
        from lib.runs import stored_result

        todo = []
        for key, (model_cfg, train_cfg) in enumerate(self.specs):
            hit = None if self.store is None or force else stored_result(self.task_cfg, model_cfg, train_cfg,
                                                                         self.store)
            if hit is not None:
                self.done(key, hit)
            else:
                todo.append(key)
        return todo

    def submit(self, todo: list[int]) -> None:
        """One task per run, after checking every run's GPU request (a refusal submits nothing)."""
        from lib.runs import RunRecorder

        cluster_gpus = self.ray.cluster_resources().get("GPU", 0)
        gpus = {key: _gpus(self.specs[key][1].device, cluster_gpus, self.backend) for key in todo}
        self.hub, self.sweep = _progress_hub(self.ray), next(_sweeps)
        task = self.ray.remote(_train_task)
        ds_ref = self.ray.put(self.ds)
        cpus = self.backend.cpus_per_run
        for key in todo:
            model_cfg, train_cfg = self.specs[key]
            self.runs[key] = _Run(RunRecorder(self.store, self.task_cfg, model_cfg, train_cfg))
            options = {"num_cpus": cpus, "num_gpus": gpus[key],
                       "max_retries": 0}  # a lost worker fails its run; see run_on_ray
            ref = task.options(**options).remote(ds_ref, model_cfg, train_cfg, cpus, self.hub, self.sweep, key)
            self.pending[ref] = key

    def wait(self, should_stop) -> None:
        """Until every task has returned: pass on progress, settle the finished tasks, cancel when asked. On an
        exception, the runs still open are recorded as failed or cancelled and it is raised."""
        try:
            while self.pending:
                ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=POLL_S)
                self.collect()
                self.settle(ready)
                self.maybe_cancel(should_stop)
        except BaseException as err:
            self.abort(err)
            if isinstance(err, self.ray.exceptions.RayTaskError):
                raise err.as_instanceof_cause() from None  # still an instance of the original error type
            raise
        finally:
            self.hub.close.remote(self.sweep)

    def collect(self) -> None:
        """The reports the tasks sent since the last call."""
        for key, kind, payload in self.ray.get(self.hub.drain.remote(self.sweep)):
            run = self.runs.get(key)
            if run is None:
                continue  # a report that arrived after its run's result
            if kind == "start":
                self.start(run, payload)
            elif not run.history or payload["epoch"] > run.history[-1]["epoch"]:
                self.log(run, payload)

    def start(self, run: _Run, env: dict) -> None:
        run.env = env
        run.recorder.start(env)

    def log(self, run: _Run, record: dict) -> None:
        run.recorder.log(record)
        run.history.append(record)
        if self.on_epoch is not None:
            self.on_epoch(run.recorder.model_cfg.label, run.recorder.train_cfg.seed, record)

    def settle(self, ready) -> None:
        """Close the run of each task that returned: with its result, or as cancelled or lost."""
        from lib.runtime import Status

        errors = self.ray.exceptions
        for ref in ready:
            key = self.pending.pop(ref)
            try:
                self.close(key, self.ray.get(ref))
            except errors.TaskCancelledError:
                if self.runs[key].env is None:
                    self.runs.pop(key)  # cancelled before it started: like a run a serial sweep never reached
                else:
                    self.lost(key, Status.CANCELLED, f"cancelled during epoch {len(self.runs[key].history) + 1}")
            except errors.RuntimeEnvSetupError as err:
                raise ConfigError(f"the Ray workers cannot set up Lookback's code: {err}") from err
            except errors.RayTaskError:
                raise  # the training itself raised: handled in wait like a serial run's error
            except errors.RayError as err:
                self.lost(key, Status.FAILED, _death_message(err, len(self.runs[key].history)))

    def close(self, key: int, result: RunResult) -> None:
        """Record a run's result, with any epochs whose reports had not arrived yet."""
        run = self.runs.pop(key)
        if run.env is None:  # the task ended before its first report
            self.start(run, result.env)
        for record in result.history[len(run.history):]:
            self.log(run, record)
        self.done(key, run.recorder.finish(result))

    def lost(self, key: int, status: str, message: str) -> None:
        """A run that returned no result: keep what it reported."""
        from lib.models import ModelIO, build_model, count_params
        from lib.train import RunResult

        run = self.runs[key]
        model_cfg, train_cfg = run.recorder.model_cfg, run.recorder.train_cfg
        n_params = count_params(build_model(model_cfg, ModelIO.from_dataset(self.ds)))
        self.close(key, RunResult(model_cfg, train_cfg, status, message, list(run.history), None, {}, n_params,
                                  run.env or {}, None))

    def maybe_cancel(self, should_stop) -> None:
        """Once should_stop() turns True: drop the queued tasks and ask the running ones to stop; kill those
        still running CANCEL_GRACE_S seconds later."""
        if self.cancel_at is None and should_stop is not None and should_stop():
            self.cancel_at = time.monotonic()
            self.hub.cancel.remote(self.sweep)
            for ref, key in self.pending.items():
                if self.runs[key].env is None:
                    self.ray.cancel(ref)  # still queued: it never starts
        elif self.cancel_at is not None and not self.forced and time.monotonic() - self.cancel_at > CANCEL_GRACE_S:
            for ref in self.pending:
                self.ray.cancel(ref, force=True)
            self.forced = True

    def abort(self, err: BaseException) -> None:
        """Stop every task and record each open run: cancelled when another run's error stopped it, else
        failed."""
        from lib.runtime import Status

        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        cause = err.cause if isinstance(err, self.ray.exceptions.RayTaskError) else err
        stopped = set(self.pending.values())
        for key, run in self.runs.items():
            if key in stopped:
                run.recorder.fail(Status.CANCELLED, f"cancelled: the sweep stopped on {type(cause).__name__}")
            else:
                run.recorder.fail(Status.FAILED, f"{type(cause).__name__}: {cause}")

    def outcome(self) -> tuple[list[RunResult], bool]:
        """(runs in spec order, cancelled: asked to stop, and some run is missing or was cancelled)."""
        from lib.runtime import Status

        runs = [self.finished[k] for k in sorted(self.finished)]
        cancelled = self.cancel_at is not None and (len(runs) < len(self.specs) or any(
            r.status == Status.CANCELLED for r in runs))
        return runs, cancelled


def _gpus(device: str, cluster_gpus: float, backend: RayBackend) -> int:
    """1 for a CUDA run (or an "auto" one on a cluster with GPUs), else 0."""
    if device.startswith("cuda"):
        if not cluster_gpus:
            where = backend.address or os.environ.get("RAY_ADDRESS") or "this machine"
            raise ConfigError(f"device {device!r} was asked for but the Ray cluster ({where}) has no GPU; use "
                              f"'auto' or 'cpu', or add GPU nodes.")
        return 1
    return 1 if device == "auto" and cluster_gpus else 0


def _death_message(err: Exception, epochs: int) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return (f"failed: the Ray worker training this run died after {epochs} finished epoch(s) "
            f"({type(err).__name__}: {first}); the other runs were not affected. Train it again to get "
            f"a complete result.")
