"""The memory study's verdicts on small labelled sets whose answer lies far back, or in the last three steps.

Slow: each test trains 10 models x 3 seeds with the study's real defaults (1,000 updates per run).
"""
import io

import numpy as np
import pytest
import torch

from lib.runs import dataset
from lib.study import memory_study
from lib.tasks.user.prepared import prepare

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    """A fresh run store; one torch thread, fastest for these small models (conftest restores the count)."""
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "runs.sqlite"))
    dataset.cache_clear()
    torch.set_num_threads(1)


def upload(x: np.ndarray, y: np.ndarray, name: str):
    """x and y as the .npz a user uploads, prepared as a task."""
    buf = io.BytesIO()
    np.savez(buf, X=x, y=y)
    return prepare(buf.getvalue(), name)


def test_study_says_memory_is_needed_when_the_label_lies_40_to_64_steps_back():
    """200 sequences of 64 steps: a marker channel flags one step 40 to 64 steps back, whose value channel
    (+2 or -2 among N(0, 1) noise) is the label. A recurrent model must carry it; an FFNN must learn it at
    every position from 140 training sequences."""
    rng = np.random.default_rng(0)
    n, steps = 200, 64
    x = np.zeros((n, steps, 2))
    x[:, :, 1] = rng.normal(size=(n, steps))
    y = rng.integers(0, 2, n)
    at = steps - rng.integers(40, steps + 1, n)
    x[np.arange(n), at, 0] = 1.0
    x[np.arange(n), at, 1] = np.where(y == 1, 2.0, -2.0)
    result = memory_study(upload(x, y, "far.npz"))
    v, table = result.verdict, result.table.set_index("label")
    assert result.budget.batch_size == 16 and result.budget.updates >= 1000
    assert v.memory == "needed" and v.best_recurrent in ("GRU", "LSTM"), v.text
    assert table.at[v.best_recurrent, "metric_mean"] >= 0.9
    assert table.loc[table["window"].notna(), "metric_mean"].max() <= 0.85
    assert v.sentences[1].startswith(f"Memory helps on this data: {v.best_recurrent} (accuracy ")


def test_study_says_a_window_of_about_three_matches_and_costs_less_when_the_last_three_steps_decide():
    """300 sequences of 16 steps of N(0, 1); the label is whether the last three steps sum above zero."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16, 1))
    y = (x[:, -3:, 0].sum(axis=1) > 0).astype(int)
    result = memory_study(upload(x, y, "near.npz"))
    v, table = result.verdict, result.table.set_index("label")
    assert v.memory == "not needed" and v.window in (3, 4), v.text
    ffnn, rec = table.loc[f"FFNN w{v.window}"], table.loc[v.best_recurrent]
    assert ffnn["metric_mean"] >= 0.9
    assert ffnn["n_params"] < rec["n_params"] / 10 and ffnn["latency_ms"] < rec["latency_ms"]
    assert v.sentences[1].startswith(f"Memory beyond the last {v.window} steps does not pay on this data: "
                                     f"FFNN w{v.window} (accuracy ")
