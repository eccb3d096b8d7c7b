"""Does my data need memory, and which kind? Fixed-window models against memory models on one task, in plain words.

`memory_study` trains fixed-window models (an FFNN and a linear map, WINDOW_KINDS) on a grid of windows and memory
models (by default the GRU, LSTM and vanilla RNN, which see every step of the input; a TCN, a Transformer and a
minGRU on request, MEMORY_KINDS), each with several seeds. For labelled sequences the windows double up to the whole
sequence; for a forecast series the memory models see the dataset's whole window (its longest history) and the
windows stay below it, with the series' detected season among them, so that the study can find memory beyond the
widest window. Every model gets the same training budget counted in optimizer updates (`plan_budget`).

`judge` reads the models' per-seed and per-row test outcomes with lib.stats' engine (`gap`: beats, trails,
matches within the margin, or inconclusive, counting seed and test-set noise) beside the trivial predictors
(lib.trivial): no model beating the best trivial predictor by the margin is its own verdict ("no signal"); else
the smallest converged window shown to be no worse, by more than the margin, than the best converged memory
model and every model with a better mean means memory beyond it does not pay (unless a memory model with a
better mean than that one did not converge); a converged memory model beating every window by more than the margin
means it does; anything else is inconclusive, with what would settle it. Which kind of memory (`which_kind`): the
cheapest credited model within the margin of the best, with its mechanism and its cost beside the best's. Hedges
from the data (test size, season, horizon tested, trend) follow.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cmp_to_key

import numpy as np
import pandas as pd
import torch

from lib import costs, experiments, runs, trivial
from lib.errors import ConfigError
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, covering_levels
from lib.runtime import Status, environment, resolve_device
from lib.stats import Gap, Margins, Scores, chance_gaps, fmt_metric, gap, mean_ci, names, per_model
from lib.tasks import CLASSIFICATION, SequenceDataset
from lib.train import RunResult, TrainConfig
from lib.trivial import TRIVIAL, Facts

KINDS = ("gru", "lstm", "rnn")  # the memory models a study trains by default (MEMORY_KINDS: all it can train)
WINDOW_KINDS = ("ffnn", "linear")  # the fixed-window models a study trains at every window of its grid
MEMORY_KINDS = tuple(k for k, v in MODEL_KINDS.items() if not v.windowed)
WINDOWED_KINDS = tuple(k for k, v in MODEL_KINDS.items() if v.windowed)
MIN_UPDATES = 1000  # optimizer updates each run may take, at least, whatever the size of the data
MAX_BATCH, MIN_BATCH = 64, 8
MIN_BATCHES_PER_EPOCH = 8  # small data get smaller batches, down to MIN_BATCH
MIN_EPOCHS = 5
PATIENCE_FRACTION = 0.5  # early stopping waits this share of the budget's epochs for a better validation metric
LAST_PART = 0.2  # a run that used its whole budget and improved in this last share of its epochs ...
STILL_IMPROVING = {"accuracy": 0.01, "mse": 0.01}  # ... by more than this (accuracy: absolute, MSE: relative)
STUCK = 0.95  # a training loss never below this share of the constant prediction's loss: nothing learned
SMALL_TEST = 100  # fewer test rows than this are named as a limit of the verdict
MIN_VAL = 30  # a validation split smaller than this cannot tell epochs apart (one row is over 3 points): no early stop
SMALL_TRAIN = 500  # fewer training sequences than this are easily memorised: every run gets AdamW's weight decay
WEIGHT_DECAY = 0.1  # (unless the caller sets one). On UCR GunPoint's 42 it lifts the GRU's mean test accuracy from
# 0.90 to 0.94 at 1,000 updates (0.97 at 2,000), at no cost; on larger sets it slows the recurrent models' convergence
FITTED = 0.05  # with too small a validation split: a training loss below this share of the constant one has fit,
FALLING = 0.1  # and one above it that fell by more than this share in the last part was still improving
BUDGET_ISSUES = ("still improving", "never fell below")  # issues that mean little for a model that learned nothing


@dataclass(frozen=True)
class Budget:
    """The same training budget for every model of a study."""

    updates: int  # optimizer updates a run may take: epochs x steps_per_epoch
    batch_size: int
    steps_per_epoch: int
    epochs: int
    patience: int  # epochs without a better validation metric before a run stops early; 0: never


def plan_budget(n_train: int, min_updates: int = MIN_UPDATES, max_batch: int = MAX_BATCH,
                patience_fraction: float = PATIENCE_FRACTION, n_val: int | None = None) -> Budget:
    """Batch size, epochs and patience that give every run at least `min_updates` optimizer updates.

    The batch is the largest power of two up to max_batch that still makes MIN_BATCHES_PER_EPOCH batches
    (at least MIN_BATCH); epochs are as many as the updates need, at least MIN_EPOCHS; patience is
    `patience_fraction` of the epochs, or 0 (runs take their whole budget) when a validation split of n_val
    sequences is smaller than MIN_VAL.
    """
    if not 1 <= min_updates <= 1_000_000:
        raise ConfigError(f"min_updates must be between 1 and 1000000, got {min_updates}.")
    if not 0 < patience_fraction <= 1:
        raise ConfigError(f"patience_fraction must be in (0, 1], got {patience_fraction:g}.")
    if n_train < 1:
        raise ConfigError(f"the training split is empty; a study needs training sequences, got {n_train}.")
    fit = 2 ** math.floor(math.log2(max(n_train / MIN_BATCHES_PER_EPOCH, 1)))
    batch = max(MIN_BATCH, min(max_batch, fit))
    steps = math.ceil(n_train / batch)
    epochs = max(MIN_EPOCHS, math.ceil(min_updates / steps))
    limit = 1000  # TrainConfig's epoch limit
    if epochs > limit:
        raise ConfigError(f"{min_updates} updates need {epochs} epochs of {n_train} training sequences in batches "
                          f"of {batch} (limit {limit}); ask for at most {limit * steps} updates.")
    patience = 0 if n_val is not None and n_val < MIN_VAL else max(1, math.ceil(patience_fraction * epochs))
    return Budget(epochs * steps, batch, steps, epochs, patience)


def geometric_windows(seq_len: int) -> tuple[int, ...]:
    """1, 2, 4, ... below seq_len, then seq_len itself."""
    grid = [2 ** k for k in range(max(seq_len, 1).bit_length()) if 2 ** k < seq_len]
    return (*grid, seq_len)


def default_windows(ds: SequenceDataset, fact: Facts | None = None) -> tuple[int, ...]:
    """The FFNN windows a study of ds trains: geometric_windows of the sequence for labelled sequences; for a
    forecast, the powers of two below its window (the recurrent models' longer history) and its detected season
    where the window holds one."""
    fact = trivial.facts(ds) if fact is None else fact
    if fact.forecast is None or ds.seq_len <= 2:
        return geometric_windows(ds.seq_len)
    grid = set(geometric_windows(ds.seq_len)[:-1])
    if fact.season is not None and fact.season <= ds.seq_len:
        grid.add(fact.season)
    return tuple(sorted(grid))


QUICK_SEEDS = (0,)  # the quick study's one seed


def quick_windows(ds: SequenceDataset, fact: Facts | None = None) -> tuple[int, ...]:
    """The quick study's coarse grid: every other window of default_windows (1, 4, 16, ...), keeping the widest
    and the detected season."""
    fact = trivial.facts(ds) if fact is None else fact
    grid = default_windows(ds, fact)
    keep = set(grid[::2]) | {grid[-1]} | ({fact.season} & set(grid) if fact.season is not None else set())
    return tuple(sorted(keep))


def quick_caveat(windows: Sequence[int]) -> str:
    """What a quick study (one seed, the coarse window grid) gives up, in words."""
    return (f"A quick study: one seed and a coarse grid of FFNN windows ({', '.join(map(str, sorted(windows)))}). "
            f"It gives up three things: wider intervals (one seed's test outcomes only), no seed-to-seed noise "
            f"(a lucky or unlucky initialisation goes unseen), and coarser windows (the smallest window that matches "
            f"is known only to within the grid). Run the full study before relying on a close call.")


def study_plan(task_cfg, windows: Sequence[int] | None = None, kinds: Sequence[str] = KINDS, hidden: int = 64,
               min_updates: int = MIN_UPDATES, train_cfg: TrainConfig = TrainConfig(),
               window_kinds: Sequence[str] = WINDOW_KINDS) -> tuple[list[ModelConfig], TrainConfig, Budget]:
    """The models, training config (seed 0) and budget a study of task_cfg trains; ConfigError on bad values.

    Every window kind at every window, then every memory kind; a TCN gets the fewest levels (kernel 3) whose
    receptive field covers the sequence, so that it sees as far back as the recurrent models and the Transformer.
    """
    for chosen, offered, what in ((kinds, MEMORY_KINDS, "a memory model"), (window_kinds, WINDOWED_KINDS,
                                                                              "a fixed-window model")):
        for kind in chosen:
            if kind not in offered:
                raise ConfigError(f"{kind!r} is not {what}; choose from: {', '.join(offered)}.")
    if not kinds:
        raise ConfigError("choose at least one memory model to compare the fixed-window models with.")
    if not window_kinds:
        raise ConfigError("choose at least one fixed-window model (FFNN or linear) to compare the memory models "
                          "with.")
    ds = runs.dataset(task_cfg)
    windows = default_windows(ds) if windows is None else tuple(sorted(set(windows)))
    if not windows:
        raise ConfigError("choose at least one window.")
    budget = plan_budget(len(ds.train), min_updates, n_val=len(ds.val))
    decay = {"optimizer": "adamw", "weight_decay": WEIGHT_DECAY} if train_cfg.weight_decay == 0 and \
        len(ds.train) < SMALL_TRAIN else {}
    train_cfg = replace(train_cfg, batch_size=budget.batch_size, epochs=budget.epochs, patience=budget.patience,
                        seed=0, **decay)
    train_cfg.validate()
    models = [ModelConfig(kind=k, window=int(w), hidden=hidden) for k in dict.fromkeys(window_kinds)
              for w in windows]
    models += [ModelConfig(kind=k, hidden=hidden, **({"levels": covering_levels(ds.seq_len)} if k == "tcn" else {}))
               for k in dict.fromkeys(kinds)]
    return models, train_cfg, budget


def left_out(kinds: Sequence[str], window_kinds: Sequence[str] = WINDOW_KINDS) -> str:
    """The sentence naming the kinds a study did not train ("" when it trained every one)."""
    missing = [MODEL_KINDS[k].title for k in (*WINDOWED_KINDS, *MEMORY_KINDS) if k not in (*kinds, *window_kinds)]
    if not missing:
        return ""
    return (f"Not trained in this study: {', '.join(missing)}; add {'it' if len(missing) == 1 else 'them'} to the "
            f"study's models to weigh {'that mechanism' if len(missing) == 1 else 'those mechanisms'} too.")


# ---------------------------------------------------------------- convergence

def constant_loss(ds: SequenceDataset) -> float:
    """The training loss of always predicting the training labels' frequencies (classification) or mean."""
    y = ds.train.y
    if ds.kind == CLASSIFICATION:
        counts = torch.bincount(y[y >= 0].flatten(), minlength=ds.n_outputs).double()
        p = counts[counts > 0] / counts.sum()
        return float(-(p * p.log()).sum())
    return float(y.double().var(unbiased=False))


def run_issue(run: RunResult, budget: Budget, baseline_loss: float, metric: str) -> str | None:
    """Why a run did not converge, or None.

    Not converged: it did not complete; or (memory models, which see every step) its training loss never
    fell below STUCK x the constant prediction's; or it used its whole budget and its best validation metric
    in the last LAST_PART of its epochs beat the best before by more than STILL_IMPROVING[metric]; or, where the
    validation split is too small to read (budget.patience 0), its training loss, not yet below FITTED x the
    constant prediction's, fell by more than FALLING in that last part.
    """
    if run.status != Status.COMPLETED:
        return f"it ended {run.status}: {run.message}"
    if not run.history:
        return "it trained no epoch"
    if not MODEL_KINDS[run.model_config.kind].windowed and \
            min(h["train_loss"] for h in run.history) >= STUCK * baseline_loss:
        return "its training loss never fell below that of a constant prediction"
    cut = math.ceil((1 - LAST_PART) * len(run.history))
    if len(run.history) >= budget.epochs and 0 < cut < len(run.history):
        values = [h["val_metric"] for h in run.history]
        if metric == "accuracy":
            gain = max(values[cut:]) - max(values[:cut])
        else:
            before = min(values[:cut])
            gain = (before - min(values[cut:])) / before if before > 0 else 0.0
        if gain > STILL_IMPROVING.get(metric, 0.01):
            return f"its validation {metric} was still improving when the budget ran out"
        losses = [h["train_loss"] for h in run.history]
        before, after = min(losses[:cut]), min(losses[cut:])
        if budget.patience == 0 and after > FITTED * baseline_loss and after < (1 - FALLING) * before:
            return "its training loss was still improving when the budget ran out"
    return None


# ---------------------------------------------------------------- what the verdict reads

@dataclass(frozen=True)
class Verdict:
    memory: str  # "needed", "not needed", "no signal" or "inconclusive"
    best: str | None  # the model with the best mean, converged or not
    best_recurrent: str | None  # the converged memory model the memory claim reads
    window: int | None  # not needed: the smallest window that matches; needed: the widest window, beaten
    sentences: tuple[str, ...]
    horizon: int | None = None  # the most steps any model saw
    margin: str = ""  # the practical margin, in words
    cheapest: str | None = None  # which kind: the cheapest credited model within the margin of the best credited one

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


@dataclass(frozen=True, eq=False)
class Standings:
    """A study's finished runs per model, best mean first, and the trivial predictors beside them: what every
    sentence of the verdict reads.

    scores: each model with a completed run (lib.stats.Scores), best mean first. issue: why a model did not
    converge, or None. windows: each FFNN model's window. costs: one row per model (label index) with n_params,
    update_cpu_ms and latency_ms, each time with its spread (lib.costs.SENTENCE_COSTS). trivial: each trivial
    predictor's Scores (fixed), by lib.trivial.TRIVIAL name.
    nothing: the models that learned nothing (their mean is within the margin of the best trivial predictor's, or
    worse). fact: the data's limits (lib.trivial.Facts).
    """

    metric: str
    higher_is_better: bool
    scores: dict[str, Scores]
    issue: dict[str, str | None]
    windows: dict[str, int]
    costs: pd.DataFrame
    margins: Margins = Margins()
    trivial: dict[str, Scores] = field(default_factory=dict)
    fact: Facts | None = None
    nothing: frozenset[str] = frozenset()
    kinds: dict[str, str] = field(default_factory=dict)  # each model's kind, where the table names it
    _gaps: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, summary: pd.DataFrame, table: pd.DataFrame, metric: str, higher_is_better: bool, *,
           rows: dict[str, np.ndarray] | None = None, trivial_scores: dict | None = None,
           margins: Margins = Margins(), fact: Facts | None = None) -> Standings:
        """From judge's summary (one row per run: label, status, metric) and table (one row per model: label,
        window, issue and costs), with per-row outcomes of each label's completed runs (rows, (k, n)) and the
        trivial predictors (Scores, or a number for a predictor known by its test metric only)."""
        scores = per_model(summary, rows)
        info = table.set_index("label")
        order = sorted([lab for lab in info.index if lab in scores],
                       key=lambda lab: -scores[lab].mean if higher_is_better else scores[lab].mean)
        issue = {lab: info.at[lab, "issue"] if isinstance(info.at[lab, "issue"], str) else None for lab in order}
        windows = {lab: int(info.at[lab, "window"]) for lab in order if pd.notna(info.at[lab, "window"])}
        kinds = {lab: info.at[lab, "kind"] for lab in order if "kind" in info and isinstance(info.at[lab, "kind"], str)}
        fixed = {k: v if isinstance(v, Scores) else Scores.of([v], fixed=True)
                 for k, v in (trivial_scores or {}).items()}
        s = cls(metric, higher_is_better, {lab: scores[lab] for lab in order}, issue, windows, info, margins, fixed,
                fact)
        nothing = frozenset(lab for lab in order if s.at_trivial(lab))
        unshown = {lab for lab, g in s.against_trivial().items() if g.outcome != "beats"}  # at chance, as far as known
        issue = {lab: None if lab in nothing | unshown and why and any(b in why for b in BUDGET_ISSUES) else why
                 for lab, why in issue.items()}
        return replace(s, issue=issue, nothing=nothing, kinds=kinds, _gaps={})

    @property
    def order(self) -> list[str]:
        return list(self.scores)

    @property
    def windowed(self) -> list[str]:
        """The fixed-window models (FFNN, linear), smallest window first."""
        return sorted(self.windows, key=self.windows.__getitem__)

    @property
    def reaching(self) -> list[str]:
        """The memory models (no window: recurrence, attention, a TCN's receptive field), best mean first."""
        return [lab for lab in self.order if lab not in self.windows]

    def mechanism(self, label: str) -> str:
        """How the model reaches back (lib.models.ModelKind.memory); without its kind, by whether it has a window."""
        kind = self.kinds.get(label)
        return MODEL_KINDS[kind].memory if kind in MODEL_KINDS else "window" if label in self.windows else "recurrence"

    def reach(self, label: str) -> int | None:
        """The input steps the model sees: its window, a TCN's receptive field (at most the history), else the
        history."""
        if label in self.windows:
            return self.windows[label]
        field_ = self.costs.at[label, "steps_seen"] if "steps_seen" in self.costs else None
        if field_ is not None and pd.notna(field_):
            return min(int(field_), self.history) if self.history else int(field_)
        return self.history

    @property
    def window_word(self) -> str:
        """"FFNN window" when every fixed-window model is an FFNN, else "fixed-window model"."""
        return "FFNN window" if all(self.kinds.get(lab, "ffnn") == "ffnn" for lab in self.windows) else \
            "fixed-window model"

    @property
    def memory_word(self) -> str:
        """"recurrent model" when every memory model is recurrent, else "memory model"."""
        return "recurrent model" if all(self.mechanism(lab) == "recurrence" for lab in self.reaching) else \
            "memory model"

    def _best_of(self, names_: list[str]) -> str | None:
        sign = -1 if self.higher_is_better else 1
        return min(names_, key=lambda k: sign * self.trivial[k].mean) if names_ else None

    @property
    def base(self) -> str | None:
        """The best trivial predictor that reads no input (lib.trivial.SIGNAL_FREE): the majority class or the
        training mean; beating it by the margin is learning something. None without one."""
        return self._best_of([k for k in self.trivial if k in trivial.SIGNAL_FREE])

    @property
    def naive(self) -> str | None:
        """The best naive forecast (last value, seasonal naive, drift), or None."""
        return self._best_of([k for k in self.trivial if k not in trivial.SIGNAL_FREE])

    @property
    def n_test(self) -> int | None:
        return self.fact.n_test if self.fact is not None else None

    @property
    def history(self) -> int | None:
        """The steps the memory models see: the sequence, or the forecast's whole window."""
        return self.fact.seq_len if self.fact is not None else None

    def mean(self, label: str) -> float:
        return self.scores[label].mean

    def shown(self, label: str) -> bool:
        """The model is shown to beat the best signal-free trivial predictor by the margin (true without one)."""
        return self.base is None or self.against_trivial()[label].outcome == "beats"

    def credited(self, label: str) -> bool:
        """Whether a claim may rest on the model: it converged and is shown to have learned something."""
        return self.issue[label] is None and label not in self.nothing and self.shown(label)

    def uncredited(self, label: str) -> str:
        """Why a claim may not rest on the model, in words ("" when it may)."""
        if self.credited(label):
            return ""
        return "it learned nothing" if label in self.nothing else "it did not converge" if self.issue[label] else \
            f"it is not shown to beat {TRIVIAL.get(self.base, self.base)} by the margin"

    def gap(self, a: str, b: str) -> Gap:
        """Model a against model b (lib.stats.gap), each pair computed once."""
        if (a, b) not in self._gaps:
            self._gaps[a, b] = gap(a, self.scores[a], b, self.scores[b], self.metric, self.higher_is_better,
                                   self.margins, self.n_test)
        return self._gaps[a, b]

    def against_trivial(self, name: str | None = None) -> dict[str, Gap]:
        """Every model against a trivial predictor (default: base), each test at ALPHA / the number of models."""
        name = name or self.base
        if name is None:
            return {}
        if ("trivial", name) not in self._gaps:
            self._gaps["trivial", name] = chance_gaps(self.scores, self.trivial[name], TRIVIAL.get(name, name),
                                                      self.metric, self.higher_is_better, self.margins, self.n_test)
        return self._gaps["trivial", name]

    def at_trivial(self, label: str) -> bool:
        """The model's mean is within the margin of the best trivial predictor's, or worse: it learned nothing."""
        if self.base is None:
            return False
        t = self.trivial[self.base].mean
        return (1 if self.higher_is_better else -1) * (self.mean(label) - t) <= self.margins.of(self.metric, t)

    def said(self, label: str) -> str:
        """A model with its metric: "GRU (accuracy 98.0% ± 2.5%)" (mean ± 95% CI over seeds)."""
        mean, half = mean_ci(self.scores[label].seeds)
        spread = f" ± {fmt_metric(self.metric, half)}" if self.scores[label].k > 1 else ""
        return f"{label} ({self.metric} {fmt_metric(self.metric, mean)}{spread})"

    def trivial_said(self, name: str | None = None) -> str:
        """A trivial predictor (default: the best) with its metric: "repeating the last value (mse 0.31)"."""
        name = name or self.base
        words = TRIVIAL.get(name, name.replace("_", " "))
        return f"{words} ({self.metric} {fmt_metric(self.metric, self.trivial[name].mean)})"


