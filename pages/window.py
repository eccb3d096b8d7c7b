from dataclasses import replace
from functools import partial

import streamlit as st

from lib import charts, reference
from lib.errors import ConfigError
from lib.experiments import default_window_range, window_grid, window_sweep
from lib.models import MODEL_KINDS
from lib.settings import Settings, fmt
from lib.stats import cancel_note, window_verdict
from pages import _ui as ui

P = "w_win"
st.title("Window tradeoff")
st.caption("How wide must a feed-forward net's window be to match a recurrent model, and what does it cost?")

task = ui.task_picker(P)
ds = ui.checked_dataset(task, "Cannot run the sweep")
cue = task.cue_lag
seq_len = ds.seq_len if ds is not None else 1
first, last, how_many = default_window_range(seq_len, cue)
c1, c2, c3 = st.columns(3)
lo = c1.number_input("Smallest window", *ui.LIMITS["lo"], first, **ui.setting(f"{P}_lo"))
hi = c2.number_input("Largest window", *ui.LIMITS["hi"], last, **ui.setting(f"{P}_hi"))
count = c3.number_input("Windows to try", *ui.LIMITS["count"], how_many, **ui.setting(f"{P}_count"))
windows = None  # the FFNN windows the form asks for, when it can
if ds is not None:
    try:
        windows = window_grid(int(lo), int(hi), int(count), seq_len, cue)
        st.caption(f"Windows: {fmt(windows)}" + (f" (the decisive input is {cue} steps back)" if cue else "")
                   + (f"; the range stops at the sequence length, {seq_len} steps" if hi > seq_len else ""))
    except ConfigError as err:
        st.error(f"Cannot run the sweep: {err}")
refs = ui.kind_picker(st, "Recurrent references", f"{P}_refs", ui.kinds_of(reference.WINDOW_REFERENCES),
                      options=ui.RECURRENT)
train_cfg, seeds, opts = ui.train_settings(P, metric=ds.metric if ds is not None else "metric")


def form_values(s: Settings) -> dict:
    """The widget values that give the settings `s` (Restore and Load buttons)."""
    w = s.windows
    grid = next((c for c in (len(w), len(w) - 1) if c >= 2 and window_grid(w[0], w[-1], c, w[-1], s.task.cue_lag)
                 == list(w)), len(w))
    return {**ui.task_values(P, s.task), **ui.train_values(P, s), f"{P}_lo": w[0], f"{P}_hi": w[-1],
            f"{P}_count": grid, f"{P}_refs": ui.kinds_of(m for m in s.models if not MODEL_KINDS[m.kind].windowed)}


form = None  # the settings the form holds, when they can be trained: checked before anything trains
if windows is not None:
    try:
        ffnn = ui.build_models(task, [ui.WINDOWED], [1], opts)[0]
        references = ui.build_models(task, refs, [], opts)
        form = Settings(task, [*(replace(ffnn, window=w) for w in windows), *references], train_cfg, seeds,
                        windows=windows, budget=opts["budget"])
    except ConfigError as err:
        st.error(f"Cannot run the sweep: {err}")


def plan():
    ffnn, references = form.models[0], [m for m in form.models if not MODEL_KINDS[m.kind].windowed]
    return form.models, 1, partial(window_sweep, task, form.windows, train_cfg, seeds, ffnn=ffnn,
                                   references=references)


if st.button("Run the sweep", type="primary", key="win_run", disabled=form is None) and form is not None:
    ui.launch("window", "Window sweep", task, train_cfg, seeds, plan, "Cannot run the sweep", meta={"settings": form})


def finish(job) -> None:
    if not ui.keep_result("window", job) and job.cancelled:
        st.info("Cancelled before any run finished; nothing to show.")


ui.job_panel("window", finish)
st.divider()
own = ui.results().get("window")
if not ui.training_here("window") and (loaded := ui.linked(list(own[1]["run_id"]) if own else [])):
    windows = sorted({r.model_config.window for r in loaded.runs if MODEL_KINDS[r.model_config.kind].windowed})
    ui.results()["window"], ui.results()["window_cancelled"] = (loaded.task, loaded.summary()), False
    ui.results()["window_settings"] = replace(Settings.of_runs(loaded.task, loaded.runs), windows=windows)
if "window" in ui.results():
    task, sweep = ui.results()["window"]
    shown, ds = ui.results()["window_settings"], ui.shared_dataset(task)
    ui.link_runs(list(sweep["run_id"].dropna()))  # a copied link shows these runs, loaded from the store
    st.subheader("Result")
    ui.result_header(shown, form, form_values(shown), "win", ds.metric)
    if ui.results().get("window_cancelled"):
        st.warning(cancel_note(sweep, shown.planned_runs))
else:
    ref = ui.reference_or_stop("window", "window", form, form_values, "win_ref",
                               "Pick the windows and press Run the sweep. Each window trains its own FFNN.")
    task, sweep, shown = ref["task"], ref["frames"]["summary"], ref["settings"]
    ds = ui.shared_dataset(task)
    st.subheader("Reference result")
    st.info(ui.reference_note(ref))
    ui.result_header(shown, form, form_values(shown), "win", ds.metric)
st.markdown(f"**Data:** {ds.description}")
st.success(window_verdict(sweep, ds.metric, ds.higher_is_better, task.cue_lag))
ui.sweep_result(charts.window_tradeoff(sweep, ds.metric, task.cue_lag, ds.chance), "win_chart",
                "Left: the FFNN's test metric against its window (dots joined; band across seeds); dotted lines are "
                "the recurrent references. Middle: parameters grow linearly with the window. Right: wall-clock "
                "seconds per epoch. The dashed vertical line marks the window that first reaches the decisive "
                "input.", sweep, "lookback-window-sweep", shown)
