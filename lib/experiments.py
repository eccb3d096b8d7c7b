"""Comparisons and sweeps over tasks, models and seeds, returned as tidy pandas DataFrames."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from lib.errors import ConfigError
from lib.models import ModelConfig, ModelIO, validate
from lib.tasks import SequenceDataset, make_dataset, task_name
from lib.train import CANCELLED, RunResult, TrainConfig, train

RECURRENT = ("rnn", "gru", "lstm")

EpochCallback = Callable[[str, int, dict], None]  # (model label, seed, epoch record)


@lru_cache(maxsize=8)
def dataset(task_cfg) -> SequenceDataset:
    """Datasets are deterministic in their frozen config, so one build serves every run."""
    return make_dataset(task_cfg)


def run_config(task_cfg, model_cfg: ModelConfig, train_cfg: TrainConfig) -> dict:
    """The full, JSON-friendly config of one run: what the store hashes and a bundle records."""
    return {"task": {"name": task_name(task_cfg), **asdict(task_cfg)},
            "model": asdict(model_cfg), "train": asdict(train_cfg)}


@dataclass
class Comparison:
    """Models x seeds trained on one task."""

    task: object
    runs: list[RunResult]
    dataset: SequenceDataset

    @property
    def cancelled(self) -> bool:
        return any(r.status == CANCELLED for r in self.runs)

    def history(self) -> pd.DataFrame:
        """One row per model, seed and epoch."""
        return history_frame(self.runs)

    def summary(self) -> pd.DataFrame:
        """One row per model and seed."""
        return summary_frame(self.runs, self.dataset)


def history_frame(runs: Iterable[RunResult]) -> pd.DataFrame:
    rows = [{"label": r.label, "kind": r.model_config.kind, "seed": r.train_config.seed, **h}
            for r in runs for h in r.history]
    cols = ["label", "kind", "seed", "epoch", "train_loss", "val_loss", "val_metric", "epoch_seconds",
            "elapsed_seconds"]
    return pd.DataFrame(rows, columns=cols)


def epochs_to(history: list[dict], threshold: float, higher_is_better: bool) -> int | None:
    """First epoch whose validation metric reaches the threshold, or None."""
    for h in history:
        if (h["val_metric"] >= threshold) if higher_is_better else (h["val_metric"] <= threshold):
            return h["epoch"]
    return None


def summary_frame(runs: Iterable[RunResult], ds: SequenceDataset, threshold: float | None = None) -> pd.DataFrame:
    """One row per run: test metrics, size, time and status.

    threshold: the validation metric that counts as solved (default: 0.95 accuracy, or for regression
    the best naive baseline's MSE).
    """
    if threshold is None:
        threshold = 0.95 if ds.higher_is_better else min(
            (v for k, v in ds.baselines.items() if k.endswith("_mse")), default=np.nan)
    rows = []
    for r in runs:
        secs = [h["epoch_seconds"] for h in r.history]
        rows.append({
            "label": r.label, "kind": r.model_config.kind, "window": r.model_config.window
            if r.model_config.kind == "ffnn" else None, "seed": r.train_config.seed,
            "status": r.status, "metric": r.test.get(ds.metric, np.nan),
            **{f"test_{k}": v for k, v in r.test.items()},
            "n_params": r.n_params, "epochs": len(r.history), "best_epoch": r.best_epoch,
            "epoch_seconds": float(np.median(secs)) if secs else np.nan,
            "total_seconds": r.history[-1]["elapsed_seconds"] if r.history else 0.0,
            "epochs_to_threshold": epochs_to(r.history, threshold, ds.higher_is_better),
            "init": r.model_config.resolved_init, "message": r.message,
        })
    return pd.DataFrame(rows)


def aggregate(summary: pd.DataFrame, by: Sequence[str] = ("label",)) -> pd.DataFrame:
    """Mean, standard deviation and count of the test metric and costs per group, keeping group order."""
    grouped = summary.groupby(list(by), sort=False)
    out = grouped.agg(metric_mean=("metric", "mean"), metric_std=("metric", "std"),
                      n_seeds=("metric", "size"), n_params=("n_params", "first"),
                      epoch_seconds=("epoch_seconds", "median"), total_seconds=("total_seconds", "mean"))
    return out.reset_index()


def validate_models(task_cfg, models: Sequence[ModelConfig], seeds: Sequence[int]) -> SequenceDataset:
    """The task's dataset, after checking that every model can run on it (ConfigError otherwise)."""
    if not models:
        raise ConfigError("choose at least one model to train.")
    if not seeds:
        raise ConfigError("choose at least one seed.")
    ds = dataset(task_cfg)
    io = ModelIO.from_dataset(ds)
    for m in models:  # fail before any training starts
        validate(m, io)
    return ds


def compare(
    task_cfg,
    models: Sequence[ModelConfig],
    train_cfg: TrainConfig = TrainConfig(),
    seeds: Sequence[int] = (0,),
    on_epoch: EpochCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_run: Callable[[RunResult], None] | None = None,
) -> Comparison:
    """Train every model with every seed on one task; a cancel keeps the runs finished so far."""
    train_cfg.validate()
    ds = validate_models(task_cfg, models, seeds)
    runs: list[RunResult] = []
    for seed in seeds:
        for m in models:
            cb = (lambda rec, _m=m, _s=seed: on_epoch(_m.label, _s, rec)) if on_epoch else None
            run = train(ds, m, replace(train_cfg, seed=seed), on_epoch=cb, should_stop=should_stop)
            runs.append(run)
            if on_run is not None:
                on_run(run)
            if run.status == CANCELLED:
                return Comparison(task_cfg, runs, ds)
    return Comparison(task_cfg, runs, ds)


def window_sweep(
    task_cfg,
    windows: Sequence[int],
    train_cfg: TrainConfig = TrainConfig(),
    seeds: Sequence[int] = (0,),
    ffnn: ModelConfig = ModelConfig(kind="ffnn"),
    references: Sequence[ModelConfig] = (ModelConfig(kind="lstm"),),
    **callbacks,
) -> pd.DataFrame:
    """FFNN test metric, size and speed against its window, with recurrent reference runs."""
    if not windows:
        raise ConfigError("choose at least one FFNN window.")
    models = [replace(ffnn, kind="ffnn", window=int(w)) for w in sorted(set(windows))] + list(references)
    return compare(task_cfg, models, train_cfg, seeds, **callbacks).summary()


def distance_field(task_cfg) -> str:
    """The config field that sets the dependency distance of a task."""
    name = getattr(task_cfg, "distance_field", None)
    if name is None:
        raise ConfigError(f"task {task_name(task_cfg)!r} has no dependency-distance knob.")
    return name


def distance_sweep(
    task_cfg,
    distances: Sequence[int],
    models: Sequence[ModelConfig],
    train_cfg: TrainConfig = TrainConfig(),
    seeds: Sequence[int] = (0,),
    **callbacks,
) -> pd.DataFrame:
    """Test metric per distance, model and seed: how far back each model still remembers."""
    if not distances:
        raise ConfigError("choose at least one distance.")
    field = distance_field(task_cfg)
    frames = []
    for d in distances:
        cfg = replace(task_cfg, **{field: int(d)})
        comp = compare(cfg, models, train_cfg, seeds, **callbacks)
        frames.append(comp.summary().assign(distance=int(d), cue_lag=comp.dataset.cue_lag))
        if comp.cancelled:
            break
    return pd.concat(frames, ignore_index=True)
