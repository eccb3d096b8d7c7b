"""AppTest page tests: every finished page renders, trains a tiny run in the background and shows it; every
result says what produced it, links reproduce results (a bad link cannot crash a page), and bad settings are
refused in the widgets' words before anything trains.

The pages train in a background thread (pages/_jobs.py); a test clicks Train, waits for that job and
reruns the script, as the page's progress fragment would. Each test's runs go to its own store in tmp.
"""
import base64
import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib import bundles, probes, tables
from lib.experiments import compare
from lib.jobs import RUNNING
from lib.models import MODEL_KINDS, ModelConfig
from lib.settings import Settings
from lib.store import RunStore
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig
from pages._form import RECURRENT
from pages._jobs import Job, engine
from pages._run import _open_store
from pages._state import Shown

APP = Path(__file__).resolve().parents[1] / "app.py"
TINY = {"dist": 2, "n": 300, "epochs": 2}  # a tiny text-recall task: each run trains in well under a second
COMPARE_LABELS = ["FFNN w5", "FFNN w7", "RNN", "LSTM"]  # defaults: FFNN w5 + the FFNN reaching the cue (7)
TINY_TASK = TextRecallConfig(distance=2, n_train=300)


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


def header(at: AppTest) -> dict[str, str]:
    """The result header's lines ("**Task:** ...") by group."""
    lines = [m.value for m in at.markdown if m.value.startswith("**Task:**")]
    assert len(lines) == 1, [m.value for m in at.markdown]
    return dict(line.removeprefix("**").split(":** ", 1) for line in lines[0].split("  \n"))


