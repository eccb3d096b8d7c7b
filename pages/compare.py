import streamlit as st

from lib import charts, reference
from lib.errors import ConfigError
from lib.experiments import Comparison, compare, dataset, validate_models
from lib.stats import results_table, verdict
from pages import _ui as ui

ui.use_app_navigation()
st.title("Compare models")
st.caption("Train a fixed-window FFNN, a vanilla RNN, a GRU and an LSTM on the same split and seeds.")

task = ui.task_picker("w_cmp")
ds = ui.checked_dataset(task)
c1, c2 = st.columns([2, 1])
kinds = c1.multiselect("Models", list(ui.KIND_LABELS), default=["ffnn", "rnn", "lstm"], format_func=ui.KIND_LABELS.get,
                       **ui.setting("w_cmp_kinds"))
window = c2.number_input("FFNN window (steps)", *ui.LIMITS["window"], 5, **ui.setting("w_cmp_window"))
c1, c2 = st.columns(2)
add_reach = c1.checkbox("Also train an FFNN whose window reaches the decisive input", True, **ui.setting("w_cmp_reach"))
force = c2.checkbox("Retrain runs already stored", False, **ui.setting("w_cmp_force"),
                    help="Identical settings and seed normally reuse the stored result instantly.")
train_cfg, seeds, opts = ui.train_settings("w_cmp")

if st.button("Train", type="primary", key="cmp_run", disabled=ds is None):
    try:
        windows = sorted({int(window), ui.reach(task)} if add_reach and ui.reach(task) else {int(window)})
        models = ui.build_models(task, kinds, windows, opts)
        validate_models(task, models, seeds)
        train_cfg.validate()
    except ConfigError as err:
        st.error(f"Cannot train: {err}")
    else:
        store = ui.run_store()

        def job(**callbacks):
            return compare(task, models, train_cfg, seeds, store=store, force=force, **callbacks)
        ui.start_job("compare", "Compare", job, total_runs=len(models) * len(seeds), epochs=train_cfg.epochs,
                  meta={"task": task})


def finish(job) -> None:
    """Keep whatever finished, also when the job was cancelled or failed part-way."""
    if job.result is not None:
        ui.results()["compare"] = job.result
    elif job.finished:
        ui.results()["compare"] = Comparison(job.meta["task"], job.finished, dataset(job.meta["task"]))


ui.job_panel("compare", finish)

comp: Comparison | None = ui.results().get("compare")
st.divider()
if comp is not None:
    summary, history, ds = comp.summary(), comp.history(), comp.dataset
    st.subheader("Result")
    if comp.cancelled:
        st.warning("This comparison was cancelled; the runs that finished are shown.")
else:
    ref = reference.load("compare_text")
    if ref is None or ui.training_here("compare"):
        if not ui.training_here("compare"):
            st.info("Choose a task and models, then press Train. Results stay here while you visit other pages.")
        st.stop()
    summary, history, ds = ref["frames"]["summary"], ref["frames"]["history"], dataset(ref["task"])
    st.subheader("Reference result")
    st.info(ui.reference_note(ref))
st.markdown(f"**Task:** {ds.description}")
for _, row in summary[summary["status"] == "diverged"].iterrows():
    st.error(f"{row['label']} (seed {row['seed']}) diverged: {row['message']}")
st.success(verdict(summary, ds.metric, ds.higher_is_better, ds.chance))

c1, c2 = st.columns(2)
x = c1.radio("x-axis", ["epoch", "elapsed_seconds"], horizontal=True, **ui.setting("w_cmp_x"),
             format_func={"epoch": "epoch", "elapsed_seconds": "wall-clock seconds"}.get)
log_y = c2.toggle("Log-scale loss", **ui.setting("w_cmp_logy"))
ui.chart(charts.loss_curves(history, x=x, log_y=log_y), "cmp_loss",
      "Each colour is one model; dashed is training loss, solid is validation loss; the band spans the seeds. "
      "A curve that sits flat and then drops is a model that found the cue late.")
st.dataframe(results_table(summary, ds.metric), hide_index=True, key="cmp_table")
st.caption(f"± is the 95% confidence half-width across seeds (0 with one seed). Threshold: "
           f"{'0.95 validation accuracy' if ds.higher_is_better else 'the best naive baseline'}.")
ui.chart(charts.metric_bars(summary, ds.metric, ds.chance, {k: v for k, v in ds.baselines.items()
                                                         if k.endswith("_mse")}),
      "cmp_bars", "Bars are means over seeds, dots single seeds; grey lines mark chance or naive baselines.")
ui.download(summary, "lookback-compare", "cmp_dl")
