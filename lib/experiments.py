"""Comparisons and sweeps over tasks, models and seeds, returned as tidy pandas DataFrames."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd
import torch

from lib import backends
from lib.configs import from_dict
from lib.errors import ConfigError, LookbackError
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, covering_levels, receptive_field, sees, validate
from lib.runs import RUN_ID, dataset, result_from_record, run_one
from lib.runtime import Status
from lib.tasks import SequenceDataset, TaskConfig, task_from_dict
from lib.train import RunResult, TrainConfig

EpochCallback = Callable[[str, int, dict], None]  # (model label, seed, epoch record)


RERUN_ENV = ("torch", "numpy", "python", "device", "threads", "mkldnn_enabled")  # what can change the numbers
TIMELESS = ("epoch", "train_loss", "val_loss", "val_metric")  # an epoch's numbers, without its seconds
STOPPED = (Status.INTERRUPTED, Status.CANCELLED, Status.FAILED)  # ended before training did


@dataclass(frozen=True)
class Rerun:
    """A stored run trained again from its config and seed, and how the numbers compare."""

    run_id: str  # the stored run
    label: str
    status: str  # the stored run's
    new: RunResult  # the rerun, stored as a new run
    metrics: tuple[tuple[str, float, float | None], ...]  # (test metric, stored, rerun), for a run that ended
    stored_epochs: int
    same_history: bool  # every stored epoch's numbers (a stopped run: against the rerun's first epochs)
    largest_difference: float  # between any stored number and the rerun's, of the epochs both have
    env_changes: tuple[str, ...]  # "threads 2 -> 1": what differs in the environment that sets the numbers

    @property
    def stopped(self) -> bool:
        """The stored run stopped before the end (interrupted, cancelled, failed): only its epochs compare."""
        return self.status in STOPPED

    @property
    def same(self) -> bool:
        return self.same_history and all(same_number(old, new) for _, old, new in self.metrics)

    def verdict(self) -> str:
        if self.same:
            return "the numbers match"
        return "the numbers differ; " + (f"the environment differs: {', '.join(self.env_changes)}" if self.env_changes
                                         else "the recorded environment is the same (versions, device, threads), "
                                              "so the machine or its libraries (BLAS, oneDNN) differ")


def same_number(a, b) -> bool:
    """Equal numbers, NaN included (a diverged run records one)."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def stored_configs(run_id: str, config: dict) -> tuple[TaskConfig, ModelConfig, TrainConfig]:
    """The task, model and training configs of a stored run's config; ConfigError saying why it cannot be
    rerun when they cannot be rebuilt."""
    try:
        lacking = [k for k in ("task", "model", "train") if not isinstance(config.get(k), dict)]
        if lacking:
            raise ConfigError(f"its config lacks {', '.join(lacking)}.")
        return (task_from_dict(config["task"]), from_dict(ModelConfig, config["model"]),
                from_dict(TrainConfig, config["train"]))
    except LookbackError as err:
        raise ConfigError(f"run {run_id} cannot be rerun: {err}") from err


