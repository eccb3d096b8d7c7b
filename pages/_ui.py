"""Widgets and state shared by the pages. Pages stay thin: widgets -> config -> lib -> charts."""
from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from lib.errors import ConfigError
from lib.experiments import dataset
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, match_params
from lib.store import RunStore, StoreError, default_path
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig, cue_lag
from lib.tasks.video import GAP_MODES, VideoConfig
from lib.train import TrainConfig
from pages._jobs import Job

TASK_LABELS = {"text_recall": "Text recall", "sine": "Sine waves", "video": "Video frames"}
KIND_LABELS = {"ffnn": "FFNN (fixed window)", "rnn": "Vanilla RNN", "gru": "GRU", "lstm": "LSTM"}
INIT_LABELS = {"auto": "best practice", "pytorch": "PyTorch default", "orthogonal": "orthogonal recurrent",
               "forget1": "forget-gate bias 1", "chrono": "chrono + orthogonal"}
MAX_SEEDS, MAX_EPOCHS, MAX_HIDDEN, MAX_TRAIN = 5, 200, 512, 20_000  # guards for a shared host
LRS, BATCHES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0), (16, 32, 64, 128, 256)

# Bounds of the settings widgets, kept small enough for a shared host.
LIMITS = {
    "dist": (0, 200), "n": (200, MAX_TRAIN), "period": (4, 200), "period2": (0, 200), "noise": (0.0, 1.0),
    "horizon": (1, 50), "seq": (8, 400), "gap": (0, 60), "hidden": (4, MAX_HIDDEN), "layers": (1, 3),
    "dropout": (0.0, 0.5), "epochs": (1, MAX_EPOCHS), "patience": (0, 50), "seeds": (1, MAX_SEEDS),
    "budget": (0, 2_000_000), "window": (1, 400), "lo": (1, 400), "hi": (1, 400), "count": (2, 16),
}


_navigation_checked = False


def use_app_navigation() -> None:
    """Every page calls this first. Streamlit runs an app with a pages/ folder as a legacy multipage app
    until st.navigation has run once in the server process, so a fresh server's first visit straight to
    a page's URL would run that page alone, without app.py: switch to app.py's navigation and rerun, once
    per process (the flag then stays off in a server)."""
    global _navigation_checked
    if not _navigation_checked:
        _navigation_checked = True
        if PagesManager.uses_pages_directory:
            PagesManager.uses_pages_directory = False
            st.rerun()


def results() -> dict:
    """Finished results per page, kept for the whole session."""
    return st.session_state.setdefault("results", {})


def setting(key: str) -> dict:
    """Widget arguments for a setting: kept across page switches and mirrored in the page's URL, so a
    copied link reproduces the setup (Streamlit ignores link values a widget would reject)."""
    return {"key": key, "persist_state": "session", "bind": "query-params"}


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> RunStore:
    return RunStore(path)


def run_store() -> RunStore | None:
    """This install's run store, or None after explaining why it cannot be opened."""
    try:
        return _open_store(str(default_path()))
    except StoreError as err:
        st.error(f"Runs are not being saved: {err}")
        return None


