"""A small, committed reference set of the essay's story, shown on first visit and checked by a test.

`python -m lib reference` regenerates it into data/reference/: one CSV per experiment (the tidy frames
from lib.experiments) and a meta.json with the command, settings and environment that made them.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from lib import experiments
from lib.models import ModelConfig
from lib.runtime import environment, resolve_device
from lib.tasks import task_name
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig, cue_lag
from lib.tasks.video import VideoConfig
from lib.train import TrainConfig

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"
SEEDS = (0, 1, 2)
COMMAND = "python -m lib reference"


def _text_models(distance: int) -> list[ModelConfig]:
    return [ModelConfig(kind="ffnn", window=5), ModelConfig(kind="ffnn", window=cue_lag(distance)),
            ModelConfig(kind="rnn"), ModelConfig(kind="lstm")]


# name -> (task config, how to run it); each yields frames written as <name>.csv (+ <name>_history.csv)
EXPERIMENTS = {
    "compare_text": (TextRecallConfig(distance=20), "compare"),
    "window_text": (TextRecallConfig(distance=10, n_train=2000), "window"),
    "distance_text": (TextRecallConfig(n_train=2000), "distance"),
    "distance_video": (VideoConfig(n_train=1500), "distance"),
    "window_sine": (SineConfig(), "window"),
}
DISTANCES = {"distance_text": (0, 10, 20, 40, 60), "distance_video": (2, 5, 10, 20)}
WINDOWS = {"window_text": (1, 3, 5, 8, 10, 12, 13, 14, 15), "window_sine": (2, 4, 8, 12, 24, 48)}


def run(name: str, seeds=SEEDS, n_jobs: int = 1) -> dict[str, pd.DataFrame]:
    """Run one reference experiment; returns {"summary": ..., and "history" for comparisons}."""
    task, how = EXPERIMENTS[name]
    tc = TrainConfig(device="cpu")
    if how == "compare":
        comp = experiments.compare(task, _text_models(task.distance), tc, seeds, n_jobs=n_jobs)
        return {"summary": comp.summary(), "history": comp.history()}
    if how == "window":
        refs = [ModelConfig(kind="lstm")] + ([ModelConfig(kind="rnn")] if name == "window_sine" else [])
        return {"summary": experiments.window_sweep(task, WINDOWS[name], tc, seeds, references=refs,
                                                    n_jobs=n_jobs)}
    models = [ModelConfig(kind="ffnn", window=5), ModelConfig(kind="rnn"), ModelConfig(kind="lstm")]
    return {"summary": experiments.distance_sweep(task, DISTANCES[name], models, tc, seeds, n_jobs=n_jobs)}


def regenerate(out: Path = REFERENCE_DIR, n_jobs: int = -1, names=tuple(EXPERIMENTS)) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    workers, threads = experiments.worker_plan(n_jobs, 100)
    env = environment(resolve_device("cpu")) | {"threads": threads if workers > 1 else torch.get_num_threads(),
                                                 "workers": workers}
    meta = {"command": COMMAND, "seeds": list(SEEDS), "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "env": env, "experiments": {}}
    for name in names:
        start = time.perf_counter()
        frames = run(name, n_jobs=n_jobs)
        for kind, frame in frames.items():
            frame.to_csv(out / (f"{name}.csv" if kind == "summary" else f"{name}_{kind}.csv"), index=False)
        task = EXPERIMENTS[name][0]
        meta["experiments"][name] = {"task": {"name": task_name(task), **asdict(task)},
                                     "seconds": round(time.perf_counter() - start, 1)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    return meta


def load(name: str, folder: Path = REFERENCE_DIR) -> dict | None:
    """The stored reference frames of one experiment plus meta, or None when absent."""
    path = folder / f"{name}.csv"
    if not path.exists() or not (folder / "meta.json").exists():
        return None
    meta = json.loads((folder / "meta.json").read_text())
    frames = {"summary": pd.read_csv(path)}
    if (folder / f"{name}_history.csv").exists():
        frames["history"] = pd.read_csv(folder / f"{name}_history.csv")
    return {"frames": frames, "meta": meta, "task": EXPERIMENTS[name][0]}
