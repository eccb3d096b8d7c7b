import hashlib
import json
import os
import re

import pandas as pd
import streamlit as st

from lib import charts, hosting, tables
from lib.bundles import export_bundle, import_bundle
from lib.errors import LookbackError
from lib.mlflow_export import DEFAULT_EXPERIMENT, export_runs
from lib.runtime import Status
from lib.tasks import task_from_dict
from lib.tasks.user import prepared
from pages import _form, _run, _shown
from pages._state import Prepared, Shown, keep_prepared, show_on, shown_on


def public_json(run_ids: list[str]) -> str:
    """The runs' full records as JSON; on a shared host without the server's process ids and host name."""
    if not hosting.hosted():
        return store.export_json(run_ids)
    records = json.loads(store.export_json(run_ids))
    return json.dumps([{k: v for k, v in r.items() if k not in ("pid", "host", "proc_created", "owner")}
                       for r in records], indent=1)


def made_once(key: str, signature, make):
    """make()'s file, built once for `signature` (the runs and their state) and kept in this session until that
    changes. A download button given the bytes keeps its file on the server while the page shows it; one given
    a function builds the file on click into a file the server soon forgets, which under load was gone before
    the browser fetched it (no download at all)."""
    made = st.session_state.get(key)
    if made is None or made[0] != signature:
        made = st.session_state[key] = (signature, make())
    return made[1]


def bundle_button(where, label: str, prepare: str, ids: list[str], name: str, key: str, help: str | None = None):
    """A bundle of the runs `ids` (weights included, so it can be large): built when the button `prepare` is
    pressed, then offered for download as `label`."""
    made = st.session_state.get(f"{key}_made")
    if made is None or made[0] != tuple(ids):
        if not where.button(prepare, key=f"{key}_prepare", help=help):
            return
        with st.spinner(f"Preparing the bundle of {len(ids)} run(s)…"):
            made_once(f"{key}_made", tuple(ids), lambda: export_bundle(store, ids))
    where.download_button(label, st.session_state[f"{key}_made"][1], name, "application/zip", key=key,
                          on_click="ignore", help=help)


st.title("Runs")
store = _run.run_store()
if store is None:
    st.stop()
limits = hosting.limits()
if not hosting.hosted():
    st.caption(f"Every run trained on this install is saved in `{store.path}` (set LOOKBACK_DB to move it).")
elif store.owner.startswith("session:"):
    st.caption("Only you see your runs. They belong to this browser session and are removed after it ends: "
               "download them as a bundle below to keep them, and import the bundle on a later visit.")
else:
    st.caption("Only you see your runs; they are kept under your sign-in for your next visit.")

runs = store.runs()
if hosting.hosted():
    kept = runs.loc[runs["status"].isin(Status.finished()), "id"].tolist()
    st.caption(f"{len(runs)} of at most {limits.stored_runs} runs kept.")
    if kept:
        bundle_button(st, "Download all my runs (.zip bundle)", "Prepare all my runs as a .zip bundle", kept,
                      "lookback-my-runs.zip", "runs_bundle_all")
if imported := st.session_state.pop("runs_imported", None):
    st.success(imported)
with st.expander("Import a bundle"):
    upload = st.file_uploader("A .zip exported from Lookback", type=["zip"], key="runs_upload",
                              max_upload_size=limits.upload_mb)
    if upload is not None and st.button("Import", key="runs_import"):
        try:
            report = import_bundle(store, upload.getvalue(), max_bytes=limits.upload_mb * 2**20,
                                   max_uncompressed=limits.unpacked_mb * 2**20)
        except LookbackError as err:  # BundleError, or a StoreError from writing the runs
            st.error(f"Nothing was imported: {err}")
        else:
            st.session_state["runs_imported"] = report.summary()  # shown after the rerun lists the runs
            st.rerun()


def finish_rerun(job) -> None:
    if job.result is not None:
        show_on("runs_rerun", Shown(None, tables.rerun_table(job.result), run_ids=tuple(job.meta["ids"]),
                                    planned=len(job.meta["ids"])))


