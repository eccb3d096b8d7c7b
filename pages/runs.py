import hashlib

import pandas as pd
import streamlit as st

from lib import charts
from lib.bundles import BundleError, export_bundle, import_bundle
from lib.store import FINAL_STATUSES
from pages import _ui as ui

ui.use_app_navigation()
st.title("Runs")
store = ui.run_store()
if store is None:
    st.stop()
st.caption(f"Every run trained on this install is saved in `{store.path}` (set LOOKBACK_DB to move it).")

runs = store.runs()
with st.expander("Import a bundle"):
    upload = st.file_uploader("A .zip exported from Lookback", type=["zip"], key="runs_upload")
    if upload is not None and st.button("Import", key="runs_import"):
        try:
            ids = import_bundle(store, upload.getvalue())
        except BundleError as err:
            st.error(f"Nothing was imported: {err}")
        else:
            st.success(f"Imported {len(ids)} run(s).")
            st.rerun()

if runs.empty:
    st.info("No runs yet. Train something on the Compare or Window tradeoff page and it appears here.")
    st.stop()

c1, c2 = st.columns(2)
tasks = c1.multiselect("Task", sorted(runs["task"].unique()), **ui.setting("w_runs_task"))
statuses = c2.multiselect("Status", sorted(runs["status"].unique()), **ui.setting("w_runs_status"))
mask = pd.Series(True, index=runs.index)
if tasks:
    mask &= runs["task"].isin(tasks)
if statuses:
    mask &= runs["status"].isin(statuses)
shown = runs[mask]
metric_cols = [c for c in shown.columns if c.startswith("test_")]
cols = ["id", "created", "task", "label", "status", "seed", "epochs", *metric_cols, "n_params", "message"]
# A selection is row positions: key the table by the runs it shows, so a delete, an import or a filter
# starts a fresh selection instead of pointing at other (or missing) rows.
view = hashlib.sha1(",".join(shown["id"]).encode()).hexdigest()[:12]
picked = st.dataframe(shown[cols], hide_index=True, on_select="rerun", selection_mode="multi-row",
                      key=f"runs_table_{view}")
selected = shown.iloc[picked.selection.rows]["id"].tolist() if picked.selection.rows else []
st.caption(f"{len(shown)} run(s) shown; select rows to compare, export or delete them.")
if not selected:
    st.stop()

histories = []
for run_id in selected:
    h = store.history(run_id)
    if not h.empty:
        rec = runs.set_index("id").loc[run_id]
        histories.append(h.assign(label=f"{rec['label']} ({run_id[:6]})", seed=rec["seed"]))
if histories:
    ui.chart(charts.loss_curves(pd.concat(histories, ignore_index=True)), "runs_loss",
          "Loss curves of the selected runs: dashed training, solid validation; the id tells runs apart.")

finished = [r for r in selected if runs.set_index("id").loc[r, "status"] in FINAL_STATUSES]
c1, c2, c3, c4 = st.columns(4)
c1.download_button("Runs CSV", store.export_csv(selected), "lookback-runs.csv", "text/csv", key="runs_csv")
c2.download_button("Runs JSON", store.export_json(selected), "lookback-runs.json", "application/json",
                   key="runs_json")
if finished:
    c3.download_button("Bundle (.zip, with weights)", export_bundle(store, finished), "lookback-bundle.zip",
                       "application/zip", key="runs_bundle")
if c4.button(f"Delete {len(selected)} run(s)", key="runs_delete"):
    st.session_state["runs_confirm"] = selected
if st.session_state.get("runs_confirm") == selected:
    st.warning(f"Delete {len(selected)} run(s) and their weights for good?")
    if st.button("Yes, delete", key="runs_delete_yes", type="primary"):
        store.delete(selected)
        st.session_state.pop("runs_confirm")
        st.rerun()
