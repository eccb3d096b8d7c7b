from functools import partial

import pandas as pd
import streamlit as st

from lib import agreement, charts, reference, trivial
from lib.errors import LookbackError
from lib.experiments import Comparison, compare
from lib.models import MODEL_KINDS, ModelIO
from lib.runs import dataset
from lib.settings import Settings
from lib.stats import cancel_note, eta_text, results_table, timing_note, verdict
from lib.tasks.text import TextRecallConfig
from lib.tasks.video import VideoConfig
from lib.window_cost import window_cost
from pages import _form, _run, _shown
from pages._state import Shown, show_on, shown_on

P = "w_cmp"
STRONGEST = {"Distance 40": TextRecallConfig(distance=40), "The video task": VideoConfig()}  # the cost point, larger
QUICK = {f"{P}_n": 1000, f"{P}_clips": 600, f"{P}_epochs": 10, f"{P}_seeds": 1}  # seconds on 2 cores

st.title("Compare models")
st.caption(f"Train fixed-window models ({', '.join(k.name for k in MODEL_KINDS.values() if k.windowed)}) and "
           f"memory models ({', '.join(k.name for k in MODEL_KINDS.values() if not k.windowed)}) on the same split "
           "and seeds.")

task = _form.task_picker(P)
ds = _form.checked_dataset(task)
c1, c2 = st.columns([2, 1])
kinds = _form.kind_picker(c1, "Models", f"{P}_kinds", _form.kinds_of(reference.STORY_MODELS))
presets = c1.container(horizontal=True)
for name, models in (("The essay's four", reference.STORY_MODELS), ("Modern baselines", reference.MODERN_MODELS)):
    presets.button(name, key=f"cmp_preset_{name.split()[-1].lower()}", icon=":material/tune:",
                   on_click=lambda m=models: st.session_state.update({f"{P}_kinds": _form.kinds_of(m)}),
                   help=", ".join(MODEL_KINDS[k].title for k in _form.kinds_of(models)))
window = c2.number_input("FFNN window (steps)", *_form.LIMITS["window"], 5, **_form.setting(f"{P}_window"))
c1, c2 = st.columns(2)
add_reach = c1.checkbox("Also train an FFNN whose window reaches the decisive input", True, wrap=True,
                        **_form.setting(f"{P}_reach"))
force = c2.checkbox("Retrain runs already stored", False, wrap=True, **_form.setting(f"{P}_force"),
                    help="Identical settings and seed normally reuse the stored result instantly.")
train_cfg, seeds, opts = _form.train_settings(P, metric=ds.metric if ds is not None else "metric")


def form_values(s: Settings) -> dict:
    """The widget values that give the settings `s` (Restore and Load buttons)."""
    windows = sorted(m.window for m in s.models if MODEL_KINDS[m.kind].windowed)
    others = [w for w in windows if w != s.task.cue_lag]
    values = {**_form.task_values(P, s.task), **_form.train_values(P, s), f"{P}_kinds": _form.kinds_of(s.models)}
    if windows:
        values |= {f"{P}_window": (others or windows)[0], f"{P}_reach": s.task.cue_lag in windows}
    return values


form = None  # the settings the form holds, when they can be trained
if ds is not None:
    try:
        reach = {task.cue_lag} if add_reach and task.cue_lag else set()
        form = Settings(task, _form.build_models(task, kinds, sorted({int(window)} | reach), opts), train_cfg, seeds,
                        budget=opts["budget"])
    except LookbackError as err:
        st.error(f"Cannot train: {err}")


def plan():
    return form.models, 1, partial(compare, task, form.models, train_cfg, seeds, force=force)


row = st.container(horizontal=True)  # the buttons keep their words on a narrow screen
if row.button("Train", type="primary", key="cmp_run", disabled=form is None) and form is not None:
    _run.launch("compare", "Compare", task, train_cfg, seeds, plan, "Cannot train", meta={"settings": form})
row.button("Quick settings", key="cmp_quick", on_click=_form.restore, args=(QUICK,),
           help="1,000 sentences (600 clips), at most 10 epochs, one seed: a comparison in seconds, to explore. "
                "Numbers from so little training are rough; train with the full settings before you trust them.")
if (note := agreement.smaller_budget(form)) is not None:
    st.warning(note, icon=":material/speed:")


def finish(job) -> None:
    """Keep whatever finished, also when the job was cancelled or failed part-way."""
    if job.result is None and job.finished:
        job.result = Comparison(job.meta["task"], job.finished, dataset(job.meta["task"]), cancelled=True)
    if job.result is not None:
        shown = job.meta.get("settings") or Settings.of_runs(job.result.task, job.result.runs)
        show_on("compare", Shown.of(job.result.task, job.result, shown, job.result.cancelled))
    elif job.cancelled:
        st.info("Cancelled before any run finished; nothing to show.")


