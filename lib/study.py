"""Does my data need memory? FFNN windows against recurrent models on one task, judged in plain words.

`memory_study` trains an FFNN on a geometric grid of windows (1, 2, 4, ... up to the sequence length) and
the GRU, LSTM and vanilla RNN, which see every step, each with several seeds. Every model gets the same
training budget counted in optimizer updates (`plan_budget`): at least `min_updates` whatever the size of
the data, with smaller batches on small data, so that a slow starter is not stopped after a few dozen
updates. `judge` reads the per-seed test metrics with lib.stats' seed statistics: which model is best
beyond seed noise, the smallest window that matches the best recurrent model within noise, what each
costs, and which models ended without converging (inconclusive, never "worse").
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from lib import costs, experiments, runs
from lib.errors import ConfigError
from lib.models import MODEL_KINDS, ModelConfig, ModelIO
from lib.runtime import Status, environment, resolve_device
from lib.stats import compare_groups, fmt_metric, mean_ci
from lib.tasks import CLASSIFICATION, SequenceDataset
from lib.train import RunResult, TrainConfig

KINDS = ("gru", "lstm", "rnn")  # the recurrent models every study trains
MIN_UPDATES = 1000  # optimizer updates each run may take, at least, whatever the size of the data
MAX_BATCH, MIN_BATCH = 64, 8
MIN_BATCHES_PER_EPOCH = 8  # small data get smaller batches, down to MIN_BATCH
MIN_EPOCHS = 5
PATIENCE_FRACTION = 0.5  # early stopping waits this share of the budget's epochs for a better validation metric
LAST_PART = 0.2  # a run that used its whole budget and improved in this last share of its epochs ...
STILL_IMPROVING = {"accuracy": 0.01, "mse": 0.01}  # ... by more than this (accuracy: absolute, MSE: relative)
STUCK = 0.95  # a training loss never below this share of the constant prediction's loss: nothing learned
ALPHA = 0.05  # significance level for "beyond seed noise"
ONE_SEED_TOLERANCE = {"accuracy": 0.02, "mse": 0.10}  # with one seed: absolute accuracy, relative MSE
NAIVE = {"last_value": "repeating the last value", "seasonal_naive": "repeating the value one season back",
         "train_mean": "predicting the training mean"}


@dataclass(frozen=True)
class Budget:
    """The same training budget for every model of a study."""

    updates: int  # optimizer updates a run may take: epochs x steps_per_epoch
    batch_size: int
    steps_per_epoch: int
    epochs: int
    patience: int  # epochs without a better validation metric before a run stops early


def plan_budget(n_train: int, min_updates: int = MIN_UPDATES, max_batch: int = MAX_BATCH,
                patience_fraction: float = PATIENCE_FRACTION) -> Budget:
    """Batch size, epochs and patience that give every run at least `min_updates` optimizer updates.

    The batch is the largest power of two up to max_batch that still makes MIN_BATCHES_PER_EPOCH batches
    (at least MIN_BATCH); epochs are as many as the updates need, at least MIN_EPOCHS; patience is
    `patience_fraction` of the epochs.
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
    return Budget(epochs * steps, batch, steps, epochs, max(1, math.ceil(patience_fraction * epochs)))


def geometric_windows(seq_len: int) -> tuple[int, ...]:
    """1, 2, 4, ... below seq_len, then seq_len itself."""
    grid = [2 ** k for k in range(max(seq_len, 1).bit_length()) if 2 ** k < seq_len]
    return (*grid, seq_len)


