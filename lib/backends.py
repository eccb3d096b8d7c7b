"""Where a comparison's runs train: in this process, in local worker processes (joblib), or on a Ray cluster.

"local" trains one run after another in this process; "joblib" trains them in worker processes on this
machine, each writing the run store itself. `RayBackend` sends each run to a Ray cluster as one task that
declares its resources (CPUs, and one GPU for CUDA runs); this process (the driver) alone writes the run
store, so workers never share a SQLite file, and it passes each epoch's record to the caller as the
workers report it. Ray is an optional extra, imported only when a Ray backend is used.
"""
from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lib.errors import ConfigError

if TYPE_CHECKING:  # imported where used, so that the progress actor's process never loads torch
    from lib.models import ModelConfig
    from lib.train import RunResult, TrainConfig

BACKENDS = ("local", "joblib", "ray")
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


def resolve(backend: str | RayBackend | None, n_jobs: int = 1) -> str | RayBackend:
    """"local", "joblib" or a RayBackend. None keeps the n_jobs rule: local for n_jobs == 1, else joblib."""
    if backend is None:
        return "local" if n_jobs == 1 else "joblib"
    if isinstance(backend, RayBackend):
        backend.validate()
        return backend
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}.")
    return RayBackend() if backend == "ray" else backend


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

    model_cfg: ModelConfig
    train_cfg: TrainConfig
    env: dict | None = None  # set by the task's "start" report
    run_id: str | None = None  # the run store's id, once started
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
    from lib import experiments
    from lib.models import ModelIO, build_model, count_params
    from lib.runtime import Status
    from lib.train import RunResult

    ray = connect(backend.address)
    ds = experiments.dataset(task_cfg)
    io = ModelIO.from_dataset(ds)
    finished: dict[int, RunResult] = {}

    def done(key: int, result: RunResult) -> None:
        finished[key] = result
        if on_run is not None:
            on_run(result)

    todo = []
    for key, (model_cfg, train_cfg) in enumerate(specs):
        hit = None if store is None or force else experiments.stored_result(task_cfg, model_cfg, train_cfg, store)
        if hit is not None:
            done(key, hit)
        else:
            todo.append(key)
    if not todo:
        return [finished[k] for k in sorted(finished)], False

    cluster_gpus = ray.cluster_resources().get("GPU", 0)
    gpus = {key: _gpus(specs[key][1].device, cluster_gpus, backend) for key in todo}  # refuse before submitting
    hub, sweep = _progress_hub(ray), next(_sweeps)
    task = ray.remote(_train_task)
    ds_ref = ray.put(ds)
    runs: dict[int, _Run] = {}
    pending: dict = {}  # ObjectRef -> key
    for key in todo:
        model_cfg, train_cfg = specs[key]
        runs[key] = _Run(model_cfg, train_cfg)
        options = {"num_cpus": backend.cpus_per_run, "num_gpus": gpus[key],
                   "max_retries": 0}  # a lost worker fails its run; see the docstring
        ref = task.options(**options).remote(ds_ref, model_cfg, train_cfg, backend.cpus_per_run, hub, sweep, key)
        pending[ref] = key

    def start(run: _Run, env: dict) -> None:
        run.env = env
        if store is not None:
            run.run_id = store.start_run(experiments.run_config(task_cfg, run.model_cfg, run.train_cfg),
                                         run.train_cfg.seed, run.model_cfg.label, task_cfg.name, env)

    def log(run: _Run, record: dict) -> None:
        if run.run_id is not None:
            store.log_epoch(run.run_id, record)
        run.history.append(record)
        if on_epoch is not None:
            on_epoch(run.model_cfg.label, run.train_cfg.seed, record)

    def collect() -> None:
        for key, kind, payload in ray.get(hub.drain.remote(sweep)):
            run = runs.get(key)
            if run is None:
                continue  # a report that arrived after its run's result
            if kind == "start":
                start(run, payload)
            elif not run.history or payload["epoch"] > run.history[-1]["epoch"]:
                log(run, payload)

    def close(key: int, result: RunResult) -> None:
        run = runs.pop(key)
        if run.env is None:  # the task ended before its first report
            start(run, result.env)
        for record in result.history[len(run.history):]:
            log(run, record)
        if run.run_id is not None:
            store.finish_run(run.run_id, result.status, result.message, result.test,
                             state_dict=result.model.state_dict() if result.status == Status.COMPLETED else None,
                             best_epoch=result.best_epoch, n_params=result.n_params)
        result.run_id = run.run_id
        done(key, result)

    def lost(key: int, status: str, message: str) -> None:
        """A run that returned no result: keep what it reported."""
        run = runs[key]
        close(key, RunResult(run.model_cfg, run.train_cfg, status, message, list(run.history), None, {},
                             count_params(build_model(run.model_cfg, io)), run.env or {}, None))

    cancel_at, forced = None, False
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_S)
            collect()
            for ref in ready:
                key = pending.pop(ref)
                try:
                    close(key, ray.get(ref))
                except ray.exceptions.TaskCancelledError:
                    if runs[key].env is None:
                        runs.pop(key)  # cancelled before it started: like a run a serial sweep never reached
                    else:
                        lost(key, Status.CANCELLED, f"cancelled during epoch {len(runs[key].history) + 1}")
                except ray.exceptions.RuntimeEnvSetupError as err:
                    raise ConfigError(f"the Ray workers cannot set up Lookback's code: {err}") from err
                except ray.exceptions.RayTaskError:
                    raise  # the training itself raised: handled below like a serial run's error
                except ray.exceptions.RayError as err:
                    lost(key, Status.FAILED, _death_message(err, len(runs[key].history)))
            if cancel_at is None and should_stop is not None and should_stop():
                cancel_at = time.monotonic()
                hub.cancel.remote(sweep)
                for ref, key in pending.items():
                    if runs[key].env is None:
                        ray.cancel(ref)  # still queued: it never starts
            elif cancel_at is not None and not forced and time.monotonic() - cancel_at > CANCEL_GRACE_S:
                for ref in pending:
                    ray.cancel(ref, force=True)
                forced = True
    except BaseException as err:
        for ref in pending:
            ray.cancel(ref, force=True)
        cause = err.cause if isinstance(err, ray.exceptions.RayTaskError) else err
        for run_key, run in runs.items():
            if run.run_id is None:
                continue
            if run_key in pending.values():  # stopped because of another run's error
                store.finish_run(run.run_id, Status.CANCELLED, f"cancelled: the sweep stopped on "
                                 f"{type(cause).__name__}", {})
            else:
                store.finish_run(run.run_id, Status.FAILED, f"{type(cause).__name__}: {cause}", {})
        if isinstance(err, ray.exceptions.RayTaskError):
            raise err.as_instanceof_cause() from None  # still an instance of the original error type
        raise
    finally:
        hub.close.remote(sweep)
    runs_out = [finished[k] for k in sorted(finished)]
    cancelled = cancel_at is not None and (len(runs_out) < len(specs) or any(
        r.status == Status.CANCELLED for r in runs_out))
    return runs_out, cancelled


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
