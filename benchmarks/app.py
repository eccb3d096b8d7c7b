"""The app in a real browser: first render, page switches with results cached, and the server's memory.

(a) first render: from launching `streamlit run app.py` until Home's title is visible in headless Chromium
    (the browser is started beforehand, so its own start is not counted). Target: 8 s.
(b) cached switch: after the default comparison (Home's "Run the default comparison", until Compare's loss
    chart shows), switch to Runs and back to Compare; the time from clicking Compare until the loss chart is
    visible again, median of --repeats. Target: 1 s.
(c) peak RSS: VmHWM of the server process plus its children after the default comparison. Target: 1 GB.

Needs Chromium (Debian's `chromium`, or --chromium PATH). The run store goes to a temporary directory.
"""
from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from _common import emit, parser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
TARGETS = {"first_render_s": 8.0, "cached_switch_s": 1.0, "peak_rss_mb": 1024.0}


def find_chromium(explicit: str | None = None) -> str:
    for path in (explicit, os.environ.get("LOOKBACK_CHROMIUM"), shutil.which("chromium"),
                 shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    sys.exit("no Chromium found: install Debian's `chromium` or pass --chromium PATH")


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
    """`streamlit run app.py` on a free port, its run store under `workdir`."""

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
        """Seconds from launch until /_stcore/health answers."""
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

    def pids(self) -> list[int]:
        """The server and all its descendants."""
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    todo += [int(c) for c in (task / "children").read_text().split()]
                except OSError:
                    pass
        return out

    def memory_mb(self) -> dict:
        """Peak (VmHWM) and current (VmRSS) resident memory of the server and its children, in MB."""
        total = {"VmHWM": 0, "VmRSS": 0}
        per = {}
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            fields = {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in lines) if k in total}
            per[pid] = fields.get("VmHWM", 0) / 1024
            for k in total:
                total[k] += fields.get(k, 0)
        return {"peak_rss_mb": total["VmHWM"] / 1024, "rss_mb": total["VmRSS"] / 1024,
                "processes": len(per), "peak_rss_mb_per_pid": per}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@contextmanager
def browser(chromium: str, profile: Path, width: int = 1400, height: int = 1000):
    """A page in headless Chromium with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=chromium, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": width, "height": height})
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def go(page, title: str, heading: str, timeout_ms: float = 30_000) -> None:
    """Click a sidebar link and wait for the page's heading."""
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=timeout_ms)


def loss_chart(page):
    return page.get_by_test_id("stPlotlyChart").filter(has_text="Loss curves").last


def run_default_comparison(page, timeout_ms: float = 600_000) -> float:
    """From Home: press "Run the default comparison" and wait for Compare's loss chart; seconds taken."""
    from playwright.sync_api import expect

    start = time.perf_counter()
    page.get_by_role("button", name="Run the default comparison").click()
    expect(page.get_by_role("heading", name="Compare models", exact=True)).to_be_visible(timeout=30_000)
    # "Result" (not "Reference result") heads the user's own run once it has finished
    expect(page.get_by_role("heading", name="Result", exact=True)).to_be_visible(timeout=timeout_ms)
    expect(loss_chart(page)).to_be_visible(timeout=30_000)
    return time.perf_counter() - start


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--repeats", type=int, default=5, help="page switches to time")
    p.add_argument("--chromium", help="Chromium binary (default: chromium on PATH)")
    args = p.parse_args()
    chromium = find_chromium(args.chromium)
    from playwright.sync_api import expect

    with tempfile.TemporaryDirectory(prefix="lookback-bench-") as tmp:
        tmp = Path(tmp)
        with browser(chromium, tmp / "profile") as page:
            page.goto("about:blank")
            server = Server(tmp)
            try:
                health_s = server.wait_healthy()
                page.goto(server.url)
                expect(page.get_by_role("heading", name="Lookback", exact=True)).to_be_visible(timeout=60_000)
                first_render_s = time.perf_counter() - server.started
                memory_idle = server.memory_mb()

                comparison_s = run_default_comparison(page)
                memory = server.memory_mb()

                back, round_trip = [], []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    go(page, "Runs", "Runs")
                    clicked = time.perf_counter()
                    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Compare", exact=True).click()
                    expect(loss_chart(page)).to_be_visible(timeout=30_000)
                    end = time.perf_counter()
                    back.append(end - clicked)
                    round_trip.append(end - start)
                if page.get_by_test_id("stException").count():
                    raise RuntimeError("the app showed an exception")
                server_errors = "Traceback" in server.log()
            finally:
                server.stop()

    results = {
        "first_render_s": first_render_s,
        "cached_switch_s": statistics.median(back),
        "peak_rss_mb": memory["peak_rss_mb"],
    }
    from lib.runtime import environment

    emit({"benchmark": "app", "targets": TARGETS, **results,
          "meets_targets": {k: v <= TARGETS[k] for k, v in results.items()},
          "details": {"server_healthy_s": health_s, "default_comparison_s": comparison_s,
                      "switch_back_s": back, "switch_round_trip_s": round_trip,
                      "rss_mb_idle_after_first_render": memory_idle["rss_mb"],
                      "rss_mb_after_comparison": memory["rss_mb"], "processes": memory["processes"],
                      "server_logged_traceback": server_errors, "load_avg": os.getloadavg(),
                      "cpus": os.cpu_count()},
          "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
