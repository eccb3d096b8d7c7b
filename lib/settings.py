"""What produced a result: its settings in the words of the app's widgets, what changed since, and files
(CSV, JSON) that carry those settings with the numbers.

A `Settings` holds everything that decides a shown result: the task, the models, the training settings, the
seeds, and the experiment's own axis (the FFNN windows of a window sweep, the distances of a distance
sweep). Pages head each result with `describe()`, compare it with the form's settings through `changes()`,
and attach `to_dict()` to every download.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, dataclass, fields, replace

import pandas as pd

from lib.configs import Checked, knobs, to_dict
from lib.models import IN_LABEL, MODEL_KINDS, ModelConfig
from lib.tasks import TASKS, TaskConfig, task_dict
from lib.train import TrainConfig

TASK_TITLES = {name: cls.title for name, (cls, _) in TASKS.items()}  # the names the app gives tasks


def task_title(name: str) -> str:
    """A task's name as the app shows it ("text_recall" -> "Text recall")."""
    return TASK_TITLES.get(name, name.replace("_", " ").capitalize())


def words(cls, name: str) -> str:
    """A config field in the words of result headers: its Knob's (lib.configs), else its name spelt out."""
    k = knobs(cls).get(name)
    return k.words if k is not None else name.replace("_", " ")


def shown_value(cls, name: str, value):
    """A field's value as the app names it: a choice by its title ("classify the final word")."""
    k = knobs(cls).get(name)
    return k.title(value) if k is not None and k.titles and isinstance(value, str) else value


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
    """The task's settings in header words, as text: the ones its page sets (`shown`), plus any other that
    differs from its default (every field with `everything`)."""
    out = {}
    for f in fields(task):
        value = getattr(task, f.name)
        if everything or f.name in task.shown or value != _default(type(task), f.name):
            out[words(task, f.name)] = fmt(shown_value(task, f.name, value))
    return out


def _model_knobs(models: Sequence[ModelConfig]) -> dict[str, str]:
    """Model settings shared by every model as one value, else per model ("FFNN w5 30, RNN 70"), each for the
    models whose kind reads it (ModelKind.reads: the initialisation of recurrent models only); those in the
    labels (the window, a TCN's kernel and levels) left out, the embedding size only where one differs from the
    default."""
    out = {}
    for name in knobs(ModelConfig):
        if name in IN_LABEL or name == "embed_dim" and all(m.embed_dim == ModelConfig.embed_dim for m in models):
            continue
        shown = [m for m in models if name in MODEL_KINDS[m.kind].reads]
        values = [shown_value(ModelConfig, name, getattr(m, name)) for m in shown]
        if not values:
            continue
        if len(set(values)) == 1:
            out[words(ModelConfig, name)] = fmt(values[0])
        else:
            out[words(ModelConfig, name)] = ", ".join(f"{m.label} {fmt(v)}" for m, v in zip(shown, values, strict=True))
    return out


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
            task.pop(words(self.task, self.task.distance_field), None)
            task["distances"] = fmt(self.distances)
        models = {"models": ", ".join(m.label for m in self.models) or "none", **_model_knobs(self.models)}
        if self.windows:
            models["FFNN windows"] = fmt(self.windows)
        if self.budget:
            models["parameter budget"] = fmt(self.budget)
        train = {words(TrainConfig, name): fmt(getattr(self.train, name)) for name in knobs(TrainConfig)
                 if name in TrainConfig.shown or getattr(self.train, name) != getattr(TrainConfig, name)}
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
            n = len(self.seeds)
            lines.append(("Seeds", f"{fmt(self.seeds)} ({n} seed{'s' * (n > 1)})"))
        return lines

    def changes(self, other: Settings | None) -> list[str]:
        """What differs in `other` (e.g. the form now), as "distance 20 → 10"; [] when nothing does."""
        if other is None:
            return ["the settings above cannot be trained as they are"]
        if self.task.name != other.task.name:
            return [f"task {task_title(self.task.name)} → {task_title(other.task.name)}"]
        mine, theirs = _flat(self), _flat(other)
        if self.distances or other.distances:  # the sweep's distances replace the task's own
            field = words(self.task, self.task.distance_field) if self.task.distance_field else None
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
    for name in knobs(TrainConfig):
        out.setdefault(words(TrainConfig, name), fmt(getattr(s.train, name)))
    return out


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


__all__ = ["TASK_TITLES", "Settings", "fmt", "json_with_settings", "shown_value", "task_knobs", "task_title",
           "with_settings", "words"]
