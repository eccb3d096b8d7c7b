from dataclasses import replace
from functools import partial

import streamlit as st

from lib import charts, reference
from lib.errors import LookbackError
from lib.experiments import default_window_range, window_grid, window_sweep
from lib.models import MODEL_KINDS
from lib.runs import dataset
from lib.settings import Settings, fmt
from lib.stats import cancel_note, window_verdict
from pages import _form, _run, _shown
from pages._state import Shown, show_on, shown_on

P = "w_win"
st.title("Window tradeoff")
st.caption("How wide must a feed-forward net's window be to match a recurrent model, and what does it cost?")

task = _form.task_picker(P)
ds = _form.checked_dataset(task, "Cannot run the sweep")
cue = task.cue_lag
seq_len = ds.seq_len if ds is not None else 1
first, last, how_many = default_window_range(seq_len, cue)
c1, c2, c3 = st.columns(3)
lo = c1.number_input("Smallest window", *_form.LIMITS["lo"], first, **_form.setting(f"{P}_lo"))
hi = c2.number_input("Largest window", *_form.LIMITS["hi"], last, **_form.setting(f"{P}_hi"))
count = c3.number_input("Windows to try", *_form.LIMITS["count"], how_many, **_form.setting(f"{P}_count"))
windows = None  # the FFNN windows the form asks for, when it can
if ds is not None:
    try:
        windows = window_grid(int(lo), int(hi), int(count), seq_len, cue)
        st.caption(f"Windows: {fmt(windows)}" + (f" (the decisive input is {cue} steps back)" if cue else "")
                   + (f"; the range stops at the sequence length, {seq_len} steps" if hi > seq_len else ""))
    except LookbackError as err:
        st.error(f"Cannot run the sweep: {err}")
refs = _form.kind_picker(st, "Recurrent references", f"{P}_refs", _form.kinds_of(reference.WINDOW_REFERENCES),
                         options=_form.RECURRENT)
train_cfg, seeds, opts = _form.train_settings(P, metric=ds.metric if ds is not None else "metric")


def form_values(s: Settings) -> dict:
    """The widget values that give the settings `s` (Restore and Load buttons)."""
    w = s.windows
    grid = next((c for c in (len(w), len(w) - 1) if c >= 2 and window_grid(w[0], w[-1], c, w[-1], s.task.cue_lag)
                 == list(w)), len(w))
    return {**_form.task_values(P, s.task), **_form.train_values(P, s), f"{P}_lo": w[0], f"{P}_hi": w[-1],
            f"{P}_count": grid, f"{P}_refs": _form.kinds_of(m for m in s.models if not MODEL_KINDS[m.kind].windowed)}


form = None  # the settings the form holds, when they can be trained: checked before anything trains
if windows is not None:
    try:
        ffnn = _form.build_models(task, [_form.WINDOWED], [1], opts)[0]
        references = _form.build_models(task, refs, [], opts)
        form = Settings(task, [*(replace(ffnn, window=w) for w in windows), *references], train_cfg, seeds,
                        windows=windows, budget=opts["budget"])
    except LookbackError as err:
        st.error(f"Cannot run the sweep: {err}")


def plan():
    ffnn, references = form.models[0], [m for m in form.models if not MODEL_KINDS[m.kind].windowed]
    return form.models, 1, partial(window_sweep, task, form.windows, train_cfg, seeds, ffnn=ffnn,
                                   references=references)


if st.button("Run the sweep", type="primary", key="win_run", disabled=form is None) and form is not None:
    _run.launch("window", "Window sweep", task, train_cfg, seeds, plan, "Cannot run the sweep", meta={"settings": form})


def finish(job) -> None:
    if not _shown.keep_result("window", job) and job.cancelled:
        st.info("Cancelled before any run finished; nothing to show.")


_run.job_panel("window", finish)
st.divider()
own = shown_on("window")
if not _run.training_here("window") and (loaded := _shown.linked(list(own.run_ids) if own else [])):
    windows = sorted({r.model_config.window for r in loaded.runs if MODEL_KINDS[r.model_config.kind].windowed})
    own = Shown.of(loaded.task, loaded.summary(),
                   replace(Settings.of_runs(loaded.task, loaded.runs), windows=windows))
    show_on("window", own)
if own is not None:
    task, sweep, shown = own.task, own.result, own.settings
    ds = dataset(task)
    _shown.link_runs(list(own.run_ids))  # a copied link shows these runs, loaded from the store
    st.subheader("Result")
    _shown.result_header(shown, form, form_values(shown), "win", ds.metric)
    if own.cancelled:
        st.warning(cancel_note(sweep, shown.planned_runs))
else:
    ref = _shown.reference_or_stop("window", "window", form, form_values, "win_ref",
                                   "Pick the windows and press Run the sweep. Each window trains its own FFNN.")
    task, sweep, shown = ref["task"], ref["frames"]["summary"], ref["settings"]
    ds = dataset(task)
    st.subheader("Reference result")
    st.info(_shown.reference_note(ref))
    _shown.result_header(shown, form, form_values(shown), "win", ds.metric)
st.markdown(f"**Data:** {ds.description}")
st.success(window_verdict(sweep, ds.metric, ds.higher_is_better, task.cue_lag, n_test=len(ds.test)))
_shown.sweep_result(charts.window_tradeoff(sweep, ds.metric, task.cue_lag, ds.chance), "win_chart",
                    "Left: the FFNN's test metric against its window (dots joined; band across seeds); dotted lines "
                    "are the recurrent references. Middle: parameters grow linearly with the window. Right: wall-clock "
                    "seconds per epoch. The dashed vertical line marks the window that first reaches the decisive "
                    "input.", sweep, "lookback-window-sweep", shown)
