"""README screenshots of the app's pages, taken in headless Chromium: docs/screenshots/<page>.png.

    python benchmarks/screenshots.py                      # every page
    python benchmarks/screenshots.py --pages home compare window runs
    python benchmarks/screenshots.py --out-dir /tmp/shots --widths 1400 800 --schemes light dark
    python benchmarks/screenshots.py --modern --pages compare window memory costs literature --out-dir /tmp/m

Home as it opens; Compare after the default comparison (Home's button); Context tradeoff after a small
sweep; Memory as it opens; Probe with the essay's sentence; Costs after measuring the models and their scaling;
Your data with an example loaded; Runs with the runs trained above; Literature as it opens. With --modern,
Compare trains the "Modern baselines" preset instead (so Memory shows the Transformer's attention maps), the
sweep also moves the linear map and the TCN with a Transformer reference, and Costs scales with sequence
length. Full page at 1400 px wide, or at each of
--widths and in each system colour scheme of --schemes (then named <page>-<width>-<scheme>.png), all in one
browser session, so every picture of a page shows the same result.
The run store is a temporary file unless --db names one: with --db, a rerun reuses the stored runs and
takes seconds instead of minutes. Needs Chromium (Debian's `chromium`, or --chromium PATH).
"""
from __future__ import annotations

import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from _common import parser
from tests.support.browser import ROOT, Server, browser, find_chromium, go, run_default_comparison, settle

OUT = ROOT / "docs" / "screenshots"
PAGES = ["home", "compare", "window", "memory", "costs", "probe", "your_data", "runs", "literature"]
NAV = {"home": ("Home", "Lookback"), "compare": ("Compare", "Compare models"),
       "window": ("Context tradeoff", "Context tradeoff"), "memory": ("Memory", "Memory"),
       "costs": ("Costs", "Costs"), "probe": ("Probe", "Probe"), "your_data": ("Your data", "Your data"),
       "runs": ("Runs", "Runs"), "literature": ("Literature", "Literature")}
WIDTH, HEIGHT = 1400, 1000
TRAIN_TIMEOUT_MS = 900_000  # the default comparison on a busy 2-core machine


def shoot(page, name: str, out: Path, width: int = WIDTH) -> Path:
    """Grow the viewport to the page's full height (Streamlit scrolls inside stMain), then screenshot."""
    page.set_viewport_size({"width": width, "height": HEIGHT})
    for _ in range(5):  # charts may lay out again once they are on screen
        height = page.evaluate(
            "() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
            " return Math.ceil(m ? m.scrollHeight : document.documentElement.scrollHeight); }")
        if height <= page.viewport_size["height"]:
            break
        page.set_viewport_size({"width": width, "height": min(height, 16_000)})
        time.sleep(0.7)
    settle(page)
    if page.get_by_test_id("stException").count():
        print(f"warning: the {name} page shows an exception")
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": width, "height": HEIGHT})
    print(f"{path}  ({width} px wide)")
    return path


def shoot_all(page, name: str, out: Path, widths: list[int], schemes: list[str]) -> None:
    """The page at every width and system colour scheme; one picture is <page>.png, more <page>-<width>-<scheme>.png.
    The app follows the system's scheme as it changes (Streamlit's "use system setting")."""
    for scheme in schemes:
        page.emulate_media(color_scheme=scheme)
        for width in widths:
            single = len(widths) == len(schemes) == 1
            shoot(page, name if single else f"{name}-{width}-{scheme}", out, width)
    page.emulate_media(color_scheme=schemes[0])
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})


def set_slider(page, label: str, target: int) -> None:
    """Move an integer slider with the arrow keys, one step and one rerun at a time."""
    from playwright.sync_api import expect

    slider = page.get_by_role("slider", name=label)
    for _ in range(500):
        value = int(slider.get_attribute("aria-valuetext") or slider.input_value())
        if value == target:
            return
        slider.focus()
        page.keyboard.press("ArrowRight" if value < target else "ArrowLeft")
        expect(slider).not_to_have_attribute("aria-valuetext", str(value))
        settle(page)
    raise RuntimeError(f"the slider {label!r} did not reach {target}")


