"""The tables the pages show: runs with their configs as columns (Runs page), filtered and grouped, two or more
runs side by side, reruns and whether they reproduced their numbers, and cost reports in the Costs page's words.

Every function takes plain frames or records (lib.store, lib.experiments, lib.costs) and returns a frame or text;
none draws anything.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from lib.models import MODEL_KINDS, ModelConfig
from lib.settings import fmt, shown_value, task_title, words
from lib.tasks import TASKS

RUN_CONFIG = {"model": "model", "hidden": "hidden", "layers": "layers", "window": "window", "init": "init",
              "lr": "learning rate", "batch_size": "batch size", "epochs": "max epochs", "patience": "patience"}


def _cell(value):
    """A config value as one table cell: numbers and short text as they are, lists as text."""
    if isinstance(value, list | tuple):
        return fmt(value) if len(value) <= 8 else f"{len(value)} values"
    if isinstance(value, dict):
        return f"{len(value)} settings"
    if isinstance(value, str) and len(value) > 80:
        return value[:79] + "…"
    return value


def config_frame(configs: dict[str, dict]) -> pd.DataFrame:
    """Run configs (as lib.runs.run_config writes them), one row per run id: the task by name, its
    knobs in the widgets' words, then model, hidden, layers, window (windowed kinds), init (resolved), learning
    rate, batch size, max epochs and patience. Unknown or malformed parts stay empty."""
    rows = {}
    for run_id, cfg in configs.items():
        part = {k: v if isinstance(v := cfg.get(k), dict) else {} for k in ("task", "model", "train")}
        name = str(part["task"].get("name", ""))
        row = {"task": task_title(name)}
        cls = TASKS[name][0] if name in TASKS else None
        for field in getattr(cls, "shown", ()):
            if field in part["task"]:
                row[words(cls, field)] = _cell(shown_value(cls, field, part["task"][field]))
        model = part["model"]
        kind = MODEL_KINDS.get(model["kind"]) if isinstance(model.get("kind"), str) else None
        row["model"] = kind.title if kind else _cell(model.get("kind"))
        row |= {RUN_CONFIG[k]: _cell(model.get(k)) for k in ("hidden", "layers")}
        row["window"] = _cell(model.get("window")) if kind and kind.windowed else None
        init = model.get("init")
        init = kind.default_init if kind and init == "auto" else init
        row["init"] = shown_value(ModelConfig, "init", init) if isinstance(init, str) else _cell(init)
        row |= {RUN_CONFIG[k]: _cell(part["train"].get(k)) for k in ("lr", "batch_size", "epochs", "patience")}
        rows[run_id] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    for col in frame:  # whole numbers stay whole where some runs lack the setting (e.g. a window)
        values = frame[col].dropna()
        if len(values) and all(isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer()
                               for v in values):
            frame[col] = frame[col].astype("Int64")
    return frame


def _shown(value) -> str:
    """A table cell as text: "—" when missing, whole numbers without ".0", other numbers to 4 digits."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "—"
    if isinstance(value, float | np.floating):
        return f"{int(value):,}" if float(value).is_integer() else f"{value:.4g}"
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return f"{int(value):,}"
    return str(value)


def side_by_side(rows: pd.DataFrame, names: Sequence[str], only_differences: bool = False) -> pd.DataFrame:
    """Runs as columns (named `names`) and their settings and results as rows, as text, with a "differs" column
    that is True where the runs disagree; `only_differences` keeps those rows alone."""
    table = rows.T.astype(object).map(_shown)  # text: one column can hold numbers and words
    table.columns = list(names)
    differs = table.apply(lambda r: r.nunique() > 1, axis=1)
    table.insert(0, "differs", differs)
    return table[differs] if only_differences else table


# lib.costs columns -> the names the Costs page shows; columns not named here are left out of its tables
COST_COLUMNS = {
    "label": "model", "n_params": "parameters", "hidden": "hidden units", "forward_flops": "forward FLOPs / sample",
    "train_flops": "training FLOPs / sample", "epoch_seconds": "wall s / epoch", "epoch_cpu_seconds": "CPU s / epoch",
    "step_seconds": "wall s / step", "step_cpu_ms": "CPU ms / step (median)", "step_cpu_spread_ms": "its spread (ms)",
    "step_ms": "median step (ms)", "core_layer_ms": "core layer alone (ms)",
    "roofline_ms": "arithmetic at the matmul rate (ms)", "binding": "what limits a step",
    "latency_ms": "latency (ms / sequence)", "peak_memory_mb": "peak memory (MB)"}


