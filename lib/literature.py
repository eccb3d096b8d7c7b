"""The Literature page's evidence: the essay's claims and the classic memory benchmarks, each published value
(cited) beside Lookback's own from committed reference runs at a CPU-sized T, with a verdict computed from the
two numbers.

`python -m lib literature` makes the runs (a few minutes on two cores) into data/reference/literature/: one
summary CSV per trained benchmark, the tanh RNN's gradient through time, and meta.json with the do-nothing
lines measured on large samples, the settings and the environment. `table` reads them back and judges each
claim; `evidence_of_job` turns a rerun of one row (a job of the Literature page) into the same evidence.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib import backends, experiments, probes
from lib.configs import to_dict
from lib.models import ModelConfig, ModelIO, build_model
from lib.paths import REFERENCE
from lib.reference import STORY_MODELS, STORY_TASK
from lib.reference import load as load_reference
from lib.runs import dataset
from lib.runtime import environment, resolve_device
from lib.tasks import task_dict
from lib.tasks.adding import AddingConfig, make_adding
from lib.tasks.copy_memory import COPIED, SYMBOLS, CopyMemoryConfig, do_nothing_loss, make_copy_memory
from lib.train import TrainConfig

FOLDER = REFERENCE / "literature"
COMMAND = "python -m lib literature"
SEEDS = (0, 1)
BAI = "Bai, Kolter & Koltun 2018, Table 1"
# Bai et al.'s four kinds at the TCN's default size: k3 n4 sees 61 steps, more than either task's lag below.
BAI_MODELS = tuple(ModelConfig(kind=k) for k in ("tcn", "gru", "lstm", "rnn"))
# A fixed budget, no early stopping: every kind gets the same updates, and a late jump is not cut off.
BUDGET = TrainConfig(epochs=30, patience=0, device="cpu")
BASELINE_SAMPLES = 100_000  # sequences the do-nothing lines are measured on: a standard error ≈ 0.3 %
GRADIENT_STEPS = 15  # steps back over which the per-step gradient factor is fitted (before float noise)


@dataclass(frozen=True)
class Experiment:
    """A committed reference run of the Literature page: a benchmark at a CPU-sized T."""

    task: object  # a task config
    models: tuple[ModelConfig, ...]
    train: TrainConfig
    seeds: tuple[int, ...]
    at: str  # where we measure, in words
    why: str  # why that T

    def budget(self) -> str:
        n = getattr(self.task, "n_train", 0)
        updates = self.train.epochs * math.ceil(n / self.train.batch_size)
        return (f"{self.train.epochs} epochs of {n:,} sequences ({updates:,} updates of {self.train.batch_size}), "
                f"{len(self.seeds)} seeds")


EXPERIMENTS = {
    "adding": Experiment(AddingConfig(steps=50, n_train=2000, n_val=500, n_test=500), BAI_MODELS, BUDGET, SEEDS,
                         "T = 50", "each kind trains in under a minute on one core; the paper's T = 600 would take "
                               "hours here"),
    "copy_memory": Experiment(CopyMemoryConfig(delay=20, n_train=2000, n_val=500, n_test=500), BAI_MODELS, BUDGET,
                              SEEDS, "T = 20", "each kind trains in under a minute on one core; the paper's "
                                               "T = 1000 (1,020 steps) would take hours here"),
    "text": Experiment(STORY_TASK, STORY_MODELS, TrainConfig(), (0, 1, 2), "distance 20 (the app's reference)",
                       "the story's distance; it reuses the committed comparison (python -m lib reference)"),
}
GRADIENT_TASK = STORY_TASK
GRADIENT_MODEL = ModelConfig(kind="rnn", init="pytorch")  # PyTorch's default init, untrained


# ---------------------------------------------------------------- the claims

@dataclass(frozen=True)
class Scale:
    """How to read a value. kind "loss": solved below `solved` × the do-nothing level, doing nothing above
    `nothing` × it; "accuracy": solved from `solved`, chance below chance + `nothing` × (1 - chance); "exact":
    the value itself, within two standard errors; "factor": a per-step factor, below 1 = decays."""

    kind: str
    solved: float = 0.05
    nothing: float = 0.9
    close: float = 3.0  # same level and within this ratio: reproduced (not only in direction)


LOSS, ACCURACY, EXACT = Scale("loss"), Scale("accuracy", solved=0.95, nothing=0.1, close=1.1), Scale("exact")
FACTOR = Scale("factor", close=1.25)


@dataclass(frozen=True)
class Claim:
    key: str
    benchmark: str  # a key of EXPERIMENTS, "gradient" or "baselines"
    claim: str
    published: float
    published_at: str  # the setting of the published number
    source: str  # who published it
    scale: Scale
    label: str = ""  # the run label (trained rows) or the baseline's name
    column: str = "test_loss"
    level_of_published: float | None = None  # the do-nothing (loss) or chance (accuracy) at the published setting
    why_not: str = ""  # for an exact value that differs: why we think so


def _bai(benchmark: str, what: str, values: dict[str, float], at: str, nothing: float) -> list[Claim]:
    return [Claim(f"{benchmark}_{m.kind}", benchmark, f"{what}: {m.label}", values[m.kind], at, BAI, LOSS,
                  m.label, level_of_published=nothing) for m in BAI_MODELS]


_FFNN_SHORT, _FFNN_CUE, _RNN, _LSTM = STORY_MODELS
CLAIMS: tuple[Claim, ...] = (
    Claim("gradient", "gradient", f"A tanh RNN's gradient shrinks by a constant factor per step ({GRADIENT_MODEL.label}"
          ", PyTorch's default init, untrained)", 1 / math.sqrt(3), "spectral radius of W_hh at PyTorch's default "
          "init, 1/√3 (circular law); tanh' ≤ 1 only shrinks it further",
          "Bengio, Simard & Frasconi 1994; Pascanu, Mikolov & Bengio 2013", FACTOR),
    Claim("adding_nothing", "baselines", "Adding problem: the do-nothing MSE (always answer 1) is 1/6",
          1 / 6, "any T", "Hochreiter & Schmidhuber 1997 (the task); Var(U₁ + U₂) = 2/12", EXACT, "adding"),
    Claim("adding_nothing_bai", "baselines", "Adding problem: the do-nothing MSE as Bai et al. print it", 0.1767,
          "any T", BAI, EXACT, "adding",
          why_not="1/6 is the exact variance of the sum of two U(0, 1) values (the row above checks it); 0.1767 "
                  "looks like a misprint"),
    *_bai("adding", "Adding problem, test MSE", {"tcn": 5.8e-5, "gru": 5.3e-5, "lstm": 0.164, "rnn": 0.177},
          "T = 600", 1 / 6),
    Claim("copy_nothing", "baselines", "Copy memory: the do-nothing loss is 10·ln 8 / (T + 20)",
          do_nothing_loss(EXPERIMENTS["copy_memory"].task.delay), EXPERIMENTS["copy_memory"].at,
          "Arjovsky, Shah & Bengio 2016; Bai et al. 2018", EXACT, "copy_memory"),
    *_bai("copy_memory", "Copy memory, test loss", {"tcn": 3.5e-5, "gru": 0.0197, "lstm": 0.0204, "rnn": 0.0202},
          "T = 1000", do_nothing_loss(1000)),
    Claim("text_short", "text", f"Text cue: an FFNN whose window misses the cue ({_FFNN_SHORT.label}) stays at chance",
          1 / 6, "distance 20", "the essay; chance with 6 cue/answer pairs", ACCURACY, _FFNN_SHORT.label, "metric",
          1 / 6),
    Claim("text_cue", "text", f"Text cue: an FFNN whose window reaches the cue ({_FFNN_CUE.label}) recalls it",
          1.0, "distance 20", "the essay; Bengio et al. 2003 (a fixed window sees what lies in it)", ACCURACY,
          _FFNN_CUE.label, "metric", 1 / 6),
    Claim("text_lstm", "text", f"Text cue: an {_LSTM.label} carries the cue 20 words", 1.0, "distance 20",
          "the essay; Hochreiter & Schmidhuber 1997", ACCURACY, _LSTM.label, "metric", 1 / 6),
)
CLAIM_KEYS = {c.key: c for c in CLAIMS}
LEVELS = ("solved", "partly", "no better than doing nothing")


def level(scale: Scale, value: float, reference: float) -> str:
    """Where a value lies against the do-nothing loss or the chance accuracy `reference` (LEVELS)."""
    if scale.kind == "loss":
        ratio = value / reference
        return LEVELS[0] if ratio < scale.solved else LEVELS[2] if ratio >= scale.nothing else LEVELS[1]
    if value >= scale.solved:
        return LEVELS[0]
    return LEVELS[2] if value <= reference + scale.nothing * (1 - reference) else LEVELS[1]


def verdict(claim: Claim, ours: float, reference: float | None = None, stderr: float = 0.0,
            budget: str = "", at: str = "") -> tuple[str, str]:
    """(verdict, why): "reproduced", "reproduced in direction only" or "not reproduced — …", and the reading
    behind it. reference: our do-nothing loss or chance; stderr: of an exact value; budget, at: our setting."""
    if not math.isfinite(ours):
        return "not reproduced — no value", "the reference run has no number for this row (it failed or is missing)"
    kind = claim.scale.kind
    if kind == "exact":
        gap = abs(ours - claim.published)
        if gap <= max(2 * stderr, 1e-6 * abs(claim.published)):  # float32 rounding where the spread is nil
            return "reproduced", f"within two standard errors ({stderr:.2g}) of the published value"
        return f"not reproduced — {claim.why_not or 'it differs by more than two standard errors'}", \
            f"off by {gap:.3g}, {gap / max(stderr, 1e-12):.0f} standard errors"
    if kind == "factor":
        if not ours < 1:
            return "not reproduced — the gradient does not shrink", f"measured factor {ours:.3g} per step"
        ratio = max(ours, claim.published) / min(ours, claim.published)
        same = ratio <= claim.scale.close
        return ("reproduced" if same else "reproduced in direction only"), \
            f"shrinks {ours:.2f}× per step; {ratio:.2f}× the published value"
    ours_level = level(claim.scale, ours, reference)
    theirs = level(claim.scale, claim.published, claim.level_of_published)
    reading = f"ours: {ours_level}; published: {theirs}"
    if ours_level != theirs:
        better = LEVELS.index(ours_level) < LEVELS.index(theirs)
        why = (f"we measure at {at}, the paper at {claim.published_at}: a shorter dependency is easier to bridge"
               if better and at != claim.published_at else
               f"our budget ({budget}) is far smaller than the paper's training" if not better else
               "the setting is the same; the initialisation or training differs")
        return f"not reproduced — {why}", reading
    ratio = max(ours, claim.published) / max(min(ours, claim.published), 1e-12)
    if ratio <= claim.scale.close or ours_level == LEVELS[2]:
        return "reproduced", reading
    return "reproduced in direction only", f"{reading}; {ratio:.3g}× apart"


# ---------------------------------------------------------------- measuring

def gradient_frame(seeds=SEEDS, n: int = 256) -> pd.DataFrame:
    """‖∂L/∂h_t‖ of an untrained tanh RNN at PyTorch's default init, per seed, on the story's test sentences:
    columns seed, steps_back, grad_norm, wrt."""
    ds = dataset(GRADIENT_TASK)
    frames = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model(GRADIENT_MODEL, ModelIO.from_dataset(ds))
        g = probes.gradient_through_time(model, ds.test.x[:n], ds.test.y[:n], ds, wrt="hidden")
        frames.append(g.assign(seed=seed))
    return pd.concat(frames, ignore_index=True)


def decay_factor(grads: pd.DataFrame, steps: int = GRADIENT_STEPS) -> float:
    """The per-step factor exp(slope of log ‖∂L/∂h‖ against steps back), fitted over steps 1..`steps` of the
    seeds' mean."""
    mean = grads[(grads["steps_back"] >= 1) & (grads["steps_back"] <= steps)].groupby("steps_back")["grad_norm"].mean()
    mean = mean[mean > 0]
    if len(mean) < 2:
        return float("nan")
    return float(math.exp(np.polyfit(mean.index.to_numpy(float), np.log(mean.to_numpy()), 1)[0]))


