"""Forecasting one series: chronological segments, leak-free windows and naive baselines.

Shared by the sine task and user series (lib.tasks.user.arrays). A series is cut into train / val / test
segments in time (test is the latest part), and every window, inputs and target, lies inside one segment.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from lib.tasks.base import Split

MIN_WINDOWS = 10  # windows each segment must hold for its metrics to mean anything


def segment_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Chronological (train, val, test) lengths; test is the latest part."""
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return n - n_val - n_test, n_val, n_test


def n_windows(length: int, window: int, horizon: int) -> int:
    """How many windows (inputs and target) `windows` cuts from a segment of `length` values."""
    return length - window - horizon + 1


def _fits(n: int, window: int, horizon: int, val_fraction: float, test_fraction: float) -> bool:
    """Whether each segment of a series of n values holds MIN_WINDOWS windows."""
    return min(n_windows(size, window, horizon)
               for size in segment_sizes(n, val_fraction, test_fraction)) >= MIN_WINDOWS


def min_length(window: int, horizon: int, val_fraction: float, test_fraction: float) -> int:
    """The shortest series from which on every longer one too, each segment (train, val, test) holds
    MIN_WINDOWS windows, by segment_sizes and n_windows: the arithmetic forecast_splits uses."""
    need = window + horizon + MIN_WINDOWS - 1  # values per segment
    # Beyond `n`, rounding keeps val and test within 1/2 and train within 1 of their exact shares: all fit.
    n = math.ceil(max((need + 1) / min(val_fraction, test_fraction), (need + 2) / (1 - val_fraction - test_fraction)))
    while n > 1 and _fits(n - 1, window, horizon, val_fraction, test_fraction):
        n -= 1
    return n


def windows(segment: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All windows inside one segment: inputs (N, window), targets (N,), target positions (N,)."""
    n = n_windows(len(segment), window, horizon)
    x = np.lib.stride_tricks.sliding_window_view(segment, window)[:n]  # (N, window)
    target_pos = np.arange(n) + window - 1 + horizon  # index within the segment
    return x, segment[target_pos], target_pos


def seasonal_lag(period: int, horizon: int) -> int:
    """A whole number of periods back from the target that is already known at the forecast origin."""
    return period * math.ceil(horizon / period)


def naive_baselines(series: np.ndarray, start: int, window: int, horizon: int,
                    period: int | None = None) -> dict[str, float]:
    """Test MSE / MAE of the last-value and (with a period) seasonal-naive forecasts.

    `series` is the whole series and `start` the first index of the evaluated segment; the windows are
    the same as those `windows(series[start:], window, horizon)` builds. The seasonal forecast is the value
    `seasonal_lag(period, horizon)` steps before the target, which may lie before the segment (the past).
    """
    _, target, pos = windows(series[start:], window, horizon)
    pos = pos + start  # index in the whole series
    preds = {"last_value": series[pos - horizon]}
    if period is not None:
        preds["seasonal_naive"] = series[pos - seasonal_lag(period, horizon)]
    out = {}
    for name, pred in preds.items():
        err = pred - target
        out[f"{name}_mse"] = float(np.mean(err ** 2))
        out[f"{name}_mae"] = float(np.mean(np.abs(err)))
    return out


def forecast_splits(series: np.ndarray, window: int, horizon: int, val_fraction: float,
                    test_fraction: float, distance: int | None = None) -> tuple[Split, Split, Split, int]:
    """Chronological, leak-free train / val / test windows of one series, plus the test segment's start.

    Inputs (N, window, 1) float32, targets (N,) float32; when given, `distance` fills each split's
    per-sample distance.
    """
    sizes = segment_sizes(len(series), val_fraction, test_fraction)
    bounds = np.cumsum((0, *sizes))
    splits = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        x, y, _ = windows(series[lo:hi], window, horizon)
        dist = None if distance is None else torch.full((len(y),), distance, dtype=torch.int64)
        splits.append(Split(torch.tensor(x[:, :, None], dtype=torch.float32),
                            torch.tensor(y, dtype=torch.float32), dist))
    return splits[0], splits[1], splits[2], int(bounds[2])