# ---------------------------------------------------------------- the verdict, sentence by sentence

def best_sentence(s: Standings) -> str:
    """The best model overall, converged or not, and how it stands against the runner-up."""
    best = s.order[0]
    flag = f" ({s.uncredited(best)})" if s.uncredited(best) else ""
    if len(s.order) == 1:
        return f"Only {s.said(best)} finished{flag}."
    runner = s.order[1]
    return f"The best model is {s.said(best)}{flag}; it {s.gap(best, runner).said('the runner-up, ' + s.said(runner))}."


def trivial_sentence(s: Standings) -> str:
    """The trivial predictors beside the models: how many models beat the best signal-free one (majority class,
    training mean) and the best naive forecast by the margin."""
    text = []
    for name, what in ((s.base, "The trivial predictor to beat is"), (s.naive, "The best naive forecast is")):
        if name is None:
            continue
        beat = sum(g.outcome == "beats" for g in s.against_trivial(name).values())
        kin = [k for k in s.trivial if (k in trivial.SIGNAL_FREE) == (name == s.base)]
        others = [s.trivial_said(k) for k in kin if k != name]
        also = f" (also tried: {'; '.join(others)})" if others else ""
        text.append(f"{what} {s.trivial_said(name)}{also}; {beat} of {len(s.order)} models beat it by more than the "
                    f"margin ({s.margins.words(s.metric)}).")
    return " ".join(text)


