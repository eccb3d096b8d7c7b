"""The verdict engine: how two models' test scores compare, counting seed and test-set noise against a stated
practical margin, and the plain-language verdicts of the Compare, Window and Memory pages built on it.

`gap(a, b)` has four outcomes for model a against model b: it *beats* b when the interval of the difference lies
beyond the margin, *trails* b when it lies beyond the margin the other way, *matches* b when it lies inside
± margin (two one-sided tests, TOST), and is otherwise *inconclusive*, with what would settle it. The interval
(90%: two one-sided tests at 5% each) adds two variances: the seeds' (each model's per-seed test metrics, their
variance over the number of seeds) and the test set's (the per-row difference of the two models, averaged over
seeds, paired because every model is scored on the same rows; over the number of rows), with Welch–Satterthwaite
degrees of freedom. docs/verdicts.md states the rules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lib.configs import Checked, check_knobs, knob

ALPHA = 0.05  # each one-sided test's level: a gap is read from its 90% interval
MAX_SEEDS = 50  # more seeds than this per model are not offered as what would settle a gap
OUTCOMES = ("beats", "trails", "matches", "inconclusive")


def mean_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its t-based confidence interval (half-width 0 for one value)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1 or np.all(v == v[0]):
        return float(v.mean()), 0.0
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(half)


@dataclass(frozen=True)
class Margins(Checked):
    """The practical margin of every verdict: a difference inside ± margin counts as a match."""

    accuracy: float = knob(0.01, "Accuracy margin", low=0.0, high=0.5, step=0.005, form=(0.0, 0.2),
                           help="Accuracy differences within this many points (0.01 = 1 point) count as a match; "
                                "a model beats another only by more.")
    mse: float = knob(0.02, "MSE margin (relative)", low=0.0, high=1.0, step=0.01, form=(0.0, 0.5),
                      help="MSE differences within this share of the other model's MSE (0.02 = 2%) count as a "
                           "match; a model beats another only by more.")

    def validate(self) -> None:
        check_knobs(self)

    def of(self, metric: str, reference: float) -> float:
        """The margin in the metric's units: accuracy points as they are, others relative to `reference`."""
        return self.accuracy if metric == "accuracy" else self.mse * abs(reference)

    def words(self, metric: str) -> str:
        """"1 accuracy point", "2% of the MSE"."""
        if metric == "accuracy":
            points = self.accuracy * 100
            return f"{points:g} accuracy point{'' if points == 1 else 's'}"
        return f"{self.mse * 100:g}% of the {metric.upper()}"


