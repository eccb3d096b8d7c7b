"""What produced a result: its settings in the words of the app's widgets, what changed since, and files
(CSV, JSON) that carry those settings with the numbers.

A `Settings` holds everything that decides a shown result: the task, the models, the training settings, the
seeds, and the experiment's own axis (the FFNN windows of a window sweep, the distances of a distance
sweep). Pages head each result with `describe()`, compare it with the form's settings through `changes()`,
and attach `to_dict()` to every download.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, dataclass, fields, replace

import numpy as np
import pandas as pd

from lib.configs import Checked, to_dict
from lib.errors import ConfigError
from lib.models import MODEL_KINDS, ModelConfig
from lib.tasks import TaskConfig, task_dict
from lib.train import TrainConfig

TASK_TITLES = {"text_recall": "Text recall", "sine": "Sine waves", "video": "Video frames", "userdata": "Your data"}
INIT_TITLES = {"auto": "best practice", "pytorch": "PyTorch default", "orthogonal": "orthogonal recurrent",
               "forget1": "forget-gate bias 1", "chrono": "chrono + orthogonal"}
OBJECTIVES = {"classify": "classify the final word", "next_word": "next word at every position"}

# Each task's fields in the words of its widgets; the first ones named per task are always shown, the others
# only where they differ from the default.
TASK_FIELDS = {
    "text_recall": {"distance": "distance", "objective": "objective", "n_train": "training sentences",
                    "distance_max": "largest distance", "n_val": "validation sentences", "n_test": "test sentences",
                    "seed": "data seed"},
    "sine": {"periods": "periods (steps)", "noise": "noise (std)", "horizon": "forecast horizon (steps)",
             "seq_len": "input window (steps)", "amplitudes": "amplitudes", "length": "series length",
             "seed": "data seed"},
    "video": {"gap": "gap (frames)", "gap_mode": "gap frames show", "features": "frame features",
              "n_train": "training clips", "visible": "visible frames", "n_components": "PCA components",
              "canvas": "canvas (pixels)", "max_speed": "max speed (pixels per frame)", "n_val": "validation clips",
              "n_test": "test clips", "seed": "data seed"},
    "userdata": {"sha256": "prepared data (SHA-256)", "shape": "shape (train, val, test, steps, features)"},
}
ALWAYS = {"text_recall": 3, "sine": 4, "video": 4, "userdata": 2}  # how many of TASK_FIELDS[name] always show
MODEL_FIELDS = {"hidden": "hidden units", "layers": "layers", "dropout": "dropout", "embed_dim": "embedding size",
                "init": "initialisation"}
TRAIN_FIELDS = {"epochs": "max epochs", "patience": "early-stopping patience", "lr": "learning rate",
                "batch_size": "batch size", "optimizer": "optimizer", "weight_decay": "weight decay",
                "clip": "gradient clip", "min_delta": "min improvement"}


def task_title(name: str) -> str:
    """A task's name as the app shows it ("text_recall" -> "Text recall")."""
    return TASK_TITLES.get(name, name.replace("_", " ").capitalize())