def task_picker(prefix: str):
    """Task selector and its knobs; returns a task config (not yet validated)."""
    name = st.selectbox("Task", list(TASK_LABELS), format_func=TASK_LABELS.get, **setting(f"{prefix}_task"))
    if name == "text_recall":
        d = st.slider("Distance: filler words between the cue and the answer", *LIMITS["dist"], 20,
                      **setting(f"{prefix}_dist"),
                      help="The cue word opens the sentence; the answer depends on it alone.")
        objective = st.radio("Objective", ["classify", "next_word"], horizontal=True, **setting(f"{prefix}_obj"),
                             format_func={"classify": "classify the final word",
                                          "next_word": "next word at every position"}.get)
        n = st.number_input("Training sentences", *LIMITS["n"], TextRecallConfig.n_train, 200, **setting(f"{prefix}_n"))
        return TextRecallConfig(distance=d, objective=objective, n_train=int(n))
    if name == "sine":
        c1, c2 = st.columns(2)
        main, second = (int(p) for p in SineConfig.periods)
        period = c1.number_input("Main period (steps)", *LIMITS["period"], main, **setting(f"{prefix}_period"))
        period2 = c2.number_input("Second period (steps, 0 = none)", *LIMITS["period2"], second,
                                  **setting(f"{prefix}_period2"))
        noise = c1.slider("Noise (std)", *LIMITS["noise"], 0.1, 0.05, **setting(f"{prefix}_noise"))
        horizon = c2.number_input("Forecast horizon (steps)", *LIMITS["horizon"], 1, **setting(f"{prefix}_horizon"))
        seq_len = st.number_input("Input window of the recurrent models (steps)", *LIMITS["seq"], 48,
                                  **setting(f"{prefix}_seq"))
        periods = (float(period),) + ((float(period2),) if period2 else ())
        return SineConfig(periods=periods, amplitudes=(1.0, 0.5)[:len(periods)], noise=noise,
                          horizon=int(horizon), seq_len=int(seq_len))
    c1, c2 = st.columns(2)
    gap = c1.slider("Gap: frames between the digit and the answer", *LIMITS["gap"], 20, **setting(f"{prefix}_gap"))
    mode = c2.selectbox("Gap frames show", GAP_MODES, **setting(f"{prefix}_mode"))
    features = c1.radio("Frame features", ["pixels", "pca"], horizontal=True, **setting(f"{prefix}_feat"))
    n = c2.number_input("Training clips", *LIMITS["n"], VideoConfig.n_train, 200, **setting(f"{prefix}_n"))
    return VideoConfig(gap=gap, gap_mode=mode, features=features, n_train=int(n))


def reach(task) -> int | None:
    """The FFNN window that first sees the decisive input, where the task has one."""
    if isinstance(task, TextRecallConfig):
        return cue_lag(task.distance)
    if isinstance(task, VideoConfig):
        return task.gap + 1
    if isinstance(task, SineConfig):
        return task.main_period
    return None


def train_settings(prefix: str, epochs: int = 60) -> tuple[TrainConfig, list[int], dict]:
    """The advanced expander: training settings, seeds and per-model options."""
    with st.expander("Advanced settings"):
        c1, c2, c3 = st.columns(3)
        hidden = c1.number_input("Hidden units", *LIMITS["hidden"], 64, 4, **setting(f"{prefix}_hidden"))
        layers = c2.number_input("Layers", *LIMITS["layers"], 1, **setting(f"{prefix}_layers"))
        dropout = c3.slider("Dropout", *LIMITS["dropout"], 0.0, 0.05, **setting(f"{prefix}_dropout"))
        init = c1.selectbox("Recurrent initialisation", list(INIT_LABELS), format_func=INIT_LABELS.get,
                            **setting(f"{prefix}_init"), help="Best practice: orthogonal for the RNN, chrono for "
                            "LSTM and GRU (Tallec & Ollivier 2018). Not every scheme applies to every model.")
        lr = c2.select_slider("Learning rate", LRS, 3e-3,
                              **setting(f"{prefix}_lr"))
        batch = c3.select_slider("Batch size", BATCHES, 64, **setting(f"{prefix}_batch"))
        ep = c1.number_input("Max epochs", *LIMITS["epochs"], epochs, **setting(f"{prefix}_epochs"))
        patience = c2.number_input("Early-stopping patience (0 = off)", *LIMITS["patience"], 10,
                                   **setting(f"{prefix}_patience"))
        n_seeds = c3.number_input("Seeds", *LIMITS["seeds"], 1, **setting(f"{prefix}_seeds"))
        budget = c1.number_input("Parameter budget (0 = off)", *LIMITS["budget"], 0, 1000,
                                 **setting(f"{prefix}_budget"),
                                 help="Size every model's hidden layer to about this many parameters.")
    cfg = TrainConfig(lr=float(lr), batch_size=int(batch), epochs=int(ep), patience=int(patience))
    model = {"hidden": int(hidden), "layers": int(layers), "dropout": float(dropout), "init": init,
             "budget": int(budget)}
    return cfg, list(range(int(n_seeds))), model


