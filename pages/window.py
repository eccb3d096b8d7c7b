import numpy as np
import streamlit as st

from lib import charts, reference
from lib.errors import ConfigError
from lib.experiments import validate_models, window_sweep
from lib.stats import window_verdict
from pages import _ui as ui

ui.use_app_navigation()
st.title("Window tradeoff")
st.caption("How wide must a feed-forward net's window be to match a recurrent model, and what does it cost?")

task = ui.task_picker("w_win")
ds = ui.checked_dataset(task)
cue = ui.reach(task)
seq_len = ds.seq_len if ds is not None else 1
c1, c2, c3 = st.columns(3)
lo = c1.number_input("Smallest window", *ui.LIMITS["lo"], 1, **ui.setting("w_win_lo"))
hi = c2.number_input("Largest window", *ui.LIMITS["hi"], min(seq_len, (cue or 10) + 5), **ui.setting("w_win_hi"))
count = c3.number_input("Windows to try", *ui.LIMITS["count"], 8, **ui.setting("w_win_count"))
refs = st.multiselect("Recurrent references", ["rnn", "gru", "lstm"], default=["lstm"],
                      format_func=ui.KIND_LABELS.get, **ui.setting("w_win_refs"))
train_cfg, seeds, opts = ui.train_settings("w_win")
wanted = {int(w) for w in np.linspace(lo, hi, int(count)).round()} | ({cue} if cue and lo <= cue <= hi else set())
windows = sorted(w for w in wanted if w <= seq_len)
st.caption(f"Windows: {', '.join(map(str, windows)) or 'none'}"
           + (f" (the decisive input is {cue} steps back)" if cue else "")
           + (f"; windows past the sequence length ({seq_len}) are left out" if len(windows) < len(wanted) else ""))

if st.button("Run the sweep", type="primary", key="win_run", disabled=ds is None):
    try:
        if lo > hi:
            raise ConfigError(f"the smallest window ({lo}) is larger than the largest ({hi}); swap them.")
        if not windows:
            raise ConfigError(f"every window is longer than the sequence ({seq_len} steps); lower them.")
        ffnn = ui.build_models(task, ["ffnn"], [1], opts)[0]
        references = ui.build_models(task, refs, [], opts)
        validate_models(task, [*ui.build_models(task, ["ffnn"], windows, opts), *references], seeds)
        train_cfg.validate()
    except ConfigError as err:
        st.error(f"Cannot run the sweep: {err}")
    else:
        store = ui.run_store()

        def job(**callbacks):
            return window_sweep(task, windows, train_cfg, seeds, ffnn=ffnn, references=references,
                                store=store, **callbacks)
        ui.start_job("window", "Window sweep", job, total_runs=(len(windows) + len(references)) * len(seeds),
                  epochs=train_cfg.epochs, meta={"task": task})


def finish(job) -> None:
    if job.result is not None:
        ui.results()["window"] = (job.meta["task"], job.result)
    elif job.error is None and job.finished:
        st.warning("The sweep was cancelled; rerun it to see the tradeoff.")


ui.job_panel("window", finish)
st.divider()
if "window" in ui.results():
    task, sweep = ui.results()["window"]
    st.subheader("Result")
else:
    ref = reference.load("window_text")
    if ref is None or ui.training_here("window"):
        if not ui.training_here("window"):
            st.info("Pick the windows and press Run the sweep. Each window trains its own FFNN.")
        st.stop()
    task, sweep = ref["task"], ref["frames"]["summary"]
    st.subheader("Reference result")
    st.info(ui.reference_note(ref))
ds = ui.checked_dataset(task)
st.markdown(f"**Task:** {ds.description}")
st.success(window_verdict(sweep, ds.metric, ds.higher_is_better, ui.reach(task)))
ui.chart(charts.window_tradeoff(sweep, ds.metric, ui.reach(task), ds.chance), "win_chart",
      "Left: the FFNN's test metric against its window (dots joined; band across seeds); dotted lines are the "
      "recurrent references. Middle: parameters grow linearly with the window. Right: seconds per epoch. "
      "The dashed vertical line marks the window that first reaches the decisive input.")
ui.download(sweep, "lookback-window-sweep", "win_dl")
