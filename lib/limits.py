"""How close a training step is to what this machine allows: where a step's time goes (data, forward,
backward, optimizer), the time of the model's core layer alone (forward + backward, same shapes), and a
roofline estimate from the analytic FLOPs (lib.costs.flops) and this machine's measured matmul throughput.

The binding constraint is named from those three times: "per-op overhead" when the step takes much longer
than its core layer (or the layer much longer than its arithmetic, without steps that must run in order),
"sequential steps" when a recurrent layer's time is far above its arithmetic, else "arithmetic".
"""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from lib.models import MODEL_KINDS, ModelConfig, ModelIO
from lib.runtime import sync
from lib.tasks.base import SequenceDataset
from lib.train import TrainConfig, loss_fn, make_optimizer, seeded_model

PHASES = ("data", "forward", "backward", "optimizer")
OVERHEAD_RATIO = 1.5  # step / core layer above this: the work around the layer dominates
SLOW_RATIO = 3.0  # core layer / roofline above this: the layer is not arithmetic-bound


def matmul_gflops(n: int = 512, repeats: int = 10) -> float:
    """This process's measured float32 matmul throughput (GFLOP/s) at its torch thread count: the median of
    `repeats` n x n products, each 2n³ FLOPs."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def _median_phases(model, opt, ds, cfg, steps, gen) -> dict[str, float]:
    x_all, y_all = ds.train.x, ds.train.y
    seen: dict[str, list[float]] = {p: [] for p in PHASES}
    batches = torch.randperm(len(x_all), generator=gen).split(cfg.batch_size)
    for i in range(steps):
        idx = batches[i % len(batches)]
        t0 = time.perf_counter()
        x, y = x_all[idx], y_all[idx]
        t1 = time.perf_counter()
        loss = loss_fn(ds, model(x), y)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        if cfg.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        t4 = time.perf_counter()
        for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            seen[phase].append(seconds)
    return {p: statistics.median(v) for p, v in seen.items()}


def core_layer(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, tuple]:
    """The module with the most parameters among those the model calls on x (the recurrent layer, the MLP,
    a convolution block), with the inputs it got."""
    seen: dict[nn.Module, tuple] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.setdefault(mod, args))
             for m in model.modules() if m is not model]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    core = max(seen, key=lambda m: sum(p.numel() for p in m.parameters()))
    return core, seen[core]


def _core_seconds(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median seconds of forward + backward of the core layer alone, on the inputs it gets in the model."""
    core, inputs = core_layer(model, x)
    args = [a.detach().requires_grad_(a.is_floating_point()) if torch.is_tensor(a) else a for a in inputs]
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        out = core(*args)
        out = out[0] if isinstance(out, tuple) else out
        out.float().sum().backward()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def binding(kind: str, step_s: float, core_s: float, roofline_s: float) -> str:
    """The constraint that sets a step's time (see the module docstring)."""
    if step_s > OVERHEAD_RATIO * core_s:
        return "per-op overhead"
    if core_s > SLOW_RATIO * roofline_s:
        return "sequential steps" if MODEL_KINDS[kind].recurrent else "per-op overhead"
    return "arithmetic"


def step_limits(ds: SequenceDataset, cfg: ModelConfig, train_flops: float, train_cfg: TrainConfig = TrainConfig(),
                steps: int = 30, gflops: float | None = None) -> dict:
    """One kind's training step on this CPU: median seconds per phase and in all, the core layer alone, the
    roofline (train_flops per sample, lib.costs.flops, times the batch over `gflops`, measured when None)
    and the binding constraint."""
    io = ModelIO.from_dataset(ds)
    model = seeded_model(cfg, io, train_cfg.seed).train()
    opt = make_optimizer(model, train_cfg)
    gen = torch.Generator().manual_seed(train_cfg.seed)
    _median_phases(model, opt, ds, train_cfg, 3, gen)  # warm-up: kernels, allocator
    sync(torch.device("cpu"))
    phases = _median_phases(model, opt, ds, train_cfg, steps, gen)
    batch = min(train_cfg.batch_size, len(ds.train))
    core_s = _core_seconds(model, ds.train.x[:batch], steps)
    gflops = matmul_gflops() if gflops is None else gflops
    roofline_s = train_flops * batch / (gflops * 1e9)
    step_s = sum(phases.values())
    return {"label": cfg.label, "kind": cfg.kind, "phases_s": phases, "step_s": step_s, "core_layer_s": core_s,
            "roofline_s": roofline_s, "matmul_gflops": gflops, "step_over_core": step_s / core_s,
            "step_over_roofline": step_s / roofline_s, "binding": binding(cfg.kind, step_s, core_s, roofline_s)}