def study_plan(task_cfg, windows: Sequence[int] | None = None, kinds: Sequence[str] = KINDS, hidden: int = 64,
               min_updates: int = MIN_UPDATES, train_cfg: TrainConfig = TrainConfig()
               ) -> tuple[list[ModelConfig], TrainConfig, Budget]:
    """The models, training config (seed 0) and budget a study of task_cfg trains; ConfigError on bad values."""
    for kind in kinds:
        if kind not in MODEL_KINDS or not MODEL_KINDS[kind].recurrent:
            recurrent = [k for k, v in MODEL_KINDS.items() if v.recurrent]
            raise ConfigError(f"{kind!r} is not a recurrent model; choose from: {', '.join(recurrent)}.")
    if not kinds:
        raise ConfigError("choose at least one recurrent model to compare the FFNN windows with.")
    ds = runs.dataset(task_cfg)
    windows = geometric_windows(ds.seq_len) if windows is None else tuple(sorted(set(windows)))
    if not windows:
        raise ConfigError("choose at least one FFNN window.")
    budget = plan_budget(len(ds.train), min_updates)
    train_cfg = replace(train_cfg, batch_size=budget.batch_size, epochs=budget.epochs, patience=budget.patience,
                        seed=0)
    train_cfg.validate()
    models = [ModelConfig(kind="ffnn", window=int(w), hidden=hidden) for w in windows]
    models += [ModelConfig(kind=k, hidden=hidden) for k in dict.fromkeys(kinds)]
    return models, train_cfg, budget


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

    Not converged: it did not complete; or (recurrent models, which see every step) its training loss never
    fell below STUCK x the constant prediction's; or it used its whole budget and its best validation metric
    in the last LAST_PART of its epochs beat the best before by more than STILL_IMPROVING[metric].
    """
    if run.status != Status.COMPLETED:
        return f"it ended {run.status}: {run.message}"
    if not run.history:
        return "it trained no epoch"
    if MODEL_KINDS[run.model_config.kind].recurrent and \
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
    return None


# ---------------------------------------------------------------- the verdict

@dataclass(frozen=True)
class Verdict:
    memory: str  # "needed", "not needed" or "inconclusive"
    best: str | None  # the model best beyond seed noise; None when others are within noise of it
    best_recurrent: str | None  # the converged recurrent model with the best mean
    window: int | None  # the smallest FFNN window that matches best_recurrent within noise
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def _spread(metric: str, values) -> str:
    mean, half = mean_ci(values)
    return f"{fmt_metric(metric, mean)} ± {fmt_metric(metric, half)}" if len(values) > 1 else fmt_metric(metric, mean)


def _noise(a, b, metric: str, higher_is_better: bool) -> tuple[bool, str]:
    """(whether a is worse than b beyond seed noise, the evidence in words)."""
    n = min(len(a), len(b))
    if n < 2:
        gap = np.mean(b) - np.mean(a) if higher_is_better else np.mean(a) - np.mean(b)
        tol = ONE_SEED_TOLERANCE.get(metric, 0.0) * (1 if metric == "accuracy" else abs(np.mean(b)))
        return bool(gap > tol), "one seed, so seed noise is not measured"
    d = compare_groups("a", a, "b", b, higher_is_better, ALPHA)
    return d.significant and d.worse == "a", f"p = {d.p_value:.2g}, {n} seeds"


@dataclass(frozen=True, eq=False)
class Standings:
    """A study's finished runs per model, best mean first: what every sentence of the verdict reads.

    scores: per-seed test metrics of each model with a completed run, best mean first. issue: why a model did
    not converge, or None. windows: each FFNN model's window. costs: one row per model (label index) with
    n_params, epoch_seconds and latency_ms.
    """

    metric: str
    higher_is_better: bool
    scores: dict[str, list[float]]
    issue: dict[str, str | None]
    windows: dict[str, int]
    costs: pd.DataFrame

    @classmethod
    def of(cls, summary: pd.DataFrame, table: pd.DataFrame, metric: str, higher_is_better: bool) -> Standings:
        """From judge's summary (one row per run) and table (one row per model)."""
        done = summary[summary["status"] == Status.COMPLETED]
        per = done.groupby("label", sort=False)["metric"].apply(list).to_dict()
        info = table.set_index("label")
        labels = [lab for lab in info.index if lab in per]
        order = sorted(labels, key=lambda lab: -np.mean(per[lab]) if higher_is_better else np.mean(per[lab]))
        issue = {lab: info.at[lab, "issue"] if isinstance(info.at[lab, "issue"], str) else None for lab in order}
        windows = {lab: int(info.at[lab, "window"]) for lab in labels if pd.notna(info.at[lab, "window"])}
        return cls(metric, higher_is_better, {lab: per[lab] for lab in order}, issue, windows, info)

    @property
    def order(self) -> list[str]:
        return list(self.scores)

    @property
    def ffnn(self) -> list[str]:
        """The FFNN models, smallest window first."""
        return sorted(self.windows, key=self.windows.__getitem__)

    @property
    def recurrent(self) -> list[str]:
        """The recurrent models (no window), best mean first."""
        return [lab for lab in self.order if lab not in self.windows]

    def mean(self, label: str) -> float:
        return float(np.mean(self.scores[label]))

    def worse(self, a: str, b: str) -> bool:
        """Whether model a is worse than model b beyond seed noise."""
        return _noise(self.scores[a], self.scores[b], self.metric, self.higher_is_better)[0]

    def evidence(self, a: str, b: str) -> str:
        """The evidence for `worse(a, b)` in words: "p = 0.01, 3 seeds" or "one seed, ..."."""
        return _noise(self.scores[a], self.scores[b], self.metric, self.higher_is_better)[1]

    def said(self, label: str, evidence: str = "") -> str:
        """A model with its metric and any evidence: "GRU (accuracy 98.0% ± 2.5%; p = 0.01, 3 seeds)"."""
        extra = f"; {evidence}" if evidence else ""
        return f"{label} ({self.metric} {_spread(self.metric, self.scores[label])}{extra})"


