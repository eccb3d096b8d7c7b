"""How a visitor's result stands against the precomputed reference (lib.reference) of the same task: a sentence
when they disagree, naming what differs (budget, data, seeds, initialisation), and a note before training when
the form's budget is smaller than the reference's, since a smaller budget can change who wins."""
from __future__ import annotations

from dataclasses import fields, replace

import pandas as pd

from lib import reference
from lib.settings import Settings, fmt
from lib.stats import fmt_metric
from lib.tasks.base import TaskConfig

SIZE_FIELDS = ("n_train", "length")  # a task's training-set size: sequences, or the series' length in steps


def _accuracy_apart(mine: float, lo: float, hi: float) -> bool:
    """A mean accuracy 10 points or more outside the reference's seed range."""
    return mine < lo - 0.1 or mine > hi + 0.1


def _error_apart(mine: float, lo: float, hi: float) -> bool:
    """A mean error (MSE) more than 1.5 times outside the reference's seed range."""
    return mine > 1.5 * hi or mine < lo / 1.5


def references_at(task: TaskConfig) -> list[tuple[str, Settings, pd.DataFrame]]:
    """The shipped references of the task's kind at the task's distance: (name, settings there, completed rows)."""
    out = []
    field = task.distance_field
    for name, (ref_task, _) in reference.EXPERIMENTS.items():
        if ref_task.name != task.name or (loaded := reference.load(name)) is None:
            continue
        rows, ref = loaded["frames"]["summary"], reference.settings(name)
        if field and ref.distances:
            rows = rows[rows["distance"] == getattr(task, field)]
            ref = replace(ref, distances=(), task=replace(ref.task, **{field: getattr(task, field)}))
        elif field and getattr(ref.task, field) != getattr(task, field):
            continue
        rows = rows[rows["status"] == "completed"]
        if len(rows):
            out.append((name, replace(ref, windows=()), rows))
    return out


def disagreement(settings: Settings, summary: pd.DataFrame, metric: str, higher_is_better: bool) -> list[str]:
    """One sentence per distance where a model's mean test metric lies clearly outside the reference's seed range
    (accuracy 10 points, an error 1.5×), saying what differs from the reference's settings; [] when the result
    agrees or no reference covers it. summary: rows of label, status, metric, and distance for a sweep."""
    done = summary[summary["status"] == "completed"]
    field = settings.task.distance_field
    if settings.distances and field and "distance" in done:
        groups = [(replace(settings.task, **{field: int(d)}), g) for d, g in done.groupby("distance")]
    else:
        groups = [(settings.task, done)]
    apart = _accuracy_apart if higher_is_better else _error_apart
    out = []
    for task, rows in groups:
        for _, ref, ref_rows in references_at(task):
            common = [label for label in dict.fromkeys(rows["label"]) if label in set(ref_rows["label"])]
            if not common:
                continue
            mine = rows.groupby("label")[["metric", "epochs"] if "epochs" in rows else ["metric"]].mean()
            same = ref_rows[ref_rows["seed"].isin(settings.seeds)]  # the reference's runs of the visitor's seeds
            theirs = (same if len(same) else ref_rows).groupby("label")["metric"].agg(["mean", "min", "max"])
            theirs["epochs"] = (same if len(same) else ref_rows).groupby("label")["epochs"].mean()
            spread = ref_rows.groupby("label")["metric"].agg(["min", "max", "count"])
            off = [label for label in common if label in theirs.index
                   and apart(mine.loc[label, "metric"], theirs.loc[label, "min"], theirs.loc[label, "max"])]
            if off:
                out.append(_sentence(settings, task, ref, common, off, mine, theirs, spread, metric,
                                     higher_is_better, same_seeds=len(same) > 0))
            break  # the first reference that has these models speaks for the task
    return out