def rerun(store, run_id: str, max_threads: int | None = None, on_epoch=None, should_stop=None) -> Rerun:
    """Train a stored run again from its config and seed (stored as a new run) and compare its numbers.

    It trains with the torch thread count the run recorded (the count sets the summation order, hence the
    low bits), at most max_threads (e.g. a worker's share of the cores); a different count is named in
    env_changes. Raises ConfigError when the stored config cannot be rebuilt.
    """
    rec = store.get(run_id)
    task, model_cfg, train_cfg = stored_configs(run_id, rec["config"])
    env = rec["env"] or {}
    before, recorded = torch.get_num_threads(), env.get("threads")
    if isinstance(recorded, int) and recorded >= 1:
        torch.set_num_threads(min(recorded, max_threads or recorded))
    try:
        new = run_one(task, model_cfg, train_cfg, store, force=True, on_epoch=on_epoch, should_stop=should_stop)
    finally:
        torch.set_num_threads(before)
    stored_h, new_h = ([tuple(h.get(k) for k in TIMELESS) for h in hist] for hist in (rec["history"], new.history))
    stopped = rec["status"] in STOPPED
    compared = new_h[:len(stored_h)] if stopped else new_h
    in_epochs = [(a, b) for old, now in zip(stored_h, compared, strict=False) for a, b in zip(old, now, strict=True)]
    metrics = tuple((k, v, new.test.get(k)) for k, v in ({} if stopped else rec["metrics"] or {}).items())
    gaps = [abs(a - b) for a, b in [*in_epochs, *((old, now) for _, old, now in metrics)]
            if _finite(a) and _finite(b)]
    changes = tuple(f"{k} {env.get(k)!r} -> {new.env.get(k)!r}" for k in RERUN_ENV if env.get(k) != new.env.get(k))
    same_history = len(stored_h) == len(compared) and all(same_number(a, b) for a, b in in_epochs)
    return Rerun(run_id, rec["label"], rec["status"], new, metrics, len(stored_h), same_history,
                 max(gaps, default=0.0), changes)


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def rerun_job(run_ids: Sequence[str], *, store, on_epoch=None, should_stop=None, on_run=None, **_) -> list[Rerun]:
    """Rerun stored runs one after another, each with its recorded thread count but at most this process's (a
    job of lib.jobs: it trains within its worker's share of the cores); stops when asked, keeping the reruns
    that finished."""
    done = []
    for run_id in run_ids:
        if should_stop is not None and should_stop():
            break
        rec = store.get(run_id)
        epoch = None if on_epoch is None else partial(on_epoch, rec["label"], rec["seed"])  # (label, seed, record)
        again = rerun(store, run_id, torch.get_num_threads(), on_epoch=epoch, should_stop=should_stop)
        if again.new.status == Status.CANCELLED:  # stopped while it trained: nothing to compare
            break
        done.append(again)
        if on_run is not None:
            on_run(again.new)
    return done


@dataclass
class Comparison:
    """Models x seeds trained on one task."""

    task: TaskConfig
    runs: list[RunResult]
    dataset: SequenceDataset
    cancelled: bool = False  # stopped before every run finished

    def history(self) -> pd.DataFrame:
        """One row per model, seed and epoch."""
        return history_frame(self.runs)

    def summary(self) -> pd.DataFrame:
        """One row per model and seed."""
        return summary_frame(self.runs, self.dataset)


def load_comparison(store, run_ids: Iterable[str]) -> tuple[Comparison | None, list[str]]:
    """Stored runs (lib.store.RunStore) as one Comparison, with their weights where kept, and a note for each
    id left out: not a run id, not in this store, unreadable, or of another task than the first run's."""
    loaded, dropped = _load_runs(store, run_ids)
    task = loaded[0][0] if loaded else None
    runs = [run for run_task, run in loaded if run_task == task]
    dropped += [f"{run.run_id} (another task than the first run's)" for run_task, run in loaded if run_task != task]
    if not runs:
        return None, dropped
    try:
        ds = dataset(task)
    except LookbackError as err:
        return None, [*dropped, f"{', '.join(r.run_id for r in runs)} (their task cannot be rebuilt: {err})"]
    return Comparison(task, runs, ds), dropped


def load_distance_sweep(store, run_ids: Iterable[str]) -> tuple[tuple[TaskConfig, pd.DataFrame, list] | None,
                                                                  list[str]]:
    """Stored runs as a distance sweep: ((the first run's task, distance_sweep's frame, the runs), notes).

    The runs may differ in the task's distance only; a note names each id left out (see load_comparison),
    or of a task without a distance knob.
    """
    loaded, dropped = _load_runs(store, run_ids)
    if not loaded:
        return None, dropped
    base = loaded[0][0]
    if base.distance_field is None:
        return None, [*dropped, f"{', '.join(r.run_id for _, r in loaded)} (their task has no distance knob)"]
    field = base.distance_field
    groups: dict = {}
    for run_task, run in loaded:
        if replace(run_task, **{field: getattr(base, field)}) != base:
            dropped.append(f"{run.run_id} (another task than the first run's, beyond its {field})")
        else:
            groups.setdefault(run_task, []).append(run)
    frames, runs = [], []
    for cfg, group in sorted(groups.items(), key=lambda item: getattr(item[0], field)):
        try:
            ds = dataset(cfg)
        except LookbackError as err:
            dropped.append(f"{', '.join(r.run_id for r in group)} (their task cannot be rebuilt: {err})")
            continue
        frames.append(summary_frame(group, ds).assign(distance=getattr(cfg, field), cue_lag=ds.cue_lag))
        runs += group
    if not frames:
        return None, dropped
    return (base, pd.concat(frames, ignore_index=True), runs), dropped


