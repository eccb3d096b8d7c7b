"""AppTest of the Your data page: every layout from an upload, bad files and settings that keep the last dataset,
a tiny memory study, and the prepared data as a task on the other pages."""
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib import report
from lib.errors import ConfigError
from lib.models import ModelConfig
from lib.runs import run_one
from lib.store import RunStore
from lib.tasks.user import read
from lib.tasks.user.build import build_dataset
from lib.tasks.user.prepared import prepare
from lib.tasks.user.read import load_table
from lib.tasks.user.spec import UploadSpec, guess_spec
from lib.train import TrainConfig
from pages import _jobs
from pages._run import _open_store
from tests.support.user_files import labelled_csv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"
CITY = "city_temperatures.csv"
TINY_STUDY = {"study_seeds": 1, "study_updates": 20, "study_hidden": 8}
PAGES = {"compare": "w_cmp", "window": "w_win", "memory": "w_mem", "costs": "w_cost"}


@pytest.fixture(scope="module", autouse=True)
def _store(tmp_path_factory):
    """One run store for the module. Training workers find prepared data beside the run store named by
    LOOKBACK_DB when they start, so the engine starts afresh with this one."""
    path = tmp_path_factory.mktemp("your_data") / "runs.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOOKBACK_DB", str(path))
        fresh_engine()
        _open_store.clear()
        yield path
        fresh_engine()
        _open_store.clear()


def fresh_engine() -> None:
    for engine in _jobs._engines.values():
        engine.close()
    _jobs._engines.clear()


def page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/your_data.py").run()
    ok(at)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def spec(at: AppTest, name: str) -> str:
    """The key of a setting of the loaded file (the keys name the file, so each file starts from its guess)."""
    return f"yd_spec_{at.session_state['yd_main']['sha'][:8]}_{name}"


def send(at: AppTest, name: str, data: bytes, slot: str = "main") -> None:
    at.file_uploader(key=f"yd_upload_{slot}").set_value((name, data, "application/octet-stream")).run()


def shown(at: AppTest) -> dict[str, str]:
    """The dataset summary's numbers by label."""
    return {m.label: m.value for m in at.metric}


def description(at: AppTest) -> str:
    found = [m.value for m in at.markdown if m.value.startswith("**Dataset:** ")]
    assert len(found) == 1, [m.value for m in at.markdown]
    return found[0].removeprefix("**Dataset:** ")


def expect_dataset(at: AppTest, name: str, data: bytes, layout: str) -> None:
    """The page shows the guessed layout and the dataset the library builds from the guess."""
    source = load_table(data, name)
    ds = build_dataset(source, guess_spec(source), name="user data")
    assert at.selectbox(key=spec(at, "layout")).value == layout
    assert shown(at) == {"Training sequences": f"{len(ds.train):,}", "Validation sequences": f"{len(ds.val):,}",
                         "Test sequences": f"{len(ds.test):,}", "Steps per sequence": f"{ds.seq_len:,}",
                         "Vocabulary" if ds.vocab else "Features per step": f"{ds.n_features:,}"}
    assert description(at) == ds.description
    assert at.session_state["user_data"].file == name


def csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def series_csv(n=200) -> bytes:
    t = np.arange(n)
    return csv(pd.DataFrame({"date": pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
                             "load": np.sin(t / 5) + 0.1 * np.cos(t)}))


def wide_csv(n=60, steps=8) -> bytes:
    rng = np.random.default_rng(0)
    label = np.where(np.arange(n) % 2 == 0, "up", "down")
    x = rng.standard_normal((n, steps)) + np.where(label == "up", 1.0, -1.0)[:, None]
    return csv(pd.DataFrame({"id": np.arange(n), **{f"t{i}": x[:, i] for i in range(steps)}, "label": label}))


def long_csv(n=40) -> bytes:
    rows = [{"seq": f"s{s}", "step": k, "x": float(s + k), "label": "ab"[s % 2]} for s in range(n)
            for k in range(3 + s % 4)]
    return csv(pd.DataFrame(rows))


