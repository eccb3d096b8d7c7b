"""The app in a real browser: first render, page switches with results cached, and the server's memory.

(a) first render: from launching `streamlit run app.py` until Home's title is visible in headless Chromium
    (the browser is started beforehand, so its own start is not counted). Target: 8 s.
(b) cached switch: after the default comparison (Home's "Run the default comparison", until Compare's loss
    chart shows), switch to Runs and back to Compare; the time from clicking Compare until the loss chart is
    visible again, median of --repeats. Target: 1 s.
(c) peak RSS after the default comparison: the sum of the high-water marks (VmHWM) of the server process and
    each of its children. The processes need not peak at the same moment, so this is an upper bound on the
    peak of their total. Target: 1 GB.

Needs Chromium (Debian's `chromium`, or --chromium PATH). The run store goes to a temporary directory.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, parser
from lib.runtime import environment
from tests.support.browser import Server, browser, find_chromium, go, loss_chart, run_default_comparison

TARGETS = {"first_render_s": 8.0, "cached_switch_s": 1.0, "peak_rss_mb": 1024.0}
PEAK_RSS_NOTE = ("sum of per-process high-water marks (VmHWM) of the server and its children: an upper bound on "
                 "the peak of their total, since they need not peak at the same moment")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from Linux's /proc."""
    out, todo = [], [pid]
    while todo:
        pid = todo.pop()
        out.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def memory_mb(server: Server) -> dict:
    """Summed high-water (VmHWM) and current (VmRSS) resident memory of the server and its children, in MB."""
    total = {"VmHWM": 0, "VmRSS": 0}
    per = {}
    for pid in process_tree(server.proc.pid):
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


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--repeats", type=int, default=5, help="page switches to time")
    p.add_argument("--chromium", help="Chromium binary (default: chromium on PATH)")
    args = p.parse_args()
    chromium = find_chromium(args.chromium) or sys.exit(
        "no Chromium found: install Debian's `chromium` or pass --chromium PATH")
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
                memory_idle = memory_mb(server)

                comparison_s = run_default_comparison(page)
                memory = memory_mb(server)

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
    emit({"benchmark": "app_latency", "targets": TARGETS, **results, "peak_rss_note": PEAK_RSS_NOTE,
          "meets_targets": {k: v <= TARGETS[k] for k, v in results.items()},
          "details": {"server_healthy_s": health_s, "default_comparison_s": comparison_s,
                      "switch_back_s": back, "switch_round_trip_s": round_trip,
                      "rss_mb_idle_after_first_render": memory_idle["rss_mb"],
                      "rss_mb_after_comparison": memory["rss_mb"], "processes": memory["processes"],
                      "peak_rss_mb_per_pid": memory["peak_rss_mb_per_pid"],
                      "server_logged_traceback": server_errors, "load_avg": os.getloadavg(),
                      "cpus": os.cpu_count()},
          "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
