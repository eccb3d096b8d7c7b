from functools import partial

import pandas as pd
import streamlit as st

from lib import charts, costs, hosting, reference
from lib.errors import ConfigError, LookbackError
from lib.models import ESSAY_KINDS, MODEL_KINDS, ModelConfig, ModelIO, build_model, match_params
from lib.runtime import environment, resolve_device
from lib.settings import Settings
from lib.tables import human_table
from lib.train import TrainConfig
from pages import _form, _run, _shown
from pages._state import Shown, current_job, show_on, shown_on

P = "w_cost"
st.title("Costs")
st.caption("Parameters and FLOPs are computed; seconds and bytes are measured on this machine.")

task = _form.task_picker(P)
ds = _form.checked_dataset(task, "Cannot size these models")
if ds is None:
    st.stop()
io = ModelIO.from_dataset(ds)
c1, c2 = st.columns([3, 1])
kinds = _form.kind_picker(c1, "Models", f"{P}_kinds", list(ESSAY_KINDS))
window = c2.number_input("FFNN window", *_form.LIMITS["window"], min(task.cue_lag or 5, ds.seq_len),
                         **_form.setting(f"{P}_window"))
# Only what changes a model's size or a training step's time: no epochs, seeds or learning rate here.
train_cfg, _, opts = _form.train_settings(P, fields=("hidden", "layers", "dropout", "batch", "budget"))
try:
    if not kinds:
        raise ConfigError("choose at least one model.")
    models = _form.build_models(task, kinds, [int(window)], opts)
    built = {m.label: build_model(m, io) for m in models}
except LookbackError as err:
    st.error(f"Cannot size these models: {err}")
    st.stop()
form = Settings(task, models, TrainConfig(batch_size=train_cfg.batch_size), (), budget=opts["budget"])


def form_values(s: Settings) -> dict:
    """The widget values that give the settings `s` (the Restore button)."""
    windows = [m.window for m in s.models if MODEL_KINDS[m.kind].windowed]
    return {**_form.task_values(P, s.task), **_form.train_values(P, s), f"{P}_kinds": _form.kinds_of(s.models),
            **({f"{P}_window": windows[0]} if windows else {})}


st.header("Parameters and FLOPs")
_shown.chart(charts.param_bars({label: costs.param_groups(m) for label, m in built.items()}), "cost_params",
             "Stacked bars count parameters per layer group. The FFNN's first layer grows with window × features per "
             "step; a recurrent layer's size does not depend on the sequence length.")
flops = pd.DataFrame([{"label": m.label, "n_params": costs.param_groups(built[m.label])["total"],
                       **costs.flops(m, io)} for m in models])
st.dataframe(human_table(flops), hide_index=True, key="cost_flops_table")
st.caption("FLOPs per sample, counting matrix multiply-adds (1 MAC = 2 FLOPs); a training step ≈ 3× forward.")
_shown.download(flops.drop(columns=["groups"]), "lookback-costs-flops", "cost_flops_dl", form)



def finish(job) -> None:
    """Keep what was measured, also the models measured before a cancel or the time limit."""
    frame = job.result if job.result is not None else pd.DataFrame(job.finished) if job.finished else None
    if frame is not None and len(frame):
        extra = {k: job.meta[k] for k in ("what", "kinds") if k in job.meta}  # a scaling measurement's choice
        show_on(job.meta["key"], Shown(job.meta["task"], frame, job.meta.get("settings"), job.cancelled,
                                       planned=job.total_runs, extra=extra))
    elif job.cancelled:
        st.info("Stopped before any model was measured; nothing to show.")


def panel(key: str) -> None:
    """The progress of this session's measurement `key`, where its result will appear."""
    job = current_job()
    if job is not None and job.meta.get("key") == key:
        _run.job_panel("costs", finish)


def partial_note(measured: Shown) -> None:
    if len(measured.result) < measured.planned:
        st.warning(f"Stopped after {len(measured.result)} of {measured.planned} measurements; the rest were "
                   f"not measured.")


RUNS_ALONE = ("It runs alone on this server: it waits for any training to finish, and nothing starts while it "
              "runs, so other work does not distort the timings.")

st.header("Measured time, latency and memory")
if st.button("Measure on this machine", type="primary", key="cost_measure", help=RUNS_ALONE):
    _run.measure("costs", "Measuring costs", partial(costs.cost_job, task, models, train_cfg), task, models,
                 {"key": "costs", "settings": form})