def best_model(s: Standings) -> tuple[str, list[str]]:
    """The model with the best mean, and the others within seed noise of it (best first)."""
    best = s.order[0]
    return best, [lab for lab in s.order[1:] if not s.worse(lab, best)]


def best_sentence(s: Standings, best: str, close: list[str]) -> str:
    """Which model is best beyond seed noise; a model that did not converge is never called the worse one."""
    rivals = [lab for lab in s.order[1:] if s.issue[lab] is None]
    if len(s.order) == 1:
        return f"Only {s.said(best)} finished."
    if not close and rivals:
        return (f"{s.said(best)} is best, beyond seed noise of the runner-up, "
                f"{s.said(rivals[0], s.evidence(rivals[0], best))}.")
    if not close:
        return f"{s.said(best)} has the best mean; no other model converged."
    shown = ", ".join(close[:4]) + (f" and {len(close) - 4} more" if len(close) > 4 else "")
    if all(s.mean(lab) == s.mean(best) for lab in close):
        return f"{best} and {shown} tie at {s.metric} {fmt_metric(s.metric, s.mean(best))}."
    return (f"{s.said(best)} has the best mean, but {shown} {'is' if len(close) == 1 else 'are'} within seed noise "
            f"of it, so no single model is best beyond noise.")


def baseline_sentence(s: Standings, baselines: dict[str, float] | None) -> str:
    """For an MSE task, the best naive forecast ("*_mse" baselines) and how many models beat it; else ""."""
    naive = [(v, k.removesuffix("_mse")) for k, v in (baselines or {}).items() if k.endswith("_mse")]
    if s.metric != "mse" or not naive:
        return ""
    value, name = min(naive)
    beat = sum(s.mean(lab) < value for lab in s.order)
    return (f"For comparison, {NAIVE.get(name, name.replace('_', ' '))} gives test mse {fmt_metric('mse', value)}; "
            f"{beat} of {len(s.order)} models beat it.")