def no_signal(s: Standings) -> str | None:
    """The "no learnable signal" sentence when no model beats the best trivial predictor by the margin (each test
    at ALPHA / the models, as the best of them is picked); else None."""
    gaps = s.against_trivial()
    if not gaps or any(g.outcome == "beats" for g in gaps.values()):
        return None
    best = s.order[0]
    rows = f" on {s.n_test:,} test rows" if s.n_test else ""
    return (f"No model beats {s.trivial_said()} by more than the margin ({s.margins.words(s.metric)}){rows}, allowing "
            f"for picking the best of {len(s.order)} models: the data show no signal these models can learn at this "
            f"size, so whether memory helps cannot be told. The closest, {best}: {gaps[best].evidence}.")


def _window(s: Standings, label: str) -> str:
    w = s.windows[label]
    return f"{w} step{'s' * (w != 1)}"


def smallest_matching_window(s: Standings, best_recurrent: str) -> str | None:
    """The converged FFNN with the smallest window that is shown to be no worse, by more than the margin, than the
    best recurrent model and every model with a better mean (Gap.no_worse); None when no window is."""
    for lab in s.windowed:
        if not s.credited(lab):
            continue
        rivals = set(s.order[:s.order.index(lab)]) | {best_recurrent}
        if all(s.gap(lab, other).no_worse for other in rivals - {lab}):
            return lab
    return None


