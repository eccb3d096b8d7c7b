"""A 12-run FFNN window sweep three ways on this machine: serial, local worker processes, and Ray tasks on a
local Ray instance (the "ray" backend with no address). Every mode trains each run with one torch thread,
so their metrics must agree exactly. Target: Ray's wall time at most 15% above the local workers'.

An untimed one-epoch sweep in each mode runs first, so that one-time costs (building the dataset, starting
worker processes, shipping lib/ to the Ray workers) fall in no timed sweep; starting the Ray instance is
timed on its own. The per-run time measured here gives the estimate of a 1,000-run sweep on 10 nodes.
"""
import os
import time

import torch

from _common import emit, parser
from _window import WINDOWS, sweep, timed
from lib import backends
from lib.runtime import environment

EPOCHS = 100  # a few seconds per run, like a small real sweep
TARGET_OVERHEAD = 0.15
COLS = ["label", "metric", "test_loss"]


def main() -> None:
    args = parser(__doc__).parse_args()
    cores = os.cpu_count() or 1
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sweep(1, n_jobs=1)  # warm-up, untimed
        serial, serial_frame = timed(EPOCHS, n_jobs=1)
    finally:
        torch.set_num_threads(default_threads)
    sweep(1, n_jobs=cores)
    local_s, local_frame = timed(EPOCHS, n_jobs=cores)
    start = time.perf_counter()
    ray = backends.connect()  # RAY_ADDRESS, else a new local instance with this machine's cores
    ray_start = time.perf_counter() - start
    ray_cpus = ray.cluster_resources().get("CPU", 0)
    sweep(1, backend="ray")
    ray_s, ray_frame = timed(EPOCHS, backend="ray")
    per_run = serial / len(WINDOWS)
    overhead = ray_s / local_s - 1
    # 1,000 runs on 10 nodes like this one: the runs spread over 10 x cores one-CPU slots, at Ray's
    # measured parallel efficiency here; the first sweep on fresh workers adds its start-up once.
    slots = 10 * cores
    efficiency = serial / (ray_s * min(len(WINDOWS), ray_cpus))
    estimate = 1000 * per_run / (slots * efficiency)
    emit({"benchmark": "cluster", "runs": len(WINDOWS), "epochs_per_run": EPOCHS, "cores": cores,
          "threads_per_run": 1, "serial_s": serial, "local_s": local_s, "local_workers": cores,
          "ray_s": ray_s, "ray_cpus": ray_cpus, "ray_start_s": ray_start,
          "speedup_local": serial / local_s, "speedup_ray": serial / ray_s,
          "ray_overhead_vs_local": overhead, "target_overhead": TARGET_OVERHEAD,
          "within_target": overhead <= TARGET_OVERHEAD,
          "identical_metrics": bool(serial_frame[COLS].equals(local_frame[COLS])
                                    and serial_frame[COLS].equals(ray_frame[COLS])),
          "serial_s_per_run": per_run, "ray_parallel_efficiency": efficiency,
          "estimate_1000_runs_on_10_nodes_s": estimate,
          "estimate_assumes": f"10 nodes of {cores} cores like this one, one CPU per run, "
                              f"{len(WINDOWS)}-run efficiency {efficiency:.2f} held at scale",
          "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
