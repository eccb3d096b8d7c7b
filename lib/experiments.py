"""Comparisons and sweeps over tasks, models and seeds, returned as tidy pandas DataFrames."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from lib.errors import ConfigError
from lib.models import ModelConfig, ModelIO, build_model, validate
from lib.runtime import __version__, environment, resolve_device
from lib.tasks import SequenceDataset, make_dataset, task_name
from lib.train import CANCELLED, COMPLETED, RunResult, TrainConfig, train

RECURRENT = ("rnn", "gru", "lstm")

EpochCallback = Callable[[str, int, dict], None]  # (model label, seed, epoch record)


@lru_cache(maxsize=8)
def dataset(task_cfg) -> SequenceDataset:
    """Datasets are deterministic in their frozen config, so one build serves every run."""
    return make_dataset(task_cfg)


def run_config(task_cfg, model_cfg: ModelConfig, train_cfg: TrainConfig) -> dict:
    """The full, JSON-friendly config of one run: what the store hashes and a bundle records."""
    return {"task": {"name": task_name(task_cfg), **asdict(task_cfg)},
            "model": asdict(model_cfg), "train": asdict(train_cfg),
            "io": asdict(ModelIO.from_dataset(dataset(task_cfg)))}


def result_from_record(record: dict, state_dict: dict | None) -> RunResult:
    """Rebuild a stored run; its model carries the stored weights, or is None without them."""
    cfg = record["config"]
    model_cfg, train_cfg = ModelConfig(**cfg["model"]), TrainConfig(**cfg["train"])
    model = None
    if state_dict is not None:
        model = build_model(model_cfg, ModelIO(**cfg["io"]))
        model.load_state_dict(state_dict)
        model.eval()
    return RunResult(model_cfg, train_cfg, record["status"], record["message"], record["history"],
                     record["best_epoch"], record["metrics"] or {}, record["n_params"], record["env"], model,
                     record["id"])


def run_one(task_cfg, model_cfg: ModelConfig, train_cfg: TrainConfig, store=None, force: bool = False,
            on_epoch=None, should_stop=None) -> RunResult:
    """Train one model, or return the stored result of the identical config, seed and Lookback version.

    With a store, the run is recorded as it trains (so a crash leaves it "interrupted", never completed)
    and its weights are kept. force=True retrains even when a stored result exists.
    """
    ds = dataset(task_cfg)
    if store is None:
        return train(ds, model_cfg, train_cfg, on_epoch=on_epoch, should_stop=should_stop)
    config = run_config(task_cfg, model_cfg, train_cfg)
    if not force and (hit := store.find(config, train_cfg.seed, __version__)) is not None:
        result = result_from_record(hit, store.load_weights(hit["id"]))
        if result.model is not None:
            result.message = f"reused stored run {hit['id']}: {result.message}"
            result.run_id = hit["id"]
            return result
    run_id = store.start_run(config, train_cfg.seed, model_cfg.label, task_name(task_cfg),
                             environment(resolve_device(train_cfg.device)))

    def log(record: dict) -> None:
        store.log_epoch(run_id, record)
        if on_epoch is not None:
            on_epoch(record)

    try:
        result = train(ds, model_cfg, train_cfg, on_epoch=log, should_stop=should_stop)
    except BaseException as err:
        store.finish_run(run_id, "failed", f"{type(err).__name__}: {err}", {})
        raise
    store.finish_run(run_id, result.status, result.message, result.test,
                     state_dict=result.model.state_dict() if result.status == COMPLETED else None,
                     best_epoch=result.best_epoch, n_params=result.n_params)
    result.run_id = run_id
    return result


@dataclass
class Comparison:
    """Models x seeds trained on one task."""

    task: object
    runs: list[RunResult]
    dataset: SequenceDataset
    cancelled: bool = False  # stopped before every run finished

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
    store=None,
    force: bool = False,
    n_jobs: int = 1,
) -> Comparison:
    """Train every model with every seed on one task; a cancel keeps the runs finished so far.

    With a store (lib.store.RunStore), identical runs already stored are reused unless force=True.
    n_jobs > 1 trains independent runs in that many worker processes (-1: one per core), each with
    cores // n_jobs torch threads; on_epoch is then not called, and should_stop is checked between runs.
    """
    train_cfg.validate()
    ds = validate_models(task_cfg, models, seeds)
    specs = [(m, replace(train_cfg, seed=seed)) for seed in seeds for m in models]
    runs: list[RunResult] = []
    if n_jobs == 1:
        results = (run_one(task_cfg, m, tc, store, force,
                           (lambda rec, _m=m, _s=tc.seed: on_epoch(_m.label, _s, rec)) if on_epoch else None,
                           should_stop) for m, tc in specs)
    else:
        results = _parallel(task_cfg, specs, store, force, n_jobs)
    for run in results:
        runs.append(run)
        if on_run is not None:
            on_run(run)
        if run.status == CANCELLED or (should_stop is not None and should_stop()):
            return Comparison(task_cfg, runs, ds, cancelled=len(runs) < len(specs) or run.status == CANCELLED)
    return Comparison(task_cfg, runs, ds)


def worker_plan(n_jobs: int, n_tasks: int) -> tuple[int, int]:
    """(workers, torch threads per worker) so that workers x threads <= cores."""
    cores = os.cpu_count() or 1
    workers = cores if n_jobs < 0 else min(n_jobs, cores)
    workers = max(1, min(workers, n_tasks))
    return workers, max(1, cores // workers)


def _worker(task_cfg, model_cfg, train_cfg, threads, store_path, force) -> RunResult:
    torch.set_num_threads(threads)
    if store_path is None:
        return run_one(task_cfg, model_cfg, train_cfg, force=force)
    from lib.store import RunStore

    with RunStore(store_path) as store:
        return run_one(task_cfg, model_cfg, train_cfg, store, force)


def _parallel(task_cfg, specs, store, force, n_jobs):
    from joblib import Parallel, delayed

    workers, threads = worker_plan(n_jobs, len(specs))
    path = None if store is None else str(store.path)
    return Parallel(n_jobs=workers, return_as="generator", batch_size=1)(
        delayed(_worker)(task_cfg, m, tc, threads, path, force) for m, tc in specs)


def window_sweep(
    task_cfg,
    windows: Sequence[int],
    train_cfg: TrainConfig = TrainConfig(),
    seeds: Sequence[int] = (0,),
    ffnn: ModelConfig = ModelConfig(kind="ffnn"),
    references: Sequence[ModelConfig] = (ModelConfig(kind="lstm"),),
    **options,
) -> pd.DataFrame:
    """FFNN test metric, size and speed against its window, with recurrent reference runs."""
    if not windows:
        raise ConfigError("choose at least one FFNN window.")
    models = [replace(ffnn, kind="ffnn", window=int(w)) for w in sorted(set(windows))] + list(references)
    return compare(task_cfg, models, train_cfg, seeds, **options).summary()


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
    **options,
) -> pd.DataFrame:
    """Test metric per distance, model and seed: how far back each model still remembers."""
    if not distances:
        raise ConfigError("choose at least one distance.")
    field = distance_field(task_cfg)
    frames = []
    for d in distances:
        cfg = replace(task_cfg, **{field: int(d)})
        comp = compare(cfg, models, train_cfg, seeds, **options)
        frames.append(comp.summary().assign(distance=int(d), cue_lag=comp.dataset.cue_lag))
        if comp.cancelled:
            break
    return pd.concat(frames, ignore_index=True)
