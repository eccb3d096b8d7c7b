"""A 12-run FFNN window sweep, serial against parallel worker processes, on this machine.

Both modes give every run the same torch thread count (cores // workers), so their metrics must agree
exactly; the serial time is also reported with all cores for one run at a time. Target: >= 1.8x.
An untimed one-epoch sweep in each mode runs first, so that one-time costs (building the dataset, the
allocator's first requests, starting the worker processes) fall in no timed sweep.
"""

import torch

from _common import emit, parser
from _window import WINDOWS, sweep, timed
from lib.backends import worker_plan
from lib.runtime import environment

EPOCHS = 60


def main() -> None:
    args = parser(__doc__).parse_args()
    workers, threads = worker_plan(-1, len(WINDOWS))
    default_threads = torch.get_num_threads()
    sweep(1, n_jobs=1)  # warm-up, untimed
    sweep(1, n_jobs=workers)
    serial_all, serial_all_frame = timed(EPOCHS, n_jobs=1)
    torch.set_num_threads(threads)
    try:
        serial, serial_frame = timed(EPOCHS, n_jobs=1)
    finally:
        torch.set_num_threads(default_threads)
    parallel, parallel_frame = timed(EPOCHS, n_jobs=workers)
    cols = ["label", "metric", "test_loss"]
    emit({"benchmark": "sweep", "runs": len(WINDOWS), "workers": workers, "threads_per_worker": threads,
          "serial_s": serial, "serial_all_threads_s": serial_all, "parallel_s": parallel,
          "speedup": serial / parallel, "speedup_vs_all_threads": serial_all / parallel, "target": 1.8,
          "identical_metrics": bool(serial_frame[cols].equals(parallel_frame[cols])),
          "identical_accuracy_vs_all_threads": bool(serial_all_frame["metric"].equals(parallel_frame["metric"])),
          "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