def subheaders(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


@pytest.mark.parametrize("page, title", [(None, "Lookback"), ("compare", "Compare models"),
                                         ("window", "Context tradeoff"), ("memory", "Memory"),
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


def test_home_promises_no_fixed_duration_for_the_default_comparison():
    help_text = app().button(key="home_run").proto.help
    assert "distance 20" in help_text
    assert not re.search(r"\d+\s*(s\b|sec|min)|half a minute|a minute", help_text), help_text


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


def test_settings_are_refused_in_the_widgets_words_before_a_job_starts():
    at = app("memory")
    at.text_input(key="w_mem_dists").set_value("0, 300").run()
    assert [e.value for e in at.error] == ["Cannot run the sweep: distances must each be between 0 and 200; 300 is "
                                           "not."]
    assert at.button(key="mem_run").disabled
    at.text_input(key="w_mem_dists").set_value("0, ten").run()
    assert [e.value for e in at.error] == ["Cannot run the sweep: distances must be whole numbers separated by "
                                           "commas, e.g. 0, 10, 20; “ten” is not one."]

    at.switch_page("pages/window.py").run()
    tiny(at, "w_win")  # sentences of 7 words
    at.number_input(key="w_win_hi").set_value(40).run()
    assert any(c.value.startswith("Windows: 1, 2, 3, 4, 5, 6, 7 (the decisive input is 7 steps back); the range stops "
                                  "at the sequence length, 7 steps") for c in at.caption), [c.value for c in at.caption]
    at.number_input(key="w_win_lo").set_value(10).run()
    assert [e.value for e in at.error] == ["Cannot run the sweep: the smallest window (10) is longer than the "
                                           "sequence (7 steps); choose a smallest window between 1 and 7."]
    assert at.button(key="win_run").disabled

    at.switch_page("pages/compare.py").run()
    at.selectbox(key="w_cmp_task").set_value("sine").run()
    at.number_input(key="w_cmp_seq").set_value(8).run()
    assert [e.value for e in at.error] == [
        "Cannot train: “Input window of the recurrent models (steps)” must be between the main period (24 steps, so "
        "a window can span one cycle) and 1000, got 8."]
    assert at.button(key="cmp_run").disabled


def titles(kinds=tuple(MODEL_KINDS)) -> str:
    return ", ".join(MODEL_KINDS[k].title for k in kinds)


@pytest.mark.parametrize(("page", "key", "value", "note"), [
    ("compare", "w_cmp_n", "inf", "w_cmp_n=inf dropped (not a finite number)"),
    ("compare", "w_cmp_n", "-inf", "w_cmp_n=-inf dropped (not a finite number)"),
    ("compare", "w_cmp_window", "1e400", "w_cmp_window=1e400 dropped (not a finite number)"),
    ("compare", "w_cmp_seeds", "inf", "w_cmp_seeds=inf dropped (not a finite number)"),
    ("memory", "w_mem_window", "inf", "w_mem_window=inf dropped (not a finite number)"),
    ("window", "w_win_hi", "inf", "w_win_hi=inf dropped (not a finite number)"),
    ("costs", "w_cost_match", "inf", "w_cost_match=inf dropped (not a finite number)"),
    ("compare", "w_cmp_n", "abc", "w_cmp_n=abc dropped (not a number)"),
    ("compare", "w_cmp_dist", "999", "w_cmp_dist=999 set to 200 (the setting allows 0 to 200)"),
    ("compare", "w_cmp_kinds", "bogus", f"w_cmp_kinds=bogus dropped (not one of the models here: {titles()})"),
    ("costs", "w_cost_scale_kinds", "FFNN (fixed window)", "w_cost_scale_kinds=FFNN (fixed window) dropped (not one "
     f"of the recurrent models here: {titles(RECURRENT)})"),
    ("compare", "w_cmp_kinds", "lstm", "w_cmp_kinds=lstm read as LSTM"),
])
def test_a_link_cannot_crash_a_page(page, key, value, note):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params[key] = value
    at.run()
    assert [w.value for w in at.warning] == [f"This link's settings were adjusted: {note}."]
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]


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
    first = at.session_state["results"]["compare"].result
    click_and_wait(at, "cmp_run")
    again = at.session_state["results"]["compare"].result
    assert [r.label for r in again.runs] == COMPARE_LABELS
    for run in again.runs:
        assert run.message.startswith("reused stored run"), run.message
    assert [r.run_id for r in again.runs] == [r.run_id for r in first.runs]
    assert len(RunStore(_store).runs()) == len(COMPARE_LABELS)  # nothing trained again

    at.checkbox(key="w_cmp_force").check()
    click_and_wait(at, "cmp_run")
    forced = at.session_state["results"]["compare"].result
    assert not any(r.message.startswith("reused") for r in forced.runs)
    assert not {r.run_id for r in forced.runs} & {r.run_id for r in first.runs}


def test_a_result_is_headed_by_its_settings_and_restores_them(_store):
    at = app("compare")
    tiny(at, "w_cmp")
    click_and_wait(at, "cmp_run")
    head = header(at)
    assert head["Task"] == ("Text recall · distance 2 · objective classify the final word · cue words 6 · training "
                            "sentences 300")
    assert head["Models"].startswith("FFNN w5, FFNN w7, RNN, LSTM · hidden units 64")
    assert head["Training"].startswith("up to 2 epochs (stops after 20 epochs without a better validation accuracy")
    assert head["Seeds"] == "0 (1 seed)" and not at.warning
    table = at.dataframe[0].value
    assert list(table["seconds measured"]) == ["now"] * 4 and (table["CPU s / epoch"] > 0).all()

    at.slider(key="w_cmp_dist").set_value(3)
    at.number_input(key="w_cmp_epochs").set_value(4).run()
    assert [w.value for w in at.warning] == [
        "Settings changed since this result: distance 2 → 3; models FFNN w5, FFNN w7, RNN, LSTM → FFNN w5, FFNN w8, "
        "RNN, LSTM; max epochs 2 → 4. The result below is still the one of the settings above; run it again for the "
        "form's, or restore these settings."]
    assert header(at)["Task"].startswith("Text recall · distance 2 ·")  # the result keeps its own settings
    at.button(key="cmp_restore").click().run()
    assert (at.slider(key="w_cmp_dist").value, at.number_input(key="w_cmp_epochs").value) == (2, 2)
    assert not at.warning

    click_and_wait(at, "cmp_run")  # identical settings: the stored runs are reused, and say so
    table = at.dataframe[0].value
    assert all(m.endswith("(reused run)") for m in table["seconds measured"]), list(table["seconds measured"])
    assert any(c.value.startswith("4 of 4 run(s) were reused from the run store") for c in at.caption)


def test_a_link_reproduces_the_result_from_the_store(_store):
    at = app("compare")
    tiny(at, "w_cmp")
    click_and_wait(at, "cmp_run")
    ids = at.session_state["results"]["compare"].result.runs
    link = ",".join(r.run_id for r in ids)
    assert at.query_params["runs"] == link
    curves = one(figures(at), "Loss curves")

    fresh = AppTest.from_file(str(APP), default_timeout=60)  # another browser opens the copied link
    for key, value in {"w_cmp_dist": 2, "w_cmp_n": 300, "w_cmp_epochs": 2}.items():  # the form's settings in it
        fresh.query_params[key] = str(value)
    fresh.query_params["runs"] = f"{link},bogus,0123456789ab"
    fresh.switch_page("pages/compare.py").run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert subheaders(fresh) == ["Result"]
    assert [w.value for w in fresh.warning] == [
        "Left out of this link: 'bogus' (not a run id), 0123456789ab (not in this run store)."]
    again = one(figures(fresh), "Loss curves")
    assert trace_names(again) == trace_names(curves)
    assert [t["y"] for t in again["data"]] == [t["y"] for t in curves["data"]]
    assert fresh.query_params["runs"] == link  # the unknown ids are dropped from the link


def test_a_cancelled_comparison_does_not_contradict_itself():
    calls = iter(range(10_000))
    comp = compare(TINY_TASK, [ModelConfig(kind="lstm", hidden=8)], TrainConfig(epochs=5, patience=0),
                   should_stop=lambda: next(calls) >= 8)  # 5 batches an epoch: stops in epoch 2
    assert comp.cancelled and comp.runs[0].status == "cancelled"
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["results"] = {"compare": Shown.of(comp.task, comp, Settings(
        TINY_TASK, [ModelConfig(kind="lstm", hidden=8)], TrainConfig(epochs=5, patience=0), (0, 1)), comp.cancelled)}
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.success] == [
        "No run completed (LSTM (seed 0, cancelled)), so there is nothing to compare."]
    assert "Cancelled: 0 of 2 planned run(s) completed; stopped part-way: LSTM (seed 0, 1 epoch); 1 never started. " \
           "Only completed runs count in the verdict and the test metrics." in [w.value for w in at.warning]
    row = at.dataframe[0].value.iloc[0]
    assert (row["status"], row["test accuracy"]) == ("cancelled", "—")


def test_the_loss_chart_is_drawn_while_training_with_an_eta():
    job = Job("Compare", print, total_runs=2, epochs=4)
    job.state, job.started = RUNNING, time.time() - 6
    job.curves = {("RNN", 0): [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "val_metric": 0.5,
                                "elapsed_seconds": e} for e in (1, 2)]}
    job.progress = {("RNN", 0): job.curves[("RNN", 0)][-1]}
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["job"], at.session_state["job_page"] = job, "compare"
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    live = [c for c in at.get("plotly_chart") if c.proto.id and "cmp_live" in c.proto.id]
    assert len(live) == 1
    assert trace_names(one(figures(at), "Loss curves")) == ["RNN train", "RNN"]
    assert any(re.fullmatch(r"Training: about \d+ s left \(25% done in \d+ s\)\.", c.value) for c in at.caption), \
        [c.value for c in at.caption]


