"""The app in hosted mode: visitors kept apart, the queue, one job per visitor, the caps in the widgets and
bad or abusive input; and the runs and user data of visitors who left, forgotten (pages/_jobs.py)."""
import os
import re
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib import hosting
from lib.bundles import export_bundle
from lib.experiments import compare
from lib.models import ModelConfig
from lib.paths import userdata_dir
from lib.store import RunStore, StoreError
from lib.tasks.text import TextRecallConfig
from lib.tasks.user import prepared
from lib.train import TrainConfig
from pages import _jobs
from pages._jobs import Job, engine
from pages._run import _open_store
from tests.support import browser

TASK = TextRecallConfig(distance=2, n_train=300, n_val=100, n_test=100, seed=1)
TINY = ModelConfig(kind="ffnn", window=3, hidden=8)


# -- forgetting visitors who left ---------------------------------------------------------------------


def _train(store, epochs=2) -> list[str]:
    comp = compare(TASK, [TINY], TrainConfig(epochs=epochs), (0,), store=store)
    return [r.run_id for r in comp.runs]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "shared.sqlite"))  # the server's store: user data beside it
    with RunStore(tmp_path / "shared.sqlite") as s:
        yield s


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
    used, idle, fresh = (prepared.prepare(pd.DataFrame({"a": np.arange(80.0) % k, "b": np.arange(80.0) % 5})
                                          .to_csv(index=False).encode(), "series.csv") for k in (6, 7, 8))
    compare(used, [ModelConfig(kind="gru", hidden=4)], TrainConfig(epochs=1), (0,),
            store=store.scoped("user:ann@example.com"))
    old = time.time() - _jobs.SESSION_TTL_S - 60
    for cfg in (used, idle):
        os.utime(prepared.kept_path(cfg.sha256), (old, old))
    leftover = userdata_dir() / ".0123456789ab-x.npz"  # a write interrupted long ago
    leftover.write_bytes(b"")
    os.utime(leftover, (old, old))
    _jobs.SEEN.clear()
    assert _jobs.forget_gone_visitors(store) == []
    assert [prepared.kept_path(c.sha256).exists() for c in (used, idle, fresh)] == [True, False, True]
    assert not leftover.exists()
    prepared.make_userdata(fresh)  # loading the data marks them used
    assert time.time() - prepared.kept_path(fresh.sha256).stat().st_mtime < 60
    _jobs.SEEN.clear()


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


def until(condition, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextmanager
def every_slot_held():
    """Other visitors' jobs hold every slot of the engine until the block ends: a job submitted meanwhile
    waits in the queue, so it is still unfinished whenever the test looks (never a race with its training)."""
    blockers = [engine().submit(Job("busy", busy, 1, 1, owner=f"other {i}")) for i in range(engine().plan.jobs)]
    try:
        until(lambda: all(job.state == "running" for job in blockers), timeout=180)  # fresh workers import torch
        yield
    finally:
        for job in blockers:
            job.cancel()
        assert all(job.wait(30) for job in blockers)


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
    assert job.wait(180) and job.error is None, job.error
    alice.run()
    assert [h.value for h in alice.subheader][:1] == ["Result"]
    alice.switch_page("pages/runs.py").run()
    mine = alice.session_state["_visitor"]
    assert any(c.value == "2 of at most 200 runs kept." for c in alice.caption)
    bob = visit("runs")
    assert [i.value for i in bob.info] == [
        "No runs yet. Train something on the Compare or Context tradeoff page and it appears here."]
    assert bob.session_state["_visitor"] != mine
    assert any(c.value == "0 of at most 200 runs kept." for c in bob.caption)


def test_a_second_job_of_the_same_visitor_is_refused_with_the_reason(hosted):
    with every_slot_held():
        first = visit("compare", user="carol@example.com", link=TINY_LINK)
        train(first)
        job = first.session_state["job"]
        second = visit("compare", user="carol@example.com", link=TINY_LINK)  # her other tab
        train(second)
        assert [e.value for e in second.error] == [
            "Cannot train: you already have a job on this server (“Compare”, waiting); wait for it to finish or "
            "cancel it first: one job per visitor."]
        assert second.session_state["job"] is None if "job" in second.session_state else True
        job.cancel()
    assert job.wait(60)


def test_a_queued_job_shows_its_place_and_an_estimated_start(hosted):
    with every_slot_held():
        at = visit("compare", link=TINY_LINK)
        train(at)
        (bar,) = at.get("progress")
        assert re.fullmatch(r"Compare: waiting in the queue, position 1 of 1; estimated start in about \d+ (s|min)",
                            bar.proto.text), bar.proto.text
        at.session_state["job"].cancel()


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
    assert job.wait(180)  # the limit counts from the start of training, after any wait for a worker
    at.run()
    assert ("“Compare” was stopped at this server's limit of 2 seconds per job; the runs that finished are kept."
            in [w.value for w in at.warning])
    assert at.session_state["results"]["compare"].cancelled


def test_a_measurement_counts_as_the_visitors_job_and_stops_at_the_time_limit(hosted, monkeypatch):
    # no limit (nor idle cancel, as no page reruns meanwhile) until the first model is measured
    monkeypatch.setattr(engine(), "limits", replace(engine().limits, job_seconds=None, idle_seconds=None))
    link = {"w_cost_hidden": "128", "w_cost_n": "5000"}  # the LSTM alone takes longer to measure than the limit
    at = visit("costs", user="dave@example.com", link=link)
    other_tab = visit("costs", user="dave@example.com", link=link)
    with every_slot_held():  # the measurement waits for them: it runs alone
        at.button(key="cost_measure").click().run()
        job = at.session_state["job"]
        assert job.exclusive and job.owner == "user:dave@example.com" and job.state == "queued"
        other_tab.button(key="cost_measure").click().run()
        assert [e.value for e in other_tab.error] == [
            "Cannot measure: you already have a job on this server (“Measuring costs”, waiting); wait for it to "
            "finish or cancel it first: one job per visitor."]
    until(lambda: job.finished or not job.running, timeout=300)  # the first model is measured
    assert job.finished, (job.error, job.stop_reason)
    monkeypatch.setattr(engine(), "limits", replace(engine().limits, job_seconds=0.5))
    assert job.wait(60)
    at.run()
    assert ("“Measuring costs” was stopped at this server's limit of 0.5 seconds per job; what was measured is kept."
            in [w.value for w in at.warning])
    kept = at.session_state["results"]["costs"].result
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
    chromium = browser.find_chromium()
    if chromium is None:
        if os.environ.get("LOOKBACK_REQUIRE_BROWSER") == "1":
            pytest.fail("no Chromium binary found; LOOKBACK_REQUIRE_BROWSER=1 makes this a failure")
        pytest.skip("no Chromium binary found; install Debian's `chromium` to run the browser tests")
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.setenv(hosting.HOSTED_ENV, "1")
    monkeypatch.setenv(hosting.JOBS_ENV, "1")
    server = browser.Server(tmp_path, db=tmp_path / "hosted.sqlite")
    try:
        server.wait_healthy()
        with sync_playwright() as p:
            chrome = p.chromium.launch(executable_path=chromium, args=browser.CHROMIUM_ARGS, headless=True)
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
                browser.go(page, "Runs", "Runs")
                browser.no_exception(page)
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
    log = server.log()
    assert "Traceback" not in log, log[log.index("Traceback") - 200:][:6000]
