"""AppTest page tests: every finished page renders, trains a tiny run in the background and shows it.

The pages train in a background thread (pages/_jobs.py); a test clicks Train, waits for that job and
reruns the script, as the page's progress fragment would. Each test's runs go to its own store in tmp.
"""
import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lib import bundles, probes
from lib.store import RunStore
from pages._jobs import Job, engine
from pages._ui import _open_store

APP = Path(__file__).resolve().parents[1] / "app.py"
TINY = {"dist": 2, "n": 300, "epochs": 2}  # a tiny text-recall task: each run trains in well under a second
COMPARE_LABELS = ["FFNN w5", "FFNN w7", "RNN", "LSTM"]  # defaults: FFNN w5 + the FFNN reaching the cue (7)


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    """A fresh run store per test: LOOKBACK_DB in tmp, and the cached store of any earlier path dropped."""
    path = tmp_path / "pages.sqlite"
    monkeypatch.setenv("LOOKBACK_DB", str(path))
    _open_store.clear()
    yield path
    _open_store.clear()


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    if page is not None:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tiny(at: AppTest, prefix: str) -> None:
    at.slider(key=f"{prefix}_dist").set_value(TINY["dist"])
    at.number_input(key=f"{prefix}_n").set_value(TINY["n"])
    at.number_input(key=f"{prefix}_epochs").set_value(TINY["epochs"])


def click_and_wait(at: AppTest, button: str, timeout: float = 120) -> None:
    """Click a page's train button, wait for its background job, rerun."""
    at.button(key=button).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    job = at.session_state["job"]
    assert job is not None, "the button started no job"
    assert job.wait(timeout), f"the job did not finish within {timeout} s"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert job.error is None, job.error


def figures(at: AppTest) -> dict[str, dict]:
    """Plotly figure specs on screen, by title."""
    out = {}
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        title = spec["layout"].get("title", {})
        out[title.get("text", "") if isinstance(title, dict) else str(title)] = spec
    return out


def trace_names(spec: dict) -> list[str]:
    return [t.get("name") or "" for t in spec["data"]]


def values(data) -> list:
    """A trace's x or y: a plain list, or Plotly's typed array {"dtype", "bdata"} for numpy input."""
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def one(specs: dict[str, dict], starts: str) -> dict:
    found = [s for title, s in specs.items() if title.startswith(starts)]
    assert len(found) == 1, f"expected one chart titled {starts!r}, got {list(specs)}"
    return found[0]


def runs_table(at: AppTest):
    tables = [d for d in at.dataframe if (d.key or "").startswith("runs_table")]
    assert len(tables) == 1, [d.key for d in at.dataframe]
    return tables[0]


@pytest.mark.parametrize("page, title", [(None, "Lookback"), ("compare", "Compare models"),
                                         ("window", "Window tradeoff"), ("memory", "Memory"),
                                         ("costs", "Costs"), ("probe", "Probe"), ("runs", "Runs")])
def test_page_renders_with_defaults(page, title):
    at = app(page)
    assert [t.value for t in at.title] == [title]
    assert not at.error, [e.value for e in at.error]


def test_home_links_every_page():
    at = app()
    links = {link.proto.page for link in at.get("page_link")}
    for name in ("compare", "window", "memory", "costs", "probe", "runs"):
        assert name in links  # the proto holds the page's url path


