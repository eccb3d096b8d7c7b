"""Limits on what the app trains for its visitors, and the one plan of how many jobs train at once.

Hosted mode (a shared server, e.g. Streamlit Community Cloud) is on when the environment variable
LOOKBACK_HOSTED is 1; it caps every job's size, bounds the queue and the time each job may train, and gives
each visitor a storage quota. Locally nothing is capped beyond each setting's own range. Which setting a cap
applies to is declared with the setting (`Knob.cap`, lib.configs).
In both modes `plan` decides how many jobs train at once and with how many torch threads each, so that
jobs x threads never exceed the machine's cores; and `end_with` ends a training process with its parent.
"""
from __future__ import annotations

import ctypes
import math
import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from lib import paths
from lib.configs import knobs
from lib.errors import ConfigError

HOSTED_ENV = "LOOKBACK_HOSTED"
JOBS_ENV = "LOOKBACK_JOBS"  # jobs training at once, instead of the mode's default (e.g. on a larger host)
PARENT_GONE = 75  # the exit status of a process that `end_with` ended
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def hosted() -> bool:
    """Whether this process serves visitors of a shared host: LOOKBACK_HOSTED is 1 (or true/yes/on)."""
    return os.environ.get(HOSTED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Limits:
    """What one job may ask for, and how the server shares its cores. None means no limit."""

    epochs: int | None  # max epochs per run
    samples: int | None  # training samples per task: n_train (sentences, clips), or a series' length
    hidden: int | None  # hidden units per layer
    layers: int | None  # stacked layers
    seeds: int | None  # seeds per job
    distance: int | None  # dependency distance (words, frames) and input window of a series
    runs: int | None  # runs per job: models x seeds x sweep points
    jobs: int  # jobs training at once on this server (before `plan` fits them to the cores)
    job_seconds: float | None  # wall-clock limit per job; the job is then cancelled, finished runs kept
    queue: int | None  # jobs that may wait for a free slot
    idle_seconds: float | None  # a job whose page has not been seen for this long is cancelled
    upload_mb: int  # largest bundle upload (packed)
    unpacked_mb: int  # its members unpacked, together
    stored_runs: int | None  # runs one visitor may keep in the run store
    levels: int | None = None  # TCN levels (each doubles the receptive field and adds two convolutions)

    def describe(self) -> str:
        """One sentence for the visitor: the caps that apply to every job."""
        parts = [f"up to {self.epochs} epochs", f"{self.samples:,} training samples", f"{self.hidden} hidden units",
                 f"{self.layers} layers", f"{self.seeds} seeds"]
        if self.runs is not None:
            parts.append(f"{self.runs} runs per job")
        text = "Each job trains " + ", ".join(parts)
        if self.job_seconds is not None:
            text += f", and stops after {duration(self.job_seconds)} with the runs finished so far"
        return text + "."


# Local use: no caps beyond each setting's own range.
LOCAL = Limits(epochs=None, samples=None, hidden=None, layers=None, seeds=None, distance=None, runs=None, jobs=1,
               job_seconds=None, queue=None, idle_seconds=None, upload_mb=20, unpacked_mb=1024, stored_runs=None)
# Sized for 2 cores and five visitors pressing "Run the default comparison" at once (benchmarks/load.py):
# the default comparison fits every cap, and two jobs with one thread each drain the queue in about a minute.
HOSTED = Limits(epochs=100, samples=5_000, hidden=128, layers=2, seeds=3, distance=50, runs=24, jobs=2,
                job_seconds=300.0, queue=8, idle_seconds=180.0, upload_mb=5, unpacked_mb=50, stored_runs=200,
                levels=6)


def limits() -> Limits:
    """HOSTED when hosted(), else LOCAL; with LOOKBACK_JOBS set, that many jobs train at once."""
    lim = HOSTED if hosted() else LOCAL
    text = os.environ.get(JOBS_ENV, "").strip()
    if not text:
        return lim
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{JOBS_ENV} must be a whole number of at least 1, got {text!r}; unset it to use the "
                          f"default of {lim.jobs}.")
    return replace(lim, jobs=int(text))


