"""The dataset type every task returns, the protocol every task config follows, and shared limits."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import torch

from lib.errors import ConfigError

CLASSIFICATION = "classification"
REGRESSION = "regression"
MAX_BYTES = 2 * 1024 ** 3  # refuse datasets whose inputs would not fit comfortably in memory


class TaskConfig(Protocol):
    """A frozen dataclass of one task's settings, registered by `name` in lib.tasks.TASKS.

    Each user-facing field is declared with lib.configs.knob (range, words, hosted cap); validate() checks
    them with lib.configs.check_knobs, then the rules that tie fields together.
    """

    name: ClassVar[str]
    title: ClassVar[str]  # how the app names the task
    distance_field: ClassVar[str | None]  # the field that sets the dependency distance; None without one
    shown: ClassVar[tuple[str, ...]]  # the fields its form sets, named in every result's header

    @property
    def cue_lag(self) -> int | None:
        """Steps back from the prediction point to the decisive input; None where it varies."""

    def validate(self) -> None:
        """Raise ConfigError with what to change when the settings cannot make a dataset."""


def check_bytes(n_bytes: int, what: str, advice: str) -> None:
    """Refuse inputs beyond MAX_BYTES; `what` takes the space and `advice` says how to shrink it."""
    if n_bytes > MAX_BYTES:
        raise ConfigError(f"{what} would take {n_bytes / 1024 ** 3:.1f} GiB (limit {MAX_BYTES / 1024 ** 3:.0f} "
                          f"GiB); {advice}.")


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (N, T) int64 token ids, or (N, T, F) float32 features
    y: torch.Tensor  # (N,) int64 class | (N, T) int64 next tokens (-100 = ignore) | (N,) float32 target
    distance: torch.Tensor | None = None  # (N,) int64 dependency distance per sample, where defined

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True)
class SequenceDataset:
    """Train/val/test splits plus everything a model, the engine and a chart need to know."""

    name: str
    description: str
    kind: str  # CLASSIFICATION or REGRESSION
    train: Split
    val: Split
    test: Split
    seq_len: int  # steps per input sequence
    n_features: int  # features per step (embedding input when vocab is set)
    n_outputs: int  # classes (classification) or 1 (regression)
    per_step: bool = False  # targets at every step (next-word prediction) instead of one per sequence
    scored_steps: int = 1  # per-step tasks: the last steps whose accuracy is the metric (copy memory: the copy)
    vocab: tuple[str, ...] | None = None  # token inputs when set; id 0 is padding
    class_names: tuple[str, ...] | None = None
    chance: float | None = None  # accuracy of always guessing the majority class
    baselines: dict[str, float] = field(default_factory=dict)  # naive test metrics (regression)
    noise_floor: float | None = None  # the lowest expected MSE (the target's noise variance), where the task knows it
    do_nothing_loss: float | None = None  # loss (lib.train.loss_fn) of the best guess that remembers nothing
    cue_lag: int | None = None  # steps back from the prediction point to the decisive input
    distance_name: str = "distance"  # what the distance knob means for this task, for charts

    @property
    def metric(self) -> str:
        return "accuracy" if self.kind == CLASSIFICATION else "mse"

    @property
    def higher_is_better(self) -> bool:
        return self.kind == CLASSIFICATION

    @property
    def spec(self) -> dict:
        """A JSON-friendly description of inputs and outputs."""
        return {
            "name": self.name,
            "kind": self.kind,
            "input": "tokens" if self.vocab else "features",
            "seq_len": self.seq_len,
            "n_features": self.n_features,
            "vocab_size": len(self.vocab) if self.vocab else None,
            "n_outputs": self.n_outputs,
            "per_step": self.per_step,
            "metric": self.metric,
            "chance": self.chance,
            "baselines": dict(self.baselines),
            "noise_floor": self.noise_floor,
            "do_nothing_loss": self.do_nothing_loss,
            "cue_lag": self.cue_lag,
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
        }


def majority_chance(y: torch.Tensor, n_classes: int) -> float:
    counts = torch.bincount(y[y >= 0].flatten(), minlength=n_classes)
    return float(counts.max() / counts.sum())