def corpus_txt(n=800) -> bytes:
    rng = np.random.default_rng(0)
    return " ".join(rng.choice(["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"], size=n)).encode()


def npz_bytes() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, X=rng.standard_normal((60, 10, 2)), y=np.arange(60) % 3)
    return buf.getvalue()


def parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pd.read_csv(io.BytesIO(wide_csv())).to_parquet(buf)
    return buf.getvalue()


def test_page_starts_empty_with_one_button_per_example():
    home = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert "your_data" in {link.proto.page for link in home.get("page_link")}
    at = page()
    assert [t.value for t in at.title] == ["Your data"]
    assert "Upload a file or load an example to start." in at.info[0].value
    examples = sorted(p.name for p in EXAMPLES.glob("*.csv"))
    assert len(examples) == 3
    assert [b.label for b in at.button if b.key.startswith("yd_example_")] == examples
    assert "user_data" not in at.session_state


@pytest.mark.parametrize("name, data, layout", [
    ("load.csv", series_csv(), "series"), ("steps.csv", wide_csv(), "wide"), ("steps.tsv", long_csv(), "long"),
    ("words.txt", corpus_txt(), "corpus"), ("arrays.npz", npz_bytes(), "arrays"),
    ("steps.parquet", parquet_bytes(), "wide")], ids=["series", "wide", "long-tsv", "corpus", "arrays", "parquet"])
def test_each_layout_uploads_and_shows_its_dataset(name, data, layout):
    if name.endswith(".tsv"):
        data = data.replace(b",", b"\t")
    at = page()
    send(at, name, data)
    ok(at)
    expect_dataset(at, name, data, layout)
    assert at.session_state["user_data"].cfg.spec.layout == layout


def test_spec_widgets_rebuild_the_dataset():
    at = page()
    send(at, "steps.csv", long_csv())
    assert shown(at)["Steps per sequence"] == "6"
    at.number_input(key=spec(at, "long_length")).set_value(4)
    at.slider(key=spec(at, "test")).set_value(0.25).run()
    ok(at)
    source = load_table(long_csv(), "steps.csv")
    ds = build_dataset(source, replace(guess_spec(source), length=4, test_fraction=0.25), name="user data")
    assert shown(at)["Steps per sequence"] == "4"
    assert shown(at)["Test sequences"] == f"{len(ds.test)}"
    assert description(at) == ds.description
    assert "Rule: sequences shorter than 4 steps are left-padded with zeros (10 of 40), longer ones keep their " \
           "last 4 steps (20 of 40)." in description(at)
    before = at.session_state["user_data"]
    at.selectbox(key=spec(at, "layout")).set_value("series").run()  # the guessed roles carry over
    assert at.selectbox(key=spec(at, "series_time")).value == "step"
    assert at.selectbox(key=spec(at, "series_target")).value == "x"
    assert at.multiselect(key=spec(at, "series_inputs")).value == ["x"]
    series = UploadSpec(layout="series", target="x", inputs=("x",), time="step")
    with pytest.raises(ConfigError) as err:
        build_dataset(source, series)
    assert [e.value for e in at.error] == [f"Cannot prepare the dataset: {err.value}"]
    assert at.session_state["user_data"] is before


