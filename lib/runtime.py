"""Run statuses, device choice, clock synchronisation and the environment record attached to every run and
timing."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch

from lib import __version__
from lib.errors import ConfigError

LIB = Path(__file__).resolve().parent
# The sources that decide a run's result, relative to lib/: a change to any of them stops reuse of stored runs.
RESULT_SOURCES = ("train.py", "models.py", "tasks/*.py")


class Status(StrEnum):
    """Where a run stands; a plain string wherever it is stored or compared."""

    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # stopped on request; the history holds the finished epochs
    DIVERGED = "diverged"  # the loss became NaN or infinite
    FAILED = "failed"  # training raised
    INTERRUPTED = "interrupted"  # its process ended while it was running

    @classmethod
    def finished(cls) -> tuple[Status, ...]:
        """Every status a run can end with: all but RUNNING."""
        return tuple(s for s in cls if s is not cls.RUNNING)


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available; use 'auto' or 'cpu'.")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'.")
    return torch.device(device)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so that a clock read afterwards means something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def flushed_denormals() -> Iterator[None]:
    """Subnormal floats flushed to zero inside the block, and not after it (the default; other code, e.g.
    Hypothesis, refuses to run with them flushed). Long-distance tasks drive states toward subnormals, where
    each op runs many times slower without the flush."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


_FINGERPRINTS: dict[tuple, str] = {}  # by every source's path, size and modification time


def code_fingerprint(root: Path = LIB) -> str:
    """Short sha256 over the RESULT_SOURCES under root, paths and contents in sorted order. Hashed again whenever
    a source's size or modification time changes, so that an edited source is never taken for the one it
    replaced; otherwise reused (a run asks once, at its end)."""
    paths = sorted(p for pattern in RESULT_SOURCES for p in root.glob(pattern))
    key = tuple((p, (st := p.stat()).st_size, st.st_mtime_ns) for p in paths)
    if key not in _FINGERPRINTS:
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
        _FINGERPRINTS[key] = digest.hexdigest()[:16]
    return _FINGERPRINTS[key]


def load_average() -> float | None:
    """The machine's 1-minute load average (runnable processes), or None where the OS has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def environment(device: torch.device | str = "cpu") -> dict:
    """What a result or timing depends on: versions (NumPy draws the task data), code fingerprint, device, torch
    threads, oneDNN, the process (MainProcess, or a worker such as LokyProcess-1) and load."""
    device = torch.device(device)
    return {
        "lookback": __version__,
        "code": code_fingerprint(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "threads": torch.get_num_threads(),
        "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
        "process": multiprocessing.current_process().name,
        "load_1min": load_average(),
        # a CUDA run's numbers also depend on the CUDA and cuDNN builds (see docs/cluster.md on determinism)
        **({"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()} if device.type == "cuda" else {}),
    }
