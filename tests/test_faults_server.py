"""Faults of the whole server: `kill -9` of `streamlit run app.py` while a job trains two runs leaves no process
of it behind (its worker, the processes the worker forked), and the runs read "interrupted" once the store is
opened again (lib/jobs.py, lib/backends.py, lib/store.py). Killing one worker of a live engine is
tests/test_jobs.py.

Drives the page in headless Chromium; without one the test skips, unless LOOKBACK_REQUIRE_BROWSER=1 (set by
.ci/run), where it fails instead.
"""
import importlib.util
import os
import signal
import time
from urllib.parse import urlencode

import psutil
import pytest

from lib.runtime import Status
from lib.store import RunStore
from tests.support.browser import Server, browser, find_chromium

pytestmark = pytest.mark.browser
# Two runs that train for minutes, at once in two processes that the job's worker forks (two torch threads,
# lib.backends): the job is still training when the server is killed
LONG = {"w_cmp_dist": 2, "w_cmp_n": 2000, "w_cmp_epochs": 100, "w_cmp_patience": 0, "w_cmp_hidden": 64,
        "w_cmp_kinds": ["GRU", "LSTM"], "w_cmp_reach": "false"}


def _chromium() -> str:
    reason = None
    if importlib.util.find_spec("playwright") is None:
        reason = "the playwright Python package is not installed"
    elif find_chromium() is None:
        reason = "no Chromium binary found (looked for LOOKBACK_CHROMIUM, chromium, chromium-browser)"
    if reason is None:
        return find_chromium()
    if os.environ.get("LOOKBACK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; LOOKBACK_REQUIRE_BROWSER=1 makes this a failure", pytrace=False)
    pytest.skip(f"{reason}; install Debian's `chromium` to run the browser tests")


def _until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting until {what}"
        time.sleep(0.1)


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie has ended)."""
    alive = []
    for proc in procs:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _epochs_stored(db) -> list[int]:
    """Epochs stored so far by each running run."""
    if not db.exists():
        return []
    with RunStore(db) as store:
        return [len(store.history(run_id)) for run_id in store.runs(status=Status.RUNNING)["id"]]


def test_a_server_killed_mid_job_leaves_no_process_and_its_run_reads_interrupted(tmp_path, monkeypatch):
    chromium = _chromium()
    from playwright.sync_api import expect

    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the server's plan: one job of two threads, one run on each
    db = tmp_path / "runs.sqlite"
    server, family = Server(tmp_path, db=db), []
    try:
        server.wait_healthy()
        with browser(chromium, tmp_path / "profile") as page:
            page.goto(f"{server.url}/compare?{urlencode(LONG, doseq=True)}")
            page.get_by_role("button", name="Train", exact=True).click()
            expect(page.get_by_test_id("stProgress")).to_be_visible(timeout=60_000)
            _until(lambda: min(_epochs_stored(db), default=0) >= 1 and len(_epochs_stored(db)) == 2, 180,
                   "both runs have stored an epoch")
            family = psutil.Process(server.proc.pid).children(recursive=True)
            assert len(family) >= 3, "the job's worker and the two processes it forked train"
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(10)
            _until(lambda: not _alive(family), 10, "no process of the server is left")
    finally:
        server.stop()
        for proc in _alive(family):  # no orphan outlives the test, even one that fails
            proc.kill()
    with RunStore(db) as store:  # as a restarted server opens it
        runs = store.runs()
    assert list(runs["status"]) == [Status.INTERRUPTED] * 2
    assert all(runs["epochs"] >= 1)  # the epochs they stored are kept
