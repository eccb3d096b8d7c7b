"""Text recall: a cue word opens the sentence and alone decides the word at its end.

"starving alice drives <L filler words> to buy" -> "food". The filler length L is the distance knob.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
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

    def align(self, words: Sequence[str], stretch: bool = True) -> Alignment:
        """A typed prompt (lower-case words) as the models trained on these sentences should read it: see
        align_prompt."""
        hi = self.distance_max if self.distance_max is not None else self.distance
        cues = tuple(c for c, _ in word_lists()["pairs"][:self.cues])
        return align_prompt(words, (cue_lag(self.distance), cue_lag(hi)), cues, stretch)

    def example(self) -> str:
        """The essay's sentence at this task's distance (example_prompt)."""
        return example_prompt(self.distance)


def vocabulary() -> tuple[str, ...]:
    w = word_lists()
    words = [c for c, _ in w["pairs"]] + w["subjects"] + w["verbs"] + w["filler"] + w["closing"]
    words += [a for _, a in w["pairs"]]
    return (PAD, *dict.fromkeys(words))  # ordered, unique; id 0 pads


def cue_lag(distance: int) -> int:
    """Steps from the cue word to the prediction point: the FFNN window that first sees the cue."""
    return distance + PREFIX_LEN + len(word_lists()["closing"])


ESSAY = ("starving", "alice", "drives", "to", "the", "nearest", "store", "to", "buy")  # Home's example: food
STRETCH = ("past", "the", "old", "bridge", "along", "the", "busy", "road", "near", "a", "quiet", "park")  # filler


def example_prompt(distance: int) -> str:
    """Home's example sentence, "starving alice drives to the nearest store to buy", with its filler stretched
    or cut to `distance` words, so it has the shape the models were trained on (answer: food)."""
    cue = ESSAY[0]
    return " ".join(align_prompt(ESSAY, (cue_lag(distance),) * 2, (cue,)).words)


@dataclass(frozen=True)
class Alignment:
    """A prompt as the models read it, and where its cue word sits.

    words: the prompt's words after aligning; cue: its first cue word (None: it has none); typed, lag: the
    cue's place as typed and as read, in words from the end (1 = the last word); trained: the lowest and
    highest place of the cue in the training sentences; added: filler words put in (negative: left out).
    """

    words: tuple[str, ...]
    cue: str | None
    typed: int | None
    lag: int | None
    trained: tuple[int, int]
    added: int = 0

    @property
    def moved(self) -> bool:
        """The cue sits where no training sentence had it."""
        return self.lag is not None and not self.trained[0] <= self.lag <= self.trained[1]

    def _place(self) -> str:
        lo, hi = self.trained
        return f"{lo} words from the end" if lo == hi else f"{lo} to {hi} words from the end"

    def note(self) -> str | None:
        """What aligning did, or why the answers cannot show memory; None when the cue was where it belongs."""
        if self.cue is None:
            return ("The prompt has no cue word, so no model can know the answer; its guesses show what it falls "
                    "back on.")
        if self.moved:
            return (f"The cue “{self.cue}” is {self.lag} word(s) from the end here, but the models were trained with "
                    f"it {self._place()}: no model has seen it at position {self.lag}, so their answers say little "
                    f"about memory.")
        if self.added:
            how = f"{self.added} filler word(s) added" if self.added > 0 else f"{-self.added} filler word(s) left out"
            return (f"Aligned to the training sentences: {how}, so the cue “{self.cue}” moves from {self.typed} to "
                    f"{self.lag} words from the end, where the models were trained to find it.")
        return None


def align_prompt(words: Sequence[str], trained: tuple[int, int], cues: Sequence[str],
                 stretch: bool = True) -> Alignment:
    """Put a prompt's first cue word where the training sentences had it: `trained` (lowest, highest) words
    from the end. With `stretch`, filler words (STRETCH, repeated) go in after the prompt's own filler, before
    its last two words (the closing "to buy"), or its filler is cut; the cue and the two words after it
    (subject, verb) stay. Without `stretch`, or without a cue, the words are kept as typed."""
    words = tuple(words)
    at = next((i for i, w in enumerate(words) if w in cues), None)
    if at is None:
        return Alignment(words, None, None, None, trained)
    typed = len(words) - at
    target = min(max(typed, trained[0]), trained[1]) if stretch else typed
    head = at + min(PREFIX_LEN, typed)  # the cue, subject and verb stay as typed
    tail = len(words) - min(len(word_lists()["closing"]), len(words) - head)
    change = target - typed
    middle = words[head:tail] + STRETCH * (change // len(STRETCH) + 1) if change > 0 else words[head:tail]
    middle = middle[:tail - head + change]
    return Alignment(words[:head] + middle + words[tail:], words[at], typed, target, trained, change)


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
