"""Several visitors at once on a hosted server (LOOKBACK_HOSTED=1), each in their own headless Chromium session.

Each session opens Home, and all press "Run the default comparison" at the same moment; each then waits for
its result on Compare, and opens Memory and Runs. Recorded per session: seconds from the click until the
first progress (its place in the queue, or training) shows, and until its result shows; the errors and
exception boxes it saw; the runs its Runs page lists. For the server: the peak of its resident memory,
children (the training workers) included, sampled every 0.2 s.

Targets (2 cores, 5 sessions): every session finishes with no exception box, each result within 3 minutes,
peak RSS within 2.0 GB, and no session's Runs page lists another's runs (checked against the run store's
owners).

--kill-one: once a visitor's run has stored an epoch, its training worker gets `kill -9` (with jobs still
queued). Targets then also: that visitor, and no other, sees the message that the training process stopped
unexpectedly, and every other visitor's job finishes as above.

Needs Chromium (Debian's `chromium`, or --chromium PATH) and Playwright. The run store goes to a temporary
directory.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from _common import emit, parser
from lib.jobs import CRASHED
from lib.runtime import environment
from lib.store import RunStore
from tests.support.browser import CHROMIUM_ARGS, Server, find_chromium

TARGETS = {"result_s": 180.0, "peak_rss_mb": 2048.0}
RESULT_TIMEOUT_MS = 600_000
UI_TIMEOUT_MS = 60_000


class RssSampler(threading.Thread):
    """Peak of the summed resident memory of a process and all its descendants."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.root, self.every, self.peak_mb, self._halt = psutil.Process(pid), every, 0.0, threading.Event()

    def total_mb(self) -> float:
        total = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.peak_mb = max(self.peak_mb, self.total_mb())
            except psutil.Error:
                return
            time.sleep(self.every)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak_mb


async def visitor(context, url: str, go: asyncio.Event, ready: list) -> dict:
    """One session: Home, the default comparison, then Memory and Runs."""
    from playwright.async_api import expect

    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(f"page error: {err}"))
    await page.goto(url)
    button = page.get_by_role("button", name="Run the default comparison")
    await expect(button).to_be_visible(timeout=UI_TIMEOUT_MS)
    ready.append(page)
    await go.wait()
    start = time.perf_counter()
    await button.click()
    out: dict = {}
    step = "compare"
    try:
        await expect(page.get_by_role("heading", name="Compare models", exact=True)).to_be_visible(
            timeout=UI_TIMEOUT_MS)
        progress = page.get_by_test_id("stProgress")
        await expect(progress).to_be_visible(timeout=UI_TIMEOUT_MS)
        out["first_progress_s"] = time.perf_counter() - start
        out["first_progress_text"] = (await progress.inner_text()).strip()
        crashed = page.get_by_test_id("stAlertContentError").filter(has_text=CRASHED)
        await expect(page.get_by_role("heading", name="Result", exact=True).or_(crashed).first).to_be_visible(
            timeout=RESULT_TIMEOUT_MS)
        out["crashed"] = await crashed.count() > 0  # its worker was killed (--kill-one)
        if not out["crashed"]:
            await expect(page.get_by_test_id("stPlotlyChart").filter(has_text="Loss curves").last).to_be_visible(
                timeout=UI_TIMEOUT_MS)
        out["result_s"] = time.perf_counter() - start
        out["exceptions"] = await page.get_by_test_id("stException").count()
        errors += [t.strip() for t in await page.get_by_test_id("stAlertContentError").all_inner_texts()]
        for title, heading in (("Memory", "Memory"), ("Runs", "Runs")):
            step = title
            await page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
            await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(
                timeout=UI_TIMEOUT_MS)
            out["exceptions"] += await page.get_by_test_id("stException").count()
        step = "runs table"
        table = page.get_by_test_id("stDataFrame").locator("table")  # the grid's accessible copy
        # one of this session's runs: the killed one may have stored only the run it was training, interrupted
        await expect(table).to_contain_text("interrupted" if out["crashed"] else "LSTM", timeout=UI_TIMEOUT_MS)
        out["runs_table"] = await table.inner_text()
        out["finished"] = True
    except Exception as err:  # recorded: the benchmark reports every session, also one that failed
        shot = Path(tempfile.gettempdir()) / f"lookback-load-failed-{id(page)}.png"
        await page.screenshot(path=str(shot), full_page=True)
        out |= {"finished": False, "failure": f"{step}: {type(err).__name__}: {str(err).splitlines()[0]}",
                "page_said": [t.strip() for t in await page.get_by_test_id("stAlert").all_inner_texts()],
                "screenshot": str(shot)}
    out["errors"] = errors
    return out