def test_quick_settings_and_early_stopping_are_explained():
    at = app("compare")
    at.button(key="cmp_quick").click().run()
    assert (at.number_input(key="w_cmp_n").value, at.number_input(key="w_cmp_epochs").value,
            at.number_input(key="w_cmp_seeds").value) == (1000, 10, 1)
    assert at.number_input(key="w_cmp_patience").proto.help.startswith(
        "Training stops after this many epochs without a better validation accuracy; 0 trains every epoch. Either "
        "way the epoch with the best validation accuracy")


def test_quick_settings_warn_that_a_smaller_budget_than_the_references_can_change_who_wins():
    at = app("compare")
    assert not at.warning  # the defaults are the reference's budget
    at.button(key="cmp_quick").click().run()
    assert [w.value for w in at.warning] == [
        "A smaller budget than the reference's: 1,000 training sequences (the reference: 4,000) and at most 10 epochs "
        "(the reference: 60). With less training, who wins can change (a vanilla RNN may hold a cue it loses in the "
        "reference, or a model may stop short of what it would learn), so treat these numbers as a first look and "
        "train with the reference's budget before you trust them."]
    at.slider(key="w_cmp_dist").set_value(40).run()  # the distance sweep's reference has distance 40
    assert len(at.warning) == 1
    at.slider(key="w_cmp_dist").set_value(3).run()  # no reference trained at distance 3: nothing to compare with
    assert not at.warning