def not_needed(s: Standings, match: str, rec: str) -> list[str]:
    """Memory beyond the matching window does not pay: the claim, the smaller window it beats, and the costs."""
    text = [f"Memory beyond the last {_window(s, match)} does not pay on this data: {s.said(match)} "
            f"{s.gap(match, rec).said_no_worse(f'the best converged {s.memory_word}, ' + s.said(rec))}."]
    smaller = [lab for lab in s.windowed if s.windows[lab] < s.windows[match]]
    if smaller and s.gap(smaller[-1], match).outcome == "trails":
        text.append(f"The last {_window(s, match)} matter: {s.said(smaller[-1])} "
                    f"{s.gap(smaller[-1], match).clause()}.")
    return [*text, _costs(match, s.costs.loc[match], rec, s.costs.loc[rec])]


def needed(s: Standings, rec: str) -> list[str]:
    """Memory pays: the best converged recurrent model beats every FFNN window. Said as memory beyond the widest
    window when the recurrent model saw more steps; else as what it is, a gap between models that see the same
    steps."""
    top = min(s.windowed, key=s.order.index)
    widest = s.windowed[-1]
    seen = s.reach(rec) or s.windows[widest]
    against = s.gap(rec, top).said(f"the best {s.window_word}, " + s.said(top))
    if s.windows[widest] < seen:
        text = (f"Memory beyond {_window(s, widest)} pays on this data: {s.said(rec)}, which sees {seen} steps, beats "
                f"every {s.window_word} up to {_window(s, widest)}; it {against}.")
    else:
        text = (f"A {s.memory_word} pays on this data: {s.said(rec)} beats every {s.window_word}, including {widest}, "
                f"which sees the same {seen} steps, so the gap is data efficiency or inductive bias (how the models "
                f"use those steps), not memory beyond a window; it {against}.")
    return [text, _costs(rec, s.costs.loc[rec], top, s.costs.loc[top])]


