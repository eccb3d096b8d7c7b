"""Sine forecasting: predict a noisy sum of sines `horizon` steps past the end of a window.

One long series is generated from the seed and cut chronologically into train / val / test segments;
every window (inputs and target) lies inside one segment, so no value the model is tested on was seen in
training. A FFNN whose window spans one main period is the honest, cheap competitor to recurrent models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from lib.configs import Checked, check_knobs, knob
from lib.errors import ConfigError
from lib.tasks.base import REGRESSION, SequenceDataset
from lib.tasks.forecast import MIN_WINDOWS, forecast_splits, min_length, naive_baselines

TRAIN_FRACTION, VAL_FRACTION = 0.70, 0.15  # test gets the rest, always the latest values
MAX_LENGTH = 1_000_000


@dataclass(frozen=True)
class SineConfig(Checked):
    name: ClassVar[str] = "sine"
    title: ClassVar[str] = "Sine waves"
    distance_field: ClassVar[None] = None  # the main period shapes the series; there is no distance knob

    shown: ClassVar[tuple[str, ...]] = ("periods", "noise", "horizon", "seq_len")  # the form's settings

    periods: tuple[float, ...] = knob((24.0, 8.0), "Periods", unit="steps", form=(4, 200), key="period",
                                      parts=("Main period", "Second period"))  # steps per cycle of each sine
    # (1-3 of them); the first is main
    amplitudes: tuple[float, ...] = knob((1.0, 0.5), "Amplitudes", low=0.0, high=100.0, excludes="low")  # one a period
    noise: float = knob(0.1, "Noise (std)", low=0.0, high=10.0, form=(0.0, 1.0), step=0.05)  # added Gaussian
    horizon: int = knob(1, "Forecast horizon", low=1, high=1000, unit="steps", form=(1, 50))  # steps from the
    # window's last value to the value to predict
    seq_len: int = knob(48, "Input window of the recurrent models", unit="steps", high=1000, cap="distance",
                        key="seq", form=(8, 400), header="input window (steps)")  # at least one main period
    length: int = knob(5000, "Series length", low=100, high=MAX_LENGTH, cap="samples")  # before the 70/15/15 split
    seed: int = knob(0, "Data seed", low=0)  # phases and noise; same seed, same series

    @classmethod
    def from_form(cls, values: dict) -> SineConfig:
        """The config of the form's values: each period its default amplitude."""
        periods = tuple(values.pop("periods"))
        return cls(periods=periods, amplitudes=cls.amplitudes[:len(periods)], **values)

    @property
    def main_period(self) -> int:
        """The main period in whole steps: the FFNN window that spans one cycle."""
        return round(self.periods[0])

    @property
    def cue_lag(self) -> int:
        """One main period: the FFNN window that spans a cycle."""
        return self.main_period

    def validate(self) -> None:
        check_knobs(self)
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
        if not self.main_period <= self.seq_len:
            raise ConfigError(f"seq_len must be between the main period ({self.main_period} steps, so a "
                              f"window can span one cycle) and 1000, got {self.seq_len}.")
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
        noise_floor=cfg.noise ** 2,
        cue_lag=cfg.cue_lag,
        distance_name="main period in steps (the window that spans one cycle)",
    )