def _load_runs(store, run_ids: Iterable[str]) -> tuple[list[tuple[TaskConfig, RunResult]], list[str]]:
    """(task, run) of each stored run the ids name, with its weights where kept, and a note for each id left
    out: not a run id, not in this store, or unreadable."""
    loaded, dropped = [], []
    for run_id in dict.fromkeys(run_ids):
        if not RUN_ID.fullmatch(run_id):
            dropped.append(f"{run_id!r} (not a run id)")
            continue
        try:
            record = store.get(run_id)
        except LookbackError:
            dropped.append(f"{run_id} (not in this run store)")
            continue
        try:
            loaded.append((task_from_dict(record["config"]["task"]), result_from_record(record,
                                                                                      store.load_weights(run_id))))
        except (LookbackError, KeyError, TypeError, ValueError, RuntimeError) as err:
            dropped.append(f"{run_id} (its record cannot be read: {err})")
    return loaded, dropped


def history_frame(runs: Iterable[RunResult]) -> pd.DataFrame:
    rows = [{"label": r.label, "kind": r.model_config.kind, "seed": r.train_config.seed, **h}
            for r in runs for h in r.history]
    cols = ["label", "kind", "seed", "epoch", "train_loss", "val_loss", "val_metric", "epoch_seconds",
            "epoch_cpu_seconds", "elapsed_seconds"]  # CPU seconds: NaN for runs stored before they were recorded
    return pd.DataFrame(rows, columns=cols)


def epochs_to(history: list[dict], threshold: float, higher_is_better: bool) -> int | None:
    """First epoch whose validation metric reaches the threshold, or None."""
    for h in history:
        if (h["val_metric"] >= threshold) if higher_is_better else (h["val_metric"] <= threshold):
            return h["epoch"]
    return None


BOUNDED = ("window", "receptive field")  # the memory mechanisms that see a fixed number of steps back


def steps_seen(cfg: ModelConfig) -> int | None:
    """The input steps a model with a bounded reach sees (an FFNN or linear window, a TCN's receptive field), None
    for those that see the whole sequence (attention, recurrence): a context sweep's x-axis."""
    return sees(cfg) if MODEL_KINDS[cfg.kind].memory in BOUNDED else None