def test_a_result_unlike_the_reference_says_what_differs_from_its_settings():
    at = app("compare")
    at.number_input(key="w_cmp_n").set_value(300)
    at.number_input(key="w_cmp_epochs").set_value(1)
    at.multiselect(key="w_cmp_kinds").set_value(["lstm"])
    at.checkbox(key="w_cmp_reach").set_value(False)
    click_and_wait(at, "cmp_run")  # the LSTM at distance 20 after one epoch on 300 sentences: near chance
    notes = [w.value for w in at.warning if w.value.startswith("Unlike the reference")]
    assert len(notes) == 1, [w.value for w in at.warning]
    assert re.match(r"Unlike the reference at distance 20: your LSTM \d+\.\d%, the reference's 100\.0% with the "
                    r"same seed \(", notes[0]), notes[0]
    assert "What differs from the reference's settings: training sentences 4,000 → 300; max epochs 60 → 1." in notes[0]


def test_compare_says_what_a_wider_window_costs_and_leads_to_the_cases_where_it_costs_most():
    at = app("compare")  # the reference result: FFNN w5, FFNN w25, RNN, LSTM at distance 20
    cost = [m.value for m in at.markdown if m.value.startswith("**What memory costs in parameters:**")]
    assert cost == ["**What memory costs in parameters:** Each word in FFNN w25's window adds 16 inputs (one word's "
                    "embedding), so 1,024 parameters: FFNN w25 has 26,982 parameters, 4.1× the RNN's 6,566, 1.2× the "
                    "LSTM's 22,310. The recurrent models read one word at a time with the same weights, so their "
                    "parameters stay the same however far back the cue lies, while the window, and with it FFNN "
                    "w25's parameters, must grow linearly with the distance."]
    assert at.dataframe[0].value.set_index("model")["parameters"]["FFNN w25"] == 26_982  # the table agrees
    at.button(key="cmp_case_video").click().run()
    assert at.selectbox(key="w_cmp_task").value == "video" and at.slider(key="w_cmp_gap").value == 20
    assert at.checkbox(key="w_cmp_reach").value  # with the FFNN whose window reaches the digit: FFNN w21


def test_the_context_tradeoff_says_what_a_wider_window_costs_and_draws_parameters_on_a_linear_axis():
    at = app("window")  # the reference sweep: FFNN windows on text recall with recurrent references
    assert at.title[0].value == "Context tradeoff"
    cost = [m.value for m in at.markdown if m.value.startswith("**What memory costs in parameters:**")]
    assert len(cost) == 1 and "Each word in FFNN w25's window adds 16 inputs (one word's embedding)" in cost[0]
    spec = one(figures(at), "FFNN window tradeoff")
    assert spec["layout"]["yaxis2"].get("type") in (None, "linear", "-")


@pytest.mark.parametrize("task, labels", [("sine", ["FFNN w5", "FFNN w24", "RNN", "LSTM"]),
                                          ("video", ["FFNN w5", "FFNN w21", "RNN", "LSTM"])])
def test_every_built_in_task_opens_on_compare_with_its_own_precomputed_reference(task, labels):
    at = app("compare")
    at.selectbox(key="w_cmp_task").set_value(task).run()
    assert not at.exception and "Reference result" in [h.value for h in at.subheader]
    assert any(i.value.startswith("Precomputed reference result, made by `python -m lib reference` on 2026-")
               for i in at.info)
    assert list(at.dataframe[0].value["model"]) == labels


def test_text_and_video_keep_their_own_training_set_sizes():
    at = app("compare")
    at.number_input(key="w_cmp_n").set_value(1000).run()
    at.selectbox(key="w_cmp_task").set_value("video").run()
    assert at.number_input(key="w_cmp_clips").value == 6000
    at.selectbox(key="w_cmp_task").set_value("text_recall").run()
    assert at.number_input(key="w_cmp_n").value == 1000


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