def memory_sentences(s: Standings, updates: int) -> tuple[str, int | None, str | None, list[str]]:
    """Whether memory pays: (memory, window, the best converged recurrent model, sentences)."""
    credited = [lab for lab in s.reaching if s.credited(lab)]
    top = min(s.windowed, key=s.order.index) if s.windowed else None
    if not credited:
        why = "learned anything" if s.reaching and all(lab in s.nothing for lab in s.reaching) else \
            f"converged within {updates:,} updates" if all(s.issue[lab] or lab in s.nothing for lab in s.reaching) \
            else f"both converged within {updates:,} updates and was shown to beat {s.trivial_said()} by the margin"
        text = f"No {s.memory_word} {why}, so whether memory helps on this data is inconclusive"
        return "inconclusive", None, None, [text + (f"; the best {s.window_word} is {s.said(top)}." if top else ".")]
    rec = credited[0]
    if top is None:
        return "inconclusive", None, rec, []
    match = smallest_matching_window(s, rec)
    ahead = [lab for lab in s.reaching[:s.reaching.index(rec)] if s.issue[lab] and lab not in s.nothing]
    if match is not None and ahead:
        return "inconclusive", None, rec, [
            f"Whether memory helps is inconclusive: {s.said(match)} "
            f"{s.gap(match, rec).said_no_worse(f'the best converged {s.memory_word}, ' + s.said(rec))}, but "
            f"{names(ahead)}, with a better mean, did not converge, so {'it' if len(ahead) == 1 else 'they'} may yet "
            f"do better."]
    if match is not None:
        return "not needed", s.windows[match], rec, not_needed(s, match, rec)
    beaten = all(s.gap(rec, lab).outcome == "beats" for lab in s.windowed)
    improving = [lab for lab in s.windowed if s.issue[lab] is not None]
    if beaten and not improving and s.order[0] not in s.windows:
        return "needed", s.windows[s.windowed[-1]], rec, needed(s, rec)
    text = [f"Whether memory helps is inconclusive: the best converged {s.memory_word}, {s.said(rec)}, "
            f"{s.gap(rec, top).said(f'the best {s.window_word}, ' + s.said(top))}."]
    if beaten and improving:
        text.append(f"It beats every {s.window_word}, but {names(improving)} did not converge, so "
                    f"{'it' if len(improving) == 1 else 'they'} may yet catch up.")
    if not s.credited(s.order[0]) and s.order[0] not in (rec, top):
        text.append(f"The best model overall, {s.order[0]}, is not credited, as {s.uncredited(s.order[0])}.")
    return "inconclusive", None, rec, text


