from functools import partial

import streamlit as st

from lib import literature
from lib.experiments import compare
from pages import _run, _shown
from pages._state import Shown, show_on, shown_on

st.title("Literature")
st.caption("The essay's claims and the classic memory benchmarks: each published number beside ours, from "
           "reference runs committed with Lookback at a length this CPU trains in minutes.")

evidence = literature.load()
tab = literature.table(evidence)
if evidence is None:
    st.warning(f"The reference runs have not been made on this install; run `{literature.COMMAND}`. Every row "
               "is listed, without our numbers.")
n = literature.counts(tab)
st.markdown(f"**{n['reproduced']}** reproduced, **{n['in direction only']}** in direction only, "
            f"**{n['not reproduced']}** not reproduced, of {len(tab)} rows. No row is hidden.")
WIDE = {"claim": st.column_config.TextColumn(width=260, pinned=True),  # the numbers stay in view on a narrow screen
        "verdict": st.column_config.TextColumn(width=280)}
st.dataframe(literature.display(tab), hide_index=True, key="lit_table", height=35 * (len(tab) + 1) + 3,
             column_config=WIDE)
st.caption(literature.RULES)
_shown.download(literature.display(tab), "lookback-literature", "lit_dl")

st.header("Rerun a row")
st.caption("Each button trains (or measures) that row again on this machine, with the committed settings.")


def rerun(key: str) -> None:
    title, task, plan = f"Literature: {literature.CLAIM_KEYS[key].claim}", literature.task_of(key), \
        literature.rerun_plan(key)
    if plan is None:
        _run.measure("literature", title, partial(literature.measure_job, key), task,
                     [literature.GRADIENT_MODEL], {"key": key})
        return
    task, models, train, seeds = plan
    _run.launch("literature", title, task, train, seeds,
                lambda: (models, 1, partial(compare, task, models, train, seeds)), "Cannot rerun", meta={"key": key})


for row in tab.itertuples():
    c1, c2 = st.columns([6, 1], vertical_alignment="center")
    c1.markdown(f"{row.claim} — *{row.verdict}*")
    if c2.button("Rerun", key=f"lit_rerun_{row.key}"):
        rerun(row.key)


def finish(job) -> None:
    key = job.meta["key"]
    show_on("literature", Shown(job.meta["task"], literature.evidence_of_job(key, job.result),
                                cancelled=job.cancelled, extra={"key": key}))


_run.job_panel("literature", finish)
if (again := shown_on("literature")) is not None:
    st.subheader("Rerun here")
    if again.cancelled:
        st.warning("Cancelled: the row is judged on the runs that finished.")
    st.dataframe(literature.display(literature.table(again.result, keys=[again.extra["key"]])), hide_index=True,
                 key="lit_rerun_table", column_config=WIDE)