def live(job) -> None:
    """The loss curves of the runs so far, drawn as they train, and the time still needed."""
    rows = [{"label": label, "seed": seed, **r} for (label, seed), records in list(job.curves.items())
            for r in records]
    if rows:
        st.plotly_chart(charts.loss_curves(pd.DataFrame(rows)), key="cmp_live", width="stretch")
    if (eta := eta_text(job.seconds(), job.fraction())) is not None:
        st.caption(f"Training: {eta}.")


_run.job_panel("compare", finish, live)
st.divider()

own = shown_on("compare")
if not _run.training_here("compare") and (loaded := _shown.linked(list(own.run_ids) if own else [])):
    own = Shown.of(loaded.task, loaded, Settings.of_runs(loaded.task, loaded.runs), loaded.cancelled)
    show_on("compare", own)
if own is not None:
    comp: Comparison = own.result
    shown = own.settings
    summary, history, ds = comp.summary(), comp.history(), comp.dataset
    st.subheader("Result")
    _shown.result_header(shown, form, form_values(shown), "cmp", ds.metric)
    if own.cancelled:
        st.warning(cancel_note(summary, shown.planned_runs))
    measured_on = None
    _shown.link_runs(list(own.run_ids))  # a copied link shows these runs, loaded from the store
else:
    ref = _shown.reference_or_stop("compare", "compare", form, form_values, "cmp_ref", "Choose a task and models, then "
                                   "press Train. Results stay here while you visit other pages.")
    summary, history, ds = ref["frames"]["summary"], ref["frames"]["history"], dataset(ref["task"])
    st.subheader("Reference result")
    st.info(_shown.reference_note(ref))
    _shown.result_header(ref["settings"], form, form_values(ref["settings"]), "cmp", ds.metric)
    shown, measured_on = ref["settings"], f"{ref['meta']['created'][:10]} (precomputed)"
st.markdown(f"**Data:** {ds.description}")
for _, row in summary[summary["status"] == "diverged"].iterrows():
    st.error(f"{row['label']} (seed {row['seed']}) diverged: {row['message']}")
rows = trivial.run_rows(comp.runs, ds) if own is not None else None  # per-row test outcomes: paired noise
st.success(verdict(summary, ds.metric, ds.higher_is_better, ds.chance, rows=rows, n_test=len(ds.test)))
for note in agreement.disagreement(shown, summary, ds.metric, ds.higher_is_better) if own is not None else ():
    st.warning(note, icon=":material/difference:")

c1, c2 = st.columns(2)
x = c1.radio("x-axis", ["epoch", "elapsed_seconds"], horizontal=True, **_form.setting(f"{P}_x"),
             format_func={"epoch": "epoch", "elapsed_seconds": "wall-clock seconds"}.get)
log_y = c2.toggle("Log-scale loss", **_form.setting(f"{P}_logy"))
_shown.chart(charts.loss_curves(history, x=x, log_y=log_y, noise_floor=ds.noise_floor), "cmp_loss",
             "Each colour is one model; dashed is training loss, solid is validation loss; the band spans the seeds. "
             "A curve that sits flat and then drops is a model that found the cue late; dots (open: training) are "
             "a model that stopped after its first epoch.")
st.dataframe(results_table(summary, ds.metric, measured_on), hide_index=True, key="cmp_table")
st.caption(f"± is the 95% confidence half-width across seeds (0 with one seed). Threshold: "
           f"{'0.95 validation accuracy' if ds.higher_is_better else 'the best naive baseline'}. Wall seconds are "
           "the clock time of an epoch, CPU seconds the processor time this process spent in it.")
if (note := timing_note(summary)) is not None:
    st.caption(note)
if (cost := window_cost(shown.models, ModelIO.from_dataset(ds), shown.task)) is not None:
    st.markdown(f"**What memory costs in parameters:** {cost}")
    where = st.container(horizontal=True, vertical_alignment="center")
    where.caption("Where the point is strongest: a cue further back, or inputs of many features per step.")
    for name, case in STRONGEST.items():
        where.button(name, key=f"cmp_case_{case.name}", icon=":material/open_in_new:",
                     on_click=_form.restore, args=(_form.task_values(P, case) | {f"{P}_reach": True},),
                     help="Puts this task's settings into the form above; press Train to see the point there.")
_shown.chart(charts.metric_bars(summary[summary["status"] == "completed"], ds.metric, ds.chance,
                                trivial.baseline_lines(ds.baselines), ds.noise_floor), "cmp_bars",
             "Bars are means over seeds, dots single seeds; grey lines mark chance, the naive baselines and, where "
             "the task knows it, the noise floor (the lowest MSE any forecast can reach).")
_shown.download(summary, "lookback-compare", "cmp_dl", shown)