def test_context_sweep_puts_windows_and_receptive_fields_on_one_axis():
    """Issue 19: the FFNN and linear windows and the TCN's receptive field share the x-axis (steps seen); the LSTM
    and the Transformer are reference lines; the verdict names the cheapest model that sees far enough."""
    at = app("window")
    tiny(at, "w_win")
    at.number_input(key="w_win_hi").set_value(7)  # the sequence is 7 steps; the cue 7 steps back
    at.number_input(key="w_win_count").set_value(2)
    at.multiselect(key="w_win_swept").set_value(["ffnn", "linear", "tcn"]).run()
    captions = [c.value for c in at.caption]
    assert "TCN levels: 1, 2 (receptive fields 5, 13 steps, kernel 3)" in captions, captions
    at.checkbox(key="w_win_attention").check().run()
    click_and_wait(at, "win_run")
    spec = one(figures(at), "Context tradeoff")
    assert {"FFNN", "Linear", "TCN", "LSTM (reference)", "Transformer (reference)"} <= set(trace_names(spec))
    lines = {t["name"]: values(t["x"]) for t in spec["data"] if t.get("mode") == "lines+markers"}
    assert lines == {"FFNN": [1, 7], "Linear": [1, 7], "TCN": [5, 13]}
    assert spec["layout"]["xaxis"]["title"]["text"] == "steps seen (window or receptive field)"
    verdict = [s.value for s in at.success]
    assert len(verdict) == 1 and verdict[0].startswith(("The cheapest model that sees far enough to match the ",
                                                        "No model swept")), verdict
    assert verdict[0].endswith("The decisive input lies 7 steps back.")
    assert header(at)["Models"].startswith("FFNN w1, FFNN w7, Linear w1, Linear w7, TCN k3 n1, TCN k3 n2, LSTM, "
                                           "Transformer")

    fresh = AppTest.from_file(str(APP), default_timeout=60)  # the copied link shows the same sweep from the store
    fresh.query_params["runs"] = at.query_params["runs"]
    fresh.switch_page("pages/window.py").run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert subheaders(fresh) == ["Result"] and [s.value for s in fresh.success] == verdict
    again = one(figures(fresh), "Context tradeoff")
    assert {t["name"]: values(t["x"]) for t in again["data"] if t.get("mode") == "lines+markers"} == lines


def test_a_reference_is_shown_only_for_the_settings_that_made_it():
    at = app("window")
    assert subheaders(at) == ["Reference result"]
    assert header(at)["Task"].startswith("Text recall · distance 20 ·")
    at.slider(key="w_win_dist").set_value(10).run()
    assert "Reference result" not in subheaders(at) and not one_chart(at, "FFNN window tradeoff")
    assert "Pick the windows and press Run the sweep. Each window trains its own FFNN." in [i.value for i in at.info]
    at.button(key="win_ref_window_text").click().run()  # load the reference's settings into the form
    assert at.slider(key="w_win_dist").value == 20
    assert subheaders(at) == ["Reference result"] and one_chart(at, "FFNN window tradeoff")


def one_chart(at: AppTest, title: str) -> bool:
    return any(t.startswith(title) for t in figures(at))


def test_runs_lists_stored_runs_and_deletes_them(_store, monkeypatch):
    exported = []
    monkeypatch.setattr(bundles, "export_bundle", lambda *args: exported.append(args) or b"a bundle")
    at = app("compare")
    tiny(at, "w_cmp")
    click_and_wait(at, "cmp_run")
    trained = {r.run_id for r in at.session_state["results"]["compare"].result.runs}

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
    # the bundle (weights) is made when asked for only; the page's files are its own, and a click reruns nothing
    assert exported == []
    assert {b.proto.label for b in at.download_button} == {"Runs CSV", "Runs JSON"}
    assert at.button(key="runs_bundle_prepare").label == "Prepare bundle (.zip)"
    at.button(key="runs_bundle_prepare").click().run()
    assert len(exported) == 1 and sorted(exported[0][1]) == sorted(table["id"].iloc[[0, 1]])
    assert {b.proto.label for b in at.download_button} == {"Runs CSV", "Runs JSON", "Bundle (.zip)"}
    assert all(b.proto.url and not b.proto.deferred_file_id and b.proto.ignore_rerun for b in at.download_button)
    at.run()
    assert len(exported) == 1  # built once for this selection, not on every rerun
    assert at.button(key="runs_rerun").label == "Rerun 2 run(s)"
    at.button(key="runs_delete").click().run()
    assert [w.value for w in at.warning] == ["Delete 2 run(s) and their weights for good?"]
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception, [e.value for e in at.exception]
    left = runs_table(at).value
    assert len(left) == n_before - 2
    assert not set(table["id"].iloc[rows]) & set(left["id"])
    assert not [b for b in at.button if b.key == "runs_delete"]  # nothing is selected after a delete