def at_chance(s: Standings, best: str, chance: float | None) -> bool:
    """Whether even the best model is within ONE_SEED_TOLERANCE of chance accuracy."""
    return chance is not None and s.higher_is_better and s.mean(best) <= chance + ONE_SEED_TOLERANCE["accuracy"]


def smallest_matching_window(s: Standings, best_recurrent: str) -> str | None:
    """The FFNN model with the smallest window that is within seed noise of both the best recurrent model and
    the best FFNN model; None when no window is."""
    if not s.ffnn:
        return None
    top = min(s.ffnn, key=s.order.index)
    return next((lab for lab in s.ffnn if not s.worse(lab, best_recurrent) and not s.worse(lab, top)), None)


def memory_sentences(s: Standings, updates: int) -> tuple[str, int | None, str | None, list[str]]:
    """Whether memory pays: (memory, the matching window, the best converged recurrent model, sentences), from
    the smallest FFNN window that matches the best converged recurrent model."""
    converged = [lab for lab in s.recurrent if s.issue[lab] is None]
    top_ffnn = min(s.ffnn, key=s.order.index) if s.ffnn else None
    if not converged:
        text = (f"No recurrent model converged within {updates:,} updates, so whether memory helps on this data is "
                f"inconclusive")
        return "inconclusive", None, None, [text + (f"; the best FFNN window is {s.said(top_ffnn)}." if top_ffnn
                                                    else ".")]
    rec = converged[0]
    if top_ffnn is None:
        return "inconclusive", None, rec, []
    match = smallest_matching_window(s, rec)
    if match is None:
        widest = s.windows[s.ffnn[-1]]
        return "needed", None, rec, [
            f"Memory helps on this data: {s.said(rec)} beats the best FFNN window up to {widest} steps, "
            f"{s.said(top_ffnn, s.evidence(top_ffnn, rec))}, beyond seed noise.",
            _costs(rec, s.costs.loc[rec], top_ffnn, s.costs.loc[top_ffnn])]
    window = s.windows[match]
    ahead = not s.worse(rec, match)
    evidence = s.evidence(match, rec) if ahead else s.evidence(rec, match)
    return "not needed", window, rec, [
        f"Memory beyond the last {window} step{'s' * (window != 1)} does not pay on this data: {s.said(match)} "
        f"{'matches' if ahead else 'beats'} the best recurrent model, {s.said(rec, evidence)}, "
        f"{'within' if ahead else 'beyond'} seed noise.",
        _costs(match, s.costs.loc[match], rec, s.costs.loc[rec])]


_COSTS = (("n_params", "parameters", "{:,.0f}", ""), ("epoch_seconds", "training time", "{:.3g}", " s per epoch"),
          ("latency_ms", "prediction time", "{:.3g}", " ms per sequence"))


def _costs(a: str, row_a: pd.Series, b: str, row_b: pd.Series) -> str:
    """What model a costs next to model b: parameters, seconds per training epoch, latency of one prediction."""
    shown = [c for c in _COSTS if pd.notna(row_a[c[0]]) and pd.notna(row_b[c[0]])]
    if not shown:
        return ""
    values = lambda row: ", ".join(fmt.format(row[col]) + unit for col, _, fmt, unit in shown)  # noqa: E731
    names = ", ".join(name for _, name, _, _ in shown)
    text = f"Costs ({names}): {a} {values(row_a)}; {b} {values(row_b)}"
    cheaper = [name for col, name, _, _ in shown if row_a[col] < row_b[col]]
    dearer = [name for col, name, _, _ in shown if row_a[col] > row_b[col]]
    if cheaper and not dearer:
        return text + f", so {a} costs less on every count."
    if dearer and not cheaper:
        return text + f", so {a} costs more on every count."
    if cheaper:
        return text + f", so {a} costs less in {' and '.join(cheaper)} and more in {' and '.join(dearer)}."
    return text + "."


