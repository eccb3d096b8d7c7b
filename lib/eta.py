"""How long a job of training runs still needs, from what its runs have measured so far.

Each run's pace is its measured seconds per optimizer update (finished runs of the same model, label: all their
epochs; else its runs in flight: their epochs after the first, which holds the warm-up), else the same kind's, else
every run's. A run's expected updates are its budget times the share of their budgets that finished runs of that
model (else kind; else the whole budget) used, since early stopping ends many runs before their budget. The runs
left are then dealt, in plan order, to the parallel workers as each frees up (runs in flight keep theirs), and the
estimate is when the last ends. Before a model has trained an epoch, a short probe of its training step (`probe`)
stands in for its pace, scaled as the measured model with the nearest probe (of like pace, within NEAR times)
compares with its own.
"""
from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

NEAR = 4.0  # a probe this many times another's, or closer, is of like pace: its measured ratio carries over


@dataclass(frozen=True)
class Planned:
    """One run of a job's plan."""

    key: tuple[str, int]  # (label, seed)
    kind: str
    updates: int  # its budget: the most optimizer updates it may take


@dataclass(frozen=True)
class Seen:
    """What one run has measured: finished, or in flight after some epochs."""

    key: tuple[str, int]
    kind: str
    seconds: float  # training seconds so far (lib.train's elapsed_seconds)
    updates: int  # optimizer updates taken so far
    finished: bool
    recent: float | None = None  # in flight: seconds per update of its epochs after the first (no warm-up), median


@dataclass(frozen=True)
class Eta:
    seconds: float  # from now until the last run should end
    firm: bool  # every model left to train has a measured pace of its own (else it borrows another's)


def _pace(runs: Iterable[Seen]) -> float | None:
    runs = [r for r in runs if r.updates > 0]
    return sum(r.seconds for r in runs) / sum(r.updates for r in runs) if runs else None


