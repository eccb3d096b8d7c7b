import pandas as pd
import streamlit as st

from lib import charts, costs
from lib.errors import ConfigError
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, build_model, match_params
from lib.runtime import environment, resolve_device
from pages import _ui as ui

ui.use_app_navigation()
st.title("Costs")
st.caption("Parameters and FLOPs are computed; seconds and bytes are measured on this machine.")

task = ui.task_picker("w_cost")
ds = ui.checked_dataset(task)
if ds is None:
    st.stop()
io = ModelIO.from_dataset(ds)
c1, c2 = st.columns([3, 1])
kinds = c1.multiselect("Models", list(ui.KIND_LABELS), default=list(ui.KIND_LABELS), format_func=ui.KIND_LABELS.get,
                       **ui.setting("w_cost_kinds"))
window = c2.number_input("FFNN window", 1, 400, min(ui.reach(task) or 5, ds.seq_len), **ui.setting("w_cost_window"))
train_cfg, _, opts = ui.train_settings("w_cost")
try:
    models = ui.build_models(task, kinds, [int(window)], opts)
    built = {m.label: build_model(m, io) for m in models}
except ConfigError as err:
    st.error(f"Cannot size these models: {err}")
    st.stop()
if not models:
    st.error("Choose at least one model.")
    st.stop()

st.header("Parameters and FLOPs")
ui.chart(charts.param_bars({label: costs.param_groups(m) for label, m in built.items()}), "cost_params",
      "Stacked bars count parameters per layer group. The FFNN's first layer grows with window × features per "
      "step; a recurrent layer's size does not depend on the sequence length.")
flop_rows = [{"model": m.label, "parameters": costs.param_groups(built[m.label])["total"],
              **{k: v for k, v in costs.flops(m, io).items() if k != "groups"}} for m in models]
st.dataframe(pd.DataFrame(flop_rows), hide_index=True, key="cost_flops_table")
st.caption("FLOPs per sample, counting matrix multiply-adds (1 MAC = 2 FLOPs); a training step ≈ 3× forward.")

st.header("Measured time, latency and memory")
if st.button("Measure on this machine", type="primary", key="cost_measure"):
    with st.spinner("Timing one training epoch, inference latency and peak memory per model…"):
        ui.results()["costs"] = costs.cost_report(ds, models, train_cfg)
report = ui.results().get("costs")
if report is not None:
    ui.chart(charts.flops_and_time(report), "cost_flops_time",
          "Left: what the arithmetic says a training step should cost. Middle and right: what it took here. "
          "When the bars disagree, the kernels matter more than the FLOPs.")
    note = costs.flops_vs_time_note(report)
    if note:
        st.warning(note)
    st.dataframe(report, hide_index=True, key="cost_report_table")
else:
    st.info("Press Measure to time one training epoch and the inference latency of every model above.")

st.header("Scaling")
c1, c2, c3 = st.columns(3)
what = c1.radio("Grow", ["hidden", "seq_len"], horizontal=True, **ui.setting("w_cost_what"),
                format_func={"hidden": "hidden size", "seq_len": "sequence length"}.get)
scale_kinds = c2.multiselect("Models", [k for k in MODEL_KINDS if k != "ffnn"], default=["rnn", "lstm"],
                             format_func=ui.KIND_LABELS.get, **ui.setting("w_cost_scale_kinds"))
values = (16, 32, 64, 128, 256) if what == "hidden" else (10, 25, 50, 100, 200)
c3.caption(f"Values: {', '.join(map(str, values))}")
if st.button("Measure scaling", key="cost_scale", disabled=not scale_kinds):
    with st.spinner("Timing training steps across sizes…"):
        ui.results()["scaling"] = pd.concat([costs.scaling(k, what, values) for k in scale_kinds], ignore_index=True)
if ui.results().get("scaling") is not None:
    ui.chart(charts.scaling_lines(ui.results()["scaling"]), "cost_scaling",
          "Log-log axes: a slope of 1 means time grows in proportion; compare the measured slope with the FLOPs'.")

st.header("Parameter-matched view")
budget = st.number_input("Parameter budget", 1000, 2_000_000, 20_000, 1000, **ui.setting("w_cost_match"))
matched = []
for kind in kinds:
    m = match_params(ModelConfig(kind=kind, window=int(window)), io, int(budget))
    matched.append({"model": m.label, "hidden units": m.hidden,
                    "parameters": costs.param_groups(build_model(m, io))["total"],
                    "training FLOPs / sample": costs.flops(m, io)["train_flops"]})
st.dataframe(pd.DataFrame(matched), hide_index=True, key="cost_matched")
st.caption("Each kind sized to the budget by its hidden units; set the same budget under Advanced settings on "
           "Compare to train them matched.")

st.header("Environment")
env = (report.iloc[0][["device", "device_name", "torch", "threads", "mkldnn"]].to_dict() if report is not None
       else environment(resolve_device("auto")))
st.json(env)
st.caption("Every timing above was taken with these settings. On CPU, PyTorch runs nn.LSTM through a fused "
           "oneDNN kernel when mkldnn is enabled, while nn.RNN and nn.GRU step through time in a loop.")