panel("costs")
measured = shown_on("costs")
report = None if measured is None else measured.result
if measured is not None:
    _shown.result_header(measured.settings, form, form_values(measured.settings), "cost", groups=("Task", "Models"),
                         changed="Measured with other settings than the form's")
    st.caption(f"Timed with batches of {measured.settings.train.batch_size} sequences, on this machine.")
    partial_note(measured)
    _shown.chart(charts.flops_and_time(report), "cost_flops_time",
                 "Left: what the arithmetic says a training step should cost. Middle and right: what it took here. "
                 "When the bars disagree, the kernels matter more than the FLOPs.")
    note = costs.flops_vs_time_note(report)
    if note:
        st.warning(note)
    st.dataframe(human_table(report.drop(columns=["hidden", "forward_flops"])), hide_index=True,
                 key="cost_report_table")
    st.caption("Wall seconds are the clock time, CPU seconds the processor time this process spent; medians. "
               "The spread is the interquartile range of the timed steps: two times closer than it are not ranked.")
    _shown.download(report, "lookback-costs-measured", "cost_dl", measured.settings)
elif not _run.training_here("costs"):
    st.info("Press Measure to time one training epoch and the inference latency of every model above.")

st.header("Scaling")
c1, c2, c3 = st.columns([1, 2, 1])
what = c1.radio("Grow", ["hidden", "seq_len"], horizontal=True, **_form.setting(f"{P}_what"),
                format_func={"hidden": "hidden size", "seq_len": "sequence length"}.get)
story_recurrent = [k for k in _form.kinds_of(reference.STORY_MODELS) if k in _form.RECURRENT]
if what == "hidden":
    scale_kinds = _form.kind_picker(c2, "Models", f"{P}_scale_kinds", story_recurrent, options=_form.RECURRENT)
else:  # every mechanism: a window stays flat, recurrence and convolution grow linearly, attention faster
    scale_kinds = _form.kind_picker(c2, "Models", f"{P}_seq_kinds", list(MODEL_KINDS))
cap = _form.LIMITS["hidden"][1] if what == "hidden" else hosting.limits().distance  # this server's cap on either
values = tuple(v for v in (costs.HIDDEN_VALUES if what == "hidden" else costs.LENGTH_VALUES) if cap is None or v <= cap)
c3.caption(f"Values: {', '.join(map(str, values))}; random sequences of 16 features, batches of 64.")
if st.button("Measure scaling", key="cost_scale", disabled=not scale_kinds, help=RUNS_ALONE):
    _run.measure("costs", "Measuring scaling", partial(costs.scaling_job, list(scale_kinds), what, values), task,
                 [ModelConfig(kind=k, hidden=v if what == "hidden" else 64) for k in scale_kinds for v in values],
                 {"key": "scaling", "what": what, "kinds": list(scale_kinds)})
panel("scaling")
if (scaled := shown_on("scaling")) is not None:
    if (scaled.extra["what"], scaled.extra["kinds"]) != (what, list(scale_kinds)):
        st.warning("Measured for another choice than the one above; press Measure scaling to time that one.",
                   icon=":material/sync_problem:")
    _shown.chart(charts.scaling_lines(scaled.result), "cost_scaling",
                 "One line per model, log-log axes: a slope of 1 means time or memory grows in proportion to the "
                 "size, 2 with its square. The legend gives each line's fitted slopes; compare the measured ones "
                 "with the FLOPs'.")
    for note in (costs.depth_note(scaled.result), costs.attention_note(scaled.result)):
        if note is not None:
            st.markdown(note)
    partial_note(scaled)
    names = {"label": "model", "value": "hidden units" if scaled.extra["what"] == "hidden" else "sequence length",
             "n_params": "parameters", "step_seconds": "wall s / step", "peak_memory_mb": "peak memory (MB)",
             "sequential_depth": "sequential layer steps", "train_flops": "training FLOPs / sample"}
    _shown.download(human_table(scaled.result, names), "lookback-costs-scaling", "cost_scale_dl")

st.header("Parameter-matched view")
budget = st.number_input("Parameter budget", 1000, 2_000_000, 20_000, 1000, **_form.setting(f"{P}_match"))
matched = []
for kind in kinds:
    m = match_params(ModelConfig(kind=kind, window=int(window)), io, int(budget))
    matched.append({"label": m.label, "hidden": m.hidden, "n_params": costs.param_groups(build_model(m, io))["total"],
                    "train_flops": costs.flops(m, io)["train_flops"]})
st.dataframe(human_table(pd.DataFrame(matched)), hide_index=True, key="cost_matched")
st.caption("Each kind sized to the budget by its hidden units; set the same budget under Advanced settings on "
           "Compare to train them matched.")

st.header("Environment")
env = (report.iloc[0][list(costs.ENV_COLUMNS)].to_dict() if report is not None
       else environment(resolve_device("auto")))
st.json(env)
fused = " and ".join(kind.title for kind in MODEL_KINDS.values() if kind.fused_on_cpu)
st.caption(("The measured times above were taken with these settings." if report is not None else
            "The scaling times above were measured on this machine, whose settings these are." if scaled is not None
            else "No timing has been taken yet: these are the settings this machine would measure with (press "
                 "Measure on this machine above).")
           + f" On CPU, PyTorch runs the {fused} through one fused oneDNN kernel when mkldnn is enabled, while the "
             "other recurrent models step through time in a loop.")