def test_the_runs_csv_has_the_settings_columns_of_the_table_and_every_download_is_a_file_the_page_holds(
        _store, monkeypatch):
    made = []

    def recorded(*args):
        made.append(text := runs_csv(*args))
        return text

    runs_csv = tables.runs_csv
    monkeypatch.setattr(tables, "runs_csv", recorded)
    at = app("compare")
    tiny(at, "w_cmp")
    at.multiselect(key="w_cmp_kinds").set_value(["ffnn", "lstm"])
    click_and_wait(at, "cmp_run")
    at.switch_page("pages/runs.py").run()
    ids = list(runs_table(at).value["id"])
    at.session_state[runs_table(at).key] = {"selection": {"rows": [1, 0], "columns": []}}
    at.run()
    csv = pd.read_csv(io.StringIO(made[-1]))
    assert {"distance", "training sentences", "model", "hidden", "learning rate", "test_accuracy"} <= set(csv.columns)
    assert sorted(csv["id"]) == sorted(ids[:2]) and list(csv["distance"]) == [TINY["dist"]] * 2
    buttons = {b.proto.label: b.proto for b in at.download_button}
    assert {"Runs CSV", "Runs JSON"} <= set(buttons)
    assert all(b.url and not b.deferred_file_id and b.ignore_rerun for b in buttons.values())


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


def test_runs_show_config_columns_filter_group_diff_and_colour(_store):
    at = app("compare")
    tiny(at, "w_cmp")
    at.multiselect(key="w_cmp_kinds").set_value(["ffnn", "rnn"])
    at.checkbox(key="w_cmp_reach").uncheck()
    click_and_wait(at, "cmp_run")
    at.switch_page("pages/runs.py").run()
    table = runs_table(at).value
    assert list(table["task"]) == ["Text recall"] * 2
    assert {"distance", "training sentences", "model", "hidden", "window", "learning rate", "max epochs"} <= set(
        table.columns)
    assert sorted(table["model"]) == ["FFNN (fixed window)", "Vanilla RNN"]

    at.selectbox(key="w_runs_key").set_value("model").run()
    at.multiselect(key="runs_where_model").set_value(["Vanilla RNN"]).run()
    assert list(runs_table(at).value["label"]) == ["RNN"]
    at.multiselect(key="runs_where_model").set_value([]).run()
    at.selectbox(key="w_runs_group").set_value("model").run()
    groups = [d.value for d in at.dataframe if "runs" in d.value.columns]
    assert len(groups) == 1 and list(groups[0]["runs"]) == [1, 1]

    at.session_state[runs_table(at).key] = {"selection": {"rows": [0, 1], "columns": []}}
    at.run()
    side = [d.value for d in at.dataframe if "differs" in d.value.columns]
    assert len(side) == 1 and {"model", "window"} <= set(side[0].index) and side[0]["differs"].all()
    at.selectbox(key="w_runs_colour").set_value("model").run()
    curves = one(figures(at), "Loss curves of the selected runs by model")
    assert sorted({n for n in trace_names(curves) if n}) == sorted(f"model = {m}" for m in table["model"])

    bundle = bundles.export_bundle(RunStore(_store), list(table["id"]))
    at.file_uploader(key="runs_upload").set_value(("runs.zip", bundle, "application/zip")).run()
    at.button(key="runs_import").click().run()
    assert [s.value for s in at.success][0].startswith("Imported 0 run(s); skipped 2 already stored")


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
    grads = one(specs, "Gradient through time")
    names = trace_names(grads)
    labels = ["FFNN w5", "FFNN w7", "GRU", "LSTM"]
    assert names == [f"{label}, {stage}" for stage in ("at initialisation", "after training") for label in labels]
    assert grads["layout"]["yaxis"]["title"]["text"] == "‖∂loss/∂h(t−k)‖ relative to k = 1 (log scale)"
    assert all(values(t["y"])[1] == 1.0 for t in grads["data"])  # each curve over its own value at k = 1
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
    assert ("Sine waves has no dependency-distance knob; pick one that has: text recall, video frames, adding problem, "
            "copy memory.") in [i.value for i in at.info]
    assert at.button(key="mem_run").disabled


def test_memory_rejects_distances_that_are_not_numbers():
    at = app("memory")
    at.text_input(key="w_mem_dists").set_value("0, ten").run()
    assert [e.value for e in at.error] == ["Cannot run the sweep: distances must be whole numbers separated by "
                                           "commas, e.g. 0, 10, 20; “ten” is not one."]
    assert at.button(key="mem_run").disabled  # refused before anything can start


