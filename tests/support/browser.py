"""The app in headless Chromium: find Chromium, serve app.py on a free port, open a page, wait for the app.

Used by the browser tests (tests/test_browser*.py, tests/test_page_hosted.py, tests/test_deploy.py) and by the
browser benchmarks (app_latency.py, app_training.py, load.py, screenshots.py), all as `tests.support.browser`.
Playwright is imported inside the functions that drive a page, so importing this module needs neither
Playwright nor Chromium.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
UI_TIMEOUT_MS = 30_000  # a page or widget appears


def find_chromium(explicit: str | None = None) -> str | None:
    """The first executable of: `explicit`, $LOOKBACK_CHROMIUM, chromium or chromium-browser on PATH,
    /usr/bin/chromium; None when there is none."""
    for path in (explicit, os.environ.get("LOOKBACK_CHROMIUM"), shutil.which("chromium"),
                 shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class Server:
    """`streamlit run app.py` on a free port of 127.0.0.1, its run store at `db` (default
    `workdir`/lookback.sqlite) and its output in `workdir`/server.log."""

    def __init__(self, workdir: Path, db: Path | None = None, extra_args: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self._log = self.log_path.open("w")
        env = {**os.environ, "LOOKBACK_DB": str(db or workdir / "lookback.sqlite")}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--server.runOnSave", "false",
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false", *extra_args],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds from launch until /_stcore/health answers; RuntimeError (with the log's tail) when the
        server exits or does not answer within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not healthy(self.url):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {timeout} s:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        return time.perf_counter() - self.started

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@contextmanager
def browser(chromium: str, profile: Path, width: int = 1400, height: int = 1000, color_scheme: str = "light"):
    """A page in headless Chromium with a fresh profile, its system preference `color_scheme` ("light" or "dark";
    `page.emulate_media(color_scheme=...)` switches it later)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=chromium, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": width, "height": height}, color_scheme=color_scheme)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def go(page, title: str, heading: str, timeout_ms: float = UI_TIMEOUT_MS) -> None:
    """Click a sidebar link and wait for the page's heading."""
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=timeout_ms)


def loss_chart(page):
    return page.get_by_test_id("stPlotlyChart").filter(has_text="Loss curves").last


def no_exception(page) -> None:
    """Fail unless the page shows no Streamlit exception box."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stException")).to_have_count(0)


def run_default_comparison(page, timeout_ms: float = 600_000) -> float:
    """From Home: press "Run the default comparison" and wait for Compare's loss chart; seconds taken."""
    from playwright.sync_api import expect

    start = time.perf_counter()
    page.get_by_role("button", name="Run the default comparison").click()
    expect(page.get_by_role("heading", name="Compare models", exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
    # "Result" (not "Reference result") heads the user's own run once it has finished
    expect(page.get_by_role("heading", name="Result", exact=True)).to_be_visible(timeout=timeout_ms)
    expect(loss_chart(page)).to_be_visible(timeout=UI_TIMEOUT_MS)
    return time.perf_counter() - start


def settle(page, timeout_ms: float = 120_000) -> None:
    """Wait until the app's script run has ended and every Plotly chart has drawn, for a screenshot.

    A rerun starts a moment after the change that causes it, so this first waits half a second and can
    still return before a late rerun; a test waits instead for an element that shows the change.
    """
    from playwright.sync_api import expect

    time.sleep(0.5)
    app = page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')
    expect(app).to_have_count(1, timeout=timeout_ms)
    charts = page.get_by_test_id("stPlotlyChart")
    for i in range(charts.count()):
        expect(charts.nth(i).locator(".main-svg").first).to_be_attached(timeout=timeout_ms)
    time.sleep(0.5)  # let the charts finish laying out
