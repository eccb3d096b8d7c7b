"""The memory study end to end, as `python -m lib study` runs it: on the shipped sunspots series
(data/examples/sunspots_monthly.csv) and on a synthetic 10,000-row, 4-column series. Targets: at most 20 s
(sunspots) and 60 s (synthetic) wall on a 2-core CPU. Reports seconds per phase (read, prepare, train,
costs, report), peak RSS and the load average; runs in a fresh, temporary run store so nothing is reused.

How far any stopping rule could go: the CPU seconds the runs trained (per kind) and those up to each run's best
epoch, which a rule that stopped every run exactly there would still spend; over the workers that is the floor
of the training phase at this plan (models, seeds, budget, history), whatever the rule."""
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import emit, parser

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = {"sunspots_monthly.csv": 20, "synthetic_10000x4.csv": 60}


def synthetic_series(rows: int = 10_000, seed: int = 0) -> bytes:
    """Columns a, b, c and y: y follows a daily cycle plus a's value 6 rows back, with noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    a, b, c = rng.normal(size=(3, rows))
    y = np.sin(2 * np.pi * t / 24) + 0.8 * np.roll(a, 6) + 0.1 * rng.normal(size=rows)
    buf = io.StringIO()
    pd.DataFrame({"a": a, "b": b, "c": c, "y": y}).round(5).to_csv(buf, index=False)
    return buf.getvalue().encode()


def peak_rss_mb(who=resource.RUSAGE_SELF) -> float:
    """Peak resident set size so far of this process (or of its largest finished child, the training
    workers, with RUSAGE_CHILDREN); Linux reports kilobytes, macOS bytes."""
    peak = resource.getrusage(who).ru_maxrss
    return peak / (1024 ** 2 if sys.platform == "darwin" else 1024)


def study(name: str, data: bytes, target: str, out_dir: Path, jobs: int) -> dict:
    from lib import backends
    from lib.models import MODEL_KINDS
    from lib.report import write_study
    from lib.runs import dataset
    from lib.study import memory_study
    from lib.tasks.user.prepared import prepare
    from lib.tasks.user.read import load_table
    from lib.tasks.user.spec import choose_spec

    phases, load_before = {}, os.getloadavg()[0]
    t0 = time.perf_counter()
    source = load_table(data, name)
    spec = choose_spec(source, target=target)
    phases["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    task = prepare(data, name, spec, source=source)
    ds = dataset(task)
    phases["prepare"] = time.perf_counter() - t0
    result = memory_study(task, n_jobs=jobs, on_run=lambda run: print(
        f"{name}: {run.label} seed {run.train_config.seed} {len(run.history)} epochs, "
        f"{run.history[-1]['elapsed_seconds'] if run.history else 0:.1f} s", file=sys.stderr, flush=True))
    phases |= result.seconds
    t0 = time.perf_counter()
    paths = write_study(result, out_dir / Path(name).stem, source=name)
    phases["report"] = time.perf_counter() - t0
    wall = sum(phases.values())
    workers = backends.worker_plan(jobs, len(result.runs))[0]
    cpu = {"trained": {}, "to_best_epoch": {}}
    for run in result.runs:
        kind = MODEL_KINDS[run.model_config.kind].name
        spent = [h["epoch_cpu_seconds"] for h in run.history]
        cpu["trained"][kind] = cpu["trained"].get(kind, 0.0) + sum(spent)
        cpu["to_best_epoch"][kind] = cpu["to_best_epoch"].get(kind, 0.0) + sum(spent[:run.best_epoch or 0])
    floor = sum(cpu["to_best_epoch"].values()) / workers
    print(f"{name}: {wall:.1f} s (target {TARGET_S[name]} s); trained {sum(cpu['trained'].values()):.0f} CPU s, "
          f"{sum(cpu['to_best_epoch'].values()):.0f} of them up to each run's best epoch: a floor of {floor:.1f} s "
          f"on {workers} workers", file=sys.stderr, flush=True)
    return {"data": name, "rows": len(source), "columns": len(source.columns), "window": spec.window,
            "sequences": {"train": len(ds.train), "val": len(ds.val), "test": len(ds.test)},
            "budget": vars(result.budget), "runs": len(result.runs), "wall_s": wall, "target_s": TARGET_S[name],
            "within_target": wall <= TARGET_S[name], "phases_s": phases, "workers": workers, "cpu_s": cpu,
            "floor_s": floor, "peak_rss_mb": peak_rss_mb(),
            "peak_worker_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN), "load_1min": [load_before, os.getloadavg()[0]],
            "report_mb": paths["html"].stat().st_size / 1e6, "verdict": result.verdict.text,
            "models": result.table[["label", "metric_mean", "metric_ci95", "n_params", "epoch_seconds", "latency_ms",
                                    "updates", "issue"]].to_dict("records")}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core, as the CLI)")
    p.add_argument("--threads", type=int, default=1, help="torch threads with --jobs 1 (default 1, as the CLI)")
    args = p.parse_args()
    import torch

    if args.jobs == 1:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LOOKBACK_DB"] = str(Path(tmp) / "runs.sqlite")  # a fresh store: every run trains
        from lib.runtime import environment

        results = [study("sunspots_monthly.csv", (ROOT / "data/examples/sunspots_monthly.csv").read_bytes(),
                         "sunspots", Path(tmp), args.jobs),
                   study("synthetic_10000x4.csv", synthetic_series(), "y", Path(tmp), args.jobs)]
    emit({"benchmark": "study", "target_s": TARGET_S, "jobs": args.jobs, "threads": args.threads,
          "studies": results,
          "total_wall_s": sum(r["wall_s"] for r in results), "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
