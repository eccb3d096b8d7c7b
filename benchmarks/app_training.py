"""In-app training overhead: the default comparison trained through the real app vs by the library.

Library: `compare(STORY_TASK, STORY_MODELS, store=...)` in a fresh Python process (torch's default threads).
App: `streamlit run app.py` (local mode), headless Chromium presses Home's "Run the default comparison" and
waits on Compare, whose progress panel refreshes on screen while the job trains, until the result shows.
The two alternate, --repeats times each, with the run store emptied before every app run so nothing is reused.

Reported per side:
- job_s: the training inside the job, from the stored records: first run's start to last run's end; target
  app / library <= 1.05.
- wall_s: library: the compare() call; app: the browser's time from the click until the result is visible
  (this adds the page switch, queueing and drawing the result); target app / library <= 1.10.
- app only: browser_cpu_s, the CPU seconds Chromium's processes spent from the click to the result (Linux),
  and result_after_job_s, from the last run's end to the result on screen.

Chromium runs at a lower priority (--browser-nice, default 19): a visitor's browser runs on their own machine,
not on the server, so here it should only take CPU time that the server leaves idle. The server and its
training worker run at normal priority.

Needs Chromium (Debian's `chromium`, or --chromium PATH).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, parser
from lib.runtime import environment
from lib.store import RunStore
from tests.support.browser import ROOT, Server, browser, find_chromium, no_exception, run_default_comparison

TARGETS = {"job_ratio": 1.05, "wall_ratio": 1.10}
LIBRARY = """
import json, sys, time
import torch
from lib.experiments import compare
from lib.models import ModelConfig
from lib.store import RunStore
from lib.tasks.text import TextRecallConfig, cue_lag
task = TextRecallConfig(distance=20)  # Home's default comparison
models = [ModelConfig(kind="ffnn", window=5), ModelConfig(kind="ffnn", window=cue_lag(20)), ModelConfig(kind="rnn"),
          ModelConfig(kind="lstm")]
with RunStore(sys.argv[1]) as store:
    start = time.perf_counter()
    compare(task, models, store=store)
    wall = time.perf_counter() - start
print(json.dumps({"wall_s": wall, "threads": torch.get_num_threads()}))
"""


def job_seconds(db: Path) -> float:
    """First run's start to last run's end, over every run in the store (one job's runs)."""
    with RunStore(db) as store:
        runs = store.runs()
    assert len(runs) and (runs["status"] == "completed").all(), runs[["label", "status"]]
    return (runs["updated"].max() - runs["created"].min()).total_seconds()


def library_run(tmp: Path, i: int) -> dict:
    db = tmp / f"library-{i}.sqlite"
    out = subprocess.run([sys.executable, "-c", LIBRARY, str(db)], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "job_s": job_seconds(db)}


def niced(chromium: str, nice: int, tmp: Path) -> str:
    """A launcher that starts Chromium (and so all its processes) at the given nice level. Where Linux groups
    processes by session for scheduling (autogroup), a nice level counts only inside the group, and Playwright
    starts the browser in a session of its own: the launcher sets that group's nice level too."""
    if nice == 0:
        return chromium
    launcher = tmp / "chromium-niced"
    group = "/proc/self/autogroup"
    launcher.write_text(f'#!/bin/sh\n[ -w {group} ] && echo {nice} > {group}\nexec nice -n {nice} "{chromium}" "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


def browser_cpu_s(chromium: str) -> float:
    """CPU seconds (user + system) spent so far by the running processes whose program is named as this
    Chromium (Debian's /usr/bin/chromium is a script that starts /usr/lib/chromium/chromium); 0 without /proc."""
    total, tick, name = 0.0, os.sysconf("SC_CLK_TCK"), Path(chromium).name
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if Path((proc / "cmdline").read_bytes().replace(b"\0", b" ").split()[0].decode()).name == name:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):  # it ended meanwhile, or has no command line
            continue
    return total


def app_run(chromium: str, binary: str, server: Server, db: Path, profile: Path) -> dict:
    """One new visitor (a fresh browser profile, so no earlier result is on screen) runs the comparison;
    chromium: the launcher, binary: the Chromium binary it starts."""
    with RunStore(db) as store:  # nothing to reuse: the job trains every run
        store.delete(store.runs()["id"])
    with browser(chromium, profile) as page:
        page.goto(server.url)
        page.get_by_role("button", name="Run the default comparison").wait_for(timeout=60_000)
        cpu, shown = browser_cpu_s(binary), time.time()
        wall = run_default_comparison(page)
        cpu, shown = browser_cpu_s(binary) - cpu, shown + wall
        no_exception(page)
    time.sleep(1.0)  # the last run's record is written just before the result shows
    with RunStore(db) as store:
        ended = store.runs()["updated"].max().timestamp()
    return {"wall_s": wall, "job_s": job_seconds(db), "browser_cpu_s": cpu, "result_after_job_s": shown - ended}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--repeats", type=int, default=3, help="runs of each side")
    p.add_argument("--chromium", help="Chromium binary (default: chromium on PATH)")
    p.add_argument("--browser-nice", type=int, default=19, help="nice level of Chromium (0: as the server)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra `streamlit run` argument, e.g. --server-arg=--runner.postScriptGC=true")
    args = p.parse_args()
    chromium = find_chromium(args.chromium) or sys.exit(
        "no Chromium found: install Debian's `chromium` or pass --chromium PATH")

    lib_runs, app_runs = [], []
    with tempfile.TemporaryDirectory(prefix="lookback-bench-") as tmp:
        tmp = Path(tmp)
        db = tmp / "app.sqlite"
        binary, chromium = chromium, niced(chromium, args.browser_nice, tmp)
        server = Server(tmp, db=db, extra_args=tuple(args.server_arg))
        try:
            server.wait_healthy()
            with browser(chromium, tmp / "profile-warm") as page:
                page.goto(server.url)
                page.get_by_role("button", name="Run the default comparison").wait_for(timeout=60_000)
                time.sleep(5)  # the engine's workers start on the first visit
            for i in range(args.repeats):  # interleaved, alternating which side goes first
                for side in (("library", "app") if i % 2 == 0 else ("app", "library")):
                    if side == "library":
                        lib_runs.append(library_run(tmp, i))
                    else:
                        app_runs.append(app_run(chromium, binary, server, db, tmp / f"profile-{i}"))
                    print(side, (lib_runs if side == "library" else app_runs)[-1], file=sys.stderr)
            server_errors = "Traceback" in server.log()
        finally:
            server.stop()

    def median(runs, key):
        return statistics.median(r[key] for r in runs)

    ratios = {"job_ratio": median(app_runs, "job_s") / median(lib_runs, "job_s"),
              "wall_ratio": median(app_runs, "wall_s") / median(lib_runs, "wall_s")}
    print(" ".join(f"{k} {v:.3f} (target {TARGETS[k]})" for k, v in ratios.items()), file=sys.stderr)
    emit({"benchmark": "app_training", "targets": TARGETS, **ratios,
          "meets_targets": {k: v <= TARGETS[k] for k, v in ratios.items()},
          "library": {"job_s": median(lib_runs, "job_s"), "wall_s": median(lib_runs, "wall_s"), "runs": lib_runs},
          "app": {"job_s": median(app_runs, "job_s"), "wall_s": median(app_runs, "wall_s"), "runs": app_runs,
                  "server_args": args.server_arg, "browser_nice": args.browser_nice},
          "details": {"server_logged_traceback": server_errors, "load_avg": os.getloadavg(),
                      "cpus": os.cpu_count()},
          "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
