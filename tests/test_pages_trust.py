"""AppTest: every result says what produced it, links reproduce results, and bad settings are refused in the
widgets' words before anything trains."""
import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from lib import bundles
from lib.experiments import compare
from lib.jobs import RUNNING, Job
from lib.models import ModelConfig
from lib.settings import Settings
from lib.store import RunStore
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig
from pages._ui import _open_store
from tests.test_pages import APP, app, click_and_wait, figures, one, runs_table, tiny, trace_names

TINY_TASK = TextRecallConfig(distance=2, n_train=300)


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    path = tmp_path / "trust.sqlite"
    monkeypatch.setenv("LOOKBACK_DB", str(path))
    _open_store.clear()
    yield path
    _open_store.clear()


def header(at: AppTest) -> dict[str, str]:
    """The result header's lines ("**Task:** ...") by group."""
    lines = [m.value for m in at.markdown if m.value.startswith("**Task:**")]
    assert len(lines) == 1, [m.value for m in at.markdown]
    return dict(line.removeprefix("**").split(":** ", 1) for line in lines[0].split("  \n"))


def subheaders(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


def test_a_result_is_headed_by_its_settings_and_restores_them(_store):
    at = app("compare")
    tiny(at, "w_cmp")
    click_and_wait(at, "cmp_run")
    head = header(at)
    assert head["Task"] == ("Text recall · distance 2 · objective classify the final word · cue words 6 · training "
                            "sentences 300")
    assert head["Models"].startswith("FFNN w5, FFNN w7, RNN, LSTM · hidden units 64")
    assert head["Training"].startswith("up to 2 epochs (stops after 10 epochs without a better validation accuracy")
    assert head["Seeds"] == "0" and not at.warning
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
    ids = at.session_state["results"]["compare"].runs
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


def test_a_link_reproduces_a_distance_sweep_from_the_store(_store):
    at = app("memory")
    at.text_input(key="w_mem_dists").set_value("0, 3")
    at.number_input(key="w_mem_n").set_value(300)
    at.number_input(key="w_mem_epochs").set_value(2)
    click_and_wait(at, "mem_run")
    link = at.query_params["runs"]
    sweep = at.session_state["results"]["memory"][1]
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
    assert [w.value for w in fresh.warning] == [
        f"Left out of this link: 'bogus' (not a run id), {other.runs[0].run_id} (another task than the first run's, "
        f"beyond its distance)."]
    assert header(fresh)["Task"] == (
        "Text recall · objective classify the final word · cue words 6 · training sentences 300 · distances 0, 3")
    again = one(figures(fresh), "Accuracy against dependency distance")
    assert trace_names(again) == trace_names(curve) == ["FFNN w5", "RNN", "LSTM"]
    assert [t["y"] for t in again["data"]] == [t["y"] for t in curve["data"]]
    assert fresh.query_params["runs"] == link  # the ids left out are dropped from the link


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


def test_a_cancelled_comparison_does_not_contradict_itself():
    calls = iter(range(10_000))
    comp = compare(TINY_TASK, [ModelConfig(kind="lstm", hidden=8)], TrainConfig(epochs=5, patience=0),
                   should_stop=lambda: next(calls) >= 8)  # 5 batches an epoch: stops in epoch 2
    assert comp.cancelled and comp.runs[0].status == "cancelled"
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["results"] = {"compare": comp, "compare_settings": Settings(
        TINY_TASK, [ModelConfig(kind="lstm", hidden=8)], TrainConfig(epochs=5, patience=0), (0, 1))}
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
    assert trace_names(one(figures(at), "Loss curves")) == ["RNN train", "RNN val"]
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


def test_text_and_video_keep_their_own_training_set_sizes():
    at = app("compare")
    at.number_input(key="w_cmp_n").set_value(1000).run()
    at.selectbox(key="w_cmp_task").set_value("video").run()
    assert at.number_input(key="w_cmp_clips").value == 6000
    at.selectbox(key="w_cmp_task").set_value("text_recall").run()
    assert at.number_input(key="w_cmp_n").value == 1000


def test_probe_and_memory_answer_with_the_reference_models_on_a_first_visit():
    at = app("probe")
    assert any(m.value.startswith("**Reference models** (precomputed") for m in at.markdown)
    assert trace_names(one(figures(at), "Top next words")) == ["FFNN w5", "FFNN w25", "RNN", "LSTM"]
    at.switch_page("pages/memory.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.success[0].value.startswith("FFNN w5 scores 100.0% at distance 0 but is at chance from distance 10;")
    assert "LSTM stays at 100.0% up to distance 60" in at.success[0].value
    grads = one(figures(at), "Gradient through time")
    assert grads["layout"]["yaxis"]["title"]["text"].startswith("‖∂loss/∂h(t−k)‖")
    at.radio(key="w_mem_wrt").set_value("input").run()
    assert one(figures(at), "Gradient through time")["layout"]["yaxis"]["title"]["text"].startswith(
        "‖∂loss/∂x(t−k)‖")
    assert trace_names(one(figures(at), "LSTM gates")) == ["input", "forget", "output"]


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
                                         "CPU s / epoch", "wall s / step", "latency (ms / sequence)",
                                         "peak memory (MB)"]
    assert {b.proto.label for b in at.download_button} == {"Download CSV", "Download JSON"}
    at.number_input(key="w_cost_hidden").set_value(32).run()
    assert [w.value for w in at.warning if w.value.startswith("Measured")] == [
        "Measured with other settings than the form's: hidden units 64 → 32. The result below is still the one of "
        "the settings above; run it again for the form's, or restore these settings."]
    at.button(key="cost_restore").click().run()
    assert at.number_input(key="w_cost_hidden").value == 64
    assert not [w for w in at.warning if w.value.startswith("Measured")]


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