MECHANISM_WORDS = {"window": "a fixed window of the last {n} steps",
                   "receptive field": "a receptive field covering {n} steps", "attention": "attention over {n} steps",
                   "recurrence": "recurrence over {n} steps"}


def cheaper(s: Standings, a: str, b: str) -> int:
    """-1 when model a costs less than b, 1 when more: by CPU time per update where the two differ by more than the
    spread of their timed steps (lib.costs.rank), else by parameters; 0 when neither tells them apart."""
    row_a, row_b = s.costs.loc[a], s.costs.loc[b]
    get = lambda row, col: float(row[col]) if col in row and pd.notna(row[col]) else math.nan  # noqa: E731
    by_time = costs.rank(get(row_a, "update_cpu_ms"), get(row_a, "update_cpu_spread_ms"),
                         get(row_b, "update_cpu_ms"), get(row_b, "update_cpu_spread_ms"))
    return by_time or costs.rank(get(row_a, "n_params"), math.nan, get(row_b, "n_params"), math.nan)


def which_kind(s: Standings) -> tuple[str | None, list[str]]:
    """Which kind of memory the data call for: the cheapest credited model (`cheaper`) shown no worse, by more than the
    margin, than the best credited model and every credited model with a better mean; (its label, the sentence).
    (None, []) when fewer than two models are credited."""
    credited = [lab for lab in s.order if s.credited(lab)]
    if len(credited) < 2:
        return None, []
    best = credited[0]
    how = lambda lab: MECHANISM_WORDS[s.mechanism(lab)].format(n=s.reach(lab))  # noqa: E731
    for lab in sorted(credited, key=cmp_to_key(lambda a, b: cheaper(s, a, b))):
        if lab == best or all(s.gap(lab, other).no_worse for other in credited[:credited.index(lab)]):
            break
    if lab == best:
        return best, [f"Which kind of memory: no cheaper model is shown to be within the margin of the best credited "
                      f"model, {s.said(best)}, which uses {how(best)}."]
    return lab, [f"Which kind of memory: the cheapest model within the margin of the best is {s.said(lab)}, which uses "
                 f"{how(lab)}; it {s.gap(lab, best).said_no_worse('the best credited model, ' + s.said(best))}, "
                 f"which uses {how(best)}.", _costs(lab, s.costs.loc[lab], best, s.costs.loc[best])]


def _costs(a: str, row_a: pd.Series, b: str, row_b: pd.Series) -> str:
    """What model a costs next to model b (lib.costs.cost_sentence: CPU time per update, ranked only beyond the
    spread of its timed steps)."""
    return costs.cost_sentence(a, row_a, b, row_b)


def hedges(s: Standings) -> list[str]:
    """The data's limits on the verdict: the steps tested (forecasts), a season beyond a window, a small validation
    or test set and a test period outside the training range."""
    f, out = s.fact, []
    if f is None:
        return out
    widest = max(s.windows.values(), default=None)
    if f.forecast is not None:
        same = f" (no more than the widest {s.window_word})" if widest == f.seq_len else ""
        out.append(f"Models saw at most {f.seq_len} rows{same}; memory beyond that was not tested.")
        if f.season is not None and f.season > f.seq_len:
            out.append(f"The series has a detected season of {f.season} rows, beyond the {f.seq_len} any model saw, "
                       f"so no model could look one cycle back.")
        elif f.season is not None and widest is not None and f.season > widest:
            out.append(f"The series has a detected season of {f.season} rows, beyond the widest {s.window_word} "
                       f"({widest}): only the {s.memory_word}s could look one cycle back.")
    if f.n_val is not None and f.n_val < MIN_VAL:
        out.append(f"Only {f.n_val} validation {'rows' if f.forecast is not None else 'sequences'} chose each run's "
                   f"best epoch: too few to tell epochs apart, so no run stopped early and the epoch chosen is partly "
                   f"chance.")
    if f.n_test < SMALL_TEST:
        unit = "rows" if f.forecast is not None else "sequences"
        out.append(f"Only {f.n_test} test {unit}: every interval above is wide; a larger test set narrows them.")
    if f.outside >= trivial.OUTSIDE:
        out.append(f"{f.outside:.0%} of the test targets lie outside the training range (a trend): models must "
                   f"extrapolate there, so losing to a naive forecast says little against memory.")
    return out