def _sentence(settings, task, ref, common, off, mine, theirs, spread, metric, higher_is_better,
              same_seeds: bool) -> str:
    field = task.distance_field
    where = f" at {field} {getattr(task, field)}" if field else ""

    seeds = " with the same seed" + ("s" if len(settings.seeds) > 1 else "")

    def one(label: str) -> str:
        text = (f"your {label} {fmt_metric(metric, mine.loc[label, 'metric'])}, the reference's "
                f"{fmt_metric(metric, theirs.loc[label, 'mean'])}{seeds if same_seeds else ''}")
        lo, hi, n = spread.loc[label]
        if n > 1 and same_seeds:
            text += (f" (all {int(n)} of its seeds: {fmt_metric(metric, lo)})" if lo == hi else
                     f" ({fmt_metric(metric, lo)} to {fmt_metric(metric, hi)} over its {int(n)} seeds)")
        return text

    each = "; ".join(one(label) for label in off)
    pick = max if higher_is_better else min
    ranked = [label for label in common if label in theirs.index]
    best_mine, best_ref = pick(ranked, key=mine["metric"].get), pick(ranked, key=theirs["mean"].get)
    flipped = (best_mine != best_ref and mine.loc[best_mine, "metric"] != mine.loc[best_ref, "metric"]
               and theirs.loc[best_mine, "mean"] != theirs.loc[best_ref, "mean"])  # no claim on a tie
    wins = f" Here {best_mine} comes out ahead; in the reference {best_ref} does." if flipped else ""
    models = [m for m in settings.models if m.label in common]
    ref_models = [m for m in ref.models if m.label in common]
    yours = replace(settings, task=task, models=tuple(models), distances=(), windows=())
    ref = replace(ref, models=tuple(ref_models), seeds=settings.seeds if same_seeds else ref.seeds)
    differs = ref.changes(yours)  # against the reference's runs of the same seeds, the seeds do not differ
    why = (f" What differs from the reference's settings: {'; '.join(differs)}. A smaller training budget, other "
           f"data, other seeds and the initialisation each seed draws can each change who wins; train with the "
           f"reference's settings to compare like with like." if differs else
           " The settings are the reference's, so the difference comes from how this run went: another machine, "
           "thread count or library version trains a little differently, and a model near a tipping point (a plateau "
           "it may or may not leave in time) can end far apart.")
    sign = 1 if higher_is_better else -1
    short = [label for label in off if "epochs" in mine  # stopped early, before its max epochs and the reference
             and mine.loc[label, "epochs"] < min(theirs.loc[label, "epochs"], settings.train.epochs)
             and sign * mine.loc[label, "metric"] < sign * theirs.loc[label, "mean"]]
    mine_epochs = " and ".join(f"{mine.loc[x, 'epochs']:.0f}" for x in short)
    ref_epochs = " and ".join(f"{theirs.loc[x, 'epochs']:.0f}" for x in short)
    stopped = (f" Your {' and '.join(short)} trained {mine_epochs} epoch(s), the reference's {ref_epochs}: early "
               f"stopping ended the run while it sat on a plateau (a recurrent model can stay there for many epochs "
               f"before it finds the cue); a larger early-stopping patience under Advanced settings gives it longer."
               if short else "")
    return f"Unlike the reference{where}: {each}.{wins}{stopped}{why}"


def _size(task: TaskConfig) -> tuple[str, int] | None:
    names = {f.name for f in fields(task)}
    return next(((n, getattr(task, n)) for n in SIZE_FIELDS if n in names), None)


def smaller_budget(form: Settings | None) -> str | None:
    """A warning when the form trains on fewer sequences or for fewer epochs than the reference at its task and
    distance (the first of references_at), else None."""
    if form is None or not (refs := references_at(form.task)):
        return None
    ref = refs[0][1]
    parts = []
    if (size := _size(form.task)) is not None and size[1] < getattr(ref.task, size[0]):
        parts.append(f"{fmt(size[1])} training {'steps' if size[0] == 'length' else 'sequences'} "
                     f"(the reference: {fmt(getattr(ref.task, size[0]))})")
    if form.train.epochs < ref.train.epochs:
        parts.append(f"at most {form.train.epochs} epochs (the reference: {ref.train.epochs})")
    if not parts:
        return None
    return (f"A smaller budget than the reference's: {' and '.join(parts)}. With less training, who wins can "
            f"change (a vanilla RNN may hold a cue it loses in the reference, or a model may stop short of what it "
            f"would learn), so treat these numbers as a first look and train with the reference's budget before "
            f"you trust them.")
