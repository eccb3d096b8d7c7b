"""Seed statistics and the plain-language verdicts built on them."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


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
class Difference:
    better: str
    worse: str
    gap: float  # |mean(better) - mean(worse)|
    p_value: float  # Welch's t-test; nan when either side has fewer than two seeds
    significant: bool  # the gap exceeds seed noise at the given level


def compare_groups(a_name: str, a, b_name: str, b, higher_is_better: bool = True,
                   alpha: float = 0.05) -> Difference:
    """Whether two models differ beyond seed noise (Welch's t-test on per-seed metrics).

    With one seed per side there is no noise estimate, so no gap counts as significant.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ma, mb = a.mean(), b.mean()
    a_wins = ma >= mb if higher_is_better else ma <= mb
    better, worse = (a_name, b_name) if a_wins else (b_name, a_name)
    if len(a) < 2 or len(b) < 2:
        p = float("nan")
    elif np.all(a == a[0]) and np.all(b == b[0]):
        p = 0.0 if a[0] != b[0] else 1.0  # no spread at all: any difference is real
    else:
        with warnings.catch_warnings():  # nearly identical seeds make SciPy warn about precision; p stays valid
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return Difference(better, worse, float(abs(ma - mb)), p, bool(np.isfinite(p) and p < alpha))


def fmt_metric(metric: str, value: float) -> str:
    """A test metric as the app's sentences and tables say it: accuracy as a percentage to one decimal
    ("96.7%"), any other metric to four significant digits ("0.1234"); "" when there is none (NaN)."""
    if pd.isna(value):
        return ""
    return f"{value:.1%}" if metric == "accuracy" else f"{value:.4g}"


def _names(labels) -> str:
    labels = list(labels)
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def verdict(summary: pd.DataFrame, metric: str, higher_is_better: bool, chance: float | None = None) -> str:
    """One or two sentences naming the best model(s) and whether the lead over the runner-up is real.

    summary: one row per run with columns label, seed, metric, status. Models whose mean metric equals
    the best one's tie; the lead is then judged against the best model that does not tie.
    """
    ok = summary[summary["status"] == "completed"]
    left = [f"{r['label']} (seed {r['seed']}, {r['status']})" for _, r in summary.iterrows()
            if r["status"] != "completed"]
    if ok.empty:
        if left:
            return f"No run completed ({_names(left)}), so there is nothing to compare."
        return "No run finished, so there is nothing to compare yet."
    per = ok.groupby("label", sort=False)["metric"].apply(list)
    means = per.apply(np.mean).sort_values(ascending=not higher_is_better, kind="stable")
    top = [lab for lab, m in means.items() if np.isclose(m, means.iloc[0], rtol=1e-9, atol=1e-12)]
    best_text = fmt_metric(metric, means.iloc[0])
    text = (f"{top[0]} is best with test {metric} {best_text}" if len(top) == 1
            else f"{_names(top)} tie at test {metric} {best_text}")
    if chance is not None:
        near = [f"{lab} ({fmt_metric(metric, m)})" for lab, m in means.items() if m <= chance + 0.10]
        if near:
            level = fmt_metric("accuracy", chance)
            text += f"; {_names(near)} {'stays' if len(near) == 1 else 'stay'} near chance level ({level})"
    text += "."
    rest = [lab for lab in means.index if lab not in top]
    if rest:
        best, runner = top[0], rest[0]
        lead = f" {'Its' if len(top) == 1 else 'Their'} lead over {runner} ({fmt_metric(metric, means[runner])})"
        d = compare_groups(best, per[best], runner, per[runner], higher_is_better)
        n = min(len(per[best]), len(per[runner]))
        if n < 2:
            text += f"{lead} comes from one seed each; run more seeds to tell it from seed noise."
        elif d.significant:
            text += f"{lead} is beyond seed noise (p = {d.p_value:.2g})."
        else:
            text += f"{lead} is within seed noise (p = {d.p_value:.2g}, {n} seeds)."
    if left:
        text += f" Left out, as {'it' if len(left) == 1 else 'they'} did not complete: {_names(left)}."
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
    return (f"{n} of {len(summary)} run(s) were reused from the run store, trained on {_names(days)}: their "
            f"seconds were measured then, not now. Tick “Retrain runs already stored” to measure them again.")


def cancel_note(summary: pd.DataFrame, planned: int) -> str:
    """What a cancelled experiment holds: how many of the planned runs completed, which stopped part-way,
    and that only completed runs count."""
    done = int((summary["status"] == "completed").sum())
    cut = [f"{r['label']} (seed {r['seed']}, {int(r['epochs'])} epoch{'s' * (int(r['epochs']) != 1)})"
           for _, r in summary.iterrows() if r["status"] != "completed"]
    text = f"Cancelled: {done} of {planned} planned run(s) completed"
    if cut:
        text += f"; stopped part-way: {_names(cut)}"
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
                     distance_name: str = "distance") -> str:
    """One clause per model of how its test metric holds up as the distance grows, e.g. "LSTM stays at 100%
    up to distance 60; FFNN w5 is at chance from distance 10".

    sweep: one row per run with label, distance, metric and status (completed runs count). A model "holds"
    while its mean is within 0.05 (accuracy) or 10% (MSE) of its best; "at chance" means within 0.10 of
    chance, from that distance on.
    """
    done = sweep[sweep["status"] == "completed"]
    if done.empty:
        return "No run completed, so there is nothing to read yet."
    clauses = []
    for label, g in done.groupby("label", sort=False):
        by_d = g.groupby("distance")["metric"].mean().sort_index()
        ds_, vals = list(by_d.index), list(by_d.values)
        near = [chance is not None and higher_is_better and v <= chance + 0.10 for v in vals]
        first_chance = next((i for i in range(len(vals)) if all(near[i:])), None)
        best = max(vals) if higher_is_better else min(vals)
        holds = [(v >= best - 0.05) if higher_is_better else (v <= best * 1.10) for v in vals]
        last_hold = next((i for i in range(len(vals)) if not all(holds[:i + 1])), len(vals)) - 1
        at = f"{distance_name} {{}}".format
        if first_chance == 0:
            clauses.append(f"{label} is at chance at every {distance_name} tried")
        elif all(holds):
            worst = min(vals) if higher_is_better else max(vals)
            bound = "" if fmt_metric(metric, worst) == fmt_metric(metric, best) else (
                " or above" if higher_is_better else " or below")
            clauses.append(f"{label} stays at {fmt_metric(metric, worst)}{bound} up to {at(ds_[-1])}")
        elif holds[0]:
            kept = f"holds {fmt_metric(metric, vals[0])} up to {at(ds_[last_hold])}" if last_hold else (
                f"scores {fmt_metric(metric, vals[0])} at {at(ds_[0])}")
            then = (f"but is at chance from {at(ds_[first_chance])}" if first_chance is not None
                    else f"then falls to {fmt_metric(metric, vals[-1])} at {at(ds_[-1])}")
            clauses.append(f"{label} {kept} {then}")
        else:
            clauses.append(f"{label} goes from {fmt_metric(metric, vals[0])} at {at(ds_[0])} to "
                           f"{fmt_metric(metric, vals[-1])} at {at(ds_[-1])}")
    return "; ".join(clauses) + "."


