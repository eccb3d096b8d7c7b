"""The study's HTML report: the verdict with its margin, the method named, trivial predictors in words, and no
line of another metric on the metric's axis."""
import re

import numpy as np
import pandas as pd
import pytest

from lib.report import HEADLINES, figures, model_frame, study_html
from lib.runs import dataset
from lib.study import memory_study
from lib.tasks.user.prepared import prepare
from lib.tasks.user.spec import UploadSpec


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "runs.sqlite"))
    dataset.cache_clear()


@pytest.fixture(scope="module")
def series_study(tmp_path_factory):
    """A tiny study of a noisy sine, forecast one row ahead from 24 rows."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LOOKBACK_DB", str(tmp_path_factory.mktemp("report") / "runs.sqlite"))
    t = np.arange(600)
    values = np.sin(2 * np.pi * t / 12) + 0.3 * np.random.default_rng(0).normal(size=600)
    data = pd.DataFrame({"y": values}).to_csv(index=False).encode()
    cfg = prepare(data, "wave.csv", UploadSpec(layout="series", target="y", inputs=("y",), window=24))
    try:
        yield memory_study(cfg, (0, 1), kinds=("gru",), hidden=8, min_updates=30)
    finally:
        mp.undo()


def test_the_report_states_the_verdict_its_margin_and_the_method(series_study):
    page = study_html(series_study, "wave.csv")
    v = series_study.verdict
    assert HEADLINES[v.memory].format(window=v.window) in page
    assert "differences within ±2% of the MSE count as a match" in page
    assert "two one-sided tests at 5%" in page and "paired per-row difference" in page
    assert "trivial predictor: predicting the training mean" in page
    assert "trivial predictor: repeating the last value" in page and "detected season" in page


def test_the_report_draws_only_mse_lines_named_in_words_on_the_mse_axis(series_study):
    title, bars = figures(series_study)[0]
    lines = [a.text for a in bars.layout.annotations]
    assert title.startswith("Test metric per model") and bars.layout.yaxis.title.text.lower().startswith("test mse")
    assert "predicting the training mean" in lines and "repeating the last value" in lines
    assert all(not re.search(r"mae|_", text) for text in lines), lines


def test_the_model_table_says_which_models_beat_the_trivial_predictor(series_study):
    frame = model_frame(series_study)
    column = next(c for c in frame.columns if c.startswith("against predicting the training mean"))
    assert set(frame[column]) <= {"beats it by more than the margin", "worse by more than the margin",
                                  "no better (within the margin)", "not shown to beat it"}