@dataclass(frozen=True, eq=False)
class Scores:
    """One model's test results: its per-seed metrics and, where known, every seed's outcome on every test row
    (right 1 / wrong 0, or the squared error), which average to them. `fixed`: the same on every run (a trivial
    predictor), so it has no seed noise."""

    seeds: np.ndarray  # (k,)
    rows: np.ndarray | None = None  # (k, n_test)
    fixed: bool = False

    @classmethod
    def of(cls, seeds=None, rows=None, fixed: bool = False) -> Scores:
        """From per-seed metrics, or from per-row outcomes ((n,) or (k, n)), whose row means they are."""
        if rows is not None:
            rows = np.atleast_2d(np.asarray(rows, dtype=float))
            seeds = rows.mean(axis=1) if seeds is None else seeds
        return cls(np.asarray(seeds, dtype=float).reshape(-1), rows, fixed)

    @property
    def mean(self) -> float:
        return float(self.seeds.mean())

    @property
    def k(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class Gap:
    """Model a against model b: the outcome, the difference with its interval, and the noise counted."""

    a: str
    b: str
    metric: str
    outcome: str  # a "beats", "trails" or "matches" b, or it is "inconclusive"
    diff: float  # how much better a is than b, in the metric's units (positive: a is better)
    low: float  # the interval of diff at 1 - 2 alpha
    high: float
    margin: float  # in the metric's units
    margin_words: str  # "1 accuracy point"
    reference: float  # b's mean: MSE differences are said relative to it
    counted: str  # the noise counted, in words
    settle: str  # for an inconclusive gap, what would settle it; else ""
    level: float = 0.9
    measured: bool = True  # some noise was measured (seeds or test rows): without any, no claim is made

    @property
    def no_worse(self) -> bool:
        """a is shown not to be worse than b by more than the margin (the interval's lower end lies above
        -margin: a one-sided non-inferiority test); true when a matches or beats b."""
        return self.measured and self.low > -self.margin

    def _value(self, v: float) -> float:
        """A difference in the words' units: accuracy points, or percent of b's MSE (negative: a is lower)."""
        if self.metric == "accuracy":
            return v * 100
        return -v / abs(self.reference) * 100 if self.reference else -v

    def amount(self, value: float) -> str:
        """A difference as said: "+3.1 points" of accuracy, "-4.5%" of b's MSE."""
        return f"{self._value(value):+.1f}{' points' if self.metric == 'accuracy' else '%' * bool(self.reference)}"

    @property
    def evidence(self) -> str:
        """"difference +3.1 points, 90% interval +1.5 to +4.7 points; 3 seeds each, 150 test rows (paired)"."""
        lo, hi = sorted((self._value(self.low), self._value(self.high)))
        unit = " points" if self.metric == "accuracy" else "%" * bool(self.reference)
        what = "difference" if self.metric == "accuracy" else f"{self.metric.upper()}"
        against = "" if self.metric == "accuracy" else f" against {self.b}'s"
        return (f"{what} {self.amount(self.diff)}{against}, {self.level:.0%} interval {lo:+.1f} to {hi:+.1f}{unit}; "
                f"{self.counted}")

    def clause(self, b_said: str | None = None) -> str:
        """a's relation to b (b_said: how to name b, default its label): "beats GRU by more than the margin of 1
        accuracy point"."""
        b, margin = b_said or self.b, f"the margin of {self.margin_words}"
        if self.outcome == "beats":
            return f"beats {b} by more than {margin}"
        if self.outcome == "trails":
            return f"trails {b} by more than {margin}"
        if self.outcome == "matches":
            return f"matches {b} within {margin}"
        return f"is neither shown to match {b} within {margin} nor to differ from it by more: inconclusive"

    def said(self, b_said: str | None = None) -> str:
        """The clause with its evidence and, when inconclusive, what would settle it."""
        settle = f"; {self.settle} would settle it" if self.outcome == "inconclusive" else ""
        return f"{self.clause(b_said)} ({self.evidence}){settle}"

    def said_no_worse(self, b_said: str | None = None) -> str:
        """For a gap that is no_worse: "matches B ..." or "beats B ...", else "is not worse than B by more than the
        margin ..." (ahead, but not shown to be by more than the margin), with its evidence."""
        if self.outcome != "inconclusive":
            return self.said(b_said)
        return f"is not worse than {b_said or self.b} by more than the margin of {self.margin_words} ({self.evidence})"


def _seed_var(s: Scores) -> float | None:
    """The variance of s's mean over seeds; None when one seed leaves it unmeasured."""
    if s.fixed:
        return 0.0
    return float(np.var(s.seeds, ddof=1) / s.k) if s.k > 1 else None


def _row_var(a: Scores, b: Scores, metric: str, n_test: int | None) -> tuple[float | None, int, bool]:
    """(the test set's variance of the difference of means, rows, paired): from the paired per-row
    differences where both models have them, else for accuracy from the binomial spread of n_test rows (unpaired),
    else None. Accuracy adds half a pseudo-row to each cell of the paired table (Agresti & Min 2005), so that two
    models that agree on every row still carry the uncertainty of a finite test set."""
    if a.rows is not None and b.rows is not None and a.rows.shape[1] == b.rows.shape[1] and a.rows.shape[1] > 1:
        d = a.rows.mean(axis=0) - b.rows.mean(axis=0)  # (n,)
        w = np.ones(len(d))
        if metric == "accuracy":
            d, w = np.concatenate([d, [1.0, -1.0, 0.0, 0.0]]), np.concatenate([w, np.full(4, 0.5)])
        total = w.sum()
        centre = np.average(d, weights=w)
        return float(np.sum(w * (d - centre) ** 2) / (total - 1) / total), a.rows.shape[1], True
    n = n_test or (a.rows.shape[1] if a.rows is not None else b.rows.shape[1] if b.rows is not None else 0)
    if metric == "accuracy" and n > 0:
        p = [(s.mean * n + 1) / (n + 2) for s in (a, b)]  # plus-two estimates, as Agresti & Caffo
        return float(sum(q * (1 - q) for q in p) / (n + 2)), n, False
    return None, n, False


def _counted(a: Scores, b: Scores, rows: int, row_var: float | None, paired: bool) -> str:
    """The noise a gap counted: "3 seeds each and 150 test rows (paired)"."""
    ks = [s.k for s in (a, b) if not s.fixed]
    if not ks:
        seeds = "no seed noise"
    elif min(ks) == 1:
        seeds = "one seed (so seed noise is not measured)"
    else:
        seeds = f"{ks[0]} seeds" + (" each" if len(ks) == 2 and ks[0] == ks[1] else
                                    f" and {ks[1]} seeds" if len(ks) == 2 else "")
    test = (f"{rows:,} test rows{' (paired)' if paired else ''}" if row_var is not None
            else "no test-set noise (no per-row outcomes)")
    return f"{seeds} and {test}"


def _settle(need: float, quantile: float, seed_var: float | None, row_var: float, a: Scores, b: Scores,
            rows: int) -> str:
    """What would bring the interval's half-width (quantile x standard error) below `need`: about how many more
    seeds per model (from the observed spread), or how large a test set."""
    if seed_var is None:
        return "at least two seeds per model (to measure seed noise)"
    if quantile <= 0 or need <= 0:
        return "more seeds and a larger test set"
    target = (need / quantile) ** 2  # the variance that would decide
    options = []
    seeded = [s for s in (a, b) if not s.fixed]
    if seed_var > 0 and target > row_var and seeded:
        k = math.ceil(sum(_seed_var(s) * s.k for s in seeded) / (target - row_var))
        more = max(1, k - min(s.k for s in seeded))
        if k <= MAX_SEEDS:
            options.append(f"about {more} more seed{'s' * (more != 1)} per model")
    if row_var > 0 and target > seed_var and rows:
        options.append(f"a test set of about {max(math.ceil(rows * row_var / (target - seed_var)), rows + 1):,} rows")
    return " or ".join(options) if options else "more seeds and a larger test set"


def gap(a_name: str, a: Scores, b_name: str, b: Scores, metric: str, higher_is_better: bool, margins: Margins,
        n_test: int | None = None, alpha: float = ALPHA) -> Gap:
    """How model a stands against model b (see the module docstring); alpha: each one-sided test's level (a
    caller comparing many models with one predictor divides it among them)."""
    sign = 1.0 if higher_is_better else -1.0
    diff = sign * (a.mean - b.mean)
    margin = margins.of(metric, b.mean)
    seeds = [_seed_var(s) for s in (a, b)]
    seed_var = None if None in seeds else sum(seeds)
    row_var, rows, paired = _row_var(a, b, metric, n_test)
    parts = [(v, s.k - 1) for v, s in zip(seeds, (a, b), strict=True) if v]
    parts += [(row_var, max(rows - 1, 1))] if row_var else []
    total = sum(v for v, _ in parts)
    quantile = float(stats.t.ppf(1 - alpha, total ** 2 / sum(v ** 2 / d for v, d in parts))) if total > 0 else 0.0
    half = quantile * math.sqrt(total)
    low, high = diff - half, diff + half
    if seed_var is None and row_var is None:
        outcome = "inconclusive"  # no noise measured at all: no claim either way
    elif low > margin:
        outcome = "beats"
    elif high < -margin:
        outcome = "trails"
    elif -margin < low and high < margin:
        outcome = "matches"
    else:
        outcome = "inconclusive"
    settle = "" if outcome != "inconclusive" else _settle(abs(abs(diff) - margin), quantile, seed_var, row_var or 0.0,
                                                          a, b, rows)
    return Gap(a_name, b_name, metric, outcome, float(diff), float(low), float(high), float(margin),
               margins.words(metric), b.mean, _counted(a, b, rows, row_var, paired), settle, 1 - 2 * alpha,
               seed_var is not None or row_var is not None)


def fmt_metric(metric: str, value: float) -> str:
    """A test metric as the app's sentences and tables say it: accuracy as a percentage to one decimal
    ("96.7%"), any other metric to four significant digits ("0.1234"); "" when there is none (NaN)."""
    if pd.isna(value):
        return ""
    return f"{value:.1%}" if metric == "accuracy" else f"{value:.4g}"


def names(labels) -> str:
    """"A", "A and B", "A, B and C"."""
    labels = list(labels)
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


# ---------------------------------------------------------------- the pages' verdicts

def per_model(frame: pd.DataFrame, rows: dict[str, np.ndarray] | None = None) -> dict[str, Scores]:
    """Each label's Scores from its completed runs (frame: label, status, metric), with its per-row outcomes
    ((k, n), one row per completed run in frame order) where `rows` has them."""
    done = frame[frame["status"] == "completed"]
    out = {}
    for label, g in done.groupby("label", sort=False):
        r = (rows or {}).get(label)
        ok = r is not None and len(r) == len(g)
        out[label] = Scores.of(g["metric"].to_numpy(), r if ok else None)
    return out


def ranked(scores: dict[str, Scores], higher_is_better: bool) -> list[str]:
    """The labels, best mean first (stable)."""
    return sorted(scores, key=lambda lab: -scores[lab].mean if higher_is_better else scores[lab].mean)


def chance_gaps(scores: dict[str, Scores], base: Scores, name: str, metric: str, higher_is_better: bool,
                margins: Margins, n_test: int | None) -> dict[str, Gap]:
    """Each model against a trivial predictor `base` (named `name`: its per-row outcomes, or chance as a fixed
    number), each test at ALPHA / the number of models, since the best of many is picked."""
    alpha = ALPHA / max(len(scores), 1)
    return {lab: gap(lab, s, name, base, metric, higher_is_better, margins, n_test, alpha)
            for lab, s in scores.items()}


def verdict(summary: pd.DataFrame, metric: str, higher_is_better: bool, chance: float | None = None, *,
            rows: dict[str, np.ndarray] | None = None, margins: Margins = Margins(),
            n_test: int | None = None) -> str:
    """Two or three sentences naming the best model, how it stands against the runner-up (gap), and which
    models do not beat chance by the margin.

    summary: one row per run with columns label, seed, metric, status. rows: per-row test outcomes per label
    (see per_model), for paired test-set noise; n_test: test rows, for accuracy's noise without them. Models whose
    mean equals the best one's tie; the runner-up is then the best model that does not tie.
    """
    ok = summary[summary["status"] == "completed"]
    left = [f"{r['label']} (seed {r['seed']}, {r['status']})" for _, r in summary.iterrows()
            if r["status"] != "completed"]
    if ok.empty:
        if left:
            return f"No run completed ({names(left)}), so there is nothing to compare."
        return "No run finished, so there is nothing to compare yet."
    scores = per_model(summary, rows)
    order = ranked(scores, higher_is_better)
    best = scores[order[0]].mean
    top = [lab for lab in order if np.isclose(scores[lab].mean, best, rtol=1e-9, atol=1e-12)]
    text = (f"{top[0]} is best with test {metric} {fmt_metric(metric, best)}" if len(top) == 1
            else f"{names(top)} tie at test {metric} {fmt_metric(metric, best)}")
    rest = [lab for lab in order if lab not in top]
    if rest:
        g = gap(top[0], scores[top[0]], rest[0], scores[rest[0]], metric, higher_is_better, margins, n_test)
        runner = f"the runner-up, {rest[0]} ({fmt_metric(metric, scores[rest[0]].mean)})"
        text += f"; {'it' if len(top) == 1 else 'each'} {g.said(runner)}"
    text += "."
    if chance is not None and higher_is_better:
        gaps = chance_gaps(scores, Scores.of([chance], fixed=True), "chance", metric, higher_is_better, margins,
                           n_test)
        near = [f"{lab} ({fmt_metric(metric, scores[lab].mean)})" for lab in order if gaps[lab].outcome != "beats"]
        if near:
            text += (f" {names(near)} {'does' if len(near) == 1 else 'do'} not beat chance "
                     f"({fmt_metric('accuracy', chance)}) by more than the margin ({margins.words(metric)}).")
    if left:
        text += f" Left out, as {'it' if len(left) == 1 else 'they'} did not complete: {names(left)}."
    return text


def _day(iso) -> str:
    return str(iso)[:10]


def measured(summary: pd.DataFrame) -> pd.Series:
    """Per run, when its seconds were measured: "now", or the day a reused stored run was trained."""
    reused = summary["reused"] if "reused" in summary else pd.Series(None, index=summary.index)
    return reused.map(lambda r: "now" if r is None or pd.isna(r) else f"{_day(r)} (reused run)")


def results_table(summary: pd.DataFrame, metric: str, measured_on: str | None = None) -> pd.DataFrame:
    """Per model: test metric as mean ± 95% CI half-width over its completed runs ("—" without one),
    parameters, wall-clock and CPU seconds per epoch, when those seconds were measured (`measured_on`
    overrides it, e.g. for precomputed results), epochs to threshold, status and seeds."""
    summary = summary.assign(measured=measured(summary) if measured_on is None else measured_on)
    rows = []
    for label, g in summary.groupby("label", sort=False):
        done = g[g["status"] == "completed"]
        mean, half = mean_ci(done["metric"])
        cpu = g["epoch_cpu_seconds"].median() if "epoch_cpu_seconds" in g else float("nan")
        rows.append({"model": label, f"test {metric}": f"{mean:.4g} ± {half:.2g}" if len(done) else "—",
                     "parameters": g["n_params"].iloc[0],
                     "wall s / epoch": round(float(g["epoch_seconds"].median()), 3),
                     "CPU s / epoch": round(float(cpu), 3) if pd.notna(cpu) else None,
                     "total s": round(float(g["total_seconds"].mean()), 1),
                     "seconds measured": ", ".join(dict.fromkeys(g["measured"])),
                     "epochs to threshold": (f"{g['epochs_to_threshold'].median():g}"
                                             if g["epochs_to_threshold"].notna().any() else "not reached"),
                     "status": ", ".join(sorted(set(g["status"]))), "seeds": len(g)})
    return pd.DataFrame(rows)


def timing_note(summary: pd.DataFrame) -> str | None:
    """A sentence when some runs' seconds come from reused stored runs rather than from this training."""
    days = sorted({_day(r) for r in summary.get("reused", pd.Series(dtype=object)).dropna()})
    if not days:
        return None
    n = int(summary["reused"].notna().sum())
    return (f"{n} of {len(summary)} run(s) were reused from the run store, trained on {names(days)}: their "
            f"seconds were measured then, not now. Tick “Retrain runs already stored” to measure them again.")


def cancel_note(summary: pd.DataFrame, planned: int) -> str:
    """What a cancelled experiment holds: how many of the planned runs completed, which stopped part-way,
    and that only completed runs count."""
    done = int((summary["status"] == "completed").sum())
    cut = [f"{r['label']} (seed {r['seed']}, {int(r['epochs'])} epoch{'s' * (int(r['epochs']) != 1)})"
           for _, r in summary.iterrows() if r["status"] != "completed"]
    text = f"Cancelled: {done} of {planned} planned run(s) completed"
    if cut:
        text += f"; stopped part-way: {names(cut)}"
    rest = planned - len(summary)
    if rest > 0:
        text += f"; {rest} never started"
    return text + ". Only completed runs count in the verdict and the test metrics."


def eta_text(elapsed: float, fraction: float) -> str | None:
    """The time a job still needs, from how long its first `fraction` took (None before 2% is done)."""
    if fraction < 0.02 or elapsed <= 0:
        return None
    left = elapsed * (1 - fraction) / fraction
    when = f"{left / 60:.0f} min" if left >= 90 else f"{max(1, round(left))} s"
    return f"about {when} left ({fraction:.0%} done in {elapsed:.0f} s)"


def loglog_slope(x, y) -> float:
    """The slope of log(y) against log(x) by least squares: how y scales with x (1 = in proportion)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 2 or np.ptp(x[keep]) == 0:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])




def distance_verdict(sweep: pd.DataFrame, metric: str, higher_is_better: bool, chance: float | None = None,
                     distance_name: str = "distance", *, margins: Margins = Margins(),
                     n_test: int | None = None) -> str:
    """One clause per model of how its test metric holds up as the distance grows, e.g. "LSTM stays at 100%
    up to distance 60; FFNN w5 is at chance from distance 10", and the rule they read.

    sweep: one row per run with label, distance, metric and status (completed runs count). A model "holds" at a
    distance where it is shown to be no worse than at its best distance by more than the margin (Gap.no_worse, the
    rule of a study's matching window); it is "at chance"
    where it is not shown to beat chance by more than the margin (each test at ALPHA / the models), from that
    distance on. n_test: test rows per distance, for accuracy's test-set noise.
    """
    done = sweep[sweep["status"] == "completed"]
    if done.empty:
        return "No run completed, so there is nothing to read yet."
    clauses = []
    n_models = done["label"].nunique()
    for label, g in done.groupby("label", sort=False):
        per = {d: Scores.of(gd["metric"].to_numpy()) for d, gd in sorted(g.groupby("distance"), key=lambda i: i[0])}
        ds_, vals = list(per), [s.mean for s in per.values()]
        base = Scores.of([chance], fixed=True) if chance is not None and higher_is_better else None
        near = [base is not None and gap(label, s, "chance", base, metric, higher_is_better, margins, n_test,
                                         ALPHA / n_models).outcome != "beats" for s in per.values()]
        first_chance = next((i for i in range(len(vals)) if all(near[i:])), None)
        top = ds_[int(np.argmax(vals) if higher_is_better else np.argmin(vals))]
        gaps = {d: gap(label, s, label, per[top], metric, higher_is_better, margins, n_test) for d, s in per.items()}
        holds = [d == top or g.no_worse for d, g in gaps.items()]  # shown no worse than its best, as a study's match
        falls = gaps[ds_[-1]].outcome == "trails"
        clauses.append(_distance_clause(label, metric, ds_, vals, holds, first_chance, higher_is_better, falls,
                                        f"{distance_name} {{}}".format, distance_name))
    at_chance = ", and is at chance while it is not shown to beat chance by more" if chance is not None and \
        higher_is_better else ""
    return ("; ".join(clauses) + f". A model holds while it is shown to stay within the margin "
            f"({margins.words(metric)}) of its best{at_chance}.")


def _distance_clause(label, metric, ds_, vals, holds, first_chance, higher_is_better, falls, at,
                     distance_name) -> str:
    last_hold = next((i for i in range(len(vals)) if not all(holds[:i + 1])), len(vals)) - 1
    if first_chance == 0:
        return f"{label} is at chance at every {distance_name} tried"
    if all(holds):
        best, worst = (max(vals), min(vals)) if higher_is_better else (min(vals), max(vals))
        bound = "" if fmt_metric(metric, worst) == fmt_metric(metric, best) else (
            " or above" if higher_is_better else " or below")
        return f"{label} stays at {fmt_metric(metric, worst)}{bound} up to {at(ds_[-1])}"
    if holds[0]:
        kept = f"holds {fmt_metric(metric, vals[0])} up to {at(ds_[last_hold])}" if last_hold else (
            f"scores {fmt_metric(metric, vals[0])} at {at(ds_[0])}")
        then = (f"but is at chance from {at(ds_[first_chance])}" if first_chance is not None
                else f"then falls to {fmt_metric(metric, vals[-1])} at {at(ds_[-1])}" if falls
                else f"then is not shown to hold ({fmt_metric(metric, vals[-1])} at {at(ds_[-1])})")
        return f"{label} {kept} {then}"
    return f"{label} goes from {fmt_metric(metric, vals[0])} at {at(ds_[0])} to {fmt_metric(metric, vals[-1])} at " \
           f"{at(ds_[-1])}"


def window_verdict(sweep: pd.DataFrame, metric: str, higher_is_better: bool, cue_lag: int | None = None, *,
                   margins: Margins = Margins(), n_test: int | None = None,
                   rows: dict[str, np.ndarray] | None = None) -> str:
    """Which FFNN window is the first shown to be no worse than the best reference (a row without a window) by
    more than the margin (Gap.no_worse, the study's rule), and what it costs; rows and n_test as for `verdict`."""
    done = sweep[sweep["status"] == "completed"]
    ff, refs = done[done["window"].notna()], done[done["window"].isna()]
    if ff.empty:
        return "No FFNN run finished, so there is no tradeoff to read yet."
    scores = per_model(done, rows)
    by_w = ff.groupby("label", sort=False).agg(window=("window", "first"), n_params=("n_params", "first"))
    by_w = by_w.assign(window=by_w["window"].astype(int)).sort_values("window")
    best = ranked({lab: scores[lab] for lab in by_w.index}, higher_is_better)[0]
    if refs.empty:
        text = (f"The FFNN does best with a window of {by_w.at[best, 'window']} "
                f"({metric} {fmt_metric(metric, scores[best].mean)}).")
    else:
        ref = ranked({lab: scores[lab] for lab in refs["label"].unique()}, higher_is_better)[0]
        ref_params = int(refs.loc[refs["label"] == ref, "n_params"].iloc[0])
        gaps = {lab: gap(lab, scores[lab], ref, scores[ref], metric, higher_is_better, margins, n_test)
                for lab in by_w.index}
        match = next((lab for lab, g in gaps.items() if g.no_worse), None)  # the study's rule (lib.study)
        open_ = next((lab for lab, g in gaps.items() if g.outcome == "inconclusive"), None)
        said = f"the {ref} ({metric} {fmt_metric(metric, scores[ref].mean)})"
        if match is not None:
            n = int(by_w.at[match, "n_params"])
            text = (f"The FFNN needs a window of {by_w.at[match, 'window']} to match the {ref}: {match} "
                    f"({fmt_metric(metric, scores[match].mean)}) {gaps[match].said_no_worse(said)}. It has {n:,} "
                    f"parameters: {n / ref_params:.1f}× the {ref}'s {ref_params:,}.")
        elif open_ is not None:
            text = (f"No FFNN window tried is shown to match the {ref} within the margin of {margins.words(metric)}: "
                    f"{open_} ({fmt_metric(metric, scores[open_].mean)}), the smallest window not shown to trail it, "
                    f"{gaps[open_].said(said)}.")
        else:
            text = (f"No FFNN window tried matches the {ref} ({metric} {fmt_metric(metric, scores[ref].mean)}): the "
                    f"best, window {by_w.at[best, 'window']} ({fmt_metric(metric, scores[best].mean)}), "
                    f"{gaps[best].said(said)}.")
    if cue_lag is not None:
        text += f" The decisive input lies {cue_lag} steps back."
    return text


def context_verdict(sweep: pd.DataFrame, metric: str, higher_is_better: bool, cue_lag: int | None = None, *,
                    margins: Margins = Margins(), n_test: int | None = None,
                    rows: dict[str, np.ndarray] | None = None) -> str:
    """`window_verdict` over several kinds swept along the steps they see (column steps_seen: an FFNN or linear
    window, a TCN's receptive field, named by the column memory; rows without one are the references): per kind
    the first, by steps seen, to be no worse than the best reference by more than the margin (Gap.no_worse), and
    of those the cheapest (fewest parameters) is named. With one kind swept (or no steps_seen column),
    `window_verdict` itself."""
    done = sweep[sweep["status"] == "completed"]
    swept = done[done["steps_seen"].notna()] if "steps_seen" in done else done.iloc[:0]
    if "kind" not in done or swept["kind"].nunique() < 2:
        return window_verdict(sweep, metric, higher_is_better, cue_lag, margins=margins, n_test=n_test, rows=rows)
    refs, scores = done[done["steps_seen"].isna()], per_model(done, rows)
    swept = swept.assign(memory=swept["memory"] if "memory" in swept else "window")
    info = swept.groupby("label", sort=False).agg(kind=("kind", "first"), seen=("steps_seen", "first"),
                                                  n_params=("n_params", "first"), memory=("memory", "first"))
    info = info.sort_values("seen", kind="stable")
    reach = {lab: f"{info.at[lab, 'memory']} {int(info.at[lab, 'seen'])}" for lab in info.index}
    best = ranked({lab: scores[lab] for lab in info.index}, higher_is_better)[0]
    if refs.empty:
        text = (f"Of the models swept, {best} ({reach[best]}, {int(info.at[best, 'n_params']):,} parameters) does "
                f"best: {metric} {fmt_metric(metric, scores[best].mean)}.")
    else:
        ref = ranked({lab: scores[lab] for lab in refs["label"].unique()}, higher_is_better)[0]
        ref_params = int(refs.loc[refs["label"] == ref, "n_params"].iloc[0])
        said = f"the {ref} ({metric} {fmt_metric(metric, scores[ref].mean)})"
        gaps = {lab: gap(lab, scores[lab], ref, scores[ref], metric, higher_is_better, margins, n_test)
                for lab in info.index}
        firsts = [next((lab for lab in g.index if gaps[lab].no_worse), None)  # window_verdict's rule
                  for _, g in info.groupby("kind", sort=False)]
        matched = sorted((lab for lab in firsts if lab),
                         key=lambda lab: (info.at[lab, "n_params"], info.at[lab, "seen"]))
        if matched:
            cheap, n = matched[0], int(info.at[matched[0], "n_params"])
            text = (f"The cheapest model that sees far enough to match the {ref} is {cheap} ({reach[cheap]}, "
                    f"{metric} {fmt_metric(metric, scores[cheap].mean)}): it {gaps[cheap].said_no_worse(said)}. It "
                    f"has {n:,} parameters, {n / ref_params:.2g}× the {ref}'s {ref_params:,}.")
            if len(matched) > 1:
                text += " Also matching, at more parameters: " + ", ".join(
                    f"{lab} ({reach[lab]}, {int(info.at[lab, 'n_params']):,})" for lab in matched[1:]) + "."
        else:
            open_ = next((lab for lab in info.index if gaps[lab].outcome == "inconclusive"), None)
            if open_ is not None:
                text = (f"No model swept is shown to match the {ref} within the margin of {margins.words(metric)}: "
                        f"{open_} ({reach[open_]}, {fmt_metric(metric, scores[open_].mean)}), the one seeing the "
                        f"fewest steps not shown to trail it, {gaps[open_].said(said)}.")
            else:
                text = (f"No model swept matches {said}: the best, {best} ({reach[best]}, "
                        f"{fmt_metric(metric, scores[best].mean)}), {gaps[best].said(said)}.")
    if cue_lag is not None:
        text += f" The decisive input lies {cue_lag} steps back."
    return text


__all__ = ["ALPHA", "Gap", "Margins", "Scores", "cancel_note", "chance_gaps", "context_verdict", "distance_verdict",
           "eta_text",
           "fmt_metric", "gap", "loglog_slope", "mean_ci", "measured", "names", "per_model", "ranked",
           "results_table", "timing_note", "verdict", "window_verdict"]
