"""Hosted mode: caps and the thread plan (lib/hosting.py), visitors' runs kept apart in the run store, and the
app in hosted mode: isolation, the queue, one job per visitor, and bad or abusive input."""
import json
import os
import re
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from benchmarks import _browser
from lib import hosting
from lib.bundles import export_bundle, import_bundle
from lib.errors import ConfigError
from lib.experiments import compare
from lib.models import ModelConfig
from lib.store import APPLICATION_ID, MIGRATIONS, RunStore, StoreError
from lib.tasks import userdata
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig
from lib.tasks.video import VideoConfig
from lib.train import TrainConfig
from pages import _jobs
from pages._jobs import Job, engine
from pages._ui import _open_store

TASK = TextRecallConfig(distance=2, n_train=300, n_val=100, n_test=100, seed=1)
TINY = ModelConfig(kind="ffnn", window=3, hidden=8)


# -- the switch and the limits -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("0", False), ("", False), ("no", False)])
def test_hosted_mode_follows_the_environment(monkeypatch, value, on):
    monkeypatch.setenv(hosting.HOSTED_ENV, value)
    assert hosting.hosted() is on
    assert hosting.limits() is (hosting.HOSTED if on else hosting.LOCAL)


def test_hosted_mode_is_off_without_the_variable(monkeypatch):
    monkeypatch.delenv(hosting.HOSTED_ENV, raising=False)
    assert not hosting.hosted()
    assert hosting.limits() is hosting.LOCAL


def test_the_home_pages_default_comparison_fits_the_hosted_caps():
    task = TextRecallConfig(distance=20)
    models = [ModelConfig(kind="ffnn", window=5), ModelConfig(kind="ffnn", window=25), ModelConfig(kind="rnn"),
              ModelConfig(kind="lstm")]
    hosting.check_job(hosting.HOSTED, task, models, TrainConfig(), [0], runs=4)
    for task in (SineConfig(), VideoConfig(n_train=hosting.HOSTED.samples)):
        hosting.check_job(hosting.HOSTED, task, models, TrainConfig(), [0, 1, 2], runs=12)


def test_a_job_beyond_the_caps_is_refused_with_every_reason():
    models = [ModelConfig(kind="lstm", hidden=512, layers=3), ModelConfig(kind="gru", hidden=64)]
    with pytest.raises(ConfigError) as err:
        hosting.check_job(hosting.HOSTED, TextRecallConfig(distance=150, n_train=20_000), models,
                          TrainConfig(epochs=200), list(range(5)), runs=40)
    assert str(err.value) == (
        "max epochs is 200, above this server's limit of 100; lower Max epochs; "
        "the number of seeds is 5, above this server's limit of 3; use fewer seeds; "
        "the number of runs is 40, above this server's limit of 24; train fewer models, seeds, windows or "
        "distances; "
        "distance is 150, above this server's limit of 50; lower Distance; "
        "training sentences is 20,000, above this server's limit of 5,000; lower Training sentences; "
        "LSTM's hidden units is 512, above this server's limit of 128; lower Hidden units or the parameter "
        "budget; LSTM's layers is 3, above this server's limit of 2; lower Layers.")


def test_locally_nothing_is_capped_beyond_each_settings_own_range():
    big = ModelConfig(kind="lstm", hidden=4096, layers=4)
    hosting.check_job(hosting.LOCAL, TextRecallConfig(distance=200, n_train=100_000), [big] * 10,
                      TrainConfig(epochs=1000), list(range(50)), runs=5000)


@pytest.mark.parametrize(("task", "capped"), [
    (TextRecallConfig(n_train=5001), "training sentences is 5,001"),
    (TextRecallConfig(distance=51), "distance is 51"),
    (TextRecallConfig(distance=10, distance_max=51), "largest distance is 51"),
    (SineConfig(length=5001), "series length is 5,001"),
    (SineConfig(seq_len=51), "input window (steps) is 51"),
    (VideoConfig(gap=51), "gap (frames) is 51"),
    (VideoConfig(n_train=5001), "training clips is 5,001"),
])
def test_each_setting_declared_with_a_cap_is_capped(task, capped):
    with pytest.raises(ConfigError, match=re.escape(capped) + ", above this server's limit of"):
        hosting.check_job(hosting.HOSTED, task, [TINY], TrainConfig(epochs=1), [0], runs=1)