def window_verdict(sweep: pd.DataFrame, metric: str, higher_is_better: bool, cue_lag: int | None = None) -> str:
    """Which FFNN window first matches the best reference (a row without a window), and what it costs.

    "Matches" means within 0.02 accuracy, or within 10% of the MSE, of the reference's mean.
    """
    done = sweep[sweep["status"] == "completed"]
    ff, refs = done[done["window"].notna()], done[done["window"].isna()]
    if ff.empty:
        return "No FFNN run finished, so there is no tradeoff to read yet."
    by_w = ff.groupby("window").agg(metric=("metric", "mean"), n_params=("n_params", "first")).sort_index()
    best_w = int(by_w["metric"].idxmax() if higher_is_better else by_w["metric"].idxmin())
    if refs.empty:
        text = (f"The FFNN does best with a window of {best_w} "
                f"({metric} {fmt_metric(metric, by_w.loc[best_w, 'metric'])}).")
    else:
        ref = refs.groupby("label", sort=False).agg(metric=("metric", "mean"), n_params=("n_params", "first"))
        ref_label = ref["metric"].idxmax() if higher_is_better else ref["metric"].idxmin()
        target, ref_params = ref.loc[ref_label, "metric"], ref.loc[ref_label, "n_params"]
        ok = by_w["metric"] >= target - 0.02 if higher_is_better else by_w["metric"] <= target * 1.10
        if ok.any():
            w = int(ok.idxmax())  # smallest window that matches
            n = by_w.loc[w, "n_params"]
            text = (f"The FFNN needs a window of {w} to match the {ref_label} ({metric} "
                    f"{fmt_metric(metric, by_w.loc[w, 'metric'])} vs {fmt_metric(metric, target)}), "
                    f"with {n:,} parameters: "
                    f"{n / ref_params:.1f}× the {ref_label}'s {ref_params:,}.")
        else:
            text = (f"No FFNN window tried matches the {ref_label} ({metric} {fmt_metric(metric, target)}); the best, "
                    f"window {best_w}, reaches {fmt_metric(metric, by_w.loc[best_w, 'metric'])}.")
    if cue_lag is not None:
        text += f" The decisive input lies {cue_lag} steps back."
    return text