def test_a_link_reproduces_a_distance_sweep_from_the_store(_store):
    at = app("memory")
    at.text_input(key="w_mem_dists").set_value("0, 3")
    at.number_input(key="w_mem_n").set_value(300)
    at.number_input(key="w_mem_epochs").set_value(2)
    click_and_wait(at, "mem_run")
    link = at.query_params["runs"]
    sweep = at.session_state["results"]["memory"].result
    assert link == ",".join(sweep["run_id"]) and len(sweep) == 6  # 3 models at 2 distances, each stored
    curve = one(figures(at), "Accuracy against dependency distance")
    other = compare(TextRecallConfig(distance=2, n_train=300, objective="next_word"),
                    [ModelConfig(kind="gru", hidden=4)], TrainConfig(epochs=1), store=RunStore(_store))

    fresh = AppTest.from_file(str(APP), default_timeout=60)  # another browser opens the copied link
    for key, value in {"w_mem_dists": "0, 3", "w_mem_n": "300", "w_mem_epochs": "2"}.items():  # the form's
        fresh.query_params[key] = value
    fresh.query_params["runs"] = f"{link},{other.runs[0].run_id},bogus"
    fresh.switch_page("pages/memory.py").run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert "Result" in subheaders(fresh) and "Reference result" not in subheaders(fresh)
    assert [w.value for w in fresh.warning if not w.value.startswith("Unlike the reference")] == [
        f"Left out of this link: 'bogus' (not a run id), {other.runs[0].run_id} (another task than the first run's, "
        f"beyond its distance)."]
    assert header(fresh)["Task"] == (
        "Text recall · objective classify the final word · cue words 6 · training sentences 300 · distances 0, 3")
    again = one(figures(fresh), "Accuracy against dependency distance")
    assert trace_names(again) == trace_names(curve) == ["FFNN w5", "RNN", "LSTM"]
    assert [t["y"] for t in again["data"]] == [t["y"] for t in curve["data"]]
    assert fresh.query_params["runs"] == link  # the ids left out are dropped from the link


def test_the_memory_page_checks_every_distance_before_it_starts_training():
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("pages/memory.py").run()
    at.text_input(key="w_mem_dists").set_value("0, 1, 5000").run()
    if not at.button(key="mem_run").disabled:  # the page may refuse the settings before the click
        at.button(key="mem_run").click().run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and re.search(r"\b5,?000\b", errors[0]), errors
    assert "job" not in at.session_state or at.session_state["job"] is None  # nothing started