def test_describe_names_the_caps():
    assert hosting.HOSTED.describe() == (
        "Each job trains up to 100 epochs, 5,000 training samples, 128 hidden units, 2 layers, 3 seeds, "
        "24 runs per job, and stops after 5 minutes with the runs finished so far.")


# -- the thread plan -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("jobs", "cores", "threads", "plan"), [
    (1, 2, 2, (1, 2)),  # local: one job with the library's threads
    (2, 2, 2, (2, 1)),  # hosted on 2 cores
    (4, 2, 2, (2, 1)),  # never more jobs than cores
    (2, 16, 16, (2, 8)),
    (3, 16, 16, (3, 5)),
    (1, 8, 1, (1, 1)),  # OMP_NUM_THREADS=1: the library's one thread
    (1, 2, 8, (1, 2)),  # torch's default above the cores a container may use
])
def test_jobs_times_threads_never_exceed_the_cores(jobs, cores, threads, plan):
    p = hosting.plan(jobs, cores=cores, library_threads=threads)
    assert (p.jobs, p.threads) == plan
    assert p.jobs * p.threads <= cores


def test_a_plan_needs_a_job():
    with pytest.raises(ConfigError, match="^jobs must be at least 1, got 0.$"):
        hosting.plan(0, cores=2, library_threads=2)


def test_available_cores_is_positive_and_within_the_machine():
    assert 1 <= hosting.available_cores() <= os.cpu_count()


@pytest.mark.parametrize(("left", "slots", "ahead", "start"), [
    ([], 2, [], 0.0),  # a free slot: starts now
    ([30.0, 10.0], 2, [], 10.0),  # waits for the sooner of two running jobs
    ([30.0, 10.0], 2, [20.0], 30.0),  # the job ahead takes the slot free at 10 until 30; ours the one free at 30
    ([30.0], 1, [20.0, 5.0], 55.0),
    ([30.0, 10.0], 2, [(5.0, True)], 35.0),  # a measurement ahead waits for both, then holds both
    ([30.0, 10.0], 2, [(5.0, True), 20.0], 35.0),
])
def test_estimated_start(left, slots, ahead, start):
    assert hosting.estimated_start(left, slots, ahead) == start


def test_an_exclusive_job_waits_for_every_slot():
    assert hosting.estimated_start([30.0, 10.0], 2, []) == 10.0
    assert hosting.estimated_start([30.0, 10.0], 2, [], exclusive=True) == 30.0
    assert hosting.estimated_start([30.0, 10.0], 2, [20.0], exclusive=True) == 30.0


# -- visitors' runs in one store -------------------------------------------------------------------------


def _train(store, epochs=2) -> list[str]:
    comp = compare(TASK, [TINY], TrainConfig(epochs=epochs), (0,), store=store)
    return [r.run_id for r in comp.runs]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "shared.sqlite"))  # the server's store: user data beside it
    with RunStore(tmp_path / "shared.sqlite") as s:
        yield s


def test_visitors_see_reuse_and_delete_only_their_own_runs(store):
    alice, bob = store.scoped("alice"), store.scoped("bob")
    (a,) = _train(alice)
    assert list(alice.runs()["id"]) == [a]
    assert bob.runs().empty
    with pytest.raises(StoreError, match="^no run "):
        bob.get(a)
    with pytest.raises(StoreError, match="^no run "):
        bob.load_weights(a)
    assert bob.delete([a]) == 0
    assert alice.get(a)["owner"] == "alice"
    (b,) = _train(bob)  # the same config and seed: bob trains his own instead of reusing alice's
    assert b != a
    (again,) = _train(alice)
    assert again == a  # alice reuses her own
    assert set(store.runs()["id"]) == {a, b}  # unscoped (local use, the CLI): every run
    assert alice.delete([a, b]) == 1
    assert list(store.runs()["id"]) == [b]