_run.job_panel("runs", finish_rerun)
if (rerun := shown_on("runs_rerun")) is not None:
    reruns, planned = rerun.result, rerun.planned
    st.subheader("Reruns")
    all_same = len(reruns) == planned and reruns["same numbers"].all()
    (st.success if all_same else st.warning)(tables.rerun_verdict(reruns, planned))
    st.dataframe(reruns, hide_index=True, key="runs_reruns")
    st.caption("Each selected run trained again from its stored config and seed, and stored as a new run; "
               "“same numbers” means identical test metrics and identical losses and metrics in every epoch.")

if runs.empty:
    st.info("No runs yet. Train something on the Compare or Context tradeoff page and it appears here.")
    st.stop()

# One row per run with its config as columns (task knobs in the widgets' words, model, training).
table, keys = tables.runs_table(runs, store.configs(runs["id"]))  # keys: the config columns

c1, c2, c3, c4 = st.columns(4)
tasks = c1.multiselect("Task", sorted(table["task"].unique()), wrap=True, placeholder="all",
                       **_form.setting("w_runs_task"))
statuses = c2.multiselect("Status", sorted(table["status"].unique()), wrap=True, placeholder="all",
                          **_form.setting("w_runs_status"))
key = c3.selectbox("Filter by", ["", *keys], format_func=lambda k: k or "(no filter)", **_form.setting("w_runs_key"))
values = c4.multiselect(f"where {key} is", sorted(table[key].dropna().astype(str).unique()), wrap=True,
                        key=f"runs_where_{re.sub(r'[^a-z0-9]+', '_', key.lower())}") if key else []
shown = tables.filter_runs(table, tasks, statuses, key, values)
metric_cols = tables.metric_columns(shown)
knobs = tables.filled(shown, keys)
cols = ["id", "created", "task", "label", "status", "origin", "seed", *knobs, "epochs", *metric_cols, "n_params",
        "message"]
# A selection is row positions: key the table by the runs it shows, so a delete, an import or a filter
# starts a fresh selection instead of pointing at other (or missing) rows.
view = hashlib.sha1(",".join(shown["id"]).encode()).hexdigest()[:12]
picked = st.dataframe(shown[cols], hide_index=True, on_select="rerun", selection_mode="multi-row",
                      key=f"runs_table_{view}",  # the run stays named while the settings scroll sideways
                      column_config={c: st.column_config.Column(pinned=True) for c in ("id", "label")})
selected = shown.iloc[picked.selection.rows]["id"].tolist() if picked.selection.rows else []
st.caption(f"{len(shown)} run(s) shown; select rows to compare, export or delete them.")

group = st.selectbox("Group by", ["", "label", *knobs], format_func=lambda k: k or "(no grouping)",
                     **_form.setting("w_runs_group"))
if group and not shown.empty:
    st.dataframe(tables.group_runs(shown, group), hide_index=True, key="runs_groups")
    st.caption(f"Runs grouped by {group}: how many, and their mean test metrics and epochs.")
if not selected:
    st.stop()

picked_rows = shown.set_index("id").loc[selected]
names = [f"{r['label']} ({i[:6]})" for i, r in picked_rows.iterrows()]
if len(selected) > 1:
    st.subheader("Selected runs side by side")
    only = st.toggle("Only the settings and results that differ", True, **_form.setting("w_runs_diff"))
    rows = picked_rows[["task", "seed", *knobs, "status", "epochs", *metric_cols, "n_params"]].rename(
        columns=lambda c: c.replace("test_", "test ").replace("n_params", "parameters"))
    st.dataframe(tables.side_by_side(rows, names, only), key="runs_side")
    st.caption("One column per selected run; “differs” marks the rows where they disagree.")

histories = []
for run_id, name in zip(selected, names, strict=True):
    h = store.history(run_id)
    if not h.empty:
        histories.append(h.assign(run=run_id, label=name, **picked_rows.loc[run_id, ["seed", *knobs]].to_dict()))
