import streamlit as st

from lib import charts, probes, reference
from lib.errors import ConfigError
from lib.experiments import distance_sweep, validate_models
from lib.tasks.sine import SineConfig
from pages import _ui as ui

ui.use_app_navigation()
st.title("Memory")
st.caption("How far back can each model still use what it saw? Measured three ways.")

st.header("Accuracy against dependency distance")
task = ui.task_picker("w_mem")
if isinstance(task, SineConfig):
    st.info("The sine task has no dependency-distance knob; pick text recall or video frames here.")
    task = None
c1, c2, c3 = st.columns([2, 2, 1])
text = c1.text_input("Distances (comma-separated)", "0, 10, 20, 40", **ui.setting("w_mem_dists"))
kinds = c2.multiselect("Models", list(ui.KIND_LABELS), default=["ffnn", "rnn", "lstm"], format_func=ui.KIND_LABELS.get,
                       **ui.setting("w_mem_kinds"))
window = c3.number_input("FFNN window", 1, 400, 5, **ui.setting("w_mem_window"))
train_cfg, seeds, opts = ui.train_settings("w_mem")

if st.button("Run the distance sweep", type="primary", key="mem_run", disabled=task is None):
    try:
        distances = sorted({int(d) for d in text.replace(" ", "").split(",") if d})
        if not distances:
            raise ConfigError("give at least one distance, e.g. 0, 10, 20.")
        models = ui.build_models(task, kinds, [int(window)], opts)
        validate_models(task, models, seeds)
        train_cfg.validate()
    except ValueError as err:  # ConfigError included
        msg = str(err) if isinstance(err, ConfigError) else f"distances must be whole numbers, got {text!r}."
        st.error(f"Cannot run the sweep: {msg}")
    else:
        def job(**callbacks):
            return distance_sweep(task, distances, models, train_cfg, seeds, **callbacks)
        ui.start_job("memory", "Distance sweep", job, total_runs=len(distances) * len(models) * len(seeds),
                  epochs=train_cfg.epochs, meta={"task": task})


def finish(job) -> None:
    if job.result is not None:
        ui.results()["memory"] = (job.meta["task"], job.result)


ui.job_panel("memory", finish)
mem = ui.results().get("memory")
if mem is None and not ui.training_here("memory") and (ref := reference.load("distance_text")) is not None:
    st.info(ui.reference_note(ref))
    mem = (ref["task"], ref["frames"]["summary"])
if mem is not None:
    mem_task, sweep = mem
    ds = ui.checked_dataset(mem_task)
    ui.chart(charts.metric_vs_distance(sweep, ds.metric, ds.distance_name, ds.chance), "mem_distance",
          "Each line is one model's test accuracy as the decisive input moves further back (error bars span "
          "the seeds). A fixed-window FFNN drops to chance once the distance passes its window; a model with "
          "working memory stays up.")
    ui.download(sweep, "lookback-distance-sweep", "mem_dl")
else:
    st.info("Run the distance sweep to train every model at every distance.")

st.header("Gradients through time and gates")
comp = ui.results().get("compare")
if comp is None or not any(r.model is not None for r in comp.runs):
    st.info("These probes read the models trained on the Compare page; train a comparison there first.")
    st.stop()
ds = comp.dataset
st.markdown(f"Models from the latest comparison: **{ds.description}**")
wrt = st.radio("Gradient with respect to", ["hidden", "input"], horizontal=True, **ui.setting("w_mem_wrt"),
               format_func={"hidden": "hidden state h(t−k)", "input": "input x(t−k)"}.get)
grads = probes.gradients_before_after(comp.runs, ds, wrt)
ui.chart(charts.gradient_through_time(grads), "mem_grads",
      "How strongly the loss at the prediction point depends on the state (or input) k steps earlier, averaged "
      "over 256 test sequences; log scale. Dashed: the same model before training, solid: after. A line that "
      "falls steeply means that model can hardly learn from, or use, what lies that far back. The FFNN has no "
      "state, so it shows its inputs: non-zero only inside its window.")

gated = [r for r in comp.runs if r.model is not None and r.model_config.kind in ("lstm", "gru")]
if not gated:
    st.info("Gate activations need an LSTM or GRU in the comparison.")
    st.stop()
labels = list(dict.fromkeys(r.label for r in gated))
c1, c2 = st.columns(2)
label = c1.selectbox("Model", labels, **ui.setting("w_mem_gate_model"))
index = c2.number_input("Test sample", 0, len(ds.test) - 1, 0, **ui.setting("w_mem_sample"))
run = next(r for r in gated if r.label == label)
x = ds.test.x[int(index)]
gates = probes.gate_activations(run.model, x)
names = ("input", "forget", "output") if run.model_config.kind == "lstm" else ("reset", "update")
answer = ds.class_names[int(ds.test.y[int(index)])] if ds.class_names and not ds.per_step else None
title = f"{label} gates along test sample {int(index)}" + (f" (answer: {answer})" if answer else "")
ui.chart(charts.gate_heatmaps(gates, probes.step_labels(ds, x), names, title),
      "mem_gates",
      "Rows are hidden units, columns the input's steps. An LSTM forget gate near 1 keeps the cell's content; "
      "an input gate near 1 writes the current input. For the GRU, an update gate near 1 keeps the old state.")
