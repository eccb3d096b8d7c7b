"""Text recall: a cue word opens the sentence and alone decides the word at its end.

"starving alice drives <L filler words> to buy" -> "food". The filler length L is the distance knob.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch

from lib.configs import Checked, check_knobs, knob
from lib.errors import ConfigError
from lib.paths import WORD_LISTS
from lib.tasks.base import CLASSIFICATION, SequenceDataset, Split

PAD = "<pad>"
MAX_DISTANCE = 200
PREFIX_LEN = 3  # cue, subject, verb


@lru_cache(maxsize=1)
def word_lists() -> dict:
    return json.loads(WORD_LISTS.read_text())


@dataclass(frozen=True)
class TextRecallConfig(Checked):
    name: ClassVar[str] = "text_recall"
    title: ClassVar[str] = "Text recall"
    distance_field: ClassVar[str] = "distance"

    shown: ClassVar[tuple[str, ...]] = ("distance", "objective", "n_train", "cues")  # the form's settings

    distance: int = knob(20, "Distance", low=0, high=MAX_DISTANCE, cap="distance", key="dist", unit="filler words",
                         header="distance",
                         help="The cue word opens the sentence; the answer depends on it alone.")
    distance_max: int | None = knob(None, "Largest distance", low=0, high=MAX_DISTANCE, cap="distance")  # when
    # set, each sentence's distance is drawn from [distance, distance_max]
    objective: str = knob("classify", "Objective", choices=("classify", "next_word"), key="obj",
                          titles=("classify the final word", "next word at every position"))
    cues: int = knob(len(word_lists()["pairs"]), "Cue words", low=2, high=len(word_lists()["pairs"]),
                     help="How many cue words (each with its own answer) sentences open with: chance is one in "
                          "this many, and the memory must tell them apart.")
    n_train: int = knob(4000, "Training sentences", low=10, high=100_000, cap="samples", key="n",
                        form=(200, 20_000), step=200)
    n_val: int = knob(1000, "Validation sentences", low=10, high=100_000)
    n_test: int = knob(1000, "Test sentences", low=10, high=100_000)
    seed: int = knob(0, "Data seed", low=0)  # independent of the training seed

    @property
    def cue_lag(self) -> int | None:
        """Steps from the cue word to the prediction point; None when sentences vary in distance."""
        return cue_lag(self.distance) if self.distance_max in (None, self.distance) else None

    def validate(self) -> None:
        check_knobs(self)
        if self.distance_max is not None and self.distance_max < self.distance:
            raise ConfigError(f"distance_max must be between distance ({self.distance}) and {MAX_DISTANCE}, "
                              f"got {self.distance_max}.")


def vocabulary() -> tuple[str, ...]:
    w = word_lists()
    words = [c for c, _ in w["pairs"]] + w["subjects"] + w["verbs"] + w["filler"] + w["closing"]
    words += [a for _, a in w["pairs"]]
    return (PAD, *dict.fromkeys(words))  # ordered, unique; id 0 pads


def cue_lag(distance: int) -> int:
    """Steps from the cue word to the prediction point: the FFNN window that first sees the cue."""
    return distance + PREFIX_LEN + len(word_lists()["closing"])


def example_prompt(distance: int) -> str:
    """Home's example sentence, "starving alice drives to the nearest store to buy", with its filler stretched
    or cut to `distance` words, so it has the shape the models were trained on (answer: food)."""
    story = ["to", "the", "nearest", "store"]
    more = ["past", "the", "old", "bridge", "along", "the", "busy", "road", "near", "a", "quiet", "park"]
    filler = (story + more * (distance // len(more) + 1))[:distance]
    return " ".join(["starving", "alice", "drives", *filler, *word_lists()["closing"]])


def _sentences(cfg: TextRecallConfig, n: int, rng: np.random.Generator, vocab_ids: dict):
    w = word_lists()
    hi = cfg.distance_max if cfg.distance_max is not None else cfg.distance
    dist = rng.integers(cfg.distance, hi + 1, size=n)
    pair = rng.integers(0, cfg.cues, size=n)
    length = cue_lag(hi)
    x = np.zeros((n, length), dtype=np.int64)  # left-padded so the prediction point is always last
    answers = np.array([vocab_ids[a] for _, a in w["pairs"]])
    for i in range(n):
        words = [w["pairs"][pair[i]][0], rng.choice(w["subjects"]), rng.choice(w["verbs"])]
        words += list(rng.choice(w["filler"], size=dist[i])) + w["closing"]
        x[i, length - len(words):] = [vocab_ids[t] for t in words]
    return x, pair, answers[pair], dist


def make_text_recall(cfg: TextRecallConfig) -> SequenceDataset:
    cfg.validate()
    vocab = vocabulary()
    ids = {t: i for i, t in enumerate(vocab)}
    rng = np.random.default_rng(cfg.seed)
    n_pairs = cfg.cues
    splits = []
    for n in (cfg.n_train, cfg.n_val, cfg.n_test):
        x, pair, answer_id, dist = _sentences(cfg, n, rng, ids)
        if cfg.objective == "classify":
            y = torch.from_numpy(pair)
        else:  # next word at every position; the last target is the answer; padding is ignored
            nxt = np.concatenate([x[:, 1:], answer_id[:, None]], axis=1)
            nxt[x == 0] = -100
            y = torch.from_numpy(nxt)
        splits.append(Split(torch.from_numpy(x), y, torch.from_numpy(dist)))
    classify = cfg.objective == "classify"
    return SequenceDataset(
        name="text_recall",
        description=(
            f"Sentences opening with one of {n_pairs} cue words whose answer ends the sentence, "
            + (f"{cfg.distance} filler words between." if cfg.cue_lag is not None
               else f"{cfg.distance}-{cfg.distance_max} filler words between.")
        ),
        kind=CLASSIFICATION,
        train=splits[0], val=splits[1], test=splits[2],
        seq_len=splits[0].x.shape[1],
        n_features=len(vocab),
        n_outputs=n_pairs if classify else len(vocab),
        per_step=not classify,
        vocab=vocab,
        class_names=tuple(a for _, a in word_lists()["pairs"][:n_pairs]) if classify else vocab,
        chance=1.0 / n_pairs,
        cue_lag=cfg.cue_lag,
        distance_name="filler words between cue and answer",
    )
