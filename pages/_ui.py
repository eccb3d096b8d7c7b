"""Widgets and state shared by the pages. Pages stay thin: widgets -> config -> lib -> charts."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd
import streamlit as st

from lib import hosting, reference
from lib.errors import ConfigError
from lib.experiments import Comparison, load_comparison, rerun_job, stored_configs, validate_models
from lib.models import MODEL_KINDS, ModelConfig
from lib.settings import Settings, json_with_settings, with_settings
from lib.stats import timing_note
from lib.store import RunStore, StoreError, default_path
from lib.tasks import make_dataset
from lib.train import TrainConfig
from pages._form import (  # noqa: F401  (until the pages import the form from pages._form)
    LIMITS,
    TRAIN_FIELDS,
    build_models,
    clean_links,
    in_widget_words,
    kind_picker,
    kinds_of,
    link_value,
    restore,
    setting,
    task_picker,
    task_values,
    train_settings,
    train_values,
    user_task,
)
from pages._jobs import Job, engine, forget_gone_visitors, visitor

RECURRENT = [k for k, kind in MODEL_KINDS.items() if kind.recurrent]
WINDOWED = next(k for k, kind in MODEL_KINDS.items() if kind.windowed)  # the kind whose window the pages sweep


def results() -> dict:
    """Finished results per page, kept for the whole session."""
    return st.session_state.setdefault("results", {})


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> RunStore:
    return RunStore(path)


def run_store() -> RunStore | None:
    """This install's run store as this session's visitor sees it (on a shared host only their own runs,
    within their quota), or None after explaining why it cannot be opened."""
    try:
        store = _open_store(str(default_path()))
    except StoreError as err:
        st.error("Runs are not being saved on this server right now." if hosting.hosted()
                 else f"Runs are not being saved: {err}")
        return None
    if not hosting.hosted():
        return store
    forget_gone_visitors(store)
    return store.scoped(visitor(), hosting.limits().stored_runs)


@st.cache_resource(show_spinner=False, max_entries=4)
def shared_dataset(task):
    """The task's dataset, built once for every session of this server (a dataset depends on its config
    alone); the four most recently used are kept."""
    return make_dataset(task)


def checked_dataset(task, fail: str = "Cannot train"):
    """The task's dataset, or None after showing what to change ("{fail}: ...", in the widgets' words)."""
    try:
        return shared_dataset(task)
    except ConfigError as err:
        st.error(f"{fail}: {hosting.shown(in_widget_words(task, str(err)))}")
        return None


def launch(page: str, title: str, task, train_cfg: TrainConfig, seeds: list[int], plan: Callable,
           fail: str = "Cannot train", switch_to: str | None = None, meta: dict | None = None) -> None:
    """Check the settings, also against this server's caps (lib.hosting), then queue this page's job on the
    server's engine and show `page` (at `switch_to`), unless this session is training already.

    plan() returns (models, runs per model and seed, run): run is picklable (a functools.partial of a lib
    function) and takes store=... and the progress callbacks, since it trains in a worker process. A
    ConfigError from these checks, or the engine's refusal (one job per visitor, a full queue), is shown as
    "{fail}: ..." instead. meta: more for the job's meta (e.g. the settings it trains), beside the task.
    """
    if _busy():
        return
    try:
        models, repeats, run = plan()
        total = len(models) * repeats * len(seeds)
        hosting.check_job(hosting.limits(), task, models, train_cfg, seeds, total)
        validate_models(task, models, seeds)
        train_cfg.validate()
        store = run_store()
        job = engine().submit(Job(title, run, total, train_cfg.epochs, {"task": task, **(meta or {})},
                                  owner=visitor(), store_path=None if store is None else str(store.path),
                                  quota=hosting.limits().stored_runs))
    except ConfigError as err:
        st.error(f"{fail}: {hosting.shown(str(err))}")
        return
    _started(job, page, switch_to)


def measure(page: str, title: str, fn: Callable, task, models: list[ModelConfig], meta: dict,
            fail: str = "Cannot measure") -> None:
    """Queue this page's measurement of `models`: a job like `launch`'s, checked against the same caps, that
    runs alone on the server (lib.jobs: exclusive), so that no training distorts its timings. fn is picklable
    and sends one measured row per model to on_run."""
    if _busy():
        return
    try:
        hosting.check_job(hosting.limits(), task, models, TrainConfig(epochs=1), [0], len(models))
        job = engine().submit(Job(title, fn, len(models), 1, meta, owner=visitor(), exclusive=True))
    except ConfigError as err:
        st.error(f"{fail}: {hosting.shown(str(err))}")
        return
    _started(job, page)


def rerun_runs(page: str, run_ids: list[str], fail: str = "Cannot rerun") -> None:
    """Queue a job that trains stored runs again from their config and seed and compares the numbers
    (lib.experiments.rerun_job), each run checked against this server's caps first."""
    store = run_store()
    if _busy() or store is None:
        return
    try:
        configs, epochs = store.configs(run_ids), 1
        for run_id in run_ids:
            task, model_cfg, train_cfg = stored_configs(run_id, configs.get(run_id, {}))
            hosting.check_job(hosting.limits(), task, [model_cfg], train_cfg, [train_cfg.seed], len(run_ids))
            epochs = max(epochs, train_cfg.epochs)
        job = engine().submit(Job(f"Rerunning {len(run_ids)} run(s)", partial(rerun_job, run_ids), len(run_ids),
                                  epochs, {"ids": run_ids}, owner=visitor(), store_path=str(store.path),
                                  quota=hosting.limits().stored_runs))
    except ConfigError as err:
        st.error(f"{fail}: {hosting.shown(str(err))}")
        return
    _started(job, page)