def flags(s: Standings, updates: int, budget: bool = True) -> list[str]:
    """One sentence for the models that learned nothing, and one per reason a model did not converge, naming
    every model it applies to, then budget advice. Without `budget` (no model shows a signal), reasons that would
    blame the budget are left out: a model not shown to learn anything is not "still improving"."""
    out = []
    nothing = [lab for lab in s.order if lab in s.nothing]
    if nothing and s.base is not None:
        out.append(f"{names(nothing)} learned nothing: {'its' if len(nothing) == 1 else 'their'} test {s.metric} is "
                   f"within the margin of {s.trivial_said()}, or worse.")
    groups: dict[str, list[str]] = {}
    for lab in s.order:
        if s.issue[lab] and (budget or not any(b in s.issue[lab] for b in BUDGET_ISSUES)):
            groups.setdefault(re.sub(r"^\d+ of \d+ seeds: ", "", s.issue[lab]), []).append(lab)
    for reason, labs in groups.items():
        if len(labs) == 1:
            out.append(f"{labs[0]} did not converge within {updates:,} updates ({s.issue[labs[0]]}); the comparison "
                       f"is inconclusive for it.")
        else:
            their = re.sub(r"^it ended ", "they ended ", re.sub(r"^its ", "their ", reason))
            out.append(f"{names(labs)} did not converge within {updates:,} updates ({their}); the comparison is "
                       f"inconclusive for them.")
    if groups:
        flagged = sum(map(len, groups.values()))
        out.append(f"A budget of more than {updates:,} updates may settle {'it' if flagged == 1 else 'them'}.")
    return out


def judge(s: Standings, updates: int) -> Verdict:
    """The study's verdict from its standings (see the module docstring); updates: the budget per run."""
    margin = s.margins.words(s.metric)
    if not s.scores:
        return Verdict("inconclusive", None, None, None, ("No run finished, so there is nothing to judge yet.",),
                       s.history, margin)
    head = [best_sentence(s), trivial_sentence(s)]
    nothing_learnable = no_signal(s)
    cheapest, kind = None, []
    if nothing_learnable is not None:
        memory, window, rec, more = "no signal", None, None, [nothing_learnable]
    else:
        memory, window, rec, more = memory_sentences(s, updates)
        cheapest, kind = which_kind(s)
    sentences = [text for text in [*head, *more, *kind, *hedges(s), *flags(s, updates, memory != "no signal")] if text]
    return Verdict(memory, s.order[0], rec, window, tuple(sentences), s.history, margin, cheapest)


# ---------------------------------------------------------------- the study

@dataclass
class StudyResult:
    """Every run of a study, one row of numbers and costs per model, the trivial predictors and the verdict."""

    task: object
    dataset: SequenceDataset
    budget: Budget
    train_config: TrainConfig  # seed 0; run i used seed train_config.seed replaced by its own
    runs: list[RunResult]
    issues: list[str | None]  # per run: why it did not converge, or None
    table: pd.DataFrame  # one row per model; see model_table
    verdict: Verdict
    cancelled: bool
    seconds: dict = field(default_factory=dict)  # wall-clock seconds per phase: "train", "costs"
    env: dict = field(default_factory=dict)
    standings: Standings | None = None  # what the verdict read: scores, trivial predictors, margins, facts

    def summary(self) -> pd.DataFrame:
        """One row per run (experiments.summary_frame) with its convergence issue."""
        return experiments.summary_frame(self.runs, self.dataset).assign(issue=self.issues)

    def history(self) -> pd.DataFrame:
        return experiments.history_frame(self.runs)

    def trivial(self) -> dict[str, float]:
        """Each trivial predictor's test metric, by its words (lib.trivial.TRIVIAL)."""
        s = self.standings
        return {} if s is None else {TRIVIAL.get(k, k): v.mean for k, v in s.trivial.items()}