def test_a_visitor_cannot_log_to_or_finish_anothers_run(store):
    run = store.scoped("alice").start_run({"model": {}}, 0, "GRU", "text_recall", {})
    bob = store.scoped("bob")
    with pytest.raises(StoreError, match="^no run "):
        bob.log_epoch(run, {"epoch": 1, "train_loss": 1.0})
    with pytest.raises(StoreError, match="^no run "):
        bob.finish_run(run, "cancelled", "", {})
    assert store.get(run)["status"] == "running"


def test_an_imported_bundle_belongs_to_the_importer_and_is_never_reused_for_others(store):
    ids = _train(store.scoped("maker"))
    bundle = export_bundle(store.scoped("maker"), ids)
    mallory, alice = store.scoped("mallory"), store.scoped("alice")
    (imported,) = import_bundle(mallory, bundle).imported
    assert store.get(imported)["owner"] == "mallory"
    (trained,) = _train(alice)
    assert trained not in (imported, *ids)
    assert alice.get(trained)["history"]  # alice's own training, not a reused import


def test_the_storage_quota_refuses_a_write_beyond_it_and_writes_nothing(store):
    maker = store.scoped("maker")
    bundle = export_bundle(maker, [r.run_id for r in compare(TASK, [TINY], TrainConfig(epochs=2), (0, 1),
                                                              store=maker).runs])
    alice = store.scoped("alice", quota=2)
    (first,) = _train(alice, epochs=3)
    assert _train(alice, epochs=3) == [first]  # reusing a stored run writes nothing
    with pytest.raises(StoreError) as err:
        import_bundle(alice, bundle)
    assert str(err.value) == ("keeping 2 more run(s) would exceed the limit of 2 runs per visitor (1 kept now); "
                              "delete runs you no longer need, or export them as a bundle first.")
    assert list(alice.runs()["id"]) == [first]
    compare(TASK, [TINY], TrainConfig(epochs=2), (1,), store=alice)
    with pytest.raises(StoreError, match="^keeping 1 more run"):
        compare(TASK, [TINY], TrainConfig(epochs=2), (2,), store=alice)
    assert len(alice.runs()) == 2
    assert store.scoped("bob", quota=2).start_run({"model": {}}, 0, "GRU", "text_recall", {})


def test_closing_a_view_leaves_the_store_open(store):
    store.scoped("alice").close()
    assert store.runs().empty


def test_a_store_of_the_previous_schema_gains_the_owner_column(tmp_path):
    path = tmp_path / "v3.sqlite"
    db = sqlite3.connect(path)
    for step in MIGRATIONS[:3]:  # append-only, so the first three steps are the version 3 schema
        for sql in step:
            db.execute(sql)
    db.execute("INSERT INTO runs (id, created, updated, task, label, config, config_hash, seed, status, version) "
               "VALUES ('old', '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00', 'text_recall', 'GRU', "
               "'{}', 'h', 0, 'completed', '0.1.0')")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    with RunStore(path) as s:
        assert s.get("old")["owner"] is None
        assert s.scoped("alice").runs().empty
        assert list(s.runs()["id"]) == ["old"]


def test_limits_are_frozen():
    with pytest.raises(AttributeError):
        hosting.HOSTED.epochs = 1  # type: ignore[misc]
    assert replace(hosting.HOSTED, epochs=1).epochs == 1


def test_runs_of_ended_anonymous_sessions_are_forgotten(store):
    for owner in ("session:gone", "session:here", "user:ann@example.com"):
        _train(store.scoped(owner))
    _jobs.SEEN.clear()
    _jobs.SEEN["session:here"] = time.time()
    assert _jobs.forget_gone_visitors(store) == ["session:gone"]
    assert set(store.owners()) == {"session:here", "user:ann@example.com"}
    _train(store.scoped("session:late"))
    assert _jobs.forget_gone_visitors(store) == []  # not again within SWEEP_EVERY_S
    with pytest.raises(StoreError, match="^a store scoped to one owner cannot list the others"):
        store.scoped("session:here").owners()
    _jobs.SEEN.clear()