def _busy() -> bool:
    """Whether this session has a job running or waiting already: then a warning, as one job per visitor."""
    job = st.session_state.get("job")
    if job is not None and job.running:
        st.warning(f"“{job.title}” is still running; wait for it or cancel it first.")
        return True
    return False


def _started(job: Job, page: str, switch_to: str | None = None) -> None:
    st.session_state["job"] = job
    st.session_state["job_page"] = page
    if switch_to:
        st.switch_page(switch_to)
    st.rerun()


def training_here(page: str) -> bool:
    """Whether this session's job is running for this page."""
    job = st.session_state.get("job")
    return job is not None and job.running and st.session_state.get("job_page") == page


def job_panel(page: str, finish, live: Callable | None = None) -> None:
    """Live progress with a Cancel button while this page's job runs; `finish(job)` stores its outcome.
    live(job), when given, draws more of the running job inside the progress panel (e.g. its loss curves)."""
    job = st.session_state.get("job")
    if job is None:
        return
    job.touch()
    if st.session_state.get("job_page") != page:
        if job.running:
            st.info(f"“{job.title}” is running on another page; its results will wait there.")
        return
    if not job.running:
        st.session_state["job"] = None
        if isinstance(job.result, Comparison) and job.result.dataset is None:  # sent back without it
            job.result.dataset = shared_dataset(job.result.task)
        if job.error:
            st.error(job.error)
        elif job.stop_reason and job.stop_reason != CANCELLED_BY_VISITOR:
            st.warning(f"“{job.title}” was {job.stop_reason}.")
        finish(job)
        return
    _progress(page, live)


CANCELLED_BY_VISITOR = "cancelled"
PROGRESS_EVERY_S = 1.5  # each refresh is a script run on the server: keep it light and not too frequent


@st.fragment(run_every=PROGRESS_EVERY_S)
def _progress(page: str, live: Callable | None = None) -> None:
    job = st.session_state.get("job")
    if job is None or not job.running:
        st.rerun()
    job.touch()
    st.progress(job.fraction(), text=progress_text(job))
    rows = sorted(job.progress.items())
    if rows:  # a few lines of text: cheaper to send each second than a table
        st.caption("  \n".join(f"{label} (seed {seed}): epoch {r['epoch']} of {job.epochs}, validation "
                                f"metric {r['val_metric']:.3g}, {r['elapsed_seconds']:.0f} s"
                                for (label, seed), r in rows))
    if live is not None:
        live(job)
    if st.button("Cancel", key=f"{page}_cancel", disabled=job.cancelled, type="secondary"):
        job.cancel(CANCELLED_BY_VISITOR)
        st.toast("Cancelling: finished runs are kept.")


