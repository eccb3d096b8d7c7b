"""The engine's training time against a minimal hand-written PyTorch loop doing the same work.

Both build the same initial weights, train on the same batches for the same epochs with gradient clipping and
one validation pass per epoch, and end with one test pass. Each side is timed from outside, around the whole
call (model build to test pass); the ratio (engine / hand loop) is the engine's overhead: its divergence
check, metrics and history, and the best-weights copy and restore. The target ratio is reported, not enforced.
Per kind it also prints where a step's time goes (data, forward, backward, optimizer), the core layer alone
(forward + backward, same shapes), the roofline from the analytic FLOPs and this machine's matmul
throughput, and the binding constraint (lib.limits).
"""
import statistics
import time

import torch
import torch.nn.functional as F

from _common import emit, parser
from lib.costs import flops
from lib.limits import matmul_gflops, step_limits
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, build_model
from lib.runtime import environment
from lib.tasks.text import TextRecallConfig, make_text_recall
from lib.train import TrainConfig, train


def hand_loop(ds, cfg: ModelConfig, tc: TrainConfig) -> None:
    torch.manual_seed(tc.seed)
    model = build_model(cfg, ModelIO.from_dataset(ds))
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    gen = torch.Generator().manual_seed(tc.seed)
    for _ in range(tc.epochs):
        model.train()
        for idx in torch.randperm(len(ds.train), generator=gen).split(tc.batch_size):
            loss = F.cross_entropy(model(ds.train.x[idx]), ds.train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip)
            opt.step()
        model.eval()
        with torch.no_grad():
            F.cross_entropy(model(ds.val.x), ds.val.y)
    with torch.no_grad():
        F.cross_entropy(model(ds.test.x), ds.test.y)


def timed(fn, ds, cfg: ModelConfig, tc: TrainConfig) -> float:
    start = time.perf_counter()
    fn(ds, cfg, tc)
    return time.perf_counter() - start


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    ds = make_text_recall(TextRecallConfig(distance=20, n_train=2000))
    tc = TrainConfig(epochs=args.epochs, patience=0, device="cpu")
    results, gflops = {}, matmul_gflops(repeats=30)
    for kind in MODEL_KINDS:
        cfg = ModelConfig(kind=kind, window=10)
        train(ds, cfg, tc)  # warm-up, untimed
        hand_loop(ds, cfg, tc)
        e, h = [], []
        for _ in range(args.repeats):  # interleaved so drift hits both alike
            e.append(timed(train, ds, cfg, tc))
            h.append(timed(hand_loop, ds, cfg, tc))
        limits = step_limits(ds, cfg, flops(cfg, ModelIO.from_dataset(ds))["train_flops"], tc, gflops=gflops)
        results[kind] = {"engine_s": statistics.median(e), "hand_loop_s": statistics.median(h),
                         "ratio": statistics.median(e) / statistics.median(h), "step": limits}
        ms = " ".join(f"{p} {v * 1e3:.2f}" for p, v in limits["phases_s"].items())
        print(f"{kind:>12}: engine/hand {results[kind]['ratio']:.3f}; step ms: {ms}; core layer "
              f"{limits['core_layer_s'] * 1e3:.2f}, roofline {limits['roofline_s'] * 1e3:.3f} -> {limits['binding']}",
              flush=True)
    emit({"benchmark": "engine_overhead", "target_ratio": 1.05, "epochs": args.epochs, "matmul_gflops": gflops,
          "repeats": args.repeats, "kinds": results,
          "max_ratio": max(r["ratio"] for r in results.values()), "env": environment("cpu")}, args.out)


if __name__ == "__main__":
    main()
