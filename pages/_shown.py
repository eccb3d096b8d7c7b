"""The result a page shows: the settings that produced it (and Restore when the form differs), the runs its link
names, the precomputed references shown before a visitor's own run, and its charts and downloads."""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from lib import hosting, reference
from lib.experiments import Comparison, load_comparison
from lib.settings import Settings, json_with_settings, with_settings
from lib.stats import timing_note
from pages._form import restore
from pages._jobs import Job
from pages._run import run_store, training_here
from pages._state import RUNS_LINKED, Shown, show_on, shown_on


def result_header(shown: Settings, form: Settings | None, values: dict, key: str, metric: str = "metric",
                  groups: tuple[str, ...] = ("Task", "Models", "Training", "Seeds"),
                  changed: str = "Settings changed since this result") -> None:
    """The settings that produced the result below (the `groups` of Settings.describe); when the form differs,
    a notice of what changed with a "Restore these settings" button that puts `values` (the result's widget
    values) back."""
    st.markdown("  \n".join(f"**{group}:** {text}" for group, text in shown.describe(metric) if group in groups))
    differences = shown.changes(form)
    if differences:
        st.warning(f"{changed}: {'; '.join(differences)}. The result below is still the one of the settings "
                   f"above; run it again for the form's, or restore these settings.", icon=":material/sync_problem:")
        st.button("Restore these settings", key=f"{key}_restore", on_click=restore, args=(values,))


def linked(shown_ids: list[str], load: Callable = load_comparison):
    """The runs this page's link names (?runs=id,id), loaded from the run store by `load` (a Comparison by
    default; see lib.experiments.load_comparison), unless they are the result shown already; a warning names
    the ids left out."""
    text = st.query_params.get("runs", "")
    link = [i for i in text.split(",") if i]
    if not link or link == shown_ids or text in st.session_state.get(RUNS_LINKED, ()):
        return None  # no link, or one this session wrote for a result it has since replaced
    store = run_store()
    loaded, dropped = load(store, link) if store is not None else (None, [f"{i} (no run store)" for i in link])
    if dropped:
        st.warning(hosting.shown(f"Left out of this link: {', '.join(dropped)}."), icon=":material/link_off:")
    if loaded is None:
        st.query_params.pop("runs", None)
    return loaded


def link_runs(ids: list[str]) -> None:
    """Name the shown result's runs in the page's link, so that the link shows the same result elsewhere."""
    ids = [i for i in ids if i]
    if ids:
        st.query_params["runs"] = ",".join(ids)
        st.session_state.setdefault(RUNS_LINKED, set()).add(",".join(ids))
    else:
        st.query_params.pop("runs", None)


def reference_note(ref: dict) -> str:
    """How the precomputed reference results shown before a user's own run were made, and which seeds it holds
    beyond the form's."""
    env, meta = ref["meta"]["env"], ref["meta"]
    held, shown = reference.settings(ref["name"]).seeds, ref["settings"].seeds
    load = f", at a load average of {env['load_1min']:.1f}" if env.get("load_1min") is not None else ""
    more = (f" It holds seeds {', '.join(map(str, held))}; set Seeds to {len(held)} under Advanced settings to see "
            f"them all." if set(held) - set(shown) else "")
    return (f"Precomputed reference result, made by `{meta['command']}` on {meta['created']} with torch "
            f"{env['torch']} on {env['device']}, {env.get('workers', 1)} worker process(es) with {env['threads']} "
            f"thread(s) each{load}; its seconds were measured then. Train above to replace it.{more}")


@st.cache_resource(show_spinner=False)
def reference_models() -> Comparison | None:
    """The shipped reference models (seed 0 of the reference comparison), shared by every session; None when
    they are not shipped."""
    return reference.comparison()


@st.cache_resource(show_spinner="Probing the reference models…")
def reference_probe(what: str, _make: Callable):
    """A probe `what` of the reference models, computed once per server by _make() (do not mutate it)."""
    return _make()


def probe_models() -> tuple[Comparison | None, str]:
    """The models the Probe and Memory pages read, and a sentence saying whose they are: this session's latest
    comparison with trained models, else the shipped reference models (None when neither)."""
    own = shown_on("compare")
    comp = None if own is None else own.result
    if comp is not None and any(r.model is not None for r in comp.runs):
        return comp, f"Models from your latest comparison: **{comp.dataset.description}**"
    ref = reference_models()
    if ref is None:
        return None, ""
    return ref, (f"**Reference models** (precomputed, seed 0 of the reference comparison made by "
                 f"`{reference.COMMAND}`): **{ref.dataset.description}** Train a comparison on the Compare page to "
                 f"probe your own models here.")


def reference_offers(how: str, values_of: Callable[[Settings], dict], key: str) -> None:
    """Each precomputed reference of kind `how`, with a button that loads its settings into the form."""
    for name, ref in reference.offers(how).items():
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.caption("Precomputed reference: " + " · ".join(text for _, text in ref.describe()[:2])
                   + f" · seeds {', '.join(map(str, ref.seeds))}")
        c2.button("Load these settings", key=f"{key}_{name}", on_click=restore, args=(values_of(ref),))


def keep_result(page: str, job: Job) -> bool:
    """Keep a finished job's result for its page, with its settings and whether it was cancelled."""
    if job.result is None:
        return False
    show_on(page, Shown.of(job.meta["task"], job.result, job.meta["settings"], job.cancelled))
    return True


def reference_or_stop(page: str, how: str, form, values_of: Callable[[Settings], dict], key: str,
                      hint: str) -> dict:
    """The precomputed reference matching the form; without one, the hint and the references on offer, and
    the script stops (while this page trains, quietly)."""
    link_runs([])
    ref = None if training_here(page) else reference.matching(how, form)
    if ref is None:
        if not training_here(page):
            st.info(hint)
            reference_offers(how, values_of, key)
        st.stop()
    return ref


def sweep_result(fig, key: str, caption: str, sweep: pd.DataFrame, name: str, settings: Settings) -> None:
    """A sweep's chart, the note on how its seconds were measured, and its downloads."""
    chart(fig, key, caption)
    if (note := timing_note(sweep)) is not None:
        st.caption(note)
    download(sweep, name, f"{key}_dl", settings)


def chart(fig, key: str, caption: str) -> None:
    st.plotly_chart(fig, key=key, width="stretch")
    st.caption(caption)


def download(df: pd.DataFrame, name: str, key: str, settings: Settings | None = None) -> None:
    """CSV and JSON download buttons; with `settings`, the CSV gets their columns (task.*, train.*, model.*, seeds)
    and the JSON is {"settings": ..., "rows": ...}. The files (small tables) are made with the page, so the server
    keeps them while it shows the buttons (a file made on click is soon forgotten, under load before the browser
    fetched it), and a click reruns nothing."""
    row = st.container(horizontal=True)
    csv = (df if settings is None else with_settings(df, settings)).to_csv(index=False)
    row.download_button("Download CSV", csv, f"{name}.csv", "text/csv", key=f"{key}_csv", on_click="ignore")
    row.download_button("Download JSON", df.to_json(orient="records", indent=1) if settings is None
                        else json_with_settings(df, settings), f"{name}.json", "application/json", key=f"{key}_json",
                        on_click="ignore")