def judge(summary: pd.DataFrame, table: pd.DataFrame, metric: str, higher_is_better: bool, updates: int,
          chance: float | None = None, baselines: dict[str, float] | None = None) -> Verdict:
    """The study's verdict from per-seed test metrics and per-model costs.

    summary: one row per run with label, seed, status and metric. table: one row per model with label,
    kind, window (None for recurrent models), n_params, epoch_seconds, latency_ms and issue (None when the
    model converged, else why not). Matching within noise: an FFNN window whose mean is at least as good,
    or whose gap is not beyond seed noise (Welch's t-test at ALPHA); with one seed, within
    ONE_SEED_TOLERANCE. baselines: naive test metrics by name (the dataset's), the best *_mse one quoted.
    """
    if not (summary["status"] == Status.COMPLETED).any():
        return Verdict("inconclusive", None, None, None, ("No run finished, so there is nothing to judge yet.",))
    s = Standings.of(summary, table, metric, higher_is_better)
    best, close = best_model(s)
    sentences = [best_sentence(s, best, close), baseline_sentence(s, baselines)]
    if at_chance(s, best, chance):
        sentences.append(f"No model did better than chance ({fmt_metric('accuracy', chance)}) within {updates:,} "
                         f"updates, so the data show no signal these models can learn at this size; whether memory "
                         f"helps is inconclusive.")
        return Verdict("inconclusive", None, None, None, tuple(_said(sentences) + _flags(s, updates)))
    memory, window, best_rec, more = memory_sentences(s, updates)
    sentences = _said(sentences + more) + _flags(s, updates)
    return Verdict(memory, None if close else best, best_rec, window, tuple(sentences))


def _said(sentences: list[str]) -> list[str]:
    return [text for text in sentences if text]


def _flags(s: Standings, updates: int) -> list[str]:
    """One sentence per reason a model did not converge, naming every model it applies to."""
    groups: dict[str, list[str]] = {}
    for lab in s.order:
        if s.issue[lab]:
            groups.setdefault(re.sub(r"^\d+ of \d+ seeds: ", "", s.issue[lab]), []).append(lab)
    out = []
    for reason, labs in groups.items():
        if len(labs) == 1:
            out.append(f"{labs[0]} did not converge within {updates:,} updates ({s.issue[labs[0]]}); the comparison "
                       f"is inconclusive for it.")
        else:
            their = re.sub(r"^it ended ", "they ended ", re.sub(r"^its ", "their ", reason))
            names = f"{', '.join(labs[:-1])} and {labs[-1]}"
            out.append(f"{names} did not converge within {updates:,} updates ({their}); the comparison is "
                       f"inconclusive for them.")
    if out:
        flagged = sum(map(len, groups.values()))
        out.append(f"A budget of more than {updates:,} updates may settle {'it' if flagged == 1 else 'them'}.")
    return out


# ---------------------------------------------------------------- the study

@dataclass
class StudyResult:
    """Every run of a study, one row of numbers and costs per model, and the verdict."""

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

    def summary(self) -> pd.DataFrame:
        """One row per run (experiments.summary_frame) with its convergence issue."""
        return experiments.summary_frame(self.runs, self.dataset).assign(issue=self.issues)

    def history(self) -> pd.DataFrame:
        return experiments.history_frame(self.runs)


