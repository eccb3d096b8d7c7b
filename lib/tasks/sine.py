"""Sine forecasting: predict a noisy sum of sines `horizon` steps past the end of a window.

One long series is generated from the seed and cut chronologically into train / val / test segments;
every window (inputs and target) lies inside one segment, so no value the model is tested on was seen in
training. A FFNN whose window spans one main period is the honest, cheap competitor to recurrent models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from lib.configs import Checked
from lib.errors import ConfigError
from lib.tasks.base import REGRESSION, SequenceDataset
from lib.tasks.forecast import MIN_WINDOWS, forecast_splits, min_length, naive_baselines

TRAIN_FRACTION, VAL_FRACTION = 0.70, 0.15  # test gets the rest, always the latest values
MAX_LENGTH = 1_000_000


@dataclass(frozen=True)
class SineConfig(Checked):
    name: ClassVar[str] = "sine"
    distance_field: ClassVar[None] = None  # the main period shapes the series; there is no distance knob

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

    @property
    def cue_lag(self) -> int:
        """One main period: the FFNN window that spans a cycle."""
        return self.main_period

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
        if self.seed < 0:
            raise ConfigError(f"seed must be at least 0, got {self.seed}.")
        need = min_length(self.seq_len, self.horizon, VAL_FRACTION, 1 - TRAIN_FRACTION - VAL_FRACTION)
        if self.length < need:
            raise ConfigError(f"a series of {self.length} values is too short for seq_len {self.seq_len} "
                              f"and horizon {self.horizon}: the smallest segment must hold {MIN_WINDOWS} "
                              f"windows, so use length >= {need} or a shorter seq_len / horizon.")


def sine_series(cfg: SineConfig) -> np.ndarray:
    """The whole observed series, (length,) float64, deterministic in cfg.seed."""
    rng = np.random.default_rng(cfg.seed)
    phases = rng.uniform(0.0, 2 * np.pi, size=len(cfg.periods))
    t = np.arange(cfg.length)
    clean = sum(a * np.sin(2 * np.pi * t / p + ph)
                for p, a, ph in zip(cfg.periods, cfg.amplitudes, phases, strict=True))
    return clean + cfg.noise * rng.standard_normal(cfg.length)


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
        cue_lag=cfg.cue_lag,
        distance_name="main period in steps (the window that spans one cycle)",
    )
