"""Task registry: every task config builds a SequenceDataset through make_dataset."""
from __future__ import annotations

from collections.abc import Mapping

from lib.configs import from_dict, to_dict
from lib.errors import ConfigError
from lib.tasks.adding import AddingConfig, make_adding
from lib.tasks.base import CLASSIFICATION, REGRESSION, SequenceDataset, Split, TaskConfig
from lib.tasks.copy_memory import CopyMemoryConfig, make_copy_memory
from lib.tasks.sine import SineConfig, make_sine
from lib.tasks.text import TextRecallConfig, make_text_recall
from lib.tasks.user.prepared import UserDataConfig, make_userdata
from lib.tasks.video import VideoConfig, make_video

TASKS = {cls.name: (cls, make) for cls, make in (
    (TextRecallConfig, make_text_recall), (SineConfig, make_sine), (VideoConfig, make_video),
    (AddingConfig, make_adding), (CopyMemoryConfig, make_copy_memory), (UserDataConfig, make_userdata))}


def task_dict(cfg: TaskConfig) -> dict:
    """A task config as a JSON-friendly dict that names its task; task_from_dict reverses it."""
    return {"name": cfg.name, **to_dict(cfg)}


def task_from_dict(data: Mapping, text: bool = False) -> TaskConfig:
    """The config of the task `data["name"]` from the other entries, cast by field type (see from_dict)."""
    params = dict(data)
    name = params.pop("name", None)
    if not isinstance(name, str) or name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}.")
    return from_dict(TASKS[name][0], params, text)


def make_dataset(cfg: TaskConfig) -> SequenceDataset:
    return TASKS[cfg.name][1](cfg)


__all__ = ["CLASSIFICATION", "REGRESSION", "TASKS", "SequenceDataset", "Split", "TaskConfig", "make_dataset",
           "task_dict", "task_from_dict"]
