from dataclasses import replace
from functools import partial

import streamlit as st

from lib import agreement, charts, probes, reference
from lib.errors import ConfigError, LookbackError
from lib.experiments import distance_configs, distance_sweep, load_distance_sweep
from lib.models import MODEL_KINDS
from lib.runs import dataset
from lib.settings import TASK_TITLES, Settings, fmt
from lib.stats import cancel_note, distance_verdict
from lib.tasks import TASKS
from pages import _form, _run, _shown
from pages._state import Shown, show_on, shown_on

P = "w_mem"
st.title("Memory")
st.caption("How far back can each model still use what it saw? Measured three ways.")

st.header("Accuracy against dependency distance")
task = _form.task_picker(P)
if task.distance_field is None:
    with_knob = ", ".join(TASK_TITLES[name].lower() for name, (cls, _) in TASKS.items() if cls.distance_field)
    st.info(f"{TASK_TITLES[task.name]} has no dependency-distance knob; pick one that has: {with_knob}.")
    task = None
c1, c2, c3 = st.columns([2, 2, 1])
text = c1.text_input("Distances (comma-separated)", fmt(reference.DISTANCES["distance_text"]),
                     **_form.setting(f"{P}_dists"),
                     help="The sweep trains every model at each of these distances; they replace the task's own.")
kinds = _form.kind_picker(c2, "Models", f"{P}_kinds", _form.kinds_of(reference.DISTANCE_MODELS))
window = c3.number_input("FFNN window", *_form.LIMITS["window"], 5, **_form.setting(f"{P}_window"))
ds = _form.checked_dataset(task, "Cannot run the sweep") if task is not None else None
train_cfg, seeds, opts = _form.train_settings(P, metric=ds.metric if ds is not None else "metric")


def form_values(s: Settings) -> dict:
    """The widget values that give the settings `s` (Restore and Load buttons)."""
    windows = [m.window for m in s.models if MODEL_KINDS[m.kind].windowed]
    return {**_form.task_values(P, s.task), **_form.train_values(P, s), f"{P}_dists": fmt(s.distances),
            f"{P}_kinds": _form.kinds_of(s.models), **({f"{P}_window": windows[0]} if windows else {})}


form = None  # the settings the form holds, when they can be trained: checked before anything trains
if ds is not None:
    try:
        distances = _form.parse_numbers(text, "distances")
        lo, hi = _form.LIMITS["dist" if task.distance_field == "distance" else "gap"]
        if bad := [d for d in distances if not lo <= d <= hi]:
            raise ConfigError(f"distances must each be between {lo} and {hi}; "
                              f"{fmt(bad)} {'is' if len(bad) == 1 else 'are'} not.")
        distance_configs(task, distances)
        form = Settings(task, _form.build_models(task, kinds, [int(window)], opts), train_cfg, seeds,
                        distances=distances, budget=opts["budget"])
    except LookbackError as err:
        st.error(f"Cannot run the sweep: {err}")


def plan():
    return form.models, len(form.distances), partial(distance_sweep, task, form.distances, form.models, train_cfg,
                                                     seeds)


if st.button("Run the distance sweep", type="primary", key="mem_run", disabled=form is None) and form is not None:
    _run.launch("memory", "Distance sweep", task, train_cfg, seeds, plan, "Cannot run the sweep",
                meta={"settings": form})


_run.job_panel("memory", partial(_shown.keep_result, "memory"))
mem = shown_on("memory")
if not _run.training_here("memory") and (loaded := _shown.linked(list(mem.run_ids) if mem else [],
                                                                 load_distance_sweep)):
    mem_task, sweep, runs = loaded
    distances = tuple(sorted(set(sweep["distance"].astype(int))))
    mem = Shown.of(mem_task, sweep, replace(Settings.of_runs(mem_task, runs), distances=distances))
    show_on("memory", mem)
if mem is not None:
    mem_task, sweep, shown = mem.task, mem.result, mem.settings
    _shown.link_runs(list(mem.run_ids))  # a copied link shows these runs, loaded from the store
    st.subheader("Result")
    _shown.result_header(shown, form, form_values(shown), "mem", dataset(mem_task).metric)
    if mem.cancelled:
        st.warning(cancel_note(sweep, shown.planned_runs))
elif not _run.training_here("memory") and (ref := reference.matching("distance", form)) is not None:
    _shown.link_runs([])
    mem_task, sweep = ref["task"], ref["frames"]["summary"]
    shown = ref["settings"]
    st.subheader("Reference result")
    st.info(_shown.reference_note(ref))
    _shown.result_header(shown, form, form_values(shown), "mem", dataset(mem_task).metric)
else:
    mem_task = None
    if not _run.training_here("memory"):
        st.info("Run the distance sweep to train every model at every distance.")
        _shown.reference_offers("distance", form_values, "mem_ref")
