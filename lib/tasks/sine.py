"""Sine forecasting: predict a noisy sum of sines `horizon` steps past the end of a window.

One long series is generated from the seed and cut chronologically into train / val / test segments;
every window (inputs and target) lies inside one segment, so no value the model is tested on was seen in
training. A FFNN whose window spans one main period is the honest, cheap competitor to recurrent models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from lib.errors import ConfigError
from lib.tasks.base import REGRESSION, SequenceDataset, Split

TRAIN_FRACTION, VAL_FRACTION = 0.70, 0.15  # test gets the rest, always the latest values
MIN_WINDOWS = 10  # windows each segment must hold for its metrics to mean anything
MAX_LENGTH = 1_000_000


@dataclass(frozen=True)
class SineConfig:
    periods: tuple[float, ...] = (24.0, 8.0)  # steps per cycle of each sine (1-3 of them); the first is main
    amplitudes: tuple[float, ...] = (1.0, 0.5)  # one amplitude per period
    noise: float = 0.1  # std of Gaussian noise added to every observed value
    horizon: int = 1  # steps from the window's last value to the value to predict
    seq_len: int = 48  # steps per input window; at least one main period
    length: int = 5000  # values in the whole series, before the 70/15/15 split
    seed: int = 0  # phases and noise; same seed, same series

    @property
    def main_period(self) -> int:
        """The main period in whole steps: the FFNN window that spans one cycle."""
        return round(self.periods[0])

    def validate(self) -> None:
        if not 100 <= self.length <= MAX_LENGTH:
            raise ConfigError(f"length must be between 100 and {MAX_LENGTH}, got {self.length}.")
        if not 1 <= len(self.periods) <= 3:
            raise ConfigError(f"give 1 to 3 periods, got {len(self.periods)}.")
        if len(self.amplitudes) != len(self.periods):
            raise ConfigError(f"give one amplitude per period: {len(self.periods)} period(s) but "
                              f"{len(self.amplitudes)} amplitude(s).")
        for p in self.periods:
            if not 2.0 <= p <= self.length / 10:
                raise ConfigError(f"each period must be between 2 steps and a tenth of the series "
                                  f"({self.length / 10:g} steps), got {p:g}; shorten the period or "
                                  f"lengthen the series.")
        for a in self.amplitudes:
            if not 0.0 < a <= 100.0:
                raise ConfigError(f"each amplitude must be in (0, 100], got {a:g}.")
        if not 0.0 <= self.noise <= 10.0:
            raise ConfigError(f"noise must be between 0 and 10, got {self.noise:g}.")
        if not 1 <= self.horizon <= 1000:
            raise ConfigError(f"horizon must be between 1 and 1000 steps, got {self.horizon}.")
        if not self.main_period <= self.seq_len <= 1000:
            raise ConfigError(f"seq_len must be between the main period ({self.main_period} steps, so a "
                              f"window can span one cycle) and 1000, got {self.seq_len}.")
        need = min_length(self.seq_len, self.horizon, 1 - TRAIN_FRACTION - VAL_FRACTION, VAL_FRACTION)
        if self.length < need:
            raise ConfigError(f"a series of {self.length} values is too short for seq_len {self.seq_len} "
                              f"and horizon {self.horizon}: the smallest segment must hold {MIN_WINDOWS} "
                              f"windows, so use length >= {need} or a shorter seq_len / horizon.")


def min_length(window: int, horizon: int, test_fraction: float, val_fraction: float) -> int:
    """The shortest series whose val and test segments each hold MIN_WINDOWS windows."""
    per_segment = window + horizon + MIN_WINDOWS - 1
    n = math.ceil(per_segment / min(test_fraction, val_fraction))
    while min(segment_sizes(n, val_fraction, test_fraction)) < per_segment:
        n += 1
    return n


def segment_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Chronological (train, val, test) lengths; test is the latest part."""
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return n - n_val - n_test, n_val, n_test


def sine_series(cfg: SineConfig) -> np.ndarray:
    """The whole observed series, (length,) float64, deterministic in cfg.seed."""
    rng = np.random.default_rng(cfg.seed)
    phases = rng.uniform(0.0, 2 * np.pi, size=len(cfg.periods))
    t = np.arange(cfg.length)
    clean = sum(a * np.sin(2 * np.pi * t / p + ph)
                for p, a, ph in zip(cfg.periods, cfg.amplitudes, phases, strict=True))
    return clean + cfg.noise * rng.standard_normal(cfg.length)


def windows(segment: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All windows inside one segment: inputs (N, window), targets (N,), target positions (N,)."""
    n = len(segment) - window - horizon + 1
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


def make_sine(cfg: SineConfig) -> SequenceDataset:
    cfg.validate()
    series = sine_series(cfg)
    test_fraction = 1 - TRAIN_FRACTION - VAL_FRACTION
    train, val, test, test_start = forecast_splits(series, cfg.seq_len, cfg.horizon, VAL_FRACTION,
                                                   test_fraction, distance=cfg.main_period)
    parts = " + ".join(f"{a:g}·sin(period {p:g})" for p, a in zip(cfg.periods, cfg.amplitudes, strict=True))
    return SequenceDataset(
        name="sine",
        description=(f"Forecast {parts} with noise {cfg.noise:g}, {cfg.horizon} step(s) past a window of "
                     f"{cfg.seq_len}; one series of {cfg.length} values split 70/15/15 in time."),
        kind=REGRESSION,
        train=train, val=val, test=test,
        seq_len=cfg.seq_len,
        n_features=1,
        n_outputs=1,
        baselines=naive_baselines(series, test_start, cfg.seq_len, cfg.horizon, cfg.main_period),
        cue_lag=cfg.main_period,
        distance_name="main period in steps (the window that spans one cycle)",
    )