class Killer(threading.Thread):
    """Once a run in the store has an epoch, `kill -9` the training worker writing it (a process of the server)."""

    def __init__(self, db: Path, server: int, go: threading.Event):
        super().__init__(daemon=True)
        self.db, self.server, self.go, self.killed, self._halt = db, server, go, None, threading.Event()

    def run(self) -> None:
        self.go.wait()
        start = time.perf_counter()
        sql = ("SELECT r.pid, r.owner, r.label, (SELECT COUNT(*) FROM history h WHERE h.run_id = r.id) AS epochs "
               "FROM runs r WHERE r.status = 'running'")
        family = {p.pid for p in psutil.Process(self.server).children(recursive=True)}
        while not self._halt.wait(0.3):
            try:
                with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as db:
                    rows = db.execute(sql).fetchall()
            except sqlite3.Error:
                continue
            family |= {p.pid for p in psutil.Process(self.server).children(recursive=True)}
            hit = next(((pid, owner, label, n) for pid, owner, label, n in rows if n >= 1 and pid in family), None)
            if hit is not None:
                os.kill(hit[0], signal.SIGKILL)
                self.killed = dict(zip(("pid", "owner", "label", "epochs"), hit, strict=True)) | {
                    "after_s": time.perf_counter() - start}
                return

    def stop(self) -> dict | None:
        self._halt.set()
        self.join()
        return self.killed


async def drive(chromium: str, url: str, sessions: int, pressed: threading.Event) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        contexts = [await browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(sessions)]
        go, ready = asyncio.Event(), []
        tasks = [asyncio.create_task(visitor(c, url, go, ready)) for c in contexts]
        while len(ready) < sessions and not any(t.done() for t in tasks):
            await asyncio.sleep(0.1)
        go.set()  # every session presses the button at the same moment
        pressed.set()
        results = await asyncio.gather(*tasks)
        await browser.close()
    return results


def isolation(results: list[dict], db: Path) -> dict:
    """Whether each session's Runs page listed exactly one owner's runs, and a different owner for each (noted
    in each result as its "owner")."""
    with RunStore(db) as store:
        owned = {owner: set(store.scoped(owner).runs()["id"]) for owner in store.owners()}
    seen_owners = []
    for r in results:
        text = r.get("runs_table", "")
        shown = [owner for owner, ids in owned.items() if any(i in text for i in ids)]
        r["runs_listed"] = sum(i in text for ids in owned.values() for i in ids)
        complete = len(shown) == 1 and all(i in text for i in owned[shown[0]])
        seen_owners.append(shown[0] if complete else None)
        r["owner"] = seen_owners[-1]
    ok = None not in seen_owners and len(set(seen_owners)) == len(results)
    return {"isolated": ok, "owners": len(owned), "runs_per_owner": sorted(len(v) for v in owned.values())}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--sessions", type=int, default=5, help="visitors at once")
    p.add_argument("--chromium", help="Chromium binary (default: chromium on PATH)")
    p.add_argument("--kill-one", action="store_true", help="kill -9 one visitor's training worker mid-run")
    args = p.parse_args()
    chromium = find_chromium(args.chromium) or sys.exit(
        "no Chromium found: install Debian's `chromium` or pass --chromium PATH")
    os.environ["LOOKBACK_HOSTED"] = "1"  # the server inherits it

    with tempfile.TemporaryDirectory(prefix="lookback-load-") as tmp:
        tmp = Path(tmp)
        db = tmp / "hosted.sqlite"
        server = Server(tmp, db=db)
        try:
            server.wait_healthy()
            sampler, pressed = RssSampler(server.proc.pid), threading.Event()
            killer = Killer(db, server.proc.pid, pressed) if args.kill_one else None
            sampler.start()
            if killer is not None:
                killer.start()
            start = time.perf_counter()
            results = asyncio.run(drive(chromium, server.url, args.sessions, pressed))
            wall = time.perf_counter() - start
            peak = sampler.stop()
            killed = killer.stop() if killer is not None else None
            checked = isolation(results, db)
            log = server.log()
        finally:
            server.stop()

    for r in results:
        r.pop("runs_table", None)
    finished = all(r["finished"] for r in results)
    worst = max((r.get("result_s", float("inf")) for r in results), default=float("inf"))
    exceptions = sum(r.get("exceptions", 0) for r in results)
    meets = {"all_finished": finished, "no_exception": exceptions == 0, "result_s": worst <= TARGETS["result_s"],
             "peak_rss_mb": peak <= TARGETS["peak_rss_mb"], "isolated": checked["isolated"]}
    crashed = [r.get("owner") for r in results if r.get("crashed")]
    if args.kill_one:  # one visitor saw the crash, and it was not one of those who got their result
        others = [r.get("owner") for r in results if not r.get("crashed")]
        meets["only_the_killed_job_failed"] = (killed is not None and len(crashed) == 1
                                               and killed["owner"] not in others and None not in others)
    else:
        meets["no_job_failed"] = crashed == []
    emit({"benchmark": "load", "variant": "kill-one" if args.kill_one else "normal", "sessions": args.sessions,
          "targets": TARGETS, "all_finished": finished, "exceptions": exceptions, "slowest_result_s": worst,
          "peak_rss_mb": peak, "isolated": checked["isolated"], "killed": killed, "crashed_sessions": len(crashed),
          "meets_targets": meets,
          "per_session": results,
          "details": {"wall_s": wall, "store": checked, "server_logged_traceback": "Traceback" in log,
                      "load_avg": os.getloadavg(), "cpus": os.cpu_count()},
          "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