def baselines(samples: int = BASELINE_SAMPLES) -> dict[str, dict[str, float]]:
    """The do-nothing lines measured on `samples` fresh test sequences at the experiments' T: the adding
    problem's MSE of always answering 1, copy memory's cross-entropy of blanks then a uniform guess over the
    symbols. {name: {"value", "stderr"}}."""
    add = make_adding(replace(EXPERIMENTS["adding"].task, n_train=10, n_val=10, n_test=samples, seed=1))
    err = (add.test.y.double() - 1) ** 2
    copy = make_copy_memory(replace(EXPERIMENTS["copy_memory"].task, n_train=10, n_val=10, n_test=samples, seed=1))
    y = copy.test.y  # (N, T + 20): blanks (certain), then the copied symbols (guessed uniformly)
    recall = torch.zeros(y.shape[1], dtype=torch.bool)
    recall[-COPIED:] = True
    symbol = (y >= 1) & (y <= SYMBOLS)
    log_p = torch.where(recall, torch.where(symbol, -math.log(SYMBOLS), -math.inf),
                        torch.where(y == 0, 0.0, -math.inf)).double()  # (N, T + 20)
    per_seq = -log_p.mean(1)
    return {"adding": {"value": float(err.mean()), "stderr": float(err.std() / math.sqrt(len(err)))},
            "copy_memory": {"value": float(per_seq.mean()), "stderr": float(per_seq.std() / math.sqrt(len(per_seq)))}}