def model_table(runs: list[RunResult], issues: list[str | None], ds: SequenceDataset, budget: Budget,
                latency_ms: dict[str, float], latency_spread_ms: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per model, in training order: seeds, test metric mean, 95% CI half-width and standard deviation,
    parameters, forward FLOPs per sample, median seconds per epoch and milliseconds per update, median CPU
    milliseconds per update over every timed epoch and seed with its spread (lib.costs.update_cpu_ms), inference
    latency for one sequence with its spread, the mean load average while its runs trained, median updates run,
    and the first non-converged seed's issue."""
    io = ModelIO.from_dataset(ds)
    summary = experiments.summary_frame(runs, ds).assign(issue=issues)
    rows = []
    for label, g in summary.groupby("label", sort=False):
        cfg = next(r.model_config for r in runs if r.label == label)
        done = g[g["status"] == Status.COMPLETED]
        mean, half = mean_ci(done["metric"])
        bad = g["issue"].dropna()
        cpu_ms, cpu_spread = costs.update_cpu_ms([r for r in runs if r.label == label], budget.steps_per_epoch)
        loads = [v for r in runs if r.label == label and (v := r.env.get("load_1min_mean")) is not None]
        rows.append({
            "label": label, "kind": cfg.kind, "window": g["window"].iloc[0], "steps_seen": g["steps_seen"].iloc[0],
            "seeds": len(done),
            "metric_mean": mean, "metric_ci95": half,
            "metric_sd": float(done["metric"].std()) if len(done) > 1 else np.nan,
            "n_params": int(g["n_params"].iloc[0]), "forward_flops": costs.flops(cfg, io)["forward_flops"],
            "epoch_seconds": float(g["epoch_seconds"].median()),
            "update_ms": float(g["epoch_seconds"].median()) / budget.steps_per_epoch * 1e3,
            "update_cpu_ms": cpu_ms, "update_cpu_spread_ms": cpu_spread,
            "load_1min": float(np.mean(loads)) if loads else np.nan, "latency_ms": latency_ms.get(label, np.nan),
            "latency_spread_ms": (latency_spread_ms or {}).get(label, np.nan),
            "updates": int(g["epochs"].median() * budget.steps_per_epoch),
            "issue": ((f"{len(bad)} of {len(g)} seeds: " if len(g) > 1 else "") + bad.iloc[0]) if len(bad) else None,
            "run_ids": " ".join(str(r) for r in (run.run_id for run in runs if run.label == label) if r),
        })
    table = pd.DataFrame(rows)
    table["window"] = table["window"].astype("Int64")  # None for the memory models
    return table


def standings_of(result_runs: list[RunResult], table: pd.DataFrame, ds: SequenceDataset,
                 margins: Margins) -> Standings:
    """What the verdict reads: per-row outcomes of every run and of the trivial predictors, and the data's facts."""
    fact = trivial.facts(ds)
    fixed = {k: Scores.of(rows=r, fixed=True) for k, r in trivial.trivial_rows(ds, fact).items()}
    return Standings.of(experiments.summary_frame(result_runs, ds), table, ds.metric, ds.higher_is_better,
                        rows=trivial.run_rows(result_runs, ds), trivial_scores=fixed, margins=margins, fact=fact)


def learned_nothing(s: Standings) -> str:
    """The issue of a model that learned nothing, as the model table says it."""
    return f"it learned nothing: its test {s.metric} is within the margin of {s.trivial_said()}, or worse"


def memory_study(
    task_cfg,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    windows: Sequence[int] | None = None,
    kinds: Sequence[str] = KINDS,
    window_kinds: Sequence[str] = WINDOW_KINDS,
    hidden: int = 64,
    min_updates: int = MIN_UPDATES,
    train_cfg: TrainConfig = TrainConfig(),
    margins: Margins = Margins(),
    on_epoch: Callable[[str, int, dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_run: Callable[[RunResult], None] | None = None,
    store=None,
    force: bool = False,
    n_jobs: int | None = None,
) -> StudyResult:
    """Train fixed-window models (window_kinds at every window) and memory models (kinds) on task_cfg with the same
    update budget, and judge them; the verdict names the kinds left out (left_out).

    windows: the window grid (default default_windows of the dataset). train_cfg supplies the optimizer,
    learning rate, clipping and device; the budget sets batch size, epochs and patience. margins: the verdict's
    practical margin. on_epoch(label, seed, record), should_stop() and on_run(result) are passed to
    experiments.compare, as are store, force and n_jobs. A cancelled study judges the runs finished so far.
    """
    margins.validate()
    models, base, budget = study_plan(task_cfg, windows, kinds, hidden, min_updates, train_cfg, window_kinds)
    ds = runs.dataset(task_cfg)
    t0 = time.perf_counter()
    comp = experiments.compare(task_cfg, models, base, seeds, on_epoch=on_epoch, should_stop=should_stop,
                               on_run=on_run, store=store, force=force, n_jobs=n_jobs)
    t1 = time.perf_counter()
    latency, latency_spread = {}, {}
    for run in comp.runs:  # the first trained model of each label answers one test sequence
        if run.label not in latency and run.model is not None:
            timing = costs.time_inference(run.model, ds.test.x[:1])
            latency[run.label] = timing["seconds_per_sample"] * 1e3
            latency_spread[run.label] = timing["spread_seconds"] * 1e3
    baseline = constant_loss(ds)
    issues = [run_issue(r, budget, baseline, ds.metric) for r in comp.runs]
    table = model_table(comp.runs, issues, ds, budget, latency, latency_spread)
    s = standings_of(comp.runs, table, ds, margins)
    table["issue"] = [learned_nothing(s) if lab in s.nothing else s.issue.get(lab, issue)
                      for lab, issue in zip(table["label"], table["issue"], strict=True)]
    verdict = judge(s, budget.updates)
    if left_out(kinds, window_kinds):
        verdict = replace(verdict, sentences=(*verdict.sentences, left_out(kinds, window_kinds)))
    if comp.cancelled:
        verdict = replace(verdict, sentences=("The study was cancelled; this verdict reads only the runs that "
                                              "finished.", *verdict.sentences))
    seconds = {"train": t1 - t0, "costs": time.perf_counter() - t1}
    return StudyResult(task_cfg, ds, budget, base, comp.runs, issues, table, verdict, comp.cancelled, seconds,
                       environment(resolve_device(base.device)), s)


__all__ = ["KINDS", "MEMORY_KINDS", "MIN_UPDATES", "WINDOWED_KINDS", "WINDOW_KINDS", "Budget", "Standings",
           "StudyResult", "Verdict", "best_sentence", "default_windows", "flags", "geometric_windows",
           "hedges", "judge", "left_out", "memory_sentences", "memory_study", "model_table", "needed",
           "no_signal", "not_needed", "plan_budget", "quick_caveat", "quick_windows", "run_issue",
           "smallest_matching_window", "standings_of", "study_plan", "trivial_sentence", "which_kind"]
