"""A small, committed reference set of the default story (FFNN windows, RNN, LSTM on text recall), shown on
first visit and checked by a test.

`python -m lib reference` regenerates it into data/reference/: one CSV per experiment (the tidy frames
from lib.experiments), a meta.json with the command, settings and environment that made them, and in
models/ the seed-0 models of the comparison as state dicts (models/compare_text.json names them), which the
Probe and Memory pages use until a visitor trains their own. Each experiment's settings are those of its
page's form at its defaults (`settings`), so a first visit finds its reference; `matching` finds the
reference of the settings a form holds.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from functools import cache
from pathlib import Path

import pandas as pd
import torch

from lib import backends, experiments
from lib.configs import from_dict, to_dict
from lib.errors import ConfigError
from lib.models import ModelConfig, ModelIO, build_model
from lib.paths import REFERENCE
from lib.runs import dataset
from lib.runtime import environment, resolve_device
from lib.settings import Settings
from lib.tasks import task_dict
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig
from lib.tasks.video import VideoConfig
from lib.train import RunResult, TrainConfig

MODELS = "models"  # subfolder of the reference models
SEEDS = (0, 1, 2)
COMMAND = "python -m lib reference"


# The story: "starving alice drives <20 filler words> to buy" -> "food". An FFNN seeing the last 5 words,
# an FFNN whose window reaches the cue, a vanilla RNN and an LSTM (the app's defaults; `benchmarks/story.py`).
STORY_TASK = TextRecallConfig(distance=20)
STORY_MODELS = (ModelConfig(kind="ffnn", window=5), ModelConfig(kind="ffnn", window=STORY_TASK.cue_lag),
                ModelConfig(kind="rnn"), ModelConfig(kind="lstm"))
# Compare's "modern baselines" preset: a linear map over the window, a TCN, a Transformer and minGRU beside the LSTM.
MODERN_MODELS = tuple(ModelConfig(kind=k) for k in ("linear", "tcn", "transformer", "mingru", "lstm"))
DISTANCE_MODELS = (ModelConfig(kind="ffnn", window=5), ModelConfig(kind="rnn"), ModelConfig(kind="lstm"))
WINDOW_REFERENCES = (ModelConfig(kind="lstm"),)



def compare_models(task) -> tuple[ModelConfig, ...]:
    """Compare's default models for a task: an FFNN seeing the last 5 steps, one whose window reaches the task's
    decisive input (its cue lag), a vanilla RNN and an LSTM."""
    windows = sorted({5, task.cue_lag} - {None})
    return (*(ModelConfig(kind="ffnn", window=w) for w in windows), ModelConfig(kind="rnn"), ModelConfig(kind="lstm"))


# name -> (task config, how to run it); each yields frames written as <name>.csv (+ <name>_history.csv)
EXPERIMENTS = {
    "compare_text": (STORY_TASK, "compare"),
    "compare_sine": (SineConfig(), "compare"),
    "compare_video": (VideoConfig(), "compare"),
    "window_text": (TextRecallConfig(), "window"),
    "distance_text": (TextRecallConfig(), "distance"),
    "distance_video": (VideoConfig(n_train=1500), "distance"),
    "window_sine": (SineConfig(), "window"),
}
DISTANCES = {"distance_text": (0, 10, 20, 40, 60), "distance_video": (2, 5, 10, 20)}
MODEL_EXPERIMENTS = ("compare_text",)  # whose seed-0 models are kept in models/


@cache
def settings(name: str) -> Settings:
    """What the experiment trains: its page's form at the defaults (the Window page's default windows for the
    task, the Memory page's default distances), with the reference's seeds."""
    task, how = EXPERIMENTS[name]
    train = TrainConfig()
    if how == "compare":
        return Settings(task, compare_models(task), train, SEEDS)
    if how == "window":
        ds = dataset(task)
        lo, hi, count = experiments.default_window_range(ds.seq_len, task.cue_lag)
        windows = experiments.window_grid(lo, hi, count, ds.seq_len, task.cue_lag)
        ffnn = [replace(ModelConfig(kind="ffnn"), window=w) for w in windows]
        return Settings(task, (*ffnn, *WINDOW_REFERENCES), train, SEEDS, windows=windows)
    return Settings(task, DISTANCE_MODELS, train, SEEDS, distances=DISTANCES[name])


def run(name: str, seeds=SEEDS, n_jobs: int = 1) -> dict:
    """Run one reference experiment; returns {"summary": ..., and "history" and "comparison" for comparisons}."""
    s = settings(name)
    how = EXPERIMENTS[name][1]
    tc = TrainConfig(device="cpu")
    if how == "compare":
        comp = experiments.compare(s.task, s.models, tc, seeds, n_jobs=n_jobs)
        return {"summary": comp.summary(), "history": comp.history(), "comparison": comp}
    if how == "window":
        return {"summary": experiments.window_sweep(s.task, s.windows, tc, seeds, references=WINDOW_REFERENCES,
                                                    n_jobs=n_jobs)}
    return {"summary": experiments.distance_sweep(s.task, s.distances, s.models, tc, seeds, n_jobs=n_jobs)}


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def save_models(name: str, comp: experiments.Comparison, out: Path = REFERENCE, seed: int = 0) -> list[Path]:
    """Keep the comparison's models of one seed as state dicts in out/models/, named in <name>.json."""
    folder = out / MODELS
    folder.mkdir(parents=True, exist_ok=True)
    index, paths = [], []
    for r in comp.runs:
        if r.train_config.seed != seed or r.model is None:
            continue
        path = folder / f"{name}_{_slug(r.label)}.pt"
        torch.save({k: v.detach().cpu().clone() for k, v in r.model.state_dict().items()}, path)
        index.append({"label": r.label, "file": path.name, "model": to_dict(r.model_config),
                      "train": to_dict(r.train_config)})
        paths.append(path)
    (folder / f"{name}.json").write_text(json.dumps(index, indent=1))
    return paths