def model_table(runs: list[RunResult], issues: list[str | None], ds: SequenceDataset, budget: Budget,
                latency_ms: dict[str, float]) -> pd.DataFrame:
    """One row per model, in training order: seeds, test metric mean, 95% CI half-width and standard deviation,
    parameters, forward FLOPs per sample, median seconds per epoch and milliseconds per update, inference
    latency for one sequence, median updates run, and the first non-converged seed's issue."""
    io = ModelIO.from_dataset(ds)
    summary = experiments.summary_frame(runs, ds).assign(issue=issues)
    rows = []
    for label, g in summary.groupby("label", sort=False):
        cfg = next(r.model_config for r in runs if r.label == label)
        done = g[g["status"] == Status.COMPLETED]
        mean, half = mean_ci(done["metric"])
        bad = g["issue"].dropna()
        rows.append({
            "label": label, "kind": cfg.kind, "window": g["window"].iloc[0], "seeds": len(done),
            "metric_mean": mean, "metric_ci95": half,
            "metric_sd": float(done["metric"].std()) if len(done) > 1 else np.nan,
            "n_params": int(g["n_params"].iloc[0]), "forward_flops": costs.flops(cfg, io)["forward_flops"],
            "epoch_seconds": float(g["epoch_seconds"].median()),
            "update_ms": float(g["epoch_seconds"].median()) / budget.steps_per_epoch * 1e3,
            "latency_ms": latency_ms.get(label, np.nan), "updates": int(g["epochs"].median() * budget.steps_per_epoch),
            "issue": ((f"{len(bad)} of {len(g)} seeds: " if len(g) > 1 else "") + bad.iloc[0]) if len(bad) else None,
            "run_ids": " ".join(str(r) for r in (run.run_id for run in runs if run.label == label) if r),
        })
    table = pd.DataFrame(rows)
    table["window"] = table["window"].astype("Int64")  # None for the recurrent models
    return table


def memory_study(
    task_cfg,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    windows: Sequence[int] | None = None,
    kinds: Sequence[str] = KINDS,
    hidden: int = 64,
    min_updates: int = MIN_UPDATES,
    train_cfg: TrainConfig = TrainConfig(),
    on_epoch: Callable[[str, int, dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_run: Callable[[RunResult], None] | None = None,
    store=None,
    force: bool = False,
    n_jobs: int = 1,
) -> StudyResult:
    """Train FFNN windows and recurrent models on task_cfg with the same update budget, and judge them.

    windows: FFNN windows (default geometric_windows of the sequence length). train_cfg supplies the optimizer,
    learning rate, clipping and device; the budget sets batch size, epochs and patience. on_epoch(label,
    seed, record), should_stop() and on_run(result) are passed to experiments.compare, as are store,
    force and n_jobs. A cancelled study judges the runs finished so far.
    """
    models, base, budget = study_plan(task_cfg, windows, kinds, hidden, min_updates, train_cfg)
    ds = runs.dataset(task_cfg)
    t0 = time.perf_counter()
    comp = experiments.compare(task_cfg, models, base, seeds, on_epoch=on_epoch, should_stop=should_stop,
                               on_run=on_run, store=store, force=force, n_jobs=n_jobs)
    t1 = time.perf_counter()
    latency = {}
    for run in comp.runs:  # the first trained model of each label answers one test sequence
        if run.label not in latency and run.model is not None:
            latency[run.label] = costs.time_inference(run.model, ds.test.x[:1])["seconds_per_sample"] * 1e3
    baseline = constant_loss(ds)
    issues = [run_issue(r, budget, baseline, ds.metric) for r in comp.runs]
    table = model_table(comp.runs, issues, ds, budget, latency)
    verdict = judge(experiments.summary_frame(comp.runs, ds), table, ds.metric, ds.higher_is_better,
                    budget.updates, ds.chance, ds.baselines)
    if comp.cancelled:
        verdict = replace(verdict, sentences=("The study was cancelled; this verdict reads only the runs that "
                                              "finished.", *verdict.sentences))
    seconds = {"train": t1 - t0, "costs": time.perf_counter() - t1}
    return StudyResult(task_cfg, ds, budget, base, comp.runs, issues, table, verdict, comp.cancelled, seconds,
                       environment(resolve_device(base.device)))


__all__ = ["KINDS", "MIN_UPDATES", "Budget", "Standings", "StudyResult", "Verdict", "at_chance", "baseline_sentence",
           "best_model", "best_sentence", "geometric_windows", "judge", "memory_sentences", "memory_study",
           "model_table", "plan_budget", "run_issue", "smallest_matching_window", "study_plan"]