def test_examples_load_with_a_button():
    at = page()
    at.button(key="yd_example_sunspots_monthly").click().run()
    ok(at)
    data = (EXAMPLES / "sunspots_monthly.csv").read_bytes()
    expect_dataset(at, "sunspots_monthly.csv", data, "series")
    assert at.selectbox(key=spec(at, "series_time")).value == "month"
    at.button(key="yd_example_city_temperatures").click().run()
    ok(at)
    expect_dataset(at, CITY, (EXAMPLES / CITY).read_bytes(), "long")
    preview, classes = (d.value for d in at.dataframe)  # AppTest drops a display-only dataframe's key
    assert list(preview.columns) == ["sequence", "hour", "temperature", "city"] and len(preview) == 10
    assert list(classes["class"]) == ["san francisco", "seattle"] or list(classes["class"]) == ["seattle",
                                                                                               "san francisco"]
    assert classes[["train", "val", "test"]].to_numpy().sum() == 730
    at.button(key="yd_example_gunpoint").click().run()  # the UCR set keeps its own 50 / 150 split
    ok(at)
    expect_dataset(at, "gunpoint.csv", (EXAMPLES / "gunpoint.csv").read_bytes(), "wide")
    classes = at.dataframe[-1].value
    assert sorted(classes["class"]) == ["gun", "point"] and classes["test"].sum() == 150
    assert classes[["train", "val"]].to_numpy().sum() == 50