def build_models(task, kinds: list[str], windows: list[int], opts: dict) -> list[ModelConfig]:
    """Model configs for the chosen kinds; an init that does not apply to a kind falls back to best practice."""
    models = []
    for kind in kinds:
        init = opts["init"] if opts["init"] in MODEL_KINDS[kind].inits else "auto"
        base = ModelConfig(kind=kind, hidden=opts["hidden"], layers=opts["layers"], dropout=opts["dropout"],
                           init=init)
        models += [replace(base, window=w) for w in windows] if kind == "ffnn" else [base]
    if opts.get("budget"):
        io = ModelIO.from_dataset(dataset(task))
        models = [match_params(m, io, opts["budget"]) for m in models]
    return models


def checked_dataset(task):
    """The task's dataset, or None after showing what to change."""
    try:
        return dataset(task)
    except ConfigError as err:
        st.error(f"Task settings: {err}")
        return None


def start_job(page: str, title: str, fn, total_runs: int, epochs: int, meta: dict | None = None,
              switch_to: str | None = None) -> None:
    """Start a background job unless this session already has one running, then show its page."""
    job = st.session_state.get("job")
    if job is not None and job.running:
        st.warning(f"“{job.title}” is still training; wait for it or cancel it first.")
        return
    st.session_state["job"] = Job(title, fn, total_runs, epochs, meta)
    st.session_state["job_page"] = page
    if switch_to:
        st.switch_page(switch_to)
    st.rerun()


def training_here(page: str) -> bool:
    """Whether this session's job is running for this page."""
    job = st.session_state.get("job")
    return job is not None and job.running and st.session_state.get("job_page") == page


def job_panel(page: str, finish) -> None:
    """Live progress with a Cancel button while this page's job runs; `finish(job)` stores its outcome."""
    job = st.session_state.get("job")
    if job is None:
        return
    if st.session_state.get("job_page") != page:
        if job.running:
            st.info(f"“{job.title}” is training on another page; its results will wait there.")
        return
    if not job.running:
        st.session_state["job"] = None
        if job.error:
            st.error(job.error)
        finish(job)
        return
    _progress(page)


@st.fragment(run_every=0.5)
def _progress(page: str) -> None:
    job = st.session_state.get("job")
    if job is None or not job.running:
        st.rerun()
    doing = "waiting for a free slot" if job.state == "queued" else "training"
    st.progress(job.fraction(), text=f"{job.title}: {doing} — {len(job.finished)} of {job.total_runs} runs finished")
    rows = [{"model": lab, "seed": seed, "epoch": r["epoch"], "train loss": r["train_loss"],
             "val loss": r["val_loss"], "val metric": r["val_metric"], "elapsed s": r["elapsed_seconds"]}
            for (lab, seed), r in job.progress.items()]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"{page}_progress_table")
    if st.button("Cancel", key=f"{page}_cancel", disabled=job.cancelled, type="secondary"):
        job.cancel()
        st.toast("Cancelling: finished runs are kept.")


def reference_note(ref: dict) -> str:
    """How the precomputed reference results shown before a user's own run were made."""
    env, meta = ref["meta"]["env"], ref["meta"]
    return (f"Precomputed reference results ({len(meta['seeds'])} seeds), made by `{meta['command']}` on "
            f"{meta['created']} with torch {env['torch']} on {env['device']}, {env.get('workers', 1)} worker "
            f"process(es) with {env['threads']} thread(s) each. "
            "Run your own above to replace them.")


def chart(fig, key: str, caption: str) -> None:
    st.plotly_chart(fig, key=key, width="stretch")
    st.caption(caption)


def download(df: pd.DataFrame, name: str, key: str) -> None:
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button("Download CSV", df.to_csv(index=False), f"{name}.csv", "text/csv", key=f"{key}_csv")
    c2.download_button("Download JSON", df.to_json(orient="records", indent=1), f"{name}.json",
                       "application/json", key=f"{key}_json")
