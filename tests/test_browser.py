"""End to end: the real app in headless Chromium, from Home to a trained comparison and back.

Needs Debian's `chromium` (or LOOKBACK_CHROMIUM pointing at a Chromium binary). Without one the test
skips, unless LOOKBACK_REQUIRE_BROWSER=1 (set by .ci/run), where it fails instead.
"""
import importlib.util
import os
import re
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.support.browser import Server, browser, find_chromium, go, no_exception

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # git-ignored
START_TIMEOUT_S = 60  # server up and answering /_stcore/health
UI_TIMEOUT_MS = 30_000  # a page or widget appears
TRAIN_TIMEOUT_MS = 180_000  # the tiny comparison trains and its charts render; generous for a loaded CI box
# A tiny comparison, set through the page's link (its settings are bound to the URL's query parameters)
TINY = {"w_cmp_dist": 2, "w_cmp_n": 300, "w_cmp_epochs": 2}
MODELS = ("FFNN w5", "FFNN w7", "RNN", "LSTM")  # w7: the window that reaches the cue, 2 filler + 5 other words

pytestmark = pytest.mark.browser


def _unavailable(reason: str):
    if os.environ.get("LOOKBACK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; LOOKBACK_REQUIRE_BROWSER=1 makes this a failure (install Debian's `chromium`, "
                    f"or point LOOKBACK_CHROMIUM at a Chromium binary).", pytrace=False)
    pytest.skip(f"{reason}; install Debian's `chromium` (apt-get install chromium) to run the browser test.")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of a Chromium binary; skips (or fails under LOOKBACK_REQUIRE_BROWSER=1) when there is none."""
    if importlib.util.find_spec("playwright") is None:
        _unavailable("the playwright Python package is not installed")
    path = find_chromium()
    if path is None:
        _unavailable("no Chromium binary found (looked for LOOKBACK_CHROMIUM, chromium, chromium-browser)")
    return path


@pytest.fixture
def server(tmp_path):
    """`streamlit run app.py` on a free port with its run store in tmp; yields the base URL."""
    srv = Server(tmp_path, db=tmp_path / "browser.sqlite")
    try:
        srv.wait_healthy(START_TIMEOUT_S)
        yield srv.url
    finally:
        srv.stop()
    output = srv.log()
    assert "Traceback" not in output, f"the server logged an exception:\n{output[-3000:]}"


@pytest.fixture
def page(chromium, tmp_path):
    with browser(chromium, tmp_path / "chromium-profile") as p:
        yield p


def test_compare_trains_in_the_browser_and_keeps_results_across_pages(server, page):
    from playwright.sync_api import expect

    start = time.monotonic()

    def step(name: str) -> None:  # seconds since the browser opened, shown with -s or on a failure
        print(f"{time.monotonic() - start:6.1f} s  {name}")

    SCREENSHOTS.mkdir(exist_ok=True)
    page.goto(server)
    expect(page.get_by_role("heading", name="Lookback", exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Run the default comparison")).to_be_visible()
    no_exception(page)
    step("home rendered")

    go(page, "Compare", "Compare models")
    no_exception(page)
    step("compare rendered")
    # A copied link reproduces the setup: open Compare with the tiny settings in its URL. Setting them in one
    # load leaves no rerun in flight that could reset a widget changed meanwhile.
    page.goto(f"{server}/compare?{urlencode(TINY)}")
    thumb = page.get_by_test_id("stSliderThumbValue").first
    sentences = page.get_by_label("Training sentences", exact=True)
    expect(thumb).to_have_text("2", timeout=UI_TIMEOUT_MS)
    expect(sentences).to_have_value("300")
    page.get_by_text("Advanced settings", exact=True).click()
    expect(page.get_by_label("Max epochs", exact=True)).to_have_value("2", timeout=UI_TIMEOUT_MS)
    step("tiny settings loaded from the link")

    # the shipped reference was made with other settings, so it is not shown under these
    expect(page.get_by_role("heading", name="Reference result", exact=True)).to_have_count(0)
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
    for label in MODELS:
        expect(loss).to_contain_text(label)
    no_exception(page)
    page.screenshot(path=str(SCREENSHOTS / "compare-trained.png"), full_page=True)

    go(page, "Runs", "Runs")
    expect(page.get_by_text(f"{len(MODELS)} run(s) shown")).to_be_visible(timeout=UI_TIMEOUT_MS)
    table = page.get_by_test_id("stDataFrame").locator("table")
    for label in MODELS:
        expect(table).to_contain_text(label)
    no_exception(page)
    page.screenshot(path=str(SCREENSHOTS / "runs-listed.png"), full_page=True)
    step("runs listed")

    go(page, "Compare", "Compare models")
    expect(loss).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(verdict).to_have_text(verdict_text)
    expect(page.get_by_test_id("stSliderThumbValue").first).to_have_text("2")  # settings kept too
    expect(page.get_by_label("Training sentences", exact=True)).to_have_value("300")
    no_exception(page)
    page.screenshot(path=str(SCREENSHOTS / "compare-after-switch.png"), full_page=True)
    step("compare results kept after the switch")


@pytest.mark.parametrize("link, note", [
    ("w_cmp_seeds=inf", "w_cmp_seeds=inf dropped (not a finite number)"),
    ("w_cmp_epochs=1e400", "w_cmp_epochs=1e400 dropped (not a finite number)"),
    ("w_cmp_seeds=999999", "w_cmp_seeds=999999 set to 5 (the setting allows 1 to 5)")])
def test_a_link_with_a_value_no_widget_can_hold_is_adjusted_not_a_crash(server, page, link, note):
    from playwright.sync_api import expect

    page.goto(f"{server}/compare?{link}")
    expect(page.get_by_text(f"This link's settings were adjusted: {note}.")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Compare models", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_the_app_follows_a_dark_system_preference_shows_no_deploy_button_and_leaves_800_px_to_the_page(
        server, chromium, tmp_path):
    from playwright.sync_api import expect

    with browser(chromium, tmp_path / "dark-profile", width=800, height=900, color_scheme="dark") as page:
        page.goto(server)
        expect(page.get_by_role("heading", name="Lookback", exact=True)).to_be_visible(timeout=UI_TIMEOUT_MS)
        background = page.evaluate(
            "() => getComputedStyle(document.querySelector('[data-testid=\"stApp\"]')).backgroundColor")
        assert sum(map(int, re.findall(r"\d+", background)[:3])) < 3 * 80, background  # a dark background
        expect(page.get_by_test_id("stAppDeployButton")).to_have_count(0)
        page.wait_for_function(  # at least 560 of the 800 px for the page, once the page config has reached it
            "() => document.querySelector('[data-testid=\"stSidebar\"]')?.getBoundingClientRect().width <= 240",
            timeout=UI_TIMEOUT_MS)
        clipped = page.evaluate("""() => [...document.querySelectorAll(
            '[data-testid="stMain"] [data-testid="stPageLink-NavLink"] p')]
            .filter(p => p.scrollWidth > p.clientWidth).map(p => p.textContent)""")
        assert clipped == [], clipped  # Home's guide names every page in full ("Context tradeoff", not "Context trade")
        page.set_viewport_size({"width": 760, "height": 900})  # a narrow screen: the sidebar gets out of the way
        expect(page.get_by_test_id("stSidebar")).not_to_be_in_viewport(timeout=UI_TIMEOUT_MS)
        no_exception(page)