def test_a_bad_file_shows_why_and_keeps_the_dataset():
    at = page()
    at.button(key="yd_example_city_temperatures").click().run()
    before = at.session_state["user_data"]
    send(at, "empty.csv", b"time,value\n")
    assert [e.value for e in at.error] == [
        "Cannot use this file: 'empty.csv' has a header but no data rows; add the data below the header."]
    assert at.session_state["user_data"] is before
    assert description(at).startswith("Labelled sequences by 'sequence'")
    at.run()  # the message stays while that file is in the uploader
    assert len(at.error) == 1
    workbook = io.BytesIO()
    with zipfile.ZipFile(workbook, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
    send(at, "book.csv", workbook.getvalue())  # an Excel file renamed to .csv
    assert [e.value for e in at.error] == [
        "Cannot use this file: 'book.csv' is an Excel workbook, not CSV text; save it as CSV (in Excel: File > "
        "Save As > CSV UTF-8) and upload that."]
    assert at.session_state["user_data"] is before


def test_a_bad_test_file_keeps_the_dataset_and_a_good_one_becomes_the_test_split():
    at = page()
    send(at, "load.csv", series_csv(200))
    train_only = shown(at)
    send(at, "test.csv", b"a;b\n1;2\n", slot="test")
    assert [e.value for e in at.error] == ["Cannot use this file: 'test.csv' has only one data row; a series or a "
                                           "set of sequences needs many rows."]
    assert shown(at) == train_only
    later = csv(pd.read_csv(io.BytesIO(series_csv(260))).iloc[200:])  # the 60 days after the training file
    send(at, "test.csv", later, slot="test")
    ok(at)
    source = load_table(series_csv(200), "load.csv")
    ds = build_dataset(source, guess_spec(source), load_table(later, "test.csv"), name="user data")
    assert shown(at)["Test sequences"] == f"{len(ds.test)}"
    assert description(at) == ds.description
    assert "**Loaded:** load.csv with the test file test.csv" in at.markdown[1].value
    at.button(key="yd_remove_test").click().run()
    assert shown(at) == train_only


def test_settings_that_fail_show_why_and_keep_the_last_dataset():
    at = page()
    send(at, "steps.csv", wide_csv())
    before = at.session_state["user_data"]
    at.selectbox(key=spec(at, "wide_target")).set_value("t0").run()  # t0 is a step column as well
    assert [e.value for e in at.error] == ["Cannot prepare the dataset: column 't0' has two roles; give each column "
                                           "one role (target, time, sequence, split or input)."]
    assert at.session_state["user_data"] is before
    assert "Below: the last dataset that was prepared, from steps.csv." in [i.value for i in at.info]
    expect_dataset(at, "steps.csv", wide_csv(), "wide")


def test_parquet_without_pyarrow_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(read, "_pyarrow_available", lambda: False)
    at = page()
    send(at, "steps.parquet", parquet_bytes())
    assert [e.value for e in at.error] == ["Cannot use this file: Parquet needs pyarrow: pip install pyarrow"]


def test_memory_study_runs_in_the_background_and_reports():
    at = page()
    at.button(key="yd_example_city_temperatures").click().run()
    for name, value in TINY_STUDY.items():
        at.number_input(key=spec(at, name)).set_value(value)
    at.multiselect(key=spec(at, "study_windows")).set_value([1, 24])
    at.multiselect(key="yd_study_kinds").set_value(["gru"]).run()
    ok(at)
    assert "5 models × 1 seed(s) = 5 runs" in " ".join(c.value for c in at.caption)  # FFNN and linear per window
    at.button(key="yd_study").click().run()
    ok(at)
    job = at.session_state["job"]
    assert job.title == "Memory study"
    assert job.wait(300), "the study did not finish within 300 s"
    at.run()
    ok(at)
    assert job.error is None, job.error
    study = at.session_state["results"]["your_data"].result
    assert study.task == at.session_state["user_data"].cfg
    verdict = (at.success or at.warning)[0].value
    headline = report.HEADLINES[study.verdict.memory].format(window=study.verdict.window)
    assert verdict.split("\n\n") == [f"**{headline}**", *study.verdict.sentences]
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 1 and charts[0]["layout"]["title"]["text"].startswith("Context tradeoff")
    names = {t["name"] for t in charts[0]["data"] if t.get("name")}
    assert {"FFNN", "Linear", "GRU (reference)"} <= names
    table = at.table[-1].value
    assert list(table["model"]) == ["FFNN w1", "FFNN w24", "Linear w1", "Linear w24", "GRU"]
    assert study.verdict.sentences[-1].startswith("Not trained in this study: Vanilla RNN, LSTM, TCN (causal "
                                                  "convolution), Transformer (causal attention), minGRU")
    assert {"parameters", "ms / prediction", "s / epoch"} <= set(table.columns)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download HTML report"]


def test_150_step_columns_are_picked_as_a_range_not_150_chips():
    at = page()
    send(at, "long.csv", labelled_csv(steps=150))
    ok(at)
    assert [m.label for m in at.multiselect] == ["Windows (steps)", "Fixed-window models, at every window",
                                                 "Memory models"]  # no multiselect of step columns
    assert (at.selectbox(key=spec(at, "wide_first")).value, at.selectbox(key=spec(at, "wide_last")).value) == \
        ("s0", "s149")
    assert "Step columns: s0 to s149, 150 columns in the file's order." in [c.value for c in at.caption]
    assert shown(at)["Steps per sequence"] == "150"
    at.selectbox(key=spec(at, "wide_first")).set_value("s100").run()
    ok(at)
    assert shown(at)["Steps per sequence"] == "50"


def test_the_study_offers_every_memory_mechanism_and_says_which_it_leaves_out():
    at = page()
    at.button(key="yd_example_city_temperatures").click().run()
    kinds = at.multiselect(key="yd_study_kinds")
    assert kinds.value == ["gru", "lstm", "rnn"] and set(kinds.options) >= {"TCN (causal convolution)",
                                                                             "Transformer (causal attention)"}
    assert any(c.value.startswith("The TCN, Transformer and minGRU are left out by default") for c in at.caption)
    assert at.multiselect(key="yd_study_window_kinds").value == ["ffnn", "linear"]
    at.multiselect(key="yd_study_kinds").set_value(["tcn", "transformer", "mingru"]).run()
    at.multiselect(key="yd_study_window_kinds").set_value(["linear"]).run()
    ok(at)
    windows = len(at.multiselect(key=spec(at, "study_windows")).value)
    assert f"{windows + 3} models × 3 seed(s)" in " ".join(c.value for c in at.caption)
    assert not any(c.value.startswith("The TCN, Transformer and minGRU are left out") for c in at.caption)


def test_prepared_data_is_a_task_on_every_page():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/compare.py").run()
    assert "Your data" not in at.selectbox(key="w_cmp_task").options
    at.switch_page("pages/your_data.py").run()
    at.button(key="yd_example_city_temperatures").click().run()
    for name, prefix in PAGES.items():
        at.switch_page(f"pages/{name}.py").run()
        at.selectbox(key=f"{prefix}_task").set_value("userdata").run()
        if name == "costs":  # the window kept from text recall (its cue lag, 25) is longer than these sequences
            assert [e.value for e in at.error] == ["Cannot size these models: FFNN window 25 is longer than the "
                                                   "sequence (24 steps); choose a window between 1 and 24."]
            at.number_input(key="w_cost_window").set_value(5).run()
        ok(at)
        assert f"Prepared on the Your data page from {CITY}." in [c.value for c in at.caption], name
    at.switch_page("pages/compare.py").run()
    at.selectbox(key="w_cmp_task").set_value("userdata")
    at.number_input(key="w_cmp_epochs").set_value(1)
    at.number_input(key="w_cmp_hidden").set_value(8).run()
    at.button(key="cmp_run").click().run()
    ok(at)
    job = at.session_state["job"]
    assert job.wait(300), "the comparison did not finish within 300 s"
    at.run()
    ok(at)
    assert job.error is None, job.error
    comp = at.session_state["results"]["compare"].result
    assert comp.task == at.session_state["user_data"].cfg
    at.switch_page("pages/probe.py").run()
    ok(at)
    assert at.dataframe[-1].value["model"].tolist() == list(dict.fromkeys(
        r.label for r in comp.runs))


def test_the_data_a_stored_run_trained_on_can_be_trained_on_again():
    cfg = prepare((EXAMPLES / CITY).read_bytes(), CITY)  # as a bundle import brings them
    with RunStore() as store:
        run_id = run_one(cfg, ModelConfig(kind="gru", hidden=4), TrainConfig(epochs=1), store).run_id
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/runs.py").run()
    table = next(d for d in at.dataframe if (d.key or "").startswith("runs_table"))
    row = list(table.value["id"]).index(run_id)
    at.session_state[table.key] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    at.button(key="runs_use_data").click().run()
    ok(at)
    at.switch_page("pages/compare.py").run()
    at.selectbox(key="w_cmp_task").set_value("userdata").run()
    ok(at)
    assert f"The data run {run_id} trained on (chosen on the Runs page)." in [c.value for c in at.caption]


def test_the_quick_study_trains_one_seed_on_a_coarse_grid_says_what_it_gives_up_and_shows_its_eta():
    from lib.study import quick_windows
    at = page()
    at.button(key="yd_example_city_temperatures").click().run()
    at.number_input(key=spec(at, "study_updates")).set_value(3000)
    at.multiselect(key="yd_study_kinds").set_value(["gru"]).run()
    ok(at)
    at.toggle(key="yd_quick").set_value(True).run()
    ok(at)
    assert at.number_input(key=spec(at, "study_seeds")).disabled
    windows = list(quick_windows(_dataset(at)))
    n = 2 * len(windows) + 1  # an FFNN and a linear map at every window, and the GRU
    assert f"{n} models × 1 seed(s) = {n} runs" in " ".join(c.value for c in at.caption)
    caveat = [i.value for i in at.info if i.value.startswith("A quick study: one seed")]
    assert caveat and "wider intervals" in caveat[0] and "no seed-to-seed noise" in caveat[0] \
        and "coarser windows" in caveat[0] and ", ".join(map(str, windows)) in caveat[0]
    at.button(key="yd_study").click().run()
    ok(at)
    job = at.session_state["job"]
    assert list(job.meta["eta"][1]) == [0]  # the seeds the time left is reckoned for
    at.run()  # the progress panel: the time left, from a probe of each model until its runs measure their own
    ok(at)
    assert any("runs finished in" in c.value for c in at.caption), [c.value for c in at.caption]
    job.cancel("cancelled")
    assert job.wait(60)


def _dataset(at: AppTest):
    from lib.runs import dataset
    return dataset(at.session_state["user_data"].cfg)