def fmt(value) -> str:
    """A setting's value as text: 4,000 / 0.003 / 24, 8 / none."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value) or "none"
    if isinstance(value, Checked):
        return ", ".join(f"{k} {fmt(v)}" for k, v in to_dict(value).items())
    return str(value)


def _default(cls, name: str):
    f = next(f for f in fields(cls) if f.name == name)
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]


def task_knobs(task: TaskConfig, everything: bool = False) -> dict[str, str]:
    """The task's settings by widget name, as text: the ones its page sets, plus any other that differs from
    its default (every field with `everything`)."""
    names = TASK_FIELDS.get(task.name, {})
    always = list(names)[:ALWAYS.get(task.name, 0)]
    knobs = {}
    for f in fields(task):
        value = getattr(task, f.name)
        if everything or f.name in always or value != _default(type(task), f.name):
            text = OBJECTIVES.get(value, value) if f.name == "objective" else value
            knobs[names.get(f.name, f.name.replace("_", " "))] = fmt(text)
    return knobs


def _model_knobs(models: Sequence[ModelConfig]) -> dict[str, str]:
    """Model settings shared by every model as one value, else per model ("FFNN w5 30, RNN 70")."""
    knobs = {}
    for name, title in MODEL_FIELDS.items():
        if name == "embed_dim" and all(m.embed_dim == ModelConfig.embed_dim for m in models):
            continue
        if name == "init":
            values = [INIT_TITLES.get(m.init, m.init) for m in models if MODEL_KINDS[m.kind].recurrent]
        else:
            values = [getattr(m, name) for m in models]
        if not values:
            continue
        if len(set(values)) == 1:
            knobs[title] = fmt(values[0])
        else:
            shown = [m for m in models if name != "init" or MODEL_KINDS[m.kind].recurrent]
            knobs[title] = ", ".join(f"{m.label} {fmt(v)}" for m, v in zip(shown, values, strict=True))
    return knobs


@dataclass(frozen=True)
class Settings:
    """Everything that decides a result: task, models, training (its seed aside: see `seeds`) and seeds,
    plus the FFNN windows of a window sweep or the distances of a distance sweep, and the parameter budget
    the models were sized to (0: none). The training device is not part of it."""

    task: TaskConfig
    models: tuple[ModelConfig, ...]
    train: TrainConfig
    seeds: tuple[int, ...]
    windows: tuple[int, ...] = ()
    distances: tuple[int, ...] = ()
    budget: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "windows", tuple(int(w) for w in self.windows))
        object.__setattr__(self, "distances", tuple(int(d) for d in self.distances))
        object.__setattr__(self, "train", replace(self.train, seed=0, device="auto"))
        if self.distances and self.task.distance_field:  # a sweep sets the distance itself
            object.__setattr__(self, "task", replace(self.task, **{self.task.distance_field: self.distances[0]}))

    @classmethod
    def of_runs(cls, task: TaskConfig, runs: Iterable) -> Settings:
        """The settings of trained runs (lib.train.RunResult), e.g. runs loaded back from the store."""
        runs = list(runs)
        models = tuple(dict.fromkeys(r.model_config for r in runs))
        seeds = tuple(sorted({r.train_config.seed for r in runs}))
        train = runs[0].train_config if runs else TrainConfig()
        return cls(task, models, train, seeds)

    @property
    def planned_runs(self) -> int:
        """Runs the experiment trains: one per model, seed (and distance)."""
        return len(self.models) * max(len(self.seeds), 1) * max(len(self.distances), 1)

    def knobs(self) -> dict[str, dict[str, str]]:
        """Every setting as text, grouped as the header shows them: Task, Models, Training, Seeds."""
        task = {"task": task_title(self.task.name), **task_knobs(self.task)}
        if self.distances and self.task.distance_field:
            task.pop(TASK_FIELDS[self.task.name].get(self.task.distance_field, self.task.distance_field), None)
            task["distances"] = fmt(self.distances)
        models = {"models": ", ".join(m.label for m in self.models) or "none", **_model_knobs(self.models)}
        if self.windows:
            models["FFNN windows"] = fmt(self.windows)
        if self.budget:
            models["parameter budget"] = fmt(self.budget)
        train = {title: fmt(getattr(self.train, name)) for name, title in TRAIN_FIELDS.items()
                 if name in ("epochs", "patience", "lr", "batch_size")
                 or getattr(self.train, name) != getattr(TrainConfig, name)}
        return {"Task": task, "Models": models, "Training": train, "Seeds": {"seeds": fmt(self.seeds)}}

    def describe(self, metric: str = "metric") -> list[tuple[str, str]]:
        """The header lines: (group, text), e.g. ("Task", "Text recall · distance 20 · ...")."""
        k = self.knobs()
        task = dict(k["Task"])
        lines = [("Task", " · ".join([task.pop("task"), *(f"{n} {v}" for n, v in task.items())]))]
        models = dict(k["Models"])
        lines.append(("Models", " · ".join([models.pop("models"), *(f"{n} {v}" for n, v in models.items())])))
        t = self.train
        stop = (f"stops after {t.patience} epochs without a better validation {metric}" if t.patience
                else "no early stopping")
        extra = [f"{n} {v}" for n, v in k["Training"].items() if n not in ("max epochs", "early-stopping patience")]
        lines.append(("Training", " · ".join([f"up to {t.epochs} epochs ({stop}; the epoch with the best "
                                              f"validation {metric} is kept and tested)", *extra])))
        if self.seeds:
            lines.append(("Seeds", fmt(self.seeds)))
        return lines

    def changes(self, other: Settings | None) -> list[str]:
        """What differs in `other` (e.g. the form now), as "distance 20 → 10"; [] when nothing does."""
        if other is None:
            return ["the settings above cannot be trained as they are"]
        if self.task.name != other.task.name:
            return [f"task {task_title(self.task.name)} → {task_title(other.task.name)}"]
        mine, theirs = _flat(self), _flat(other)
        if self.distances or other.distances:  # the sweep's distances replace the task's own
            field = TASK_FIELDS.get(self.task.name, {}).get(self.task.distance_field or "")
            mine.pop(field, None), theirs.pop(field, None)
        return [f"{name} {mine.get(name, 'none')} → {theirs.get(name, 'none')}"
                for name in dict.fromkeys([*mine, *theirs]) if mine.get(name) != theirs.get(name)]

    def to_dict(self) -> dict:
        """JSON-friendly: task (as lib.tasks.task_dict), models, train, seeds, windows, distances, budget."""
        train = to_dict(self.train)
        train.pop("seed"), train.pop("device")
        return {"task": task_dict(self.task), "models": [to_dict(m) for m in self.models], "train": train,
                "seeds": list(self.seeds), "windows": list(self.windows), "distances": list(self.distances),
                "budget": self.budget}


def _flat(s: Settings) -> dict[str, str]:
    out = {}
    for group in s.knobs().values():
        out.update(group)
    for name, value in task_knobs(s.task, everything=True).items():
        out.setdefault(name, value)
    for name, title in TRAIN_FIELDS.items():
        out.setdefault(title, fmt(getattr(s.train, name)))
    return out


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
    """Run configs (as lib.experiments.run_config writes them), one row per run id: the task by name, its
    knobs in the widgets' words, then model, hidden, layers, window (windowed kinds), init (resolved), learning
    rate, batch size, max epochs and patience. Unknown or malformed parts stay empty."""
    rows = {}
    for run_id, cfg in configs.items():
        part = {k: v if isinstance(v := cfg.get(k), dict) else {} for k in ("task", "model", "train")}
        name = str(part["task"].get("name", ""))
        row = {"task": task_title(name)}
        for field in list(TASK_FIELDS.get(name, {}))[:ALWAYS.get(name, 0)]:
            if field in part["task"]:
                value = part["task"][field]
                named = field == "objective" and isinstance(value, str)
                row[TASK_FIELDS[name][field]] = _cell(OBJECTIVES.get(value, value) if named else value)
        model = part["model"]
        kind = MODEL_KINDS.get(model["kind"]) if isinstance(model.get("kind"), str) else None
        row["model"] = kind.title if kind else _cell(model.get("kind"))
        row |= {RUN_CONFIG[k]: _cell(model.get(k)) for k in ("hidden", "layers")}
        row["window"] = _cell(model.get("window")) if kind and kind.windowed else None
        init = model.get("init")
        init = kind.default_init if kind and init == "auto" else init
        row["init"] = INIT_TITLES.get(init, init) if isinstance(init, str) else _cell(init)
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
    "step_seconds": "wall s / step", "latency_ms": "latency (ms / sequence)", "peak_memory_mb": "peak memory (MB)"}


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


def parse_numbers(text: str, what: str) -> tuple[int, ...]:
    """Comma-separated whole numbers ("0, 10, 20") as a sorted tuple without repeats; ConfigError naming
    `what` (e.g. "distances") and the first part that is not a whole number, or when there is none."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"give at least one of the {what}, e.g. 0, 10, 20.")
    bad = next((p for p in parts if not re.fullmatch(r"[+-]?\d+", p)), None)
    if bad is not None:
        raise ConfigError(f"{what} must be whole numbers separated by commas, e.g. 0, 10, 20; “{bad}” is not one.")
    return tuple(sorted({int(p) for p in parts}))