def run_experiment(name: str, n_jobs: int = 1, models=None) -> pd.DataFrame:
    e = EXPERIMENTS[name]
    return experiments.compare(e.task, list(models or e.models), e.train, e.seeds, n_jobs=n_jobs).summary()


def regenerate(out: Path = FOLDER, n_jobs: int = -1) -> dict:
    """Make the Literature page's reference runs into `out` (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    workers, threads = backends.worker_plan(n_jobs, 100)
    meta = {"command": COMMAND, "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "env": environment(resolve_device("cpu")) | {"threads": threads if workers > 1 else
                                                         torch.get_num_threads(), "workers": workers},
            "experiments": {}}
    for name, e in EXPERIMENTS.items():
        if name == "text":  # the committed comparison of lib.reference
            continue
        start = time.perf_counter()
        run_experiment(name, n_jobs).to_csv(out / f"{name}.csv", index=False)
        meta["experiments"][name] = {"task": task_dict(e.task), "models": [to_dict(m) for m in e.models],
                                     "train": to_dict(e.train), "seeds": list(e.seeds),
                                     "seconds": round(time.perf_counter() - start, 1)}
    gradient_frame().to_csv(out / "gradient.csv", index=False)
    meta["baselines"] = baselines()
    (out / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    return meta


# ---------------------------------------------------------------- reading back

def load(folder: Path = FOLDER) -> dict | None:
    """The committed evidence {benchmark: summary frame, "gradient": frame, "baselines": dict, "meta": dict},
    or None when it has not been made."""
    if not (folder / "meta.json").exists():
        return None
    meta = json.loads((folder / "meta.json").read_text())
    evidence = {name: pd.read_csv(folder / f"{name}.csv") for name in EXPERIMENTS if (folder / f"{name}.csv").exists()}
    text = load_reference("compare_text")
    if text is not None:
        evidence["text"] = text["frames"]["summary"]
    if (folder / "gradient.csv").exists():
        evidence["gradient"] = pd.read_csv(folder / "gradient.csv")
    return evidence | {"baselines": meta.get("baselines", {}), "meta": meta}


def _ours(claim: Claim, evidence: dict) -> tuple[float, float, int]:
    """(our value, its standard error or 0, how many runs or samples it comes from); NaN when absent."""
    if claim.benchmark == "gradient":
        g = evidence.get("gradient")
        return (float("nan"), 0.0, 0) if g is None else (decay_factor(g), 0.0, g["seed"].nunique())
    if claim.benchmark == "baselines":
        b = evidence.get("baselines", {}).get(claim.label)
        return (float("nan"), 0.0, 0) if b is None else (b["value"], b["stderr"], BASELINE_SAMPLES)
    frame = evidence.get(claim.benchmark)
    rows = pd.DataFrame() if frame is None else frame[frame["label"] == claim.label]
    if rows.empty:
        return float("nan"), 0.0, 0
    return float(rows[claim.column].mean()), 0.0, len(rows)


def _reference_level(claim: Claim) -> float | None:
    """Our do-nothing loss or chance at our setting (the published one is the claim's)."""
    if claim.benchmark not in EXPERIMENTS or claim.scale.kind not in ("loss", "accuracy"):
        return None
    ds = dataset(EXPERIMENTS[claim.benchmark].task)
    return ds.do_nothing_loss if claim.scale.kind == "loss" else ds.chance


def where(claim: Claim) -> tuple[str, str]:
    """(our setting, why that T) of a claim's row."""
    if claim.benchmark in EXPERIMENTS:
        e = EXPERIMENTS[claim.benchmark]
        return f"{e.at}; {e.budget()}", e.why
    if claim.benchmark == "gradient":
        return (f"distance {GRADIENT_TASK.distance}, {len(SEEDS)} seeds, fitted over {GRADIENT_STEPS} steps",
                "no training is needed: the claim is about the untrained network")
    return f"{BASELINE_SAMPLES:,} sequences at the trained T", "a closed form: any T checks it"


def table(evidence: dict | None, keys=None) -> pd.DataFrame:
    """One row per claim (those in `keys`, default all): claim, published, source, published_at, ours, runs,
    at, why_t, verdict, reading, key. A claim without evidence says so in its verdict; none is left out."""
    rows = []
    for claim in CLAIMS:
        if keys is not None and claim.key not in keys:
            continue
        ours, stderr, n = _ours(claim, evidence or {})
        at, why_t = where(claim)
        e = EXPERIMENTS.get(claim.benchmark)
        said, reading = verdict(claim, ours, _reference_level(claim), stderr, e.budget() if e else "",
                                e.at if e else "")
        rows.append({"claim": claim.claim, "published": claim.published, "source": claim.source,
                     "published_at": claim.published_at, "ours": ours, "runs": n, "at": at, "why_t": why_t,
                     "verdict": said, "reading": reading, "key": claim.key})
    return pd.DataFrame(rows)


def counts(tab: pd.DataFrame) -> dict[str, int]:
    """How many rows each verdict got: reproduced, in direction only, not reproduced."""
    v = tab["verdict"]
    return {"reproduced": int((v == "reproduced").sum()),
            "in direction only": int(v.str.startswith("reproduced in direction").sum()),
            "not reproduced": int(v.str.startswith("not reproduced").sum())}


# ---------------------------------------------------------------- rerunning one row

def rerun_plan(key: str):
    """What rerunning a row trains: (task, models, train config, seeds) for a trained row, None for a
    measured one (see `measure_job`)."""
    claim = CLAIM_KEYS[key]
    e = EXPERIMENTS.get(claim.benchmark)
    if e is None:
        return None
    models = [m for m in e.models if m.label == claim.label]
    return e.task, models, e.train, list(e.seeds)


def measure_job(key: str, *, on_run=None, should_stop=None, **_progress) -> dict:
    """A measured row (the gradient factor, a do-nothing line) again, as a job of lib.jobs: its evidence."""
    claim = CLAIM_KEYS[key]
    if claim.benchmark == "gradient":
        evidence = {"gradient": gradient_frame()}
    else:
        evidence = {"baselines": {claim.label: baselines()[claim.label]}}
    if on_run is not None:
        on_run({"key": key})
    return evidence


def evidence_of_job(key: str, result) -> dict:
    """The evidence a finished rerun of row `key` returned: a Comparison (trained rows) or measure_job's dict."""
    if isinstance(result, experiments.Comparison):
        return {CLAIM_KEYS[key].benchmark: result.summary()}
    return dict(result or {})


def task_of(key: str):
    """The task config a row's rerun is about (what a job names and the server's caps check)."""
    claim = CLAIM_KEYS[key]
    if claim.benchmark == "gradient":
        return GRADIENT_TASK
    return EXPERIMENTS[claim.label if claim.benchmark == "baselines" else claim.benchmark].task


RULES = ("A loss counts as *solved* below 5 % of the do-nothing loss and as *doing nothing* from 90 % of it; an "
         "accuracy as solved from 0.95 and as chance within 10 % of the way from chance to 1. A row is "
         "**reproduced** when ours lands at the published level (and, for solved losses, within 3× of the "
         "published number), **in direction only** when the level matches but the number does not, and **not "
         "reproduced** when the level differs; a closed form must match within two standard errors, and a "
         "gradient factor must shrink, within 1.25× of the published one.")
SHOWN = {"claim": "claim", "published": "published", "ours": "ours", "verdict": "verdict", "source": "source",
         "published_at": "published at", "at": "ours at", "why_t": "why this T", "reading": "reading"}


def display(tab: pd.DataFrame) -> pd.DataFrame:
    """The table as the page shows it: numbers to 3 significant digits, columns in words."""
    out = tab[list(SHOWN)].copy()
    for col in ("published", "ours"):
        out[col] = [f"{v:.3g}" if math.isfinite(v) else "—" for v in tab[col]]
    return out.rename(columns=SHOWN)
