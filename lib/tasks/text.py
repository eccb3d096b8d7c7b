"""Text recall: a cue word opens the sentence and alone decides the word at its end.

"starving alice drives <L filler words> to buy" -> "food". The filler length L is the distance knob.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from lib.configs import Checked
from lib.errors import ConfigError
from lib.tasks.base import CLASSIFICATION, SequenceDataset, Split, check_split_sizes

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "text_recall.json"
PAD = "<pad>"
MAX_DISTANCE = 200
PREFIX_LEN = 3  # cue, subject, verb


@lru_cache(maxsize=1)
def word_lists() -> dict:
    return json.loads(DATA_FILE.read_text())


@dataclass(frozen=True)
class TextRecallConfig(Checked):
    name: ClassVar[str] = "text_recall"
    distance_field: ClassVar[str] = "distance"

    distance: int = 20  # filler words between the opening words and "to buy" (0-200)
    distance_max: int | None = None  # when set, draw each sentence's distance from [distance, distance_max]
    objective: str = "classify"  # "classify" the final word, or "next_word" at every position
    n_train: int = 4000
    n_val: int = 1000
    n_test: int = 1000
    seed: int = 0  # data seed, independent of the training seed

    @property
    def cue_lag(self) -> int | None:
        """Steps from the cue word to the prediction point; None when sentences vary in distance."""
        return cue_lag(self.distance) if self.distance_max in (None, self.distance) else None

    def validate(self) -> None:
        if not 0 <= self.distance <= MAX_DISTANCE:
            raise ConfigError(f"distance must be between 0 and {MAX_DISTANCE}, got {self.distance}.")
        if self.distance_max is not None and not self.distance <= self.distance_max <= MAX_DISTANCE:
            raise ConfigError(
                f"distance_max must be between distance ({self.distance}) and {MAX_DISTANCE}, "
                f"got {self.distance_max}."
            )
        if self.objective not in ("classify", "next_word"):
            raise ConfigError(f"objective must be 'classify' or 'next_word', got {self.objective!r}.")
        check_split_sizes(self)
        if self.seed < 0:
            raise ConfigError(f"seed must be at least 0, got {self.seed}.")


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
    pair = rng.integers(0, len(w["pairs"]), size=n)
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
    n_pairs = len(word_lists()["pairs"])
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
        class_names=tuple(a for _, a in word_lists()["pairs"]) if classify else vocab,
        chance=1.0 / n_pairs,
        cue_lag=cfg.cue_lag,
        distance_name="filler words between cue and answer",
    )
