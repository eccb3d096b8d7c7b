"""Time per training epoch and peak memory per model kind against the sequence length T, on this machine.

For every kind in the registry, at its default size (hidden 64, window 5, TCN k3 n4, 2 heads), one batch of 64
random sequences of 16 features is one epoch; the time is the median of timed steps after warm-up steps
(lib.costs.scaling: lib.train's own step, Adam, clipping), the memory the peak bytes PyTorch's CPU allocator held
over two steps (lib.costs.peak_memory), both from lib.costs.scaling. The fitted log-log slope per kind says how each
grows with T (1 = in proportion, 2 = with its square): a window stays flat, recurrence and the TCN grow linearly,
attention towards quadratic once T dominates. Then minGRU's parallel training (log-space scan) against PyTorch's
nn.GRU (on CPU a per-step loop, not one fused kernel), and against minGRU's own step-by-step recurrence, at T = 256
and 1,000.

Run single-threaded for comparable numbers: OMP_NUM_THREADS=1 python benchmarks/mechanisms.py --out FILE.
"""
import statistics
import time

import torch

from _common import emit, parser
from lib.costs import scaling
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, build_model
from lib.runtime import environment
from lib.stats import loglog_slope
from lib.tasks.base import REGRESSION, SequenceDataset, Split

LENGTHS = (25, 50, 100, 250, 500, 1000)
BATCH, FEATURES = 64, 16


def _synthetic(t: int, seed: int = 0) -> SequenceDataset:
    gen = torch.Generator().manual_seed(seed)
    split = Split(torch.randn(BATCH, t, FEATURES, generator=gen), torch.randn(BATCH, generator=gen))
    return SequenceDataset("synthetic", "random sequences for timing", REGRESSION, split, split, split,
                           seq_len=t, n_features=FEATURES, n_outputs=1)


def per_kind(kind: str, lengths, repeats: int) -> dict:
    rows = scaling(kind, "seq_len", tuple(lengths), input_size=FEATURES, batch_size=BATCH, repeats=repeats,
                   warmup=2, device="cpu")
    mem = rows["peak_memory_mb"]
    long = rows[rows["value"] >= 100]
    return {"memory": MODEL_KINDS[kind].memory, "T": rows["value"].tolist(),
            "epoch_seconds": rows["step_seconds"].round(6).tolist(), "peak_memory_mb": [round(m, 3) for m in mem],
            "sequential_depth": rows["sequential_depth"].tolist(),
            "train_flops": rows["train_flops"].tolist(),
            "time_slope": round(loglog_slope(rows["value"], rows["step_seconds"]), 3),
            "time_slope_T_ge_100": round(loglog_slope(long["value"], long["step_seconds"]), 3),
            "memory_slope": round(loglog_slope(rows["value"], rows["peak_memory_mb"]), 3),
            "flops_slope": round(loglog_slope(rows["value"], rows["train_flops"]), 3)}


def _median_step(fn, repeats: int, warmup: int = 2) -> float:
    times = []
    for r in range(warmup + repeats):
        t0 = time.perf_counter()
        fn()
        if r >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def mingru_vs_gru(t: int, repeats: int) -> dict:
    """Seconds per training step (forward + backward + Adam) of minGRU's parallel scan, nn.GRU, and minGRU
    trained through its sequential recurrence, same batch."""
    ds = _synthetic(t)
    io = ModelIO.from_dataset(ds)
    x, y = ds.train.x, ds.train.y
    out = {}
    for name, kind, forward in (("mingru_parallel", "mingru", "forward"), ("gru_torch", "gru", "forward"),
                                ("mingru_sequential", "mingru", "recurrence")):
        torch.manual_seed(0)
        model = build_model(ModelConfig(kind=kind), io)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        run = getattr(model, forward)

        def step(model=model, opt=opt, run=run):
            loss = torch.nn.functional.mse_loss(run(x).squeeze(-1), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        out[name] = _median_step(step, repeats if name != "mingru_sequential" else max(2, repeats // 2))
    out["gru_over_mingru_parallel"] = out["gru_torch"] / out["mingru_parallel"]
    out["sequential_over_parallel"] = out["mingru_sequential"] / out["mingru_parallel"]
    return {k: round(v, 6) for k, v in out.items()}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--kinds", nargs="*", default=list(MODEL_KINDS))
    p.add_argument("--lengths", nargs="*", type=int, default=list(LENGTHS))
    p.add_argument("--repeats", type=int, default=5, help="timed steps per point (median)")
    args = p.parse_args()
    start = time.perf_counter()
    kinds = {k: per_kind(k, args.lengths, args.repeats) for k in args.kinds}
    result = {"env": environment(torch.device("cpu")), "batch": BATCH, "features": FEATURES,
              "epoch": f"one batch of {BATCH} sequences", "kinds": kinds,
              "mingru_vs_gru": {str(t): mingru_vs_gru(t, args.repeats) for t in (256, 1000)},
              "seconds": None}
    result["seconds"] = round(time.perf_counter() - start, 1)
    emit(result, args.out)


if __name__ == "__main__":
    main()