def progress_text(job: Job) -> str:
    """Where a job stands: its place in the queue with an estimated start, or how far it has trained."""
    position = engine().position(job)
    if position is not None:
        wait = engine().estimated_start(job)
        alone = "; it runs alone, once no model trains" if job.exclusive else ""
        return (f"{job.title}: waiting in the queue, position {position[0]} of {position[1]}; estimated start "
                f"in about {_about(wait)}{alone}")
    if job.exclusive:
        return f"{job.title}: {len(job.finished)} of {job.total_runs} measured"
    return f"{job.title}: training — {len(job.finished)} of {job.total_runs} runs finished"


def _about(seconds: float) -> str:
    return f"{round(seconds / 60)} min" if seconds >= 90 else f"{max(5, round(seconds / 5) * 5)} s"


def job_status(page: str) -> None:
    """In the sidebar: on a shared host the caps of every job; on every page but the job's own (`page` is the
    url path of the page shown) this session's job while it trains, so that it is never taken for an
    abandoned one (on a shared host a job whose visitor has gone is cancelled). The first call starts the
    engine, so its workers are ready by the time a visitor presses a button."""
    engine()
    if hosting.hosted():
        st.sidebar.caption(f"A shared server: one job per visitor at a time. {hosting.limits().describe()}")
        _sign_in()
    job = st.session_state.get("job")
    if job is not None and job.running:
        job.touch()
        if st.session_state.get("job_page") != page:
            with st.sidebar:
                _job_status()


def _sign_in() -> None:
    """Sign-in and sign-out in the sidebar, where Streamlit's login is set up ([auth] in the secrets): a
    signed-in visitor's runs are kept for their next visit."""
    try:
        configured = "auth" in st.secrets
    except FileNotFoundError:  # no secrets at all
        configured = False
    if not configured:
        return
    if st.user.get("is_logged_in"):
        st.sidebar.caption(f"Signed in as {st.user.get('email') or st.user.get('name')}: your runs are kept "
                           f"for your next visit.")
        st.sidebar.button("Sign out", key="auth_logout", on_click=st.logout)
    else:
        st.sidebar.button("Sign in to keep your runs", key="auth_login", on_click=st.login)


@st.fragment(run_every=3 * PROGRESS_EVERY_S)
def _job_status() -> None:
    job = st.session_state.get("job")
    if job is None:
        return
    job.touch()
    st.caption(progress_text(job) if job.running else f"“{job.title}” has finished; open its page to see it.")


# -- results: what produced them, and when the form no longer matches ------------------------------------

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
    if not link or link == shown_ids or text in st.session_state.get("runs_linked", ()):
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
        st.session_state.setdefault("runs_linked", set()).add(",".join(ids))
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
    comp = results().get("compare")
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
    results()[page] = (job.meta["task"], job.result)
    results()[f"{page}_settings"], results()[f"{page}_cancelled"] = job.meta["settings"], job.cancelled
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
    """CSV and JSON download buttons, the files made only when clicked; with `settings`, the CSV gets their
    columns (task.*, train.*, model.*, seeds) and the JSON is {"settings": ..., "rows": ...}."""
    c1, c2, _ = st.columns([1, 1, 4])
    csv = df if settings is None else with_settings(df, settings)
    c1.download_button("Download CSV", lambda: csv.to_csv(index=False), f"{name}.csv", "text/csv", key=f"{key}_csv")
    c2.download_button("Download JSON", lambda: df.to_json(orient="records", indent=1) if settings is None
                       else json_with_settings(df, settings), f"{name}.json", "application/json", key=f"{key}_json")