def test_home_default_comparison_starts_on_compare_and_cancels():
    at = app()
    at.button(key="home_run").click().run()
    try:
        assert [t.value for t in at.title] == ["Compare models"]
        assert at.session_state["job_page"] == "compare"
        assert at.session_state["job"].title == "Default comparison"
    finally:
        job = at.session_state["job"]
        job.cancel()
        assert job.wait(60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["job"] is None  # the finished job was collected by the page


def test_compare_trains_charts_and_survives_a_page_switch():
    at = app("compare")
    tiny(at, "w_cmp")
    click_and_wait(at, "cmp_run")
    specs = figures(at)
    names = trace_names(one(specs, "Loss curves"))
    for label in COMPARE_LABELS:
        assert any(n.startswith(label) for n in names), (label, names)
    bars = one(specs, "Test accuracy")
    assert values(bars["data"][0]["x"]) == COMPARE_LABELS
    verdict = [s.value for s in at.success]
    assert len(verdict) == 1 and "best" in verdict[0], verdict
    assert len(at.dataframe) == 1  # the results table; the progress table is gone
    assert list(at.dataframe[0].value["model"]) == COMPARE_LABELS

    at.switch_page("pages/runs.py").run()
    assert not at.exception
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert [s.value for s in at.success] == verdict
    assert trace_names(one(figures(at), "Loss curves")) == names


def test_compare_without_models_shows_an_error():
    at = app("compare")
    at.multiselect(key="w_cmp_kinds").set_value([])
    at.button(key="cmp_run").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Cannot train: choose at least one model to train."]
    assert "job" not in at.session_state or at.session_state["job"] is None


def test_compare_reuses_an_identical_stored_run(_store):
    at = app("compare")
    tiny(at, "w_cmp")
    at.number_input(key="w_cmp_seeds").set_value(1)
    click_and_wait(at, "cmp_run")
    first = at.session_state["results"]["compare"]
    click_and_wait(at, "cmp_run")
    again = at.session_state["results"]["compare"]
    assert [r.label for r in again.runs] == COMPARE_LABELS
    for run in again.runs:
        assert run.message.startswith("reused stored run"), run.message
    assert [r.run_id for r in again.runs] == [r.run_id for r in first.runs]
    assert len(RunStore(_store).runs()) == len(COMPARE_LABELS)  # nothing trained again

    at.checkbox(key="w_cmp_force").check()
    click_and_wait(at, "cmp_run")
    forced = at.session_state["results"]["compare"]
    assert not any(r.message.startswith("reused") for r in forced.runs)
    assert not {r.run_id for r in forced.runs} & {r.run_id for r in first.runs}


def test_window_sweep_charts_and_survives_a_page_switch():
    at = app("window")
    tiny(at, "w_win")
    at.number_input(key="w_win_hi").set_value(7)  # the sequence is 7 steps; the cue 7 steps back
    at.number_input(key="w_win_count").set_value(3)
    at.run()
    assert any(c.value.startswith("Windows: 1, 4, 7 ") for c in at.caption), [c.value for c in at.caption]
    click_and_wait(at, "win_run")
    spec = one(figures(at), "FFNN window tradeoff")
    names = trace_names(spec)
    assert "FFNN" in names and "LSTM (reference)" in names, names
    ffnn = [t for t in spec["data"] if t.get("name") == "FFNN" and t.get("mode") == "lines+markers"]
    assert values(ffnn[0]["x"]) == [1, 4, 7]
    verdict = [s.value for s in at.success]
    assert len(verdict) == 1, verdict

    at.switch_page("pages/compare.py").run()
    at.switch_page("pages/window.py").run()
    assert not at.exception
    assert [s.value for s in at.success] == verdict
    assert trace_names(one(figures(at), "FFNN window tradeoff")) == names


def test_window_with_smallest_above_largest_shows_an_error():
    at = app("window")
    at.number_input(key="w_win_lo").set_value(10)
    at.number_input(key="w_win_hi").set_value(5)
    at.button(key="win_run").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Cannot run the sweep: the smallest window (10) is larger than the largest (5); swap them."]


def test_runs_lists_stored_runs_and_deletes_them(_store, monkeypatch):
    exported = []
    monkeypatch.setattr(bundles, "export_bundle", lambda *args: exported.append(args))
    at = app("compare")
    tiny(at, "w_cmp")
    click_and_wait(at, "cmp_run")
    trained = {r.run_id for r in at.session_state["results"]["compare"].runs}

    at.switch_page("pages/runs.py").run()
    assert not at.exception
    assert str(_store) in at.caption[0].value
    table = runs_table(at).value
    assert set(table["id"]) == trained
    assert sorted(table["label"]) == sorted(COMPARE_LABELS)
    n_before = len(table)

    rows = [0, 1]
    at.session_state[runs_table(at).key] = {"selection": {"rows": rows, "columns": []}}
    at.run()
    assert not at.exception
    assert "runs_loss" in {c.key for c in at.get("plotly_chart")}  # the selected runs' loss curves
    # files are made on click only: the buttons carry a deferred download, and no bundle was built
    assert exported == []
    assert all(b.proto.deferred_file_id for b in at.download_button), [b.proto for b in at.download_button]
    assert {b.proto.label for b in at.download_button} == {"Runs CSV", "Runs JSON", "Bundle (.zip)"}
    assert at.button(key="runs_rerun").label == "Rerun 2 run(s)"
    at.button(key="runs_delete").click().run()
    assert [w.value for w in at.warning] == ["Delete 2 run(s) and their weights for good?"]
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception, [e.value for e in at.exception]
    left = runs_table(at).value
    assert len(left) == n_before - 2
    assert not set(table["id"].iloc[rows]) & set(left["id"])
    assert not [b for b in at.button if b.key == "runs_delete"]  # nothing is selected after a delete


def test_runs_reruns_the_selected_runs_as_a_job_and_says_whether_the_numbers_match(_store):
    at = app("compare")
    tiny(at, "w_cmp")
    at.multiselect(key="w_cmp_kinds").set_value(["ffnn", "gru"])
    click_and_wait(at, "cmp_run")
    at.switch_page("pages/runs.py").run()
    ids = list(runs_table(at).value["id"])
    at.session_state[runs_table(at).key] = {"selection": {"rows": [0, 1], "columns": []}}
    at.run()
    click_and_wait(at, "runs_rerun")
    assert [s.value for s in at.subheader][:1] == ["Reruns"]
    assert [s.value for s in at.success] == [
        "Every one of the 2 rerun(s) reproduced its stored test metrics and every epoch's losses exactly."]
    reruns = next(d.value for d in at.dataframe if "same numbers" in d.value.columns)
    assert sorted(reruns["run"]) == sorted(ids[:2]) and reruns["same numbers"].all()
    assert set(runs_table(at).value["id"]) == set(ids) | set(reruns["new run"])  # each rerun is stored as a run


def _compared(kinds=("ffnn", "rnn", "lstm"), task: str | None = None) -> AppTest:
    """A session whose Compare page has trained a tiny comparison (Memory and Probe read its models)."""
    at = app("compare")
    if task is None:
        tiny(at, "w_cmp")
    else:
        at.selectbox(key="w_cmp_task").set_value(task).run()
        at.number_input(key="w_cmp_epochs").set_value(TINY["epochs"])
    at.multiselect(key="w_cmp_kinds").set_value(list(kinds))
    click_and_wait(at, "cmp_run")
    return at


def test_memory_sweeps_distances_and_probes_the_compared_models(_store, monkeypatch):
    probed = []

    def counted(runs, ds, wrt="hidden", **kw):
        probed.append(wrt)
        return gradients_before_after(runs, ds, wrt, **kw)

    gradients_before_after = probes.gradients_before_after
    monkeypatch.setattr(probes, "gradients_before_after", counted)
    at = _compared(("ffnn", "gru", "lstm"))
    at.switch_page("pages/memory.py").run()
    specs = figures(at)
    grads = trace_names(one(specs, "Gradient through time"))
    for label in ("FFNN w5", "GRU", "LSTM"):
        assert f"{label}, at initialisation" in grads and f"{label}, after training" in grads
    assert trace_names(one(specs, "GRU gates")) == ["reset", "update"]
    at.selectbox(key="w_mem_gate_model").set_value("LSTM").run()
    assert trace_names(one(figures(at), "LSTM gates")) == ["input", "forget", "output"]
    at.number_input(key="w_mem_sample").set_value(3).run()
    at.radio(key="w_mem_wrt").set_value("input").run()
    at.radio(key="w_mem_wrt").set_value("hidden").run()
    assert probed == ["hidden", "input"]  # once per direction, not on every widget change

    at.text_input(key="w_mem_dists").set_value("0, 3")
    at.number_input(key="w_mem_n").set_value(300)
    at.number_input(key="w_mem_epochs").set_value(2)
    at.multiselect(key="w_mem_kinds").set_value(["ffnn", "lstm"])
    click_and_wait(at, "mem_run")
    curve = one(figures(at), "Accuracy against dependency distance")
    assert trace_names(curve) == ["FFNN w5", "LSTM"]
    assert values(curve["data"][0]["x"]) == [0, 3]
    assert len(RunStore(_store).runs()) == 4 + 2 * 2  # the comparison's runs and the sweep's, stored


def test_memory_explains_a_task_without_a_distance_knob():
    at = app("memory")
    at.selectbox(key="w_mem_task").set_value("sine").run()
    assert "Sine waves has no dependency-distance knob; pick one that has: text recall, video frames." in [
        i.value for i in at.info]
    assert at.button(key="mem_run").disabled


def test_memory_rejects_distances_that_are_not_numbers():
    at = app("memory")
    at.text_input(key="w_mem_dists").set_value("0, ten").run()
    assert [e.value for e in at.error] == ["Cannot run the sweep: distances must be whole numbers separated by "
                                           "commas, e.g. 0, 10, 20; “ten” is not one."]
    assert at.button(key="mem_run").disabled  # refused before anything can start


def busy(should_stop, **_):
    """A job that trains nothing until it is cancelled (run in the engine's worker process)."""
    while not should_stop():
        time.sleep(0.02)


def test_costs_measure_waits_for_training_and_then_runs_alone():
    at = app("costs")
    at.number_input(key="w_cost_n").set_value(300).run()
    at.multiselect(key="w_cost_kinds").set_value(["rnn"])
    job = engine().submit(Job("busy", busy, total_runs=1, epochs=1))
    try:
        deadline = time.monotonic() + 60
        while job.state == "queued" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert job.state == "running"
        at.button(key="cost_measure").click().run()
        assert not at.exception, [e.value for e in at.exception]
        measuring = at.session_state["job"]
        assert measuring.exclusive and measuring.state == "queued"  # behind the training job
        assert any(p.proto.text.startswith("Measuring costs: waiting in the queue, position 1 of 1")
                   and p.proto.text.endswith("it runs alone, once no model trains") for p in at.get("progress"))
        at.button(key="cost_measure").click().run()  # one job per visitor
        assert [w.value for w in at.warning] == ["“Measuring costs” is still running; wait for it or cancel it first."]
        assert "costs" not in at.session_state["results"]
    finally:
        job.cancel()
        assert job.wait(10)
    assert measuring.wait(60) and measuring.error is None
    at.run()
    assert list(at.session_state["results"]["costs"]["frame"]["label"]) == ["RNN"]
    assert at.session_state["job"] is None


def test_costs_scaling_is_measured_as_a_job():
    at = app("costs")
    at.multiselect(key="w_cost_scale_kinds").set_value(["gru"])
    click_and_wait(at, "cost_scale")
    frame = at.session_state["results"]["scaling"]["frame"]
    assert list(frame["label"]) == [f"GRU H={h}" for h in (16, 32, 64, 128, 256)]
    assert trace_names(one(figures(at), "Scaling with hidden units"))[0].startswith("GRU: slope")


def test_a_cancelled_measurement_keeps_the_models_measured():
    at = app("costs")
    at.number_input(key="w_cost_n").set_value(300).run()
    at.button(key="cost_measure").click().run()
    job = at.session_state["job"]
    deadline = time.monotonic() + 60
    while not job.finished and job.running and time.monotonic() < deadline:
        time.sleep(0.01)
    job.cancel("cancelled")
    assert job.wait(60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    kept = at.session_state["results"]["costs"]["frame"]
    assert 1 <= len(kept) < 4
    assert [w.value for w in at.warning if w.value.startswith("Stopped")] == [
        f"Stopped after {len(kept)} of 4 measurements; the rest were not measured."]


def test_costs_measures_every_model_and_rejects_a_window_past_the_sequence():
    at = app("costs")
    at.number_input(key="w_cost_n").set_value(300).run()
    assert trace_names(one(figures(at), "Parameters by layer"))  # one bar group per layer kind
    click_and_wait(at, "cost_measure")
    bars = one(figures(at), "What the model should cost")
    assert values(bars["data"][0]["x"]) == ["FFNN w25", "RNN", "GRU", "LSTM"]
    at.number_input(key="w_cost_window").set_value(300).run()
    assert [e.value for e in at.error] == ["Cannot size these models: FFNN window 300 is longer than the "
                                           "sequence (25 steps); choose a window between 1 and 25."]


def test_probe_shows_each_models_next_words_and_rejects_unknown_words():
    at = _compared()
    at.switch_page("pages/probe.py").run()
    bars = one(figures(at), "Top next words")
    assert trace_names(bars) == ["FFNN w5", "FFNN w7", "RNN", "LSTM"]
    prompt = [t for t in at.text_input if (t.key or "").startswith("probe_prompt")][0]
    prompt.set_value("hungry alice drives to buy").run()
    assert len(at.error) == 1 and at.error[0].value.startswith(
        "Cannot read this prompt: unknown word(s) in the prompt: hungry.")


def test_probe_forecasts_a_series_task():
    at = _compared(("ffnn", "lstm"), task="sine")
    at.switch_page("pages/probe.py").run()
    assert not at.exception, [e.value for e in at.exception]
    spec = one(figures(at), "Forecasts against the truth")
    assert trace_names(spec)[0] == "truth" and "LSTM free-running" in trace_names(spec)
    assert len(at.dataframe) == 1
    table = at.dataframe[0].value
    assert list(table.columns) == ["FFNN w5", "FFNN w24", "LSTM"]
    assert list(table.index) == ["one_step", "free_running"]
    assert (table.to_numpy() > 0).all()
    ys = {t["name"]: np.array(values(t["y"]), dtype=float) for t in spec["data"]}
    for label in table.columns:  # the table's MSE is the one of the curves drawn
        assert table.loc["one_step", label] == pytest.approx(np.mean((ys[f"{label} one-step"] - ys["truth"]) ** 2))


def test_probe_names_each_models_answer_for_a_video_clip():
    at = app("compare")
    at.selectbox(key="w_cmp_task").set_value("video").run()
    at.slider(key="w_cmp_gap").set_value(2)
    at.number_input(key="w_cmp_clips").set_value(200)
    at.number_input(key="w_cmp_epochs").set_value(TINY["epochs"])
    at.multiselect(key="w_cmp_kinds").set_value(["ffnn", "gru"])
    click_and_wait(at, "cmp_run")
    at.switch_page("pages/probe.py").run()
    assert not at.exception, [e.value for e in at.exception]
    strip = one(figures(at), "The clip, frame by frame")
    assert values(strip["layout"]["xaxis"]["ticktext"]) == [str(i) for i in range(3 + 2)]  # visible + gap frames
    assert len(at.dataframe) == 1
    rows = at.dataframe[0].value
    assert list(rows["model"]) == ["FFNN w3", "FFNN w5", "GRU"]
    assert rows["answer"].isin([str(d) for d in range(10)]).all()
    assert ((rows["probability"] > 0) & (rows["probability"] <= 1)).all()
    for answer, p, others in rows[["answer", "probability", "next guesses"]].itertuples(index=False):
        guesses = [g.split(" (") for g in others.split(", ")]
        assert len(guesses) == 2 and answer not in {name for name, _ in guesses}
        assert all(float(q.rstrip("%)")) <= round(100 * p) for _, q in guesses)  # most probable first