def regenerate(out: Path = REFERENCE, n_jobs: int = -1, names=tuple(EXPERIMENTS)) -> dict:
    if unknown := [n for n in names if n not in EXPERIMENTS]:
        raise ConfigError(f"no reference experiment {', '.join(unknown)}; choose from: {', '.join(EXPERIMENTS)}.")
    out.mkdir(parents=True, exist_ok=True)
    workers, threads = backends.worker_plan(n_jobs, 100)
    env = environment(resolve_device("cpu")) | {"threads": threads if workers > 1 else torch.get_num_threads(),
                                                 "workers": workers}
    created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta = {"command": COMMAND, "seeds": list(SEEDS), "created": created, "env": env, "experiments": {}}
    if set(names) != set(EXPERIMENTS) and (out / "meta.json").exists():  # some of them: the others keep their meta
        meta["experiments"] = {k: v for k, v in json.loads((out / "meta.json").read_text())["experiments"].items()
                               if k in EXPERIMENTS and k not in names}
    for name in names:
        start = time.perf_counter()
        frames = run(name, n_jobs=n_jobs)
        comp = frames.pop("comparison", None)
        for kind, frame in frames.items():
            frame.to_csv(out / (f"{name}.csv" if kind == "summary" else f"{name}_{kind}.csv"), index=False)
        if comp is not None and name in MODEL_EXPERIMENTS:
            save_models(name, comp, out)
        meta["experiments"][name] = {"task": task_dict(EXPERIMENTS[name][0]), "settings": settings(name).to_dict(),
                                     "seconds": round(time.perf_counter() - start, 1), "created": created, "env": env}
    (out / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    return meta


def load(name: str, folder: Path = REFERENCE) -> dict | None:
    """The stored reference frames of one experiment plus meta, task and settings, or None when absent."""
    path = folder / f"{name}.csv"
    if not path.exists() or not (folder / "meta.json").exists():
        return None
    meta = json.loads((folder / "meta.json").read_text())
    mine = meta["experiments"].get(name, {})  # when and where this experiment was made, if not with the rest
    meta = meta | {k: mine[k] for k in ("created", "env") if k in mine}
    frames = {"summary": pd.read_csv(path)}
    if (folder / f"{name}_history.csv").exists():
        frames["history"] = pd.read_csv(folder / f"{name}_history.csv")
    return {"frames": frames, "meta": meta, "task": EXPERIMENTS[name][0], "settings": settings(name), "name": name}


def matching(how: str, form: Settings | None, folder: Path = REFERENCE) -> dict | None:
    """The reference of kind `how` ("compare", "window", "distance") made with the form's settings, the
    form's seeds among its own, cut to those seeds (as `load` returns it, settings those of the form); or
    None when no reference has them."""
    if form is None:
        return None
    for name, (_, kind) in EXPERIMENTS.items():
        if kind != how:
            continue
        ref = settings(name)
        if form.seeds and set(form.seeds) <= set(ref.seeds) and replace(ref, seeds=form.seeds) == form:
            loaded = load(name, folder)
            if loaded is None:
                return None
            frames = {k: f[f["seed"].isin(form.seeds)].reset_index(drop=True) for k, f in loaded["frames"].items()}
            return loaded | {"frames": frames, "settings": form}
    return None


def offers(how: str) -> dict[str, Settings]:
    """Every reference of kind `how` by name, with its settings: what a page can offer to load."""
    return {name: settings(name) for name, (_, kind) in EXPERIMENTS.items() if kind == how}


def comparison(name: str = "compare_text", folder: Path = REFERENCE) -> experiments.Comparison | None:
    """The kept reference models of a comparison (one seed) with their history and test metrics, as a
    Comparison the Probe and Memory pages can read; None when they are not shipped."""
    index_path, ref = folder / MODELS / f"{name}.json", load(name, folder)
    if not index_path.exists() or ref is None:
        return None
    task = EXPERIMENTS[name][0]
    ds = dataset(task)
    summary, history = ref["frames"]["summary"], ref["frames"].get("history")
    runs = []
    for item in json.loads(index_path.read_text()):
        model_cfg, train_cfg = from_dict(ModelConfig, item["model"]), from_dict(TrainConfig, item["train"])
        model = build_model(model_cfg, ModelIO.from_dataset(ds))
        model.load_state_dict(torch.load(folder / MODELS / item["file"], map_location="cpu", weights_only=True))
        mine = (summary["label"] == item["label"]) & (summary["seed"] == train_cfg.seed)
        row = summary[mine].iloc[0]
        hist = [] if history is None else history[(history["label"] == item["label"])
                                                  & (history["seed"] == train_cfg.seed)]
        records = [] if len(hist) == 0 else hist.drop(columns=["label", "kind", "seed"]).to_dict("records")
        test = {c.removeprefix("test_"): float(row[c]) for c in summary.columns
                if c.startswith("test_") and pd.notna(row[c])}
        best = int(row["best_epoch"]) if pd.notna(row["best_epoch"]) else None
        runs.append(RunResult(model_cfg, train_cfg, row["status"], row["message"], records, best, test,
                              int(row["n_params"]), ref["meta"]["env"], model.eval()))
    return experiments.Comparison(task, runs, ds)