if histories:
    colour = st.selectbox("Colour the curves by", ["label", "seed", *knobs], **_form.setting("w_runs_colour"))
    _shown.chart(charts.run_curves(pd.concat(histories, ignore_index=True), colour), "runs_loss",
                 "Loss curves of the selected runs: dashed training, solid validation, one colour per value of the "
                 "setting chosen above; hover a line to see its run.")

on_data = {i: sha for i, c in store.configs(selected).items() if (sha := prepared.named_by(c))}
if len(set(on_data.values())) == 1:  # one dataset: offer it as "Your data" on the other pages
    run_id, sha = next(iter(on_data.items()))
    if not prepared.kept_path(sha).exists():
        st.info(f"The data run {run_id} trained on are not on this install: prepare the same file on the Your data "
                f"page, or import a bundle that carries them.")
    elif st.button("Train more models on these data", key="runs_use_data",
                   help="Makes the data these runs trained on “Your data”, a task on every page."):
        task = task_from_dict(store.configs([run_id])[run_id]["task"])  # checked when stored or imported
        keep_prepared(Prepared(("run", sha), task, f"run {run_id}",
                               caption=f"The data run {run_id} trained on (chosen on the Runs page)."))
        st.success("Pick “Your data” as the task on the Compare, Context tradeoff, Costs or Probe page to train "
                   "on these data.")
finished = [r for r in selected if runs.set_index("id").loc[r, "status"] in Status.finished()]
actions = st.container(horizontal=True)  # buttons wrap onto a second row on a narrow screen
state = tuple(picked_rows[["status", "epochs"]].itertuples(name=None))  # a running run's files change
actions.download_button("Runs CSV", tables.runs_csv(shown, selected, cols), "lookback-runs.csv", "text/csv",
                        key="runs_csv", on_click="ignore", help="The selected rows with every column of the table.")
actions.download_button("Runs JSON", made_once("runs_json_made", state, lambda: public_json(selected)),
                        "lookback-runs.json", "application/json", key="runs_json", on_click="ignore")
if finished:
    bundle_button(actions, "Bundle (.zip)", "Prepare bundle (.zip)", finished, "lookback-bundle.zip", "runs_bundle",
                  help="Config, history, metrics, environment and weights of each finished run, and the prepared data "
                       "of runs on your own data: import it on the Runs page of any Lookback to list, chart and "
                       "rerun them there.")
if finished and actions.button(f"Rerun {len(finished)} run(s)", key="runs_rerun",
                               help="Train the finished runs again from their stored config and seed, and compare "
                                    "every number with the stored ones."):
    _run.rerun_runs("runs", finished)
if finished and not hosting.hosted():  # a shared server must not send data to addresses visitors type in
    with st.expander("Export to MLflow"):
        uri = st.text_input("Tracking URI", os.environ.get("MLFLOW_TRACKING_URI", ""), key="runs_mlflow_uri",
                            placeholder="http://mlflow.example.org:5000")
        experiment = st.text_input("Experiment", DEFAULT_EXPERIMENT, key="runs_mlflow_experiment")
        if st.button(f"Export {len(finished)} finished run(s)", key="runs_mlflow_export"):
            try:
                done = export_runs(store, finished, uri, experiment)
            except LookbackError as err:
                st.error(f"Nothing was exported: {err}")
            else:
                st.success(f"Exported {len(done['exported'])} run(s) to experiment “{experiment}” at {uri}; "
                           f"skipped {len(done['skipped'])} exported before.")
if actions.button(f"Delete {len(selected)} run(s)", key="runs_delete"):
    st.session_state["runs_confirm"] = selected
if st.session_state.get("runs_confirm") == selected:
    training = [r for r in selected if runs.set_index("id").loc[r, "status"] == Status.RUNNING]
    if training:
        st.warning(f"{len(training)} of the selected runs are still training; cancel their job first, or leave "
                   f"them out.")
    else:
        st.warning(f"Delete {len(selected)} run(s) and their weights for good?")
        if st.button("Yes, delete", key="runs_delete_yes", type="primary"):
            store.delete(selected)
            st.session_state.pop("runs_confirm")
            st.rerun()