def _own(seen: Sequence[Seen], label: str) -> float | None:
    """A model's own pace: from its finished runs (warm-up and all, as every run has one), else the median recent
    pace of its runs in flight, else their pace so far."""
    mine = [x for x in seen if x.key[0] == label]
    recent = sorted(x.recent for x in mine if not x.finished and x.recent is not None)
    return _first(_pace(x for x in mine if x.finished), recent[len(recent) // 2] if recent else None, _pace(mine))


def _first(*values):
    return next((v for v in values if v is not None), None)


def eta(planned: Sequence[Planned], seen: Sequence[Seen], workers: int,
        prior: dict[str, float] | None = None) -> Eta | None:
    """Seconds until every planned run should have ended (see the module docstring); None before any run has
    measured an update and without a prior, when nothing can be said.

    prior: seconds per update of each model (label) from a short probe (`probe`); a model without a measured pace
    of its own takes its prior, scaled by how the models measured so far compare with theirs (load, and what a
    probe leaves out, such as warm-up)."""
    prior = prior or {}
    overall = _pace(seen)
    if overall is None and not prior:
        return None
    own_pace = {lab: _own(seen, lab) for lab in {p.key[0] for p in planned}}
    ratio = {lab: own_pace[lab] / prior[lab] for lab in own_pace if own_pace[lab] and prior.get(lab, 0) > 0}

    def scale(label: str) -> float:
        """Measured over probed pace of the measured model whose probe is nearest this one's, within NEAR times
        (else 1): a tiny step's probe is mostly one-off overhead, a long recurrent step's mostly what it times,
        so only a model of like pace says how far a probe is off."""
        if prior.get(label, 0) <= 0:
            return 1.0
        dist = {lab: abs(math.log(prior[lab] / prior[label])) for lab in ratio}
        near = [lab for lab in dist if dist[lab] <= math.log(NEAR)]
        return ratio[min(near, key=dist.__getitem__)] if near else 1.0

    overall = overall if overall is not None else sum(prior.values()) / len(prior)
    budget = {p.key: p.updates for p in planned}
    done = [r for r in seen if r.finished and budget.get(r.key)]
    shares = [(r, min(1.0, r.updates / budget[r.key])) for r in done]

    def share(key, kind) -> float:
        def mean(sel):
            vals = [s for r, s in shares if sel(r)]
            return sum(vals) / len(vals) if vals else None
        return _first(mean(lambda r: r.key[0] == key[0]), mean(lambda r: r.kind == kind), 1.0)  # other kinds
        # stop at other points (an FFNN at chance stops early, a recurrent model may use its whole budget)

    by_key = {r.key: r for r in seen}
    firm, in_flight, queued = True, [], []
    for p in planned:
        r = by_key.get(p.key)
        if r is not None and r.finished:
            continue
        own = own_pace[p.key[0]]
        if own is None and p.key[0] in prior:
            own = prior[p.key[0]] * scale(p.key[0])
        firm = firm and own is not None
        pace = _first(own, _pace(x for x in seen if x.kind == p.kind), overall)
        expected = share(p.key, p.kind) * p.updates
        if r is None:
            queued.append(pace * expected)
        else:  # in flight: what is left of its expected updates (nothing once it has taken them)
            in_flight.append(pace * max(expected - r.updates, 0.0))
    lanes = max(1, workers)
    free = sorted(in_flight, reverse=True)[:lanes] + [0.0] * max(0, lanes - len(in_flight))
    extra = sorted(in_flight, reverse=True)[lanes:]  # more in flight than workers: they queue first
    heapq.heapify(free)
    for cost in [*extra, *queued]:
        heapq.heappush(free, heapq.heappop(free) + cost)
    return Eta(max(free), firm)


def from_runs(planned: Sequence[Planned], finished: Iterable, curves: dict, steps_per_epoch: int) -> list[Seen]:
    """What a job's runs have measured: `finished` RunResults (lib.train) and `curves`, the epoch records so far
    of each run in flight by (label, seed) (a lone latest record will do), with `steps_per_epoch` updates an
    epoch."""
    kinds = {p.key: p.kind for p in planned}
    seen = {}
    for run in finished:
        key = (run.label, run.train_config.seed)
        h = run.history
        seen[key] = Seen(key, run.model_config.kind, h[-1]["elapsed_seconds"] if h else 0.0,
                         len(h) * steps_per_epoch, True)
    for key, records in list(curves.items()):
        records = [records] if isinstance(records, dict) else list(records)
        if key in seen or key not in kinds or not records:
            continue
        times = [b["elapsed_seconds"] - a["elapsed_seconds"] for a, b in zip(records, records[1:], strict=False)
                 if b["epoch"] == a["epoch"] + 1]
        recent = sorted(times)[len(times) // 2] / steps_per_epoch if times else None
        last = records[-1]
        seen[key] = Seen(key, kinds[key], last["elapsed_seconds"], last["epoch"] * steps_per_epoch, False, recent)
    return list(seen.values())


def eta_text(estimate: Eta | None, finished: int, total: int, elapsed: float) -> str:
    """"about 40 s left (5 of 27 runs finished in 12 s)", rough while some model has no pace of its own."""
    head = f"{finished} of {total} runs finished in {elapsed:.0f} s"
    if estimate is None:
        return f"{head}; time left: known once a run has trained an epoch"
    left = estimate.seconds
    when = f"{left / 60:.0f} min" if left >= 90 else f"{max(1, round(left))} s"
    rough = "" if estimate.firm else ", rough until every model has trained an epoch"
    return f"about {when} left ({head}{rough})"


def plan_of(models: Sequence, seeds: Sequence[int], updates: int, workers: int = 1) -> list[Planned]:
    """The runs of a comparison of `models` (lib.models.ModelConfig) and `seeds`, each with a budget of
    `updates`, in the order they start: lib.experiments.compare's order on one worker, the worker processes'
    (lib.backends.start_order) on several."""
    from lib.backends import start_order

    runs = [Planned((m.label, int(seed)), m.kind, int(updates)) for seed in seeds for m in models]
    return runs if workers <= 1 else [runs[i] for i in start_order([r.kind for r in runs])]


def probe(ds, models: Sequence, train_cfg, steps: int = 2) -> dict[str, float]:
    """Seconds per optimizer update of each model on ds, from `steps` timed training steps after one untimed
    (lib.train's own step) and one validation pass shared out over an epoch's updates: the prior of `eta` before
    a model has trained an epoch. A few steps per model: well under a second for a study's models."""
    from lib.models import ModelIO
    from lib.runtime import resolve_device, sync
    from lib.train import evaluate, make_optimizer, seeded_model, train_step

    device = resolve_device(train_cfg.device)
    n = len(ds.train)
    per_epoch = max(1, -(-n // train_cfg.batch_size))
    x, y = ds.train.x.to(device), ds.train.y.to(device)
    out = {}
    for cfg in models:
        model = seeded_model(cfg, ModelIO.from_dataset(ds), 0).to(device).train()
        opt = make_optimizer(model, train_cfg)
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:train_cfg.batch_size].to(device)
        times = []
        for i in range(steps + 1):
            sync(device)
            t0 = time.perf_counter()
            train_step(model, opt, ds, x[idx], y[idx], train_cfg)
            sync(device)
            if i:
                times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        evaluate(model, ds.val, ds)
        out[cfg.label] = sorted(times)[len(times) // 2] + (time.perf_counter() - t0) / per_epoch
    return out


class Tracker:
    """A job's progress as its callbacks see it (on_epoch(label, seed, record) and on_run(result)), and its
    estimate at any moment: `text()`."""

    def __init__(self, planned: Sequence[Planned], steps_per_epoch: int, workers: int,
                 prior: dict[str, float] | None = None):
        self.planned, self.steps, self.workers, self.prior = list(planned), steps_per_epoch, workers, prior
        self.curves: dict[tuple[str, int], list[dict]] = {}
        self.finished: list = []
        self.started = time.perf_counter()

    def on_epoch(self, label: str, seed: int, record: dict) -> None:
        self.curves.setdefault((label, seed), []).append(record)

    def on_run(self, run) -> None:
        self.finished.append(run)

    def estimate(self) -> Eta | None:
        seen = from_runs(self.planned, self.finished, self.curves, self.steps)
        return eta(self.planned, seen, self.workers, self.prior)

    def text(self) -> str:
        return eta_text(self.estimate(), len(self.finished), len(self.planned), time.perf_counter() - self.started)
