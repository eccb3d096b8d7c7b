"""The committed reference results must be what the code produces now, and be shown only for their settings."""
import json
from dataclasses import replace

import pandas as pd
import pytest
import torch

from lib import paths, reference
from lib.errors import ConfigError
from lib.experiments import window_sweep
from lib.models import ModelConfig
from lib.train import TrainConfig


def test_every_reference_experiment_is_committed_with_its_provenance():
    meta = json.loads((paths.REFERENCE / "meta.json").read_text())
    assert meta["command"] == "python -m lib reference"
    assert set(meta["experiments"]) == set(reference.EXPERIMENTS)
    for name in reference.EXPERIMENTS:
        ref = reference.load(name)
        assert ref is not None and set(ref["frames"]["summary"]["seed"]) == set(meta["seeds"])
        assert meta["experiments"][name]["settings"] == reference.settings(name).to_dict()


def test_a_reference_matches_only_the_settings_that_made_it():
    story = reference.settings("compare_text")
    one_seed = reference.matching("compare", replace(story, seeds=(0,)))
    assert one_seed is not None and set(one_seed["frames"]["summary"]["seed"]) == {0}
    assert set(one_seed["frames"]["history"]["seed"]) == {0}
    assert reference.matching("compare", replace(story, task=replace(story.task, distance=10))) is None
    assert reference.matching("compare", replace(story, seeds=(0, 7))) is None  # seed 7 is not in it
    assert reference.matching("window", reference.settings("window_text"))["name"] == "window_text"
    assert reference.matching("window", None) is None


def test_the_reference_models_are_small_state_dicts_that_answer():
    folder = paths.REFERENCE / reference.MODELS
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_000_000
    for path in folder.glob("*.pt"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
    comp = reference.comparison()
    assert [r.label for r in comp.runs] == [m.label for m in reference.STORY_MODELS]
    summary = comp.summary()
    committed = reference.load("compare_text")["frames"]["summary"]
    assert list(summary["metric"]) == list(committed[committed["seed"] == 0]["metric"])
    test = comp.dataset.test
    lstm = comp.runs[-1].model
    with torch.no_grad():  # the shipped weights reproduce the committed test accuracy
        accuracy = float((lstm(test.x).argmax(-1) == test.y).float().mean())
    assert accuracy == pytest.approx(summary["metric"].iloc[-1])


@pytest.mark.slow
def test_regenerating_a_subset_agrees_within_seed_noise():
    ref = reference.load("window_text")
    table = ref["frames"]["summary"]
    windows = reference.settings("window_text").windows
    windows = [windows[1], windows[-2], windows[-1]]  # short of the cue, nearly there, and the first that reaches it
    fresh = window_sweep(ref["task"], windows, TrainConfig(device="cpu"), seeds=(0,),
                         references=[ModelConfig(kind="lstm")])
    for _, row in fresh.iterrows():
        same = table[table["label"] == row["label"]]["metric"]
        tolerance = max(3 * same.std(ddof=1), 0.05)  # seed noise: 3 std of the committed seeds, at least 0.05
        assert abs(row["metric"] - same.mean()) <= tolerance, (row["label"], row["metric"], list(same))


def test_regenerating_some_experiments_keeps_the_others_and_dates_each(tmp_path, monkeypatch):
    old = {"created": "2026-01-01 00:00 UTC", "env": {"torch": "2.13"}, "seconds": 1.0}
    (tmp_path / "meta.json").write_text(json.dumps({"experiments": {"window_text": old, "retired": old}}))
    monkeypatch.setattr(reference, "run", lambda name, n_jobs=1: {"summary": pd.DataFrame({"seed": [0]})})
    meta = reference.regenerate(tmp_path, n_jobs=1, names=("compare_sine",))
    assert set(meta["experiments"]) == {"window_text", "compare_sine"}  # an experiment no longer run is dropped
    assert meta["experiments"]["window_text"] == old
    assert meta["experiments"]["compare_sine"]["created"] == meta["created"]
    (tmp_path / "window_text.csv").write_text("seed\n0\n")
    assert reference.load("window_text", tmp_path)["meta"]["created"] == old["created"]  # labelled with its own date
    with pytest.raises(ConfigError, match=r"^no reference experiment nope; choose from: compare_text, "):
        reference.regenerate(tmp_path, names=("nope",))