def test_user_data_that_no_run_names_are_deleted_once_nobody_used_them_for_a_session_lifetime(store):
    used, idle, fresh = (userdata.prepare(pd.DataFrame({"a": np.arange(80.0) % k, "b": np.arange(80.0) % 5})
                                          .to_csv(index=False).encode(), "series.csv") for k in (6, 7, 8))
    compare(used, [ModelConfig(kind="gru", hidden=4)], TrainConfig(epochs=1), (0,),
            store=store.scoped("user:ann@example.com"))
    old = time.time() - _jobs.SESSION_TTL_S - 60
    for cfg in (used, idle):
        os.utime(userdata.kept_path(cfg.sha256), (old, old))
    leftover = userdata.data_dir() / ".0123456789ab-x.npz"  # a write interrupted long ago
    leftover.write_bytes(b"")
    os.utime(leftover, (old, old))
    _jobs.SEEN.clear()
    assert _jobs.forget_gone_visitors(store) == []
    assert [userdata.kept_path(c.sha256).exists() for c in (used, idle, fresh)] == [True, False, True]
    assert not leftover.exists()
    userdata.make_userdata(fresh)  # loading the data marks them used
    assert time.time() - userdata.kept_path(fresh.sha256).stat().st_mtime < 60
    _jobs.SEEN.clear()


def test_a_shared_server_shows_no_path_of_its_run_store_or_its_data(monkeypatch):
    store = "/srv/app/data/lookback.sqlite"
    message = ("the prepared user data 0123456789ab are not in /srv/app/data/userdata; prepare the same file again; "
               f"{store} is locked")
    assert hosting.shown(message, store) == message  # locally the paths help
    monkeypatch.setattr(hosting, "hosted", lambda: True)
    assert hosting.shown(message, store) == (
        "the prepared user data 0123456789ab are not in the server's data folder/userdata; prepare the same file "
        "again; the run store is locked")


# -- the app in hosted mode (AppTest sessions share one server process, as browser sessions do) ----------

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TINY_LINK = {"w_cmp_dist": "2", "w_cmp_n": "300", "w_cmp_kinds": ["FFNN (fixed window)", "GRU"],
             "w_cmp_reach": "false"}


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """Hosted mode with its own run store; the engine and the store of the local tests are left alone."""
    path = tmp_path_factory.mktemp("hosted") / "hosted.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(hosting.HOSTED_ENV, "1")
        mp.setenv("LOOKBACK_DB", str(path))
        mp.delenv(hosting.JOBS_ENV, raising=False)
        _open_store.clear()
        AppTest.from_file(APP, default_timeout=90).run()  # a fresh process reruns its first visit once
        yield path
        for job in list(engine()._jobs.values()):
            job.cancel()
            job.wait(30)
        _open_store.clear()


def visit(page: str | None = None, user: str | None = None, link: dict | None = None) -> AppTest:
    """A new visitor's session (signed in as `user` when given), opening `page` with the link's settings."""
    at = AppTest.from_file(APP, default_timeout=90)
    if user is not None:
        at.user = {"is_logged_in": True, "email": user}
    for key, value in (link or {}).items():
        at.query_params[key] = value
    if page is not None:
        at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def train(at: AppTest, epochs: int = 2, patience: int = 10) -> None:
    at.number_input(key="w_cmp_epochs").set_value(epochs)
    at.number_input(key="w_cmp_patience").set_value(patience)
    at.button(key="cmp_run").click().run()
    assert not at.exception, [e.value for e in at.exception]


def busy(should_stop, **_):
    """A job that holds a slot until it is cancelled (in the engine's worker process)."""
    while not should_stop():
        time.sleep(0.02)