if mem_task is not None:
    ds = dataset(mem_task)
    st.success(distance_verdict(sweep, ds.metric, ds.higher_is_better, ds.chance, n_test=len(ds.test)))
    for note in agreement.disagreement(shown, sweep, ds.metric, ds.higher_is_better) if mem is not None else ():
        st.warning(note, icon=":material/difference:")
    _shown.sweep_result(charts.metric_vs_distance(sweep, ds.metric, ds.distance_name, ds.chance), "mem_distance",
                        "Each line is one model's test accuracy as the decisive input moves further back (the band "
                        "spans the seeds, lowest to highest). A fixed-window FFNN drops to chance once the distance "
                        "passes its window; a model with working memory stays up.", sweep, "lookback-distance-sweep",
                        shown)


def probed(comp, what: str, make):
    """A probe of the comparison's models, computed once per comparison (the shipped reference models' once
    per server) and kept while it is the latest comparison."""
    if comp is _shown.reference_models():
        return _shown.reference_probe(what, make)
    if st.session_state.get("mem_probes", (None,))[0] is not comp:
        st.session_state["mem_probes"] = (comp, {})
    cache = st.session_state["mem_probes"][1]
    if what not in cache:
        with st.spinner("Probing the models…"):
            cache[what] = make()
    return cache[what]


st.header("Gradients through time and gates")
comp, whose = _shown.probe_models()
if comp is None:
    st.info("These probes read the models trained on the Compare page; train a comparison there first.")
    st.stop()
ds = comp.dataset
st.markdown(whose)
wrt = st.radio("Gradient with respect to", ["hidden", "input"], horizontal=True, **_form.setting(f"{P}_wrt"),
               format_func={"hidden": "hidden state h(t−k)", "input": "input x(t−k)"}.get)
grads = probed(comp, f"grads-{wrt}", lambda: probes.gradients_before_after(comp.runs, ds, wrt))
_shown.chart(charts.gradient_through_time(grads), "mem_grads",
             "How strongly the loss at the prediction point depends on the state (or input) k steps earlier, averaged "
             "over 256 test sequences, each curve divided by its own value one step back (k = 1, the first step only "
             "memory reaches), so that curves compare by how fast they fall, not by their size; log scale. Solid: "
             "each model as it starts training, which decides what it can learn: a line that falls steeply means "
             "that model can hardly learn from what lies that far back. Dotted: after training (a trained model's "
             "loss is near 0, so only the shape of its curve says something). The FFNN has no state, so it shows its "
             "inputs: non-zero only inside its window.")

attending = [r for r in comp.runs if r.model is not None and MODEL_KINDS[r.model_config.kind].memory == "attention"]
if attending:  # the attention analogue of the gate heat maps below
    st.subheader("Attention along the probe input")
    names = list(dict.fromkeys(r.label for r in attending))
    c1, c2 = st.columns(2)
    a_label = c1.selectbox("Model", names, **_form.setting(f"{P}_attn_model"))
    a_index = int(c2.number_input("Test sample", 0, len(ds.test) - 1, 0, **_form.setting(f"{P}_attn_sample")))
    a_run, a_x = next(r for r in attending if r.label == a_label), ds.test.x[a_index]
    maps = probed(comp, f"attn-{a_label}-{a_index}", lambda: probes.attention_weights(a_run.model, a_x))
    _shown.chart(charts.attention_maps(maps, probes.step_labels(ds, a_x), probes.cue_step(ds),
                                       f"{a_label} attention along test sample {a_index}"), "mem_attention",
                 "Each map is one head: row t is how step t spreads its attention over the steps up to it (rows sum "
                 "to 1). The last row is what the prediction point reads; a bright cell under the dashed line means "
                 "that head looks straight back at the decisive input.")

gated = [r for r in comp.runs if r.model is not None and MODEL_KINDS[r.model_config.kind].gate_names]
if not gated:
    titles = " or ".join(kind.title for kind in MODEL_KINDS.values() if kind.gate_names)
    st.info(f"Gate activations need a {titles} in the comparison.")
    st.stop()
labels = list(dict.fromkeys(r.label for r in gated))
c1, c2 = st.columns(2)
label = c1.selectbox("Model", labels, **_form.setting(f"{P}_gate_model"))
index = int(c2.number_input("Test sample", 0, len(ds.test) - 1, 0, **_form.setting(f"{P}_sample")))
run = next(r for r in gated if r.label == label)
x = ds.test.x[index]
answer = ds.class_names[int(ds.test.y[index])] if ds.class_names and not ds.per_step else None
title = f"{label} gates along test sample {index}" + (f" (answer: {answer})" if answer else "")
gates = probed(comp, f"gates-{label}-{index}", lambda: probes.gate_activations(run.model, x))
_shown.chart(charts.gate_heatmaps(gates, probes.step_labels(ds, x), MODEL_KINDS[run.model_config.kind].gate_names,
                                  title), "mem_gates",
             "Rows are hidden units, columns the input's steps. An LSTM forget gate near 1 keeps the cell's content; "
             "an input gate near 1 writes the current input. For the GRU, an update gate near 1 keeps the old state.")
