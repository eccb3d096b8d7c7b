"""Importing a bundle of many identical runs (the reliability audit's B76: 1,999 runs took 112 s under load).

One GRU run trained here is saved --runs times into a temporary store and exported with Lookback's own
`export_bundle` (1,999 runs with weights is the most a bundle's 10,000 members hold). The import is timed twice:
into a fresh store (one run stored, the rest skipped as duplicates of it) and back into the store that holds all
of them (every run skipped). Target: each at most 5 s on a quiet machine; the load average is reported with it.
"""
import os
import tempfile
import time
from pathlib import Path

from _common import emit, parser
from lib.bundles import export_bundle, import_bundle
from lib.models import ModelConfig
from lib.runs import run_config, run_one
from lib.runtime import environment
from lib.store import RunStore
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig

TARGET_S = 5.0
TASK = TextRecallConfig(distance=2, n_train=60, n_val=20, n_test=20)
MODEL, TRAIN = ModelConfig(kind="gru", hidden=4), TrainConfig(epochs=2, patience=0, device="cpu")


def timed_import(store: RunStore, data: bytes, runs: int) -> dict:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    report = import_bundle(store, data)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "runs_per_s": runs / seconds, "imported": len(report.imported),
            "skipped": len(report.existing), "within_target": seconds <= TARGET_S,
            "load_1min": [load, os.getloadavg()[0]]}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--runs", type=int, default=1999, help="identical runs in the bundle (default 1999)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with RunStore(Path(tmp) / "source.sqlite") as source:
            rec = source.get(run_one(TASK, MODEL, TRAIN, source).run_id)
            weights = source.load_weights(rec["id"])
            record = {**rec, "test": rec["metrics"]}
            source.save_results([{"config": run_config(TASK, MODEL, TRAIN), "seed": TRAIN.seed, "label": MODEL.label,
                                  "task": TASK.name, "record": record, "state_dict": weights}] * (args.runs - 1))
            start = time.perf_counter()
            data = export_bundle(source, source.runs()["id"].tolist())
            export_s = time.perf_counter() - start
            with RunStore(Path(tmp) / "fresh.sqlite") as fresh:
                into_fresh = timed_import(fresh, data, args.runs)
            into_source = timed_import(source, data, args.runs)
    for name, r in (("fresh store", into_fresh), ("store holding them", into_source)):
        print(f"import into a {name}: {r['seconds']:.2f} s, {r['runs_per_s']:.0f} runs/s, load average "
              f"{r['load_1min'][0]:.2f} -> {r['load_1min'][1]:.2f}")
    emit({"benchmark": "bundle_import", "target_s": TARGET_S, "runs": args.runs, "bundle_mb": len(data) / 1e6,
          "export_s": export_s, "into_fresh_store": into_fresh, "into_store_holding_them": into_source,
          "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