def human_table(frame: pd.DataFrame, names: dict[str, str] = COST_COLUMNS) -> pd.DataFrame:
    """The frame's columns named in `names`, in that order, renamed to the names a page shows."""
    return frame[[c for c in names if c in frame]].rename(columns=names)


def rerun_table(reruns: Iterable) -> pd.DataFrame:
    """One row per rerun (lib.experiments.Rerun): the stored run, its test metrics stored and rerun, its epochs,
    whether every number matches and the largest difference, the new run and what the environment changed."""
    rows = []
    for r in reruns:
        metrics = "; ".join(f"{k} {fmt(old)} → {fmt(new)}" for k, old, new in r.metrics)
        rows.append({"run": r.run_id, "model": r.label, "stored status": r.status,
                     "test metrics (stored → rerun)": metrics or f"none ({r.status})",
                     "epochs (stored, rerun)": f"{r.stored_epochs}, {len(r.new.history)}",
                     "same numbers": r.same, "largest difference": r.largest_difference, "new run": r.new.run_id,
                     "environment changed": ", ".join(r.env_changes)})
    return pd.DataFrame(rows)


def rerun_verdict(table: pd.DataFrame, planned: int) -> str:
    """One or two sentences on whether the reruns of rerun_table reproduced their stored numbers."""
    done = len(table)
    if not done:
        return "No run was rerun: it stopped before the first rerun finished."
    same = int(table["same numbers"].sum())
    left = f" {planned - done} of the {planned} runs were not rerun (stopped first)." if done < planned else ""
    if same == done:
        return (f"{'Every one' if done > 1 else 'The one'} of the {done} rerun(s) reproduced its stored test metrics "
                f"and every epoch's losses exactly.{left}")
    changed = sorted({c for c in table.loc[~table["same numbers"], "environment changed"] if c})
    why = (f"the environment differs ({'; '.join(changed)})" if changed else
           "the recorded versions, device and thread count are the same, so the machine or its math libraries "
           "differ, or the stored numbers did not come from this config (an edited import)")
    gap = table.loc[~table["same numbers"], "largest difference"].max()
    return (f"{done - same} of {done} rerun(s) came out with other numbers than stored (by up to {gap:.2g}): "
            f"{why}.{left}")


def runs_table(runs: pd.DataFrame, configs: dict[str, dict]) -> tuple[pd.DataFrame, list[str]]:
    """The store's run list (lib.store.RunStore.runs) with each run's config as columns (config_frame), the task
    by its title also for runs without a readable config; and the config columns some run has a value in."""
    frame = config_frame(configs).reindex(runs["id"]).set_axis(runs.index)
    table = pd.concat([runs.drop(columns=["task"]), frame], axis=1)
    table["task"] = table["task"].fillna(runs["task"].map(task_title))
    return table, filled(table, [c for c in frame.columns if c != "task"])


def runs_csv(table: pd.DataFrame, ids: Sequence[str], first: Sequence[str] = ()) -> str:
    """The rows of runs_table for the run `ids`, in that order, as CSV: the columns `first` (the table on
    screen's), then every other column one of these runs has a value in."""
    rows = table.set_index("id", drop=False).loc[list(ids)]
    return rows[list(dict.fromkeys([*first, *filled(rows, rows.columns)]))].to_csv(index=False)


def filled(table: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The columns, in their order, that hold a value in some row of the table."""
    return [c for c in columns if table[c].notna().any()]


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The test metric columns of a run list ("test_accuracy", ...)."""
    return [c for c in table.columns if c.startswith("test_")]


def filter_runs(table: pd.DataFrame, tasks: Sequence[str] = (), statuses: Sequence[str] = (), key: str = "",
                values: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of runs_table whose task is one of `tasks`, status one of `statuses`, and column `key` (as text)
    one of `values`; an empty choice keeps every row."""
    mask = pd.Series(True, index=table.index)
    if tasks:
        mask &= table["task"].isin(tasks)
    if statuses:
        mask &= table["status"].isin(statuses)
    if key and values:
        mask &= table[key].astype(str).isin(values)
    return table[mask]


def group_runs(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """One row per value of column `by` (as text, sorted): how many runs, and their mean test metrics and
    epochs ("mean test accuracy", ..., "mean epochs")."""
    groups = table.assign(**{by: table[by].astype(str)}).groupby(by, sort=True)
    means = {f"mean {c.replace('test_', 'test ')}": (c, "mean") for c in [*metric_columns(table), "epochs"]}
    return groups.agg(runs=("id", "size"), **means).reset_index()


__all__ = ["COST_COLUMNS", "config_frame", "filled", "filter_runs", "group_runs", "human_table", "metric_columns",
           "rerun_table", "rerun_verdict", "runs_csv", "runs_table", "side_by_side"]
