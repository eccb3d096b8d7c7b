"""Seconds per training epoch on the CPU and, when CUDA is present, on the GPU, and the GPU's speed-up.

Two workloads: the default comparison (text recall at distance 20: FFNN w5, FFNN reaching the cue, RNN,
LSTM; the engine's median epoch_seconds over a full run), and a large one (sine forecasting, hidden 512,
sequence 300, 50,000 windows; FFNN w300, RNN, GRU, LSTM). A CPU epoch of the large workload takes many
minutes, so on the CPU it is timed over a few batches (the median after one warm-up batch, read from the
engine's per-batch should_stop poll) and scaled to the batches of one epoch; on the GPU it is two real
epochs, the second one timed (the engine synchronises before reading the clock). Both leave validation out.
Without a CUDA device it says so and exits 0 (`--cpu-only` times the CPU half).
"""
import math
import time

import numpy as np
import torch

from _common import emit, parser
from lib.experiments import compare
from lib.models import ModelConfig
from lib.runs import dataset
from lib.runtime import environment
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig, cue_lag
from lib.train import TrainConfig, train

DEFAULT_TASK = TextRecallConfig(distance=20)
DEFAULT_MODELS = [ModelConfig(kind="ffnn", window=5), ModelConfig(kind="ffnn", window=cue_lag(20)),
                  ModelConfig(kind="rnn"), ModelConfig(kind="lstm")]
SEQ_LEN, HIDDEN, SAMPLES = 300, 512, 50_000
# three segments of `length - 3 * (seq_len + horizon - 1)` windows in all
LARGE_TASK = SineConfig(seq_len=SEQ_LEN, length=SAMPLES + 3 * SEQ_LEN)
LARGE_MODELS = [ModelConfig(kind="ffnn", window=SEQ_LEN, hidden=HIDDEN), ModelConfig(kind="rnn", hidden=HIDDEN),
                ModelConfig(kind="gru", hidden=HIDDEN), ModelConfig(kind="lstm", hidden=HIDDEN)]
CPU_BATCHES = 2  # timed batches per model on the CPU, after one warm-up batch
BATCH = TrainConfig().batch_size


def default_comparison(device: str) -> dict:
    """Median seconds per epoch of each model of the default comparison, full runs with early stopping."""
    comp = compare(DEFAULT_TASK, DEFAULT_MODELS, TrainConfig(device=device))
    return {r.label: float(np.median([h["epoch_seconds"] for h in r.history])) for r in comp.runs}


def batch_seconds(model_cfg: ModelConfig, n_batches: int) -> float:
    """Median CPU seconds of one training batch, between the engine's should_stop polls (one per batch)."""
    stamps = []

    def should_stop() -> bool:
        stamps.append(time.perf_counter())
        return len(stamps) > n_batches + 1  # batch 0 is the warm-up; batches 1..n_batches are timed

    train(dataset(LARGE_TASK), model_cfg, TrainConfig(epochs=1, patience=0, device="cpu"), should_stop=should_stop)
    return float(np.median(np.diff(stamps[1:])))


def large_cpu() -> dict:
    batches = math.ceil(len(dataset(LARGE_TASK).train) / BATCH)
    return {m.label: batch_seconds(m, CPU_BATCHES) * batches for m in LARGE_MODELS}


def large_gpu() -> dict:
    out = {}
    for m in LARGE_MODELS:
        result = train(dataset(LARGE_TASK), m, TrainConfig(epochs=2, patience=0, device="cuda"))
        out[m.label] = result.history[-1]["epoch_seconds"]
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--cpu-only", action="store_true", help="time the CPU half even without a GPU")
    args = p.parse_args()
    if not torch.cuda.is_available() and not args.cpu_only:
        emit({"benchmark": "gpu", "gpu": None, "note": "no CUDA device found on this machine, so there is "
              "nothing to compare; --cpu-only times the CPU half alone", "env": environment("cpu")}, args.out)
        return
    ds = dataset(LARGE_TASK)
    samples = len(ds.train) + len(ds.val) + len(ds.test)
    result = {"benchmark": "gpu", "default_task": "text_recall distance 20",
              "large_task": f"sine, seq_len {SEQ_LEN}, {samples} windows ({len(ds.train)} for training), "
                            f"hidden {HIDDEN}, batch {BATCH}",
              "cpu": {"default_epoch_s": default_comparison("cpu"), "large_epoch_s": large_cpu(),
                      "large_method": f"median of {CPU_BATCHES} batches after one warm-up batch, times "
                                      f"{math.ceil(len(ds.train) / BATCH)} batches per epoch "
                                      f"(scaled, not a full epoch)",
                      "env": environment("cpu")}}
    if torch.cuda.is_available():
        gpu = {"default_epoch_s": default_comparison("cuda"), "large_epoch_s": large_gpu(),
               "large_method": "the second of two full epochs", "env": environment("cuda")}
        result["gpu"] = gpu
        result["speedup"] = {part: {k: result["cpu"][part][k] / v for k, v in gpu[part].items()}
                             for part in ("default_epoch_s", "large_epoch_s")}
    else:
        result["gpu"] = None
        result["note"] = "no CUDA GPU found on this machine: the CPU half ran; GPU figures were not measured"
    emit(result, args.out)


if __name__ == "__main__":
    main()