def test_probe_and_memory_answer_with_the_reference_models_on_a_first_visit():
    at = app("probe")
    assert any(m.value.startswith("**Reference models** (precomputed") for m in at.markdown)
    assert trace_names(one(figures(at), "Top next words")) == ["FFNN w5", "FFNN w25", "RNN", "LSTM"]
    at.switch_page("pages/memory.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.success[0].value.startswith("FFNN w5 scores 100.0% at distance 0 but is at chance from distance 10;")
    assert "LSTM stays at 99.9% or above up to distance 60" in at.success[0].value
    grads = one(figures(at), "Gradient through time")
    assert grads["layout"]["yaxis"]["title"]["text"].startswith("‖∂loss/∂h(t−k)‖")
    at.radio(key="w_mem_wrt").set_value("input").run()
    assert one(figures(at), "Gradient through time")["layout"]["yaxis"]["title"]["text"].startswith(
        "‖∂loss/∂x(t−k)‖")
    assert trace_names(one(figures(at), "LSTM gates")) == ["input", "forget", "output"]


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
    assert list(at.session_state["results"]["costs"].result["label"]) == ["RNN"]
    assert at.session_state["job"] is None


def test_costs_scaling_is_measured_as_a_job():
    at = app("costs")
    at.multiselect(key="w_cost_scale_kinds").set_value(["gru"])
    click_and_wait(at, "cost_scale")
    frame = at.session_state["results"]["scaling"].result
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
    kept = at.session_state["results"]["costs"].result
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


def test_costs_offer_only_what_matters_name_columns_and_mark_stale_measurements():
    at = app("costs")
    at.number_input(key="w_cost_n").set_value(300).run()
    keys = {w.key for w in at.number_input} | {w.key for w in at.select_slider}
    assert {"w_cost_hidden", "w_cost_batch", "w_cost_budget"} <= keys
    assert not {"w_cost_epochs", "w_cost_patience", "w_cost_seeds", "w_cost_lr"} & keys  # they change no cost
    assert list(at.dataframe[0].value.columns) == ["model", "parameters", "forward FLOPs / sample",
                                                   "training FLOPs / sample"]
    at.multiselect(key="w_cost_kinds").set_value(["rnn", "lstm"])
    click_and_wait(at, "cost_measure")
    measured = [d.value for d in at.dataframe if "wall s / epoch" in d.value.columns]
    assert list(measured[0].columns) == ["model", "parameters", "training FLOPs / sample", "wall s / epoch",
                                         "CPU s / epoch", "wall s / step", "CPU ms / step (median)",
                                         "its spread (ms)", "median step (ms)",
                                         "core layer alone (ms)", "arithmetic at the matmul rate (ms)",
                                         "what limits a step", "latency (ms / sequence)", "peak memory (MB)"]
    assert {b.proto.label for b in at.download_button} == {"Download CSV", "Download JSON"}
    at.number_input(key="w_cost_hidden").set_value(32).run()
    assert [w.value for w in at.warning if w.value.startswith("Measured")] == [
        "Measured with other settings than the form's: hidden units 64 → 32. The result below is still the one of "
        "the settings above; run it again for the form's, or restore these settings."]
    at.button(key="cost_restore").click().run()
    assert at.number_input(key="w_cost_hidden").value == 64
    assert not [w for w in at.warning if w.value.startswith("Measured")]


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


def top_words(at: AppTest) -> dict[str, str]:
    """Each model's most probable next word in the Probe chart (its bars run from the least probable up)."""
    return {t["name"]: t["y"][-1] for t in one(figures(at), "Top next words")["data"]}


def test_probe_keeps_the_cue_where_the_models_learned_it_and_warns_when_a_prompt_moves_it():
    at = app("probe")  # the reference models, trained at distance 20: the cue 25 words from the end
    prompt = next(t for t in at.text_input if (t.key or "").startswith("probe_prompt"))
    prompt.set_value("Starving, Alice drives to the nearest store to buy").run()
    assert [i.value.split(" The models read:")[0] for i in at.info] == [
        "Aligned to the training sentences: 16 filler word(s) added, so the cue “starving” moves from 9 to 25 words "
        "from the end, where the models were trained to find it."]
    assert top_words(at)["LSTM"] == "food" and not at.warning
    at.toggle(key="probe_align").set_value(False).run()
    assert [w.value for w in at.warning] == [
        "The cue “starving” is 9 word(s) from the end here, but the models were trained with it 25 words from the "
        "end: no model has seen it at position 9, so their answers say little about memory."]


def test_probe_answers_food_for_the_lstm_with_the_essays_sentence_after_a_distance_40_comparison():
    at = app("compare")
    at.slider(key="w_cmp_dist").set_value(40)
    at.number_input(key="w_cmp_n").set_value(2000)
    at.number_input(key="w_cmp_epochs").set_value(30)
    at.multiselect(key="w_cmp_kinds").set_value(["lstm"])
    click_and_wait(at, "cmp_run", timeout=480)  # 2,000 sentences of 45 words: minutes on a loaded 2-core box
    at.switch_page("pages/probe.py").run()
    at.button(key="probe_essay").click().run()
    assert not at.exception, [e.value for e in at.exception]
    prompt = next(t for t in at.text_input if (t.key or "").startswith("probe_prompt")).value.split()
    assert prompt[:3] == ["starving", "alice", "drives"] and len(prompt) == 45 and prompt[-2:] == ["to", "buy"]
    assert top_words(at)["LSTM"] == "food" and not at.warning


def test_sine_baselines_are_named_in_words_and_the_noise_floor_is_drawn():
    at = _compared(("ffnn", "lstm"), task="sine")
    at.switch_page("pages/compare.py").run()
    specs = figures(at)
    bars, loss = one(specs, "Test mse per model"), one(specs, "Loss curves")
    notes = {a["text"] for a in bars["layout"]["annotations"]}
    assert {"repeating the last value", "repeating the value one season back", "noise floor"} <= notes
    assert not any("_mse" in n for n in notes)
    floor = next(sh for sh, a in zip(loss["layout"]["shapes"], loss["layout"]["annotations"], strict=True)
                 if a["text"] == "noise floor")
    assert floor["y0"] == floor["y1"] == pytest.approx(0.1 ** 2)  # the default noise, squared


def test_costs_environment_claims_no_timings_before_any_were_taken():
    at = app("costs")
    caption = next(c.value for c in at.caption if "oneDNN" in c.value)
    assert caption.startswith("No timing has been taken yet:") and "were taken" not in caption
