"""The trivial predictors every verdict sets the models beside, per-row test outcomes, and the facts of a series
that limit what a study of it can claim.

A test row's outcome is what its metric averages: 1 or 0 for a right or wrong class (accuracy), the squared
error for a number (MSE). Trivial predictors need no training: the majority training class; the training mean;
and for a forecast, the last value, the value one detected season back and the window's drift. A forecast
dataset (one series cut into windows, lib.tasks.forecast) is recognised from its arrays: a window's last value
of one input column is the target `horizon` windows earlier.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from lib.runtime import Status
from lib.seasons import detect_season
from lib.tasks.base import CLASSIFICATION, SequenceDataset
from lib.train import predict

TRIVIAL = {"majority": "always guessing the majority training class", "train_mean": "predicting the training mean",
           "last_value": "repeating the last value", "seasonal_naive": "repeating the value one season back",
           "drift": "extending the window's drift",
           "do_nothing": "always predicting the expected target"}  # how verdicts and charts name each predictor
SIGNAL_FREE = ("majority", "train_mean")  # predictors that read no input: beating them is learning something
MAX_HORIZON = 1000  # the longest forecast horizon looked for
OUTSIDE = 0.1  # the share of test targets outside the training range from which a verdict hedges for a trend


@dataclass(frozen=True)
class Facts:
    """What a dataset says about the limits of a study of it.

    forecast: (target column, horizon) of a forecast series, None for labelled sequences. season: the detected
    season of a forecast's training part (steps per cycle), or None. outside: the share of test targets outside
    the training targets' range (forecasts; 0 otherwise). n_val: validation rows.
    """

    n_test: int
    seq_len: int
    forecast: tuple[int, int] | None = None
    season: int | None = None
    outside: float = 0.0
    n_val: int | None = None  # validation rows, which choose each run's best epoch


def forecast_layout(ds: SequenceDataset) -> tuple[int, int] | None:
    """(input column, horizon) when ds is one series forecast from windows of it, else None: the column whose
    last value in window i + horizon is the target of window i, for every training window."""
    if ds.kind == CLASSIFICATION or ds.vocab is not None or ds.train.x.ndim != 3:
        return None
    x, y = ds.train.x[:, -1, :].numpy(), ds.train.y.numpy()  # (N, F), (N,)
    for column in range(x.shape[1]):
        for h in np.flatnonzero(x[1:MAX_HORIZON + 1, column] == y[0]) + 1:  # where target 0 reappears as an input
            if len(y) - h >= 10 and np.array_equal(x[h:, column], y[:-h]):
                return column, int(h)
    return None


def training_series(ds: SequenceDataset, column: int, horizon: int) -> np.ndarray:
    """The training part of a forecast's series: the first window, every later window's last value and the
    targets of the last `horizon` windows."""
    x = ds.train.x[:, :, column].numpy()
    return np.concatenate([x[0], x[1:, -1], ds.train.y.numpy()[-horizon:]]).astype(np.float64)


def facts(ds: SequenceDataset) -> Facts:
    """The dataset's limits: its forecast layout, detected season and test targets outside the training range."""
    layout = forecast_layout(ds)
    if layout is None:
        return Facts(len(ds.test), ds.seq_len, n_val=len(ds.val))
    y, test = ds.train.y.numpy(), ds.test.y.numpy()
    outside = float(np.mean((test < y.min()) | (test > y.max()))) if len(test) else 0.0
    season = detect_season(training_series(ds, *layout)) or (ds.cue_lag if ds.cue_lag and ds.cue_lag > 1 else None)
    return Facts(len(ds.test), ds.seq_len, layout, season, outside, len(ds.val))


def trivial_rows(ds: SequenceDataset, fact: Facts) -> dict[str, np.ndarray]:
    """Each trivial predictor's outcome on every test row, (n_test,) float64, by TRIVIAL name: the majority
    training class (classification); the training mean (regression); for forecasts also the last value, the
    value one season back (when the window reaches it) and the window's drift (windows of two steps or more)."""
    if ds.kind == CLASSIFICATION:
        y, test = _final(ds.train.y), _final(ds.test.y)
        majority = int(torch.bincount(y[y >= 0]).argmax())
        return {"majority": (test == majority).double().numpy()}
    target = ds.test.y.double().numpy()
    preds = {"train_mean": np.full_like(target, float(ds.train.y.double().mean()))}
    if fact.forecast is not None:
        column, h = fact.forecast
        x = ds.test.x[:, :, column].double().numpy()  # (N, T)
        preds["last_value"] = x[:, -1]
        if fact.season is not None:
            back = fact.season * int(np.ceil(h / fact.season)) - h  # steps before the origin: a whole number of
            if back < x.shape[1]:  # seasons before the target, known at the origin (forecast.seasonal_lag)
                preds["seasonal_naive"] = x[:, -1 - back]
        if x.shape[1] >= 2:
            preds["drift"] = x[:, -1] + h * (x[:, -1] - x[:, 0]) / (x.shape[1] - 1)
    return {name: (p - target) ** 2 for name, p in preds.items()}


def _final(y: torch.Tensor) -> torch.Tensor:
    """One class per row: the label, or the final word's where there is a target at every step."""
    return y[:, -1] if y.ndim == 2 else y


def model_rows(model: torch.nn.Module, ds: SequenceDataset) -> np.ndarray:
    """A trained model's outcome on every test row, (n_test,) float64: right (1) or wrong (0) for a class (the
    final word's where there is a target at every step), the squared error for a number; these average to
    lib.train.evaluate's accuracy or MSE."""
    out = predict(model, ds.test.x).cpu()
    if ds.kind == CLASSIFICATION:
        out = out[:, -1] if ds.per_step else out
        return (out.argmax(-1) == _final(ds.test.y)).double().numpy()
    return ((out.squeeze(-1).double() - ds.test.y.double()) ** 2).numpy()


def run_rows(runs, ds: SequenceDataset) -> dict[str, np.ndarray]:
    """Per label, the per-row test outcomes (k, n) of its completed runs (lib.train.RunResult), in run order; a
    label any of whose completed runs has no model (no weights kept) is left out."""
    out: dict[str, list] = {}
    for run in runs:
        if run.status == Status.COMPLETED:
            out.setdefault(run.label, []).append(None if run.model is None else model_rows(run.model, ds))
    return {label: np.stack(r) for label, r in out.items() if all(x is not None for x in r)}


def baseline_lines(baselines: Mapping[str, float]) -> dict[str, float]:
    """A dataset's naive test MSEs (SequenceDataset.baselines, e.g. "last_value_mse") by the words TRIVIAL gives
    their predictors, for charts and captions."""
    return {TRIVIAL.get(name := key.removesuffix("_mse"), name.replace("_", " ")): value
            for key, value in baselines.items() if key.endswith("_mse")}


__all__ = ["SIGNAL_FREE", "TRIVIAL", "Facts", "baseline_lines", "facts",
           "forecast_layout", "model_rows", "run_rows", "training_series", "trivial_rows"]
