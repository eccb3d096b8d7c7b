"""Copy memory (Arjovsky, Shah & Bengio 2016; the layout of Bai, Kolter & Koltun 2018).

T + 20 steps: 10 symbols drawn from 1-8, T - 1 blanks (0), the delimiter 9, then 10 more blanks, during which
the model must repeat the 10 symbols; every other step's target is a blank. Guessing blanks, then any of the 8
symbols for the last 10 steps, scores a cross-entropy of 10·ln 8 / (T + 20) per step: the do-nothing line.
Accuracy is that of the last step's symbol (chance 1/8); every symbol is recalled T + 10 steps after it is read.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from lib.configs import Checked, check_knobs, knob
from lib.tasks.base import CLASSIFICATION, SequenceDataset, Split, check_bytes

MAX_DELAY = 1000
SYMBOLS, COPIED = 8, 10  # symbols 1-8; 10 of them to copy
DELIMITER = SYMBOLS + 1
VOCAB = ("blank", *(str(s) for s in range(1, SYMBOLS + 1)), "copy")  # id 0 (blank) also pads


def do_nothing_loss(delay: int) -> float:
    """The per-step cross-entropy of blanks, then a uniform guess over the symbols for the last 10 steps."""
    return COPIED * math.log(SYMBOLS) / (delay + 2 * COPIED)


@dataclass(frozen=True)
class CopyMemoryConfig(Checked):
    name: ClassVar[str] = "copy_memory"
    title: ClassVar[str] = "Copy memory"
    distance_field: ClassVar[str] = "delay"

    shown: ClassVar[tuple[str, ...]] = ("delay", "n_train")  # the form's settings

    delay: int = knob(30, "Delay", low=1, high=MAX_DELAY, cap="distance", unit="steps", key="copy_T",
                      header="delay T (steps)",
                      help="Steps from the end of the 10 symbols to the delimiter; each symbol must be recalled "
                           "T + 10 steps after it was read.")
    n_train: int = knob(4000, "Training sequences", low=10, high=100_000, cap="samples", key="copy_n",
                        form=(200, 20_000), step=200)
    n_val: int = knob(1000, "Validation sequences", low=10, high=100_000)
    n_test: int = knob(1000, "Test sequences", low=10, high=100_000)
    seed: int = knob(0, "Data seed", low=0)  # independent of the training seed

    @property
    def cue_lag(self) -> int:
        """Steps from a symbol to its recall, both counted: the window that first sees what it must copy."""
        return self.delay + COPIED + 1

    def validate(self) -> None:
        check_knobs(self)
        check_bytes(8 * (self.n_train + self.n_val + self.n_test) * (self.delay + 2 * COPIED), "these sequences",
                    "use fewer sequences or a shorter delay T")


def _split(cfg: CopyMemoryConfig, n: int, rng: np.random.Generator) -> Split:
    t = cfg.delay
    symbols = rng.integers(1, SYMBOLS + 1, (n, COPIED))
    x = np.zeros((n, t + 2 * COPIED), dtype=np.int64)
    x[:, :COPIED] = symbols
    x[:, t + COPIED - 1] = DELIMITER  # step T + 10, counting from 1
    y = np.zeros_like(x)
    y[:, -COPIED:] = symbols
    return Split(torch.from_numpy(x), torch.from_numpy(y), torch.full((n,), t, dtype=torch.int64))


def make_copy_memory(cfg: CopyMemoryConfig) -> SequenceDataset:
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    train, val, test = (_split(cfg, n, rng) for n in (cfg.n_train, cfg.n_val, cfg.n_test))
    return SequenceDataset(
        name="copy_memory",
        description=f"Repeat 10 symbols after {cfg.delay} steps of blanks and a delimiter.",
        kind=CLASSIFICATION, train=train, val=val, test=test,
        seq_len=cfg.delay + 2 * COPIED, n_features=len(VOCAB), n_outputs=len(VOCAB), per_step=True,
        scored_steps=COPIED, vocab=VOCAB, class_names=VOCAB,
        chance=1 / SYMBOLS,  # of each copied symbol: the accuracy lib.train reports
        do_nothing_loss=do_nothing_loss(cfg.delay),
        cue_lag=cfg.cue_lag,
        distance_name="delay T",
    )