def summary_frame(runs: Iterable[RunResult], ds: SequenceDataset, threshold: float | None = None) -> pd.DataFrame:
    """One row per run: test metrics, size, how far back it sees (steps_seen, None for the whole sequence) and
    how (memory: lib.models.ModelKind.memory), time (median wall-clock and CPU seconds per epoch), status, the
    run's store id, and `reused`: when a reused stored run was trained (ISO time; None when trained now).

    threshold: the validation metric that counts as solved (default: 0.95 accuracy, or for regression
    the best naive baseline's MSE).
    """
    if threshold is None:
        threshold = 0.95 if ds.higher_is_better else min(
            (v for k, v in ds.baselines.items() if k.endswith("_mse")), default=np.nan)
    rows = []
    for r in runs:
        secs = [h["epoch_seconds"] for h in r.history]
        cpu = [h["epoch_cpu_seconds"] for h in r.history if "epoch_cpu_seconds" in h]
        rows.append({
            "label": r.label, "kind": r.model_config.kind, "window": r.model_config.window
            if MODEL_KINDS[r.model_config.kind].windowed else None, "steps_seen": steps_seen(r.model_config),
            "memory": MODEL_KINDS[r.model_config.kind].memory, "seed": r.train_config.seed,
            "status": r.status, "metric": r.test.get(ds.metric, np.nan),
            **{f"test_{k}": v for k, v in r.test.items()},
            "n_params": r.n_params, "epochs": len(r.history), "best_epoch": r.best_epoch,
            "epoch_seconds": float(np.median(secs)) if secs else np.nan,
            "epoch_cpu_seconds": float(np.median(cpu)) if cpu else np.nan,
            "total_seconds": r.history[-1]["elapsed_seconds"] if r.history else 0.0,
            "epochs_to_threshold": epochs_to(r.history, threshold, ds.higher_is_better),
            "init": r.model_config.resolved_init, "message": r.message, "run_id": r.run_id, "reused": r.reused,
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
    n_jobs: int | None = None,
    backend=None,
) -> Comparison:
    """Train every model with every seed on one task; a cancel keeps the runs finished so far.

    With a store (lib.store.RunStore), identical runs already stored are reused unless force=True.
    Independent runs train at once in worker processes, one per torch thread this process may use (n_jobs
    sets how many; 1 trains one after another here); results equal a run alone at the same thread count.
    backend (lib.backends): "local" (this machine; None too) or "ray" / a lib.backends.RayBackend (one Ray
    task per run). on_epoch(label, seed, record) sees every epoch, live, in every case.
    """
    train_cfg.validate()
    kind = backends.resolve(backend)
    ds = validate_models(task_cfg, models, seeds)
    specs = [(m, replace(train_cfg, seed=seed)) for seed in seeds for m in models]
    if isinstance(kind, backends.RayBackend):
        runs, cancelled = backends.run_on_ray(task_cfg, specs, kind, store, force, on_epoch, should_stop, on_run)
        return Comparison(task_cfg, runs, ds, cancelled=cancelled)
    done: dict[int, RunResult] = {}
    for key, run in _local_runs(task_cfg, specs, store, force, n_jobs, on_epoch, should_stop):
        done[key] = run
        if on_run is not None:
            on_run(run)
    runs = [done[k] for k in sorted(done)]
    cancelled = len(runs) < len(specs) or any(r.status == Status.CANCELLED for r in runs)
    return Comparison(task_cfg, runs, ds, cancelled=cancelled)


def _local_runs(task_cfg, specs, store, force, n_jobs, on_epoch, should_stop) -> Iterator[tuple[int, RunResult]]:
    """(spec index, run) as runs finish: here one after another when one worker is planned, else in worker
    processes."""
    def report(key: int, record: dict) -> None:
        m, tc = specs[key]
        on_epoch(m.label, tc.seed, record)

    if backends.worker_plan(n_jobs, len(specs))[0] > 1:
        yield from backends.run_in_processes(task_cfg, specs, store, force, n_jobs,
                                             report if on_epoch else None, should_stop)
        return
    for key, (m, tc) in enumerate(specs):
        run = run_one(task_cfg, m, tc, store, force, (lambda rec, _k=key: report(_k, rec)) if on_epoch else None,
                      should_stop)
        yield key, run
        if run.status == Status.CANCELLED or (should_stop is not None and should_stop()):
            return


def default_window_range(seq_len: int, cue_lag: int | None) -> tuple[int, int, int]:
    """(smallest, largest, how many) FFNN windows a sweep tries by default: from 1 to just past the decisive
    input (or to 15 without one), within the sequence, 8 of them."""
    return 1, min(seq_len, (cue_lag or 10) + 5), 8


def window_grid(lo: int, hi: int, count: int, seq_len: int, cue_lag: int | None = None) -> list[int]:
    """The FFNN windows a sweep from `lo` to `hi` tries: `count` evenly spaced whole numbers, with the range
    first clipped to the sequence (no window can see more than `seq_len` steps), plus the window that first
    reaches the decisive input where it lies in that range. ConfigError, naming the widgets, when empty."""
    if lo > hi:
        raise ConfigError(f"the smallest window ({lo}) is larger than the largest ({hi}); swap them.")
    if lo > seq_len:
        raise ConfigError(f"the smallest window ({lo}) is longer than the sequence ({seq_len} steps); choose a "
                          f"smallest window between 1 and {seq_len}.")
    hi = min(hi, seq_len)
    windows = {int(w) for w in np.linspace(lo, hi, count).round()}
    if cue_lag is not None and lo <= cue_lag <= hi:
        windows.add(cue_lag)
    return sorted(windows)


def field_levels(lo: int, hi: int, kernel: int = ModelConfig.kernel, cue_lag: int | None = None,
                 max_levels: int = 12) -> list[int]:
    """The TCN levels a context sweep from `lo` to `hi` steps tries: those whose receptive field lies in that
    range, plus the fewest whose field reaches the decisive input `cue_lag` steps back (without one: reaches
    `hi`), all within 1..max_levels; the fields are 1 + 2(k - 1)(2^n - 1)."""
    if lo > hi:
        raise ConfigError(f"the smallest window ({lo}) is larger than the largest ({hi}); swap them.")
    field = {n: receptive_field(ModelConfig(kind="tcn", kernel=kernel, levels=n)) for n in range(1, max_levels + 1)}
    levels = {n for n, f in field.items() if lo <= f <= hi}
    levels.add(covering_levels(cue_lag if cue_lag is not None else hi, kernel, max_levels))
    return sorted(levels)


def context_models(windows: Sequence[int], ffnn: ModelConfig | None = ModelConfig(kind="ffnn"),
                   linear: ModelConfig | None = None, tcn: ModelConfig | None = None,
                   levels: Sequence[int] = ()) -> list[ModelConfig]:
    """The models a context sweep trains along the steps they see: the FFNN and the linear map (each left out
    when None) at every window, the TCN at every level. ConfigError when that is none."""
    ws = sorted({int(w) for w in windows})
    models = [replace(ffnn, kind="ffnn", window=w) for w in ws] if ffnn is not None else []
    models += [replace(linear, kind="linear", window=w) for w in ws] if linear is not None else []
    models += [replace(tcn, kind="tcn", levels=int(n)) for n in sorted(set(levels))] if tcn is not None else []
    if not models:
        windowed = ffnn is not None or linear is not None
        raise ConfigError("choose at least one FFNN window." if windowed else
                          "choose at least one model to sweep: the FFNN, the linear map or the TCN.")
    return models


def window_sweep(
    task_cfg,
    windows: Sequence[int],
    train_cfg: TrainConfig = TrainConfig(),
    seeds: Sequence[int] = (0,),
    ffnn: ModelConfig | None = ModelConfig(kind="ffnn"),
    references: Sequence[ModelConfig] = (ModelConfig(kind="lstm"),),
    *,
    linear: ModelConfig | None = None,
    tcn: ModelConfig | None = None,
    levels: Sequence[int] = (),
    **options,
) -> pd.DataFrame:
    """Test metric, size and speed against the steps each model sees (summary column `steps_seen`): the FFNN
    at each window (ffnn=None leaves it out), with `linear` the linear map at each window too, with `tcn` a TCN
    at each of `levels` (its receptive field); `references` (recurrent models, a Transformer) see the whole
    sequence. Options as for `compare`."""
    models = context_models(windows, ffnn, linear, tcn, levels) + list(references)
    return compare(task_cfg, models, train_cfg, seeds, **options).summary()


def distance_field(task_cfg: TaskConfig) -> str:
    """The config field that sets the dependency distance of a task."""
    if task_cfg.distance_field is None:
        raise ConfigError(f"task {task_cfg.name!r} has no dependency-distance knob.")
    return task_cfg.distance_field


MAX_DISTANCES = 50


def distance_configs(task_cfg: TaskConfig, distances: Sequence[int]) -> list:
    """The task's config at each distance, in order, each validated: ConfigError names the first bad one
    (or too many), before anything trains."""
    if not distances:
        raise ConfigError("choose at least one distance.")
    if len(distances) > MAX_DISTANCES:
        raise ConfigError(f"{len(distances)} distances is more than the {MAX_DISTANCES} one sweep trains; pick "
                          f"fewer.")
    field = distance_field(task_cfg)
    configs = [replace(task_cfg, **{field: d}) for d in distances]
    for cfg in configs:
        cfg.validate()
    return configs


def distance_sweep(
    task_cfg: TaskConfig,
    distances: Sequence[int],
    models: Sequence[ModelConfig],
    train_cfg: TrainConfig = TrainConfig(),
    seeds: Sequence[int] = (0,),
    **options,
) -> pd.DataFrame:
    """Test metric per distance, model and seed: how far back each model still remembers."""
    configs, field = distance_configs(task_cfg, distances), distance_field(task_cfg)
    by_distance = sorted(configs, key=lambda c: getattr(c, field))
    for cfg in {by_distance[0], by_distance[-1]}:  # the shortest and longest sequences: a model fits all or none
        validate_models(cfg, models, seeds)
    frames = []
    for cfg in configs:
        comp = compare(cfg, models, train_cfg, seeds, **options)
        frames.append(comp.summary().assign(distance=getattr(cfg, field), cue_lag=comp.dataset.cue_lag))
        if comp.cancelled:
            break
    return pd.concat(frames, ignore_index=True)
