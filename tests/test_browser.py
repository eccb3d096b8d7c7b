"""End to end: the real app in headless Chromium, from Home to a trained comparison and back.

Needs Debian's `chromium` (or LOOKBACK_CHROMIUM pointing at a Chromium binary). Without one the test
skips, unless LOOKBACK_REQUIRE_BROWSER=1 (set by .ci/run), where it fails instead.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # git-ignored
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
START_TIMEOUT_S = 60  # server up and answering /_stcore/health
UI_TIMEOUT_MS = 30_000  # a page or widget appears
TRAIN_TIMEOUT_MS = 90_000  # the tiny comparison trains and its charts render

pytestmark = pytest.mark.browser


def _unavailable(reason: str):
    if os.environ.get("LOOKBACK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; LOOKBACK_REQUIRE_BROWSER=1 makes this a failure (install Debian's `chromium`, "
                    f"or point LOOKBACK_CHROMIUM at a Chromium binary).", pytrace=False)
    pytest.skip(f"{reason}; install Debian's `chromium` (apt-get install chromium) to run the browser test.")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of a Chromium binary; skips (or fails under LOOKBACK_REQUIRE_BROWSER=1) when there is none."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    candidates = [os.environ.get("LOOKBACK_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                  "/usr/bin/chromium"]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    _unavailable("no Chromium binary found (looked for LOOKBACK_CHROMIUM, chromium, chromium-browser)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def server(tmp_path, request):
    """`streamlit run app.py` on a free port with its run store in tmp; yields the base URL."""
    port = _free_port()
    env = {**os.environ, "LOOKBACK_DB": str(tmp_path / "browser.sqlite")}
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.runOnSave", "false",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def stop():
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()

    request.addfinalizer(stop)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _healthy(url):
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"the server did not answer within {START_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.25)
    yield url
    output = log_path.read_text()
    assert "Traceback" not in output, f"the server logged an exception:\n{output[-3000:]}"


@pytest.fixture
def page(chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=chromium, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _idle(page) -> None:
    """Wait for the script run to finish (Streamlit shows its status widget while a run is going)."""
    from playwright.sync_api import expect

    time.sleep(0.5)  # the status widget shows up with a short delay
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=UI_TIMEOUT_MS)


def _go(page, title: str, heading: str) -> None:
    """Click a sidebar link and wait for the page's heading."""
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)


def _no_exception(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_compare_trains_in_the_browser_and_keeps_results_across_pages(server, page):
    from playwright.sync_api import expect

    start = time.monotonic()

    def step(name: str) -> None:  # seconds since the browser opened, shown with -s or on a failure
        print(f"{time.monotonic() - start:6.1f} s  {name}")

    SCREENSHOTS.mkdir(exist_ok=True)
    page.goto(server)
    expect(page.get_by_role("heading", name="Lookback", exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Run the default comparison")).to_be_visible()
    _no_exception(page)
    step("home rendered")

    _go(page, "Compare", "Compare models")
    step("compare rendered")
    # Each change reruns the page; wait for that rerun before the next change: a change made while a
    # rerun is going can be reset by it (app.py re-assigns every "w_" widget value on each run).
    _idle(page)
    distance = page.get_by_role("slider", name="Distance: filler words between the cue and the answer")
    thumb = page.get_by_test_id("stSliderThumbValue").first
    distance.focus()
    page.keyboard.press("Home")  # 0, then two steps right, one rerun at a time
    for value in ("0", "1", "2"):
        expect(thumb).to_have_text(value, timeout=UI_TIMEOUT_MS)
        _idle(page)
        if value != "2":
            distance.focus()
            page.keyboard.press("ArrowRight")
    sentences = page.get_by_label("Training sentences", exact=True)
    sentences.fill("300")
    sentences.press("Enter")
    _idle(page)
    page.get_by_text("Advanced settings", exact=True).click()
    epochs = page.get_by_label("Max epochs", exact=True)
    expect(epochs).to_be_visible(timeout=UI_TIMEOUT_MS)
    epochs.fill("2")
    epochs.press("Enter")
    _idle(page)
    expect(thumb).to_have_text("2")
    expect(sentences).to_have_value("300")
    expect(epochs).to_have_value("2")

    step("tiny settings entered")
    expect(page.get_by_role("heading", name="Reference result", exact=True)).to_be_visible()
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_role("heading", name="Result", exact=True)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    loss = page.get_by_test_id("stPlotlyChart").filter(has_text="Loss curves")
    expect(loss).to_be_visible(timeout=UI_TIMEOUT_MS)
    step("trained: loss chart visible")
    verdict = page.get_by_test_id("stAlertContentSuccess")
    expect(verdict).to_be_visible()
    verdict_text = verdict.inner_text()
    assert verdict_text.strip()
    # the settings reached the run (the task description names the distance), and every model trained
    expect(page.get_by_text("2 filler words between")).to_be_visible()
    for label in ("FFNN w5", "FFNN w7", "RNN", "LSTM"):
        expect(loss).to_contain_text(label)
    _no_exception(page)
    page.screenshot(path=str(SCREENSHOTS / "compare-trained.png"), full_page=True)

    _go(page, "Runs", "Runs")
    expect(page.get_by_text("4 run(s) shown")).to_be_visible(timeout=UI_TIMEOUT_MS)
    table = page.get_by_test_id("stDataFrame").locator("table")
    for label in ("FFNN w5", "FFNN w7", "RNN", "LSTM"):
        expect(table).to_contain_text(label)
    _no_exception(page)
    page.screenshot(path=str(SCREENSHOTS / "runs-listed.png"), full_page=True)
    step("runs listed")

    _go(page, "Compare", "Compare models")
    expect(loss).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(verdict).to_have_text(verdict_text)
    expect(page.get_by_test_id("stSliderThumbValue").first).to_have_text("2")  # settings kept too
    expect(page.get_by_label("Training sentences", exact=True)).to_have_value("300")
    _no_exception(page)
    page.screenshot(path=str(SCREENSHOTS / "compare-after-switch.png"), full_page=True)
    step("compare results kept after the switch")
