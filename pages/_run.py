"""This session's runs and jobs: the run store as its visitor sees it, launching a job (training, a measurement,
reruns) on the server's engine, its progress with a Cancel button, and its status and sign-in in the sidebar."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import streamlit as st

from lib import hosting
from lib.errors import LookbackError
from lib.experiments import Comparison, rerun_job, stored_configs, validate_models
from lib.models import ModelConfig
from lib.paths import store_path
from lib.runs import dataset
from lib.store import RunStore, StoreError
from lib.train import TrainConfig
from pages._jobs import Job, engine, forget_gone_visitors, visitor
from pages._state import current_job, job_page, set_job


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> RunStore:
    return RunStore(path)


def run_store() -> RunStore | None:
    """This install's run store as this session's visitor sees it (on a shared host only their own runs,
    within their quota), or None after explaining why it cannot be opened."""
    try:
        store = _open_store(str(store_path()))
    except StoreError as err:
        st.error("Runs are not being saved on this server right now." if hosting.hosted()
                 else f"Runs are not being saved: {err}")
        return None
    if not hosting.hosted():
        return store
    forget_gone_visitors(store)
    return store.scoped(visitor(), hosting.limits().stored_runs)


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
    except LookbackError as err:  # a ConfigError, or the engine refusing the job
        st.error(f"{fail}: {hosting.shown(str(err))}")
        return
    _started(job, page, switch_to)


def measure(page: str, title: str, fn: Callable, task, models: list[ModelConfig], meta: dict,
            fail: str = "Cannot measure") -> None:
    """Queue this page's measurement of `models`: a job like `launch`'s, checked against the same caps, that
    runs alone on the server (lib.jobs: exclusive), so that no training distorts its timings. fn is picklable
    and sends one measured row per model to on_run. meta: more for the job's meta, beside the task."""
    if _busy():
        return
    try:
        hosting.check_job(hosting.limits(), task, models, TrainConfig(epochs=1), [0], len(models))
        job = engine().submit(Job(title, fn, len(models), 1, {"task": task, **meta}, owner=visitor(),
                                  exclusive=True))
    except LookbackError as err:  # a ConfigError, or the engine refusing the job
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
    except LookbackError as err:  # a ConfigError, or the engine refusing the job
        st.error(f"{fail}: {hosting.shown(str(err))}")
        return
    _started(job, page)


def _busy() -> bool:
    """Whether this session has a job running or waiting already: then a warning, as one job per visitor."""
    job = current_job()
    if job is not None and job.running:
        st.warning(f"“{job.title}” is still running; wait for it or cancel it first.")
        return True
    return False


def _started(job: Job, page: str, switch_to: str | None = None) -> None:
    set_job(job, page)
    if switch_to:
        st.switch_page(switch_to)
    st.rerun()


def training_here(page: str) -> bool:
    """Whether this session's job is running for this page."""
    job = current_job()
    return job is not None and job.running and job_page() == page


def job_panel(page: str, finish, live: Callable | None = None) -> None:
    """Live progress with a Cancel button while this page's job runs; `finish(job)` stores its outcome.
    live(job), when given, draws more of the running job inside the progress panel (e.g. its loss curves)."""
    job = current_job()
    if job is None:
        return
    job.touch()
    if job_page() != page:
        if job.running:
            st.info(f"“{job.title}” is running on another page; its results will wait there.")
        return
    if not job.running:
        set_job(None)
        if isinstance(job.result, Comparison) and job.result.dataset is None:  # sent back without it
            job.result.dataset = dataset(job.result.task)
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
    job = current_job()
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
    job = current_job()
    if job is not None and job.running:
        job.touch()
        if job_page() != page:
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
    job = current_job()
    if job is None:
        return
    job.touch()
    st.caption(progress_text(job) if job.running else f"“{job.title}” has finished; open its page to see it.")
