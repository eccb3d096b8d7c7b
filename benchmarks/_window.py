"""The 12-run FFNN window sweep that the sweep and cluster benchmarks time in their different modes."""
import time

from lib.experiments import window_sweep
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig

TASK = TextRecallConfig(distance=20)
WINDOWS = list(range(2, 26, 2))  # 12 FFNN runs


def sweep(epochs: int, **kw):
    return window_sweep(TASK, WINDOWS, TrainConfig(epochs=epochs, patience=0, device="cpu"), references=(), **kw)


def timed(epochs: int, **kw):
    """(seconds, frame) of one sweep."""
    start = time.perf_counter()
    frame = sweep(epochs, **kw)
    return time.perf_counter() - start, frame