def available_cores() -> int:
    """CPU cores this process may use: its CPU affinity, lowered by a cgroup CPU quota (containers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 cpu.max or v1 cfs quota), or None when unlimited or unknown."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


@dataclass(frozen=True)
class Plan:
    """How the server trains: `jobs` at once, each in its own worker process with `threads` torch threads."""

    jobs: int
    threads: int


def plan(jobs: int, cores: int | None = None, library_threads: int | None = None) -> Plan:
    """Fit `jobs` concurrent jobs to the cores: at most one job per core, and the torch threads a library run
    would use (torch's default, which honours OMP_NUM_THREADS) shared among them. One job thus trains with
    exactly the library's thread count, and jobs x threads never exceed the cores."""
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}.")
    cores = available_cores() if cores is None else cores
    if library_threads is None:
        import torch

        library_threads = torch.get_num_threads()
    jobs = min(jobs, cores)
    return Plan(jobs, max(1, min(library_threads, cores) // jobs))


def run_workers(threads: int, runs: int) -> tuple[int, int]:
    """(processes, torch threads each) for `runs` independent runs sharing `threads` torch threads: one run
    per thread, up to the runs there are, so processes x threads each never exceed the share."""
    workers = max(1, min(threads, runs))
    return workers, max(1, threads // workers)


def check_job(lim: Limits, task, models, train, seeds, runs: int) -> None:
    """Raise ConfigError naming every setting of a job beyond `lim`, and what to change; `runs` is the number of
    runs the job trains (models x seeds x sweep points)."""
    problems = []

    def over(what: str, value, cap, change: str) -> None:
        if cap is not None and value is not None and value > cap:
            problems.append(f"{what} is {value:,}, above this server's limit of {cap:,}; {change}")

    def capped(cfg, whose: str = "", also: dict | None = None) -> None:
        for name, k in knobs(cfg).items():
            if k.cap is not None:
                value = getattr(cfg, name)
                over(f"{whose}{k.words}", value, getattr(lim, k.cap), f"lower {k.label}{(also or {}).get(name, '')}")

    capped(train)
    over("the number of seeds", len(seeds), lim.seeds, "use fewer seeds")
    over("the number of runs", runs, lim.runs, "train fewer models, seeds, windows or distances")
    capped(task)
    for m in models:  # a parameter budget sets the hidden units too
        capped(m, f"{m.label}'s ", {"hidden": " or the parameter budget"})
    if problems:
        raise ConfigError("; ".join(dict.fromkeys(problems)) + ".")


def estimated_start(running_left: list[float], slots: int, ahead: list[float | tuple[float, bool]],
                    exclusive: bool = False) -> float:
    """Seconds until a queued job starts: `running_left` are the seconds the running jobs still need, `ahead`
    the expected seconds of the jobs queued before it, served first come first served on `slots` slots. A job
    given as (seconds, True), and the job itself when `exclusive`, needs every slot: it starts once all are
    free and holds them all."""
    free = sorted([*running_left, *[0.0] * (slots - len(running_left))])[:max(slots, 1)]
    for item in ahead:
        seconds, whole = item if isinstance(item, tuple) else (item, False)
        if whole:
            free = [max(free) + seconds] * len(free)
        else:
            free[0] += seconds
            free.sort()
    return max(0.0, max(free) if exclusive else free[0])


def duration(seconds: float) -> str:
    """Seconds as "5 minutes" or "40 seconds"."""
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} seconds"


def end_with(parent: int) -> None:
    """End this process (a multiprocessing child of `parent`) when its parent ends, however it ends, `kill -9`
    included: on Linux by the kernel's parent-death signal (it follows the parent's thread that started this
    process), and on any system by a thread that waits for the end of multiprocessing's pipe from the parent.
    A process that trains must call it first, so that no orphan trains on (lib.jobs, lib.backends)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before the signal was set
        os._exit(PARENT_GONE)
    threading.Thread(target=_exit_with, args=(mp.parent_process().sentinel,), name="lookback-parent-watch",
                     daemon=True).start()


def _exit_with(sentinel) -> None:
    mp.connection.wait([sentinel])
    os._exit(PARENT_GONE)


def shown(message: str, store_path: str | os.PathLike | None = None) -> str:
    """An error message as a visitor may see it: on a shared host, without the path of the run store
    (default: LOOKBACK_DB's) or of its folder, which also holds the prepared user data."""
    if not hosted():
        return message
    if store_path is None:
        store_path = paths.store_path()
    return message.replace(str(store_path), "the run store").replace(str(Path(store_path).parent),
                                                                     "the server's data folder")


__all__ = ["HOSTED", "HOSTED_ENV", "JOBS_ENV", "LOCAL", "Limits", "Plan", "available_cores", "check_job", "duration",
           "end_with", "estimated_start", "hosted", "limits", "plan", "shown"]