def with_settings(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The frame with the settings that made it as columns: task, task.<field>, train.<field>, seeds, and per
    row model.<field> of the row's model (matched by its label column)."""
    s = settings.to_dict()
    cols = {"task": s["task"]["name"], **{f"task.{k}": fmt(v) if isinstance(v, list | dict) else v
                                          for k, v in s["task"].items() if k != "name"}}
    cols |= {f"train.{k}": v for k, v in s["train"].items()}
    cols["seeds"] = fmt(settings.seeds)
    if settings.budget:
        cols["budget"] = settings.budget
    out = frame.assign(**cols)
    if "label" in frame:
        by_label = {m.label: m for m in settings.models}
        for name in ("hidden", "layers", "dropout", "init"):
            out[f"model.{name}"] = [getattr(by_label[lab], name) if lab in by_label else None
                                    for lab in frame["label"]]
    return out


def json_with_settings(frame: pd.DataFrame, settings: Settings) -> str:
    """{"settings": Settings.to_dict(), "rows": the frame's records} as indented JSON."""
    rows = json.loads(frame.to_json(orient="records"))
    return json.dumps({"settings": settings.to_dict(), "rows": rows}, indent=1)


__all__ = ["COST_COLUMNS", "INIT_TITLES", "TASK_TITLES", "Settings", "config_frame", "fmt", "human_table",
           "json_with_settings", "parse_numbers", "rerun_table", "rerun_verdict", "side_by_side", "task_knobs",
           "task_title", "with_settings"]
