"""End to end: upload the shipped examples through the real file input in headless Chromium, run a small memory
study and read its verdict.

Needs Debian's `chromium` (or LOOKBACK_CHROMIUM); without one the test skips, unless LOOKBACK_REQUIRE_BROWSER=1
(set by .ci/run), where it fails instead.
"""
import importlib.util
import os
import re
import time
from pathlib import Path

import pytest

from tests.support.browser import Server, browser, find_chromium, go, no_exception, settle

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # git-ignored
WIDTH = 1400
UI_TIMEOUT_MS = 30_000
STUDY_TIMEOUT_MS = 240_000  # nine tiny runs and their costs, on a loaded 2-core machine
SMALL = {"Seeds": "1", "Updates per run (at least)": "20", "Hidden units": "8"}
HEADLINE = re.compile(r"^(Memory helps on this data\.|Whether memory helps is inconclusive\.|No learnable signal at "
                      r"this size\.|Memory beyond the "
                      r"last \d+ step\(s\) does not pay on this data\.)")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> str:
    reason = None
    if importlib.util.find_spec("playwright") is None:
        reason = "the playwright Python package is not installed"
    elif (path := find_chromium()) is None:
        reason = "no Chromium binary found (looked for LOOKBACK_CHROMIUM, chromium, chromium-browser)"
    if reason is None:
        return path
    if os.environ.get("LOOKBACK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; LOOKBACK_REQUIRE_BROWSER=1 makes this a failure.", pytrace=False)
    pytest.skip(f"{reason}; install Debian's `chromium` (apt-get install chromium) to run the browser test.")


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, db=tmp_path / "browser.sqlite", extra_args=("--client.toolbarMode", "minimal"))
    try:
        srv.wait_healthy(60)
        yield srv.url
    finally:
        srv.stop()
    output = srv.log()
    assert "Traceback" not in output, f"the server logged an exception:\n{output[-3000:]}"


def upload(page, path: Path) -> None:
    """Put a file into the page's first file input, as choosing it in the file dialog does."""
    from playwright.sync_api import expect

    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))
    expect(page.get_by_text(f"Loaded: {path.name}")).to_be_visible(timeout=UI_TIMEOUT_MS)
    settle(page)


def full_page_screenshot(page, path: Path) -> None:
    """Grow the viewport to the page's height (Streamlit scrolls inside stMain), then take the picture."""
    for _ in range(5):
        height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        if height <= page.viewport_size["height"]:
            break
        page.set_viewport_size({"width": WIDTH, "height": min(height, 16_000)})
        time.sleep(0.7)
    settle(page)
    page.screenshot(path=str(path), full_page=True)


def test_examples_upload_and_the_study_gives_a_verdict(server, chromium, tmp_path):
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(exist_ok=True)
    with browser(chromium, tmp_path / "profile", WIDTH) as page:
        page.goto(server)
        expect(page.get_by_role("heading", name="Lookback", exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
        go(page, "Your data", "Your data")
        expect(page.get_by_text("Upload a file or load an example to start.")).to_be_visible()

        upload(page, EXAMPLES / "sunspots_monthly.csv")
        expect(page.get_by_text("Forecast 'sunspots' 1 row(s) past windows of 187 rows")).to_be_visible()
        upload(page, EXAMPLES / "city_temperatures.csv")
        expect(page.get_by_text("sequences shorter than 24 steps are left-padded with zeros (2 of 730)")
               ).to_be_visible(timeout=UI_TIMEOUT_MS)
        no_exception(page)

        for label, value in SMALL.items():  # one change and its rerun at a time
            field = page.get_by_label(label, exact=True)
            field.fill(value)
            field.press("Enter")
            expect(field).to_have_value(value)
            settle(page)
        expect(page.get_by_text("15 models × 1 seed(s) = 15 runs")).to_be_visible()  # an FFNN and a linear map at
        # each of 6 windows, GRU, LSTM, RNN
        page.get_by_role("button", name="Does my data need memory?", exact=True).click()
        expect(page.get_by_role("heading", name="Verdict", exact=True)).to_be_visible(timeout=STUDY_TIMEOUT_MS)
        verdict = page.locator('[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentWarning"]'
                               ).filter(has_text=HEADLINE)
        expect(verdict).to_have_count(1)
        text = verdict.inner_text()
        assert HEADLINE.match(text), text
        assert re.search(r"(FFNN w\d+|Linear w\d+|GRU|LSTM|RNN) \(accuracy \d+\.\d%", text), text
        expect(page.get_by_test_id("stPlotlyChart").filter(has_text="Context tradeoff")).to_be_visible()
        expect(page.get_by_role("button", name="Download HTML report")).to_be_visible()
        no_exception(page)

        full_page_screenshot(page, SCREENSHOTS / "your_data.png")
        overflow = page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                                 " return m.scrollWidth - m.clientWidth; }")
        assert overflow <= 0, f"the page is {overflow} px wider than the window at {WIDTH} px"