def pick(page, label: str, option: str) -> None:
    """Add an option to the multiselect labelled `label` by typing its name."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text=label).first
    box.locator("input").click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    settle(page)


def modern_comparison(page) -> None:
    """Compare: the "Modern baselines" preset (linear, TCN, Transformer, minGRU, LSTM) on the default task."""
    from playwright.sync_api import expect

    go(page, *NAV["compare"])
    page.get_by_role("button", name="Modern baselines", exact=True).click()
    settle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_role("heading", name="Result", exact=True)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    settle(page)


def small_sweep(page, modern: bool = False) -> None:
    """Context tradeoff on text recall at distance 10 (the cue 15 words back), 1000 sentences, 20 epochs; with
    `modern`, the linear map and the TCN swept too and a Transformer reference."""
    from playwright.sync_api import expect

    # Each change reruns the page; waiting for the rerun before the next change keeps a stale rerun from
    # resetting a widget that was changed meanwhile.
    settle(page)
    set_slider(page, "Distance (filler words)", 10)
    thumb = page.get_by_test_id("stSliderThumbValue").first
    fields = {"Training sentences": "1000", "Smallest window": "1", "Largest window": "20", "Windows to try": "5"}
    for label, value in fields.items():
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Enter")
        expect(field).to_have_value(value)
        settle(page)
    page.get_by_text("Advanced settings", exact=True).click()
    epochs = page.get_by_label("Max epochs", exact=True)
    epochs.fill("20")
    epochs.press("Enter")
    expect(epochs).to_have_value("20")
    settle(page)
    page.get_by_text("Advanced settings", exact=True).click()  # closed again for the picture
    settle(page)
    if modern:
        for option in ("Linear (fixed window)", "TCN (causal convolution)"):
            pick(page, "Models swept along the steps they see", option)
        page.get_by_text("Transformer reference", exact=True).click()
        settle(page)
    expect(thumb).to_have_text("10")
    for label, value in fields.items():
        expect(page.get_by_label(label, exact=True)).to_have_value(value)
    page.get_by_role("button", name="Run the sweep", exact=True).click()
    chart = page.get_by_test_id("stPlotlyChart").filter(has_text="Context tradeoff" if modern else
                                                        "FFNN window tradeoff")
    expect(page.get_by_role("heading", name="Result", exact=True)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    expect(chart).to_be_visible(timeout=30_000)


def select_runs(page, n: int) -> None:
    """Tick the first n rows of the runs table (a canvas: clicked by position) to show their loss curves."""
    from playwright.sync_api import expect

    settle(page)
    caption = page.get_by_text("run(s) shown")
    if not caption.count():  # no runs stored
        print("warning: no runs to select on the Runs page")
        return
    n = min(n, int(caption.inner_text().split()[0]))
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    box = table.bounding_box()
    for i in range(1, n + 1):  # row height 35 px; the header is row 0
        page.mouse.click(box["x"] + 16, box["y"] + 35 * i + 17)
        time.sleep(0.3)
        settle(page)
    page.mouse.move(2, 2)  # away from the table, whose hover toolbar would cover the filters
    if n:
        expect(page.get_by_role("button", name=f"Delete {n} run(s)")).to_be_visible(timeout=30_000)
        expect(page.get_by_test_id("stPlotlyChart").filter(has_text="Loss curves")).to_be_visible(timeout=30_000)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--pages", nargs="+", choices=PAGES, default=PAGES)
    p.add_argument("--out-dir", type=Path, default=OUT)
    p.add_argument("--widths", nargs="+", type=int, default=[WIDTH], help="viewport widths in px (default 1400)")
    p.add_argument("--schemes", nargs="+", choices=["light", "dark"], default=["light"],
                   help="system colour schemes to show the app in (default light)")
    p.add_argument("--db", type=Path, help="run store to use (default: a temporary file)")
    p.add_argument("--chromium", help="Chromium binary (default: chromium on PATH)")
    p.add_argument("--modern", action="store_true", help="the memory mechanisms beyond the essay's four (see above)")
    args = p.parse_args()
    chromium = find_chromium(args.chromium) or sys.exit(
        "no Chromium found: install Debian's `chromium` or pass --chromium PATH")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import expect

    with tempfile.TemporaryDirectory(prefix="lookback-shots-") as tmp:
        tmp = Path(tmp)
        server = Server(tmp, db=args.db)
        try:
            server.wait_healthy()
            with browser(chromium, tmp / "profile", WIDTH, HEIGHT, args.schemes[0]) as page:
                page.goto(server.url)
                expect(page.get_by_role("heading", name="Lookback", exact=True)).to_be_visible(timeout=60_000)
                settle(page)
                shots = partial(shoot_all, out=args.out_dir, widths=args.widths, schemes=args.schemes)
                if "home" in args.pages:
                    shots(page, "home")
                if args.modern and {"compare", "memory"} & set(args.pages):  # Memory probes the compared models
                    modern_comparison(page)
                    if "compare" in args.pages:
                        shots(page, "compare")
                elif "compare" in args.pages or "probe" in args.pages:  # Probe looks into the compared models
                    run_default_comparison(page, TRAIN_TIMEOUT_MS)
                    settle(page)
                    if "compare" in args.pages:
                        shots(page, "compare")
                for name in ("window", "memory", "costs", "probe", "your_data", "runs", "literature"):
                    if name not in args.pages:
                        continue
                    go(page, *NAV[name])
                    if name == "window":
                        small_sweep(page, args.modern)
                    if name == "costs" and args.modern:
                        page.get_by_text("sequence length", exact=True).click()
                        settle(page)
                    if name == "costs":
                        page.get_by_role("button", name="Measure on this machine", exact=True).click()
                        expect(page.get_by_test_id("stPlotlyChart").filter(has_text="What the model should cost")
                               ).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
                        settle(page)
                        page.get_by_role("button", name="Measure scaling", exact=True).click()
                        expect(page.get_by_test_id("stPlotlyChart").filter(has_text="Scaling with")
                               ).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
                    if name == "probe":
                        page.get_by_role("button", name="Try the essay's sentence").click()
                    if name == "your_data":
                        page.get_by_role("button", name="sunspots_monthly.csv").click()
                        expect(page.get_by_text("Loaded:")).to_be_visible(timeout=60_000)
                    if name == "runs":
                        select_runs(page, 3)
                    settle(page)
                    shots(page, name)
        finally:
            server.stop()
        if "Traceback" in server.log():
            print("warning: the server logged an exception:\n" + server.log()[-3000:])


if __name__ == "__main__":
    main()
