"""The adding problem (Hochreiter & Schmidhuber 1997; the layout of Bai, Kolter & Koltun 2018).

Each of T steps holds a value drawn from U(0, 1) and a marker, 1 at exactly two steps: one in the first half of
the sequence, one in the second. The target is the sum of the two marked values. Predicting the mean sum, 1,
whatever the inputs, has MSE Var(U1 + U2) = 2/12 = 1/6: the do-nothing line (Bai et al. print 0.1767).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from lib.configs import Checked, check_knobs, knob
from lib.tasks.base import REGRESSION, SequenceDataset, Split, check_bytes

MAX_STEPS = 1000
DO_NOTHING_MSE = 1 / 6  # always predicting 1: the variance of a sum of two U(0, 1) values


@dataclass(frozen=True)
class AddingConfig(Checked):
    name: ClassVar[str] = "adding"
    title: ClassVar[str] = "Adding problem"
    distance_field: ClassVar[str] = "steps"

    shown: ClassVar[tuple[str, ...]] = ("steps", "n_train")  # the form's settings

    steps: int = knob(50, "Sequence length", low=2, high=MAX_STEPS, cap="distance", unit="steps", key="add_T",
                      header="sequence length T (steps)",
                      help="One value is marked in each half of the sequence; the answer is their sum, so the "
                           "first mark may lie up to T steps back.")
    n_train: int = knob(4000, "Training sequences", low=10, high=100_000, cap="samples", key="add_n",
                        form=(200, 20_000), step=200)
    n_val: int = knob(1000, "Validation sequences", low=10, high=100_000)
    n_test: int = knob(1000, "Test sequences", low=10, high=100_000)
    seed: int = knob(0, "Data seed", low=0)  # independent of the training seed

    @property
    def cue_lag(self) -> int | None:
        """None: the first mark lies anywhere in the first half, so no single window reaches it in every sequence."""
        return None

    def validate(self) -> None:
        check_knobs(self)
        check_bytes(8 * (self.n_train + self.n_val + self.n_test) * self.steps, "these sequences",
                    "use fewer sequences or a shorter T")


def _split(cfg: AddingConfig, n: int, rng: np.random.Generator) -> Split:
    t, half = cfg.steps, cfg.steps // 2
    values = rng.random((n, t))
    first, second = rng.integers(0, half, n), rng.integers(half, t, n)
    marks = np.zeros((n, t))
    rows = np.arange(n)
    marks[rows, first] = marks[rows, second] = 1.0
    x = np.stack([values, marks], -1).astype(np.float32)  # (N, T, 2)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)  # (N,)
    return Split(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(t - 1 - first))


def make_adding(cfg: AddingConfig) -> SequenceDataset:
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    train, val, test = (_split(cfg, n, rng) for n in (cfg.n_train, cfg.n_val, cfg.n_test))
    return SequenceDataset(
        name="adding",
        description=f"Sum the two marked values among {cfg.steps} uniform values, one mark in each half.",
        kind=REGRESSION, train=train, val=val, test=test,
        seq_len=cfg.steps, n_features=2, n_outputs=1,
        baselines={"do_nothing_mse": DO_NOTHING_MSE},
        noise_floor=0.0,  # the target is an exact function of the inputs
        do_nothing_loss=DO_NOTHING_MSE,
        cue_lag=cfg.cue_lag,
        distance_name="sequence length T",
    )
