"""Background training jobs: the page polls a job's progress instead of training inside the script run.

A job runs one library call in a daemon thread, so reruns, page switches and a Cancel click never
interrupt it mid-epoch: Cancel sets a flag that the engine polls every batch. At most MAX_RUNNING jobs
train at once on this server; the rest wait their turn.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from lib.errors import ConfigError

MAX_RUNNING = 2
_slots = threading.BoundedSemaphore(MAX_RUNNING)


class Job:
    """Runs fn(on_epoch=..., should_stop=..., on_run=...) in a thread; state readable from any rerun."""

    def __init__(self, title: str, fn: Callable, total_runs: int, epochs: int, meta: dict | None = None):
        self.title, self.total_runs, self.epochs = title, total_runs, epochs
        self.meta = meta or {}  # what the page needs to show the outcome, e.g. the task config
        self.progress: dict[tuple[str, int], dict] = {}  # (label, seed) -> latest epoch record
        self.finished: list = []  # RunResults in the order they finished
        self.result = None
        self.error: str | None = None
        self.state = "queued"  # queued -> running -> done
        self.started = time.time()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable) -> None:
        with _slots:
            if self._cancel.is_set():
                self.state = "done"
                return
            self.state = "running"
            try:
                self.result = fn(on_epoch=self._on_epoch, should_stop=self._cancel.is_set,
                                 on_run=self.finished.append)
            except ConfigError as err:
                self.error = str(err)
            except Exception:  # noqa: BLE001 - shown to the user instead of killing the thread silently
                self.error = "training failed unexpectedly:\n" + traceback.format_exc(limit=3)
            finally:
                self.state = "done"

    def _on_epoch(self, label: str, seed: int, record: dict) -> None:
        self.progress[(label, seed)] = record

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return self.state != "done"

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def fraction(self) -> float:
        """Share of the job done, counting finished runs and epochs of the runs in flight."""
        done = len(self.finished)
        in_flight = sum(r["epoch"] for key, r in self.progress.items()
                        if key not in {(f.label, f.train_config.seed) for f in self.finished})
        return min(1.0, (done + in_flight / max(self.epochs, 1)) / max(self.total_runs, 1))
