"""Task registry: every task config builds a SequenceDataset through make_dataset."""
from __future__ import annotations

from dataclasses import fields

from lib.errors import ConfigError
from lib.tasks.base import CLASSIFICATION, REGRESSION, SequenceDataset, Split
from lib.tasks.sine import SineConfig, make_sine
from lib.tasks.text import TextRecallConfig, make_text_recall
from lib.tasks.video import VideoConfig, make_video

TASKS = {
    "text_recall": (TextRecallConfig, make_text_recall),
    "sine": (SineConfig, make_sine),
    "video": (VideoConfig, make_video),
}


def task_name(cfg) -> str:
    for name, (cls, _) in TASKS.items():
        if isinstance(cfg, cls):
            return name
    raise ConfigError(f"unknown task config {type(cfg).__name__}; choose one of: {', '.join(TASKS)}.")


def task_config(name: str, **params):
    """Build a task config by name, rejecting unknown names and parameters with what is valid."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}.")
    cls = TASKS[name][0]
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ConfigError(f"unknown parameter(s) for task {name!r}: {', '.join(unknown)}; "
                          f"valid: {', '.join(sorted(valid))}.")
    return cls(**params)


def make_dataset(cfg) -> SequenceDataset:
    return TASKS[task_name(cfg)][1](cfg)


__all__ = ["CLASSIFICATION", "REGRESSION", "TASKS", "SequenceDataset", "Split", "make_dataset",
           "task_config", "task_name"]