def test_a_rerun_beyond_the_servers_caps_is_refused_before_it_trains(hosted):
    at = visit("runs")
    mine = RunStore(hosted).scoped(at.session_state["_visitor"])
    compare(TASK, [TINY], TrainConfig(epochs=500, patience=1), (0,), store=mine)  # e.g. brought in a bundle
    at.run()
    at.session_state[next(d.key for d in at.dataframe if (d.key or "").startswith("runs_table"))] = {
        "selection": {"rows": [0], "columns": []}}
    at.run()
    at.button(key="runs_rerun").click().run()
    assert "job" not in at.session_state  # nothing was queued
    assert [e.value for e in at.error] == [
        "Cannot rerun: max epochs is 500, above this server's limit of 100; lower Max epochs."]


def test_hosted_pages_render_without_server_internals(hosted):
    at = visit()
    # AppTest runs app.py (and so the sidebar) on a session's first run only
    assert any(hosting.HOSTED.describe() in c.value for c in at.sidebar.caption)
    for page in ("compare", "window", "memory", "costs", "probe", "your_data", "runs"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
    shown = " ".join(str(e.value) for kind in ("caption", "markdown", "info", "error", "warning")
                     for e in at.get(kind))
    assert str(hosted) not in shown and str(hosted.parent) not in shown
    assert "Only you see your runs." in shown
    assert st.get_option("client.showErrorDetails") == "none"


def test_sign_in_is_offered_where_login_is_set_up(hosted):
    assert not visit().sidebar.button  # no [auth] in the secrets: nothing to sign in with
    anonymous = AppTest.from_file(APP, default_timeout=90)
    anonymous.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x"}
    anonymous.run()
    assert [b.label for b in anonymous.sidebar.button] == ["Sign in to keep your runs"]
    signed_in = AppTest.from_file(APP, default_timeout=90)
    signed_in.secrets["auth"] = anonymous.secrets["auth"]
    signed_in.user = {"is_logged_in": True, "email": "ann@example.com"}
    signed_in.run()
    assert [b.label for b in signed_in.sidebar.button] == ["Sign out"]
    assert "Signed in as ann@example.com: your runs are kept for your next visit." in [
        c.value for c in signed_in.sidebar.caption]


def test_the_widgets_enforce_the_caps(hosted):
    at = visit("compare")
    assert at.number_input(key="w_cmp_epochs").max == hosting.HOSTED.epochs
    assert at.number_input(key="w_cmp_n").max == hosting.HOSTED.samples
    assert at.number_input(key="w_cmp_hidden").max == hosting.HOSTED.hidden
    assert at.number_input(key="w_cmp_seeds").max == hosting.HOSTED.seeds
    assert at.slider(key="w_cmp_dist").max == hosting.HOSTED.distance


def test_a_link_beyond_the_caps_opens_the_page_within_them(hosted):
    at = visit("compare", link={"w_cmp_n": "20000", "w_cmp_epochs": "500", "w_cmp_hidden": "4096"})
    assert at.number_input(key="w_cmp_n").value <= hosting.HOSTED.samples
    assert at.number_input(key="w_cmp_epochs").value <= hosting.HOSTED.epochs
    assert at.number_input(key="w_cmp_hidden").value <= hosting.HOSTED.hidden
    # the message that says so is checked in a real browser: test_two_visitors_in_a_browser


def test_visitors_see_only_their_own_runs(hosted):
    alice = visit("compare", link=TINY_LINK)
    train(alice)
    job = alice.session_state["job"]
    assert job.wait(90) and job.error is None, job.error
    alice.run()
    assert [h.value for h in alice.subheader][:1] == ["Result"]
    alice.switch_page("pages/runs.py").run()
    mine = alice.session_state["_visitor"]
    assert any(c.value == "2 of at most 200 runs kept." for c in alice.caption)
    bob = visit("runs")
    assert [i.value for i in bob.info] == [
        "No runs yet. Train something on the Compare or Window tradeoff page and it appears here."]
    assert bob.session_state["_visitor"] != mine
    assert any(c.value == "0 of at most 200 runs kept." for c in bob.caption)


def test_a_second_job_of_the_same_visitor_is_refused_with_the_reason(hosted):
    first = visit("compare", user="carol@example.com", link=TINY_LINK)
    train(first, epochs=100, patience=0)
    job = first.session_state["job"]
    try:
        second = visit("compare", user="carol@example.com", link=TINY_LINK)  # her other tab
        train(second)
        assert [e.value for e in second.error] == [
            "Cannot train: you already have a job on this server (“Compare”, "
            f"{'waiting' if job.state == 'queued' else 'training'}); wait for it to finish or cancel it first: one "
            "job per visitor."]
        assert second.session_state["job"] is None if "job" in second.session_state else True
    finally:
        job.cancel()
        assert job.wait(60)


def test_a_queued_job_shows_its_place_and_an_estimated_start(hosted):
    blockers = [engine().submit(Job("busy", busy, 1, 1, owner=f"other {i}")) for i in range(engine().plan.jobs)]
    try:
        at = visit("compare", link=TINY_LINK)
        train(at)
        (bar,) = at.get("progress")
        assert re.fullmatch(r"Compare: waiting in the queue, position 1 of 1; estimated start in about \d+ (s|min)",
                            bar.proto.text), bar.proto.text
        at.session_state["job"].cancel()
    finally:
        for job in blockers:
            job.cancel()
            job.wait(30)


def test_an_upload_over_the_cap_is_refused(hosted):
    at = visit("runs")
    big = b"PK\x03\x04" + bytes(hosting.HOSTED.upload_mb * 2**20)
    at.get("file_uploader")[0].set_value(("big.zip", big, "application/zip")).run()
    at.button(key="runs_import").click().run()
    assert [e.value for e in at.error] == [
        f"Nothing was imported: bundle is {hosting.HOSTED.upload_mb}.0 MiB, more than the "
        f"{hosting.HOSTED.upload_mb}.0 MiB limit."]


def test_a_bundle_beyond_the_storage_quota_is_refused(hosted, tmp_path, monkeypatch):
    with RunStore(tmp_path / "maker.sqlite") as maker:
        ids = [r.run_id for r in compare(TASK, [TINY], TrainConfig(epochs=2), (0, 1, 2), store=maker).runs]
        bundle = export_bundle(maker, ids)
    monkeypatch.setattr(hosting, "HOSTED", replace(hosting.HOSTED, stored_runs=2))
    at = visit("runs")
    at.get("file_uploader")[0].set_value(("runs.zip", bundle, "application/zip")).run()
    at.button(key="runs_import").click().run()
    assert [e.value for e in at.error] == [
        "Nothing was imported: keeping 3 more run(s) would exceed the limit of 2 runs per visitor (0 kept now); "
        "delete runs you no longer need, or export them as a bundle first."]


def test_a_job_past_the_time_limit_keeps_its_finished_runs(hosted, monkeypatch):
    monkeypatch.setattr(engine(), "limits", replace(engine().limits, job_seconds=2.0))
    at = visit("compare", link={**TINY_LINK, "w_cmp_n": "4000"})  # 100 epochs of the GRU take far longer
    train(at, epochs=100, patience=0)
    job = at.session_state["job"]
    assert job.wait(60)
    at.run()
    assert ("“Compare” was stopped at this server's limit of 2 seconds per job; the runs that finished are kept."
            in [w.value for w in at.warning])
    assert at.session_state["results"]["compare"].cancelled


def test_a_measurement_counts_as_the_visitors_job_and_stops_at_the_time_limit(hosted, monkeypatch):
    monkeypatch.setattr(engine(), "limits", replace(engine().limits, job_seconds=0.5))
    link = {"w_cost_hidden": "128", "w_cost_n": "5000"}  # the LSTM alone takes longer to measure than the limit
    at = visit("costs", user="dave@example.com", link=link)
    other_tab = visit("costs", user="dave@example.com", link=link)
    at.button(key="cost_measure").click().run()
    job = at.session_state["job"]
    assert job.exclusive and job.owner == "user:dave@example.com"
    other_tab.button(key="cost_measure").click().run()
    assert [e.value for e in other_tab.error] == [
        "Cannot measure: you already have a job on this server (“Measuring costs”, "
        f"{'waiting' if job.state == 'queued' else 'training'}); wait for it to finish or cancel it first: one "
        "job per visitor."]
    assert job.wait(60)
    at.run()
    assert ("“Measuring costs” was stopped at this server's limit of 0.5 seconds per job; what was measured is kept."
            in [w.value for w in at.warning])
    kept = at.session_state["results"]["costs"]["frame"]
    assert 1 <= len(kept) < 4
    assert f"Stopped after {len(kept)} of 4 measurements; the rest were not measured." in [w.value for w in at.warning]


# -- two visitors in a real browser ------------------------------------------------------------------------

SLOW_LINK = {"w_cmp_dist": 2, "w_cmp_n": 2000, "w_cmp_epochs": 100, "w_cmp_patience": 0, "w_cmp_hidden": 4096}
QUICK_LINK = {"w_cmp_dist": 2, "w_cmp_n": 300, "w_cmp_epochs": 2}
QUICK_MODELS = ("FFNN w5", "FFNN w7", "RNN", "LSTM")


@pytest.mark.browser
def test_two_visitors_in_a_browser(tmp_path, monkeypatch):
    """Hosted, one job at a time: the second visitor queues and sees their place; the link's hidden size is
    clamped with a message; each visitor's Runs page lists only their own runs."""
    chromium = _browser.find_chromium()
    if chromium is None:
        if os.environ.get("LOOKBACK_REQUIRE_BROWSER") == "1":
            pytest.fail("no Chromium binary found; LOOKBACK_REQUIRE_BROWSER=1 makes this a failure")
        pytest.skip("no Chromium binary found; install Debian's `chromium` to run the browser tests")
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv(hosting.HOSTED_ENV, "1")
    monkeypatch.setenv(hosting.JOBS_ENV, "1")
    server = _browser.Server(tmp_path, db=tmp_path / "hosted.sqlite")
    try:
        server.wait_healthy()
        with sync_playwright() as p:
            chrome = p.chromium.launch(executable_path=chromium, args=_browser.CHROMIUM_ARGS, headless=True)
            a, b = (chrome.new_context(viewport={"width": 1400, "height": 1000}).new_page() for _ in range(2))
            a.goto(f"{server.url}/compare?{urlencode(SLOW_LINK)}")
            expect(a.get_by_text("w_cmp_hidden=4096 set to 128 (the setting allows 4 to 128)")).to_be_visible(
                timeout=60_000)
            b.goto(f"{server.url}/compare?{urlencode(QUICK_LINK)}")
            expect(b.get_by_label("Training sentences", exact=True)).to_have_value("300", timeout=60_000)
            a.get_by_role("button", name="Train", exact=True).click()
            expect(a.get_by_test_id("stProgress").get_by_text(re.compile(r"^Compare: training"))).to_be_visible(
                timeout=60_000)
            b.get_by_role("button", name="Train", exact=True).click()
            queued = re.compile(r"^Compare: waiting in the queue, position 1 of 1; estimated start in about "
                                r"\d+ (s|min)$")
            expect(b.get_by_test_id("stProgress").get_by_text(queued)).to_be_visible(timeout=30_000)
            a.get_by_role("button", name="Cancel", exact=True).click()  # b's job starts at once
            expect(b.get_by_role("heading", name="Result", exact=True)).to_be_visible(timeout=120_000)
            for page in (a, b):
                _browser.go(page, "Runs", "Runs")
                _browser.no_exception(page)
            expect(b.get_by_text(f"{len(QUICK_MODELS)} of at most 200 runs kept.")).to_be_visible(timeout=30_000)
            b_table = b.get_by_test_id("stDataFrame").locator("table")
            for label in QUICK_MODELS:
                expect(b_table).to_contain_text(label)
            with RunStore(tmp_path / "hosted.sqlite") as store:
                ids = [set(store.scoped(owner).runs()["id"]) for owner in store.owners()]
            assert len(ids) == 2  # two visitors, each owning their runs
            b_text = b_table.inner_text()
            b_own = next(s for s in ids if any(i in b_text for i in s))
            a_own = next(s for s in ids if s is not b_own)
            assert all(i in b_text for i in b_own) and not any(i in b_text for i in a_own)
            expect(a.get_by_text(f"{len(a_own)} of at most 200 runs kept.")).to_be_visible(timeout=30_000)
            a_text = a.get_by_test_id("stDataFrame").locator("table").inner_text()
            assert all(i in a_text for i in a_own) and not any(i in a_text for i in b_own)
    finally:
        server.stop()
    assert "Traceback" not in server.log()


# -- deployable as is -----------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
# Run in a fresh copy of the repository: every page in hosted mode, then, as JSON on the last line, the
# distributions providing the modules that the app's own code imports at module level and that got loaded.
_RENDER_ALL = """
import ast, importlib.metadata, json, pathlib, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=120).run()
errors = [e.value for e in at.exception]
for page in ("compare", "window", "memory", "costs", "probe", "your_data", "runs"):
    at.switch_page(f"pages/{page}.py").run()
    errors += [f"{page}: {e.value}" for e in at.exception]
ours = set()
for path in [pathlib.Path("app.py"), *pathlib.Path("lib").rglob("*.py"), *pathlib.Path("pages").rglob("*.py")]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            ours |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            ours.add(node.module.split(".")[0])
loaded = {m.split(".")[0] for m in list(sys.modules)}
dists = importlib.metadata.packages_distributions()
used = sorted({d for m in ours & loaded - set(sys.stdlib_module_names) for d in dists.get(m, [])})
print(json.dumps({"errors": errors, "used": used}))
"""


def _requirement_names(path: Path) -> set[str]:
    """Distribution names required by a requirements file (its -r includes followed), lower case."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            names |= _requirement_names(path.parent / line[2:].strip())
        elif line and not line.startswith("-"):
            names.add(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _closure(names: set[str]) -> set[str]:
    """The names with every distribution they require, transitively (as installed here)."""
    import importlib.metadata as md
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo += [re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requires
                 if "extra ==" not in r]
    return seen


def test_the_app_starts_in_hosted_mode_from_a_fresh_copy(tmp_path):
    """A fresh copy of the repository (the files git tracks or would, none of this checkout's data or caches)
    serves the app with LOOKBACK_HOSTED=1, every page renders, and every distribution the app's code imports
    is declared in requirements.txt (or required by one that is)."""
    import shutil
    import subprocess
    import sys

    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    copy = tmp_path / "lookback"
    for name in files:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    assert not (copy / "data" / "lookback.sqlite").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKBACK_", "STREAMLIT_"))}
    env |= {hosting.HOSTED_ENV: "1", "LOOKBACK_DB": str(tmp_path / "fresh.sqlite"), "PYTHONPATH": str(copy)}

    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port",
                               str(_browser.free_port()), "--server.address", "127.0.0.1"],
                              cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in server.stdout:
            if match := re.search(r"URL: (http://127\.0\.0\.1:\d+)", line):
                url = match.group(1)
                break
        assert url is not None, "the server exited before it served the app"
        deadline = time.monotonic() + 60
        while not _browser.healthy(url):
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(30)

    out = subprocess.run([sys.executable, "-c", _RENDER_ALL], cwd=copy, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    declared = _closure(_requirement_names(copy / "requirements.txt"))
    missing = [d for d in report["used"] if d.lower().replace("_", "-") not in declared
               and d.lower() != "lookback"]
    assert missing == [], f"loaded by the app but not declared in requirements.txt: {missing}"
