from dataclasses import replace
from functools import partial

import streamlit as st

from lib import charts, reference
from lib.configs import knobs
from lib.errors import LookbackError
from lib.experiments import BOUNDED, context_models, default_window_range, field_levels, window_grid, window_sweep
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, receptive_field
from lib.runs import dataset
from lib.settings import Settings, fmt
from lib.stats import cancel_note, context_verdict
from lib.window_cost import window_cost
from pages import _form, _run, _shown
from pages._state import Shown, show_on, shown_on

P = "w_win"
st.title("Context tradeoff")
st.caption("How many steps back must a model see (a feed-forward or linear window, a TCN's receptive field) to "
           "match a recurrent model or a Transformer, which see the whole sequence, and what does it cost?")
SWEPT = [k for k, kind in MODEL_KINDS.items() if kind.memory in BOUNDED]  # the kinds the sweep moves along
FIELD = next(k for k in SWEPT if MODEL_KINDS[k].memory == "receptive field")  # swept by its levels
LINEAR = next(k for k in SWEPT if MODEL_KINDS[k].windowed and k != _form.WINDOWED)  # swept by its window
ATTENTION = next(k for k, kind in MODEL_KINDS.items() if kind.memory == "attention")  # a reference

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
c1, c2 = st.columns([2, 1])
swept = _form.kind_picker(c1, "Models swept along the steps they see", f"{P}_swept", [_form.WINDOWED], options=SWEPT)
kernel = (_form.widget(c2, knobs(ModelConfig)["kernel"], f"{P}_kernel", ModelConfig.kernel)
          if FIELD in swept else ModelConfig.kernel)
levels = []  # the TCN levels the form asks for
if FIELD in swept and ds is not None and int(lo) <= int(hi):
    levels = field_levels(int(lo), int(hi), int(kernel), cue, _form.LIMITS["levels"][1])
    fields = [receptive_field(ModelConfig(kind=FIELD, kernel=int(kernel), levels=n)) for n in levels]
    st.caption(f"TCN levels: {fmt(levels)} (receptive fields {fmt(fields)} steps, kernel {int(kernel)})")
c1, c2 = st.columns([2, 1])
refs = _form.kind_picker(c1, "Recurrent references", f"{P}_refs", _form.kinds_of(reference.WINDOW_REFERENCES),
                         options=_form.RECURRENT)
attention = c2.checkbox("Transformer reference", False, help="A small causal Transformer: attention over the whole "
                        "sequence, at a cost that grows with its square.", **_form.setting(f"{P}_attention"))
train_cfg, seeds, opts = _form.train_settings(P, metric=ds.metric if ds is not None else "metric")


def form_values(s: Settings) -> dict:
    """The widget values that give the settings `s` (Restore and Load buttons)."""
    w, tcn = s.windows, [m for m in s.models if "kernel" in MODEL_KINDS[m.kind].reads]
    grid = next((c for c in (len(w), len(w) - 1) if c >= 2 and window_grid(w[0], w[-1], c, w[-1], s.task.cue_lag)
                 == list(w)), len(w))
    return {**_form.task_values(P, s.task), **_form.train_values(P, s),
            **({f"{P}_lo": w[0], f"{P}_hi": w[-1], f"{P}_count": grid} if w else {}),
            f"{P}_swept": [k for k in _form.kinds_of(s.models) if k in SWEPT],
            f"{P}_refs": [k for k in _form.kinds_of(s.models) if k in _form.RECURRENT],
            f"{P}_attention": any(m.kind == ATTENTION for m in s.models),
            **({f"{P}_kernel": tcn[0].kernel} if tcn else {})}


form = None  # the settings the form holds, when they can be trained: checked before anything trains
if windows is not None:
    try:
        base = {k: _form.build_models(task, [k], [1], opts)[0] for k in swept}
        ffnn, linear = base.get(_form.WINDOWED), base.get(LINEAR)
        tcn = replace(base[FIELD], kernel=int(kernel)) if FIELD in base else None
        references = _form.build_models(task, [*refs, *([ATTENTION] if attention else [])], [], opts)
        form = Settings(task, [*context_models(windows, ffnn, linear, tcn, levels), *references], train_cfg, seeds,
                        windows=windows if ffnn is not None or linear is not None else (), budget=opts["budget"])
    except LookbackError as err:
        st.error(f"Cannot run the sweep: {err}")


def plan():
    return form.models, 1, partial(window_sweep, task, windows, train_cfg, seeds, ffnn=ffnn, references=references,
                                   linear=linear, tcn=tcn, levels=levels)


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
st.success(context_verdict(sweep, ds.metric, ds.higher_is_better, task.cue_lag, n_test=len(ds.test)))
_shown.sweep_result(charts.window_tradeoff(sweep, ds.metric, task.cue_lag, ds.chance), "win_chart",
                    "Left: each swept model's test metric against the steps it sees: the FFNN's or linear map's "
                    "window, the TCN's receptive field (dots joined; band across seeds); dotted lines are the "
                    "references, which see the whole sequence. Middle: parameters (the FFNN's grow linearly with its "
                    "window, the TCN's with its levels). Right: wall-clock seconds per epoch. The dashed vertical line "
                    "marks the steps seen that first reach the decisive input.", sweep, "lookback-window-sweep", shown)
if (cost := window_cost(shown.models, ModelIO.from_dataset(ds), shown.task)) is not None:
    st.markdown(f"**What memory costs in parameters:** {cost}")
