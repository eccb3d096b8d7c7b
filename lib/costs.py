"""What a model costs: parameters, analytic FLOPs, measured time and memory, and where they disagree.

Every measured number comes in a dict (or DataFrame row) with the environment that produced it, because a
timing without torch version, threads, device and oneDNN state cannot be compared with another one.
"""
from __future__ import annotations

import gc
import math
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from itertools import combinations

import pandas as pd
import torch
from torch import nn

from lib.errors import ConfigError
from lib.limits import matmul_gflops, step_limits
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, count_params, sequential_depth
from lib.runs import dataset
from lib.runtime import environment, resolve_device, sync
from lib.tasks.base import REGRESSION, SequenceDataset, Split
from lib.train import TrainConfig, make_optimizer, seeded_model, train_step

# The environment columns of every measured row: column name -> key of lib.runtime.environment().
_ENV_FIELDS = {"device": "device", "device_name": "device_name", "torch": "torch", "threads": "threads",
               "mkldnn": "mkldnn_enabled", "load_1min": "load_1min"}
ENV_COLUMNS = tuple(_ENV_FIELDS)


# ---------------------------------------------------------------- parameters

_NUMBERED = {"levels": "level", "blocks": "block", "cells": "recurrent layer"}  # ModuleLists, one group each
_NAMED = {"project": "input projection", "norm": "final norm"}


def _group(name: str, model: nn.Module) -> str:
    """Chart group of a parameter name: embedding, recurrent layer k, hidden layer k, level k (TCN), block k
    (Transformer), input projection, positions, final norm, trend (DLinear) or head."""
    top, _, rest = name.partition(".")
    if top == "inputs":
        return "embedding"
    if top == "rnn":
        return "recurrent layer " + re.search(r"_l(\d+)", rest).group(1)
    if top == "body":  # nn.Sequential of (Linear, ReLU, Dropout) blocks: number the Linear layers
        linears = [i for i, m in enumerate(model.body) if isinstance(m, nn.Linear)]
        return f"hidden layer {linears.index(int(rest.split('.')[0]))}"
    if top in _NUMBERED:
        return f"{_NUMBERED[top]} {rest.split('.')[0]}"
    return _NAMED.get(top, top)


def param_table(model: nn.Module) -> list[dict]:
    """One row per parameter tensor: group (embedding / recurrent layer k / hidden layer k / head), name,
    shape and count, in module order."""
    return [{"group": _group(name, model), "name": name, "shape": tuple(p.shape), "count": p.numel()}
            for name, p in model.named_parameters()]


def param_groups(model: nn.Module) -> dict[str, int]:
    """Parameter count per group of `param_table`, in module order, plus "total"."""
    groups: dict[str, int] = {}
    for row in param_table(model):
        groups[row["group"]] = groups.get(row["group"], 0) + row["count"]
    return groups | {"total": sum(groups.values())}


def closed_form_params(kind: str, input_size: int, hidden: int, layers: int = 1, n_outputs: int = 1,
                       window: int = 1, vocab_size: int | None = None, seq_len: int = 1, **options) -> dict[str, int]:
    """Parameter counts from the formulas (see `flops` for each layer's), grouped like `param_groups`.

    input_size is the embedding size when vocab_size is given (token inputs; embedding vocab_size·input_size);
    seq_len sizes the Transformer's positions; options are the other ModelConfig fields (kernel, levels, heads,
    variant).
    """
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model {kind!r}; choose one of: {', '.join(MODEL_KINDS)}.")
    cfg = ModelConfig(kind=kind, hidden=hidden, layers=layers, window=window, **options,
                      **({"embed_dim": input_size} if vocab_size else {}))
    return closed_form_for(cfg, ModelIO(seq_len, vocab_size or input_size, n_outputs, tokens=bool(vocab_size)))


def closed_form_for(cfg: ModelConfig, io: ModelIO) -> dict[str, int]:
    """Parameter counts of a model config on a task, grouped like `param_groups`, plus "total".

    Recurrent layer: G·(H·I_k + H·H + 2H); FFNN layer: n_in·H + H (n_in = w·I, then H); linear map: w·I·O + O
    (DLinear two); TCN level j (width C): C·I_j·k + C·C·k + 4C (two weight-normalised convolutions: weights,
    gains, biases) + C·I_j + C where a 1×1 residual is needed; Transformer: input projection I·d + d,
    positions T·d, 12d² + 13d per block, final norm 2d; minGRU layer: 2H·I_k + 2H; head H·O + O; embedding
    (token inputs) vocabulary·embed_dim.
    """
    groups = {"embedding": io.n_features * cfg.embed_dim} if io.tokens else {}
    groups |= {group: n for group, n, _ in _layers(cfg, io)}
    return groups | {"total": sum(groups.values())}


def _input_size(cfg: ModelConfig, io: ModelIO) -> int:
    return cfg.embed_dim if io.tokens else io.n_features


# ---------------------------------------------------------------- FLOPs

def _widths(first: int, hidden: int, n: int) -> list[int]:
    """Input width of each of n stacked layers: `first`, then `hidden`."""
    return [first] + [hidden] * (n - 1)


def _head(width: int, o: int, p: int) -> tuple[str, int, int]:
    return "head", width * o + o, width * o * p


def _ffnn(cfg, i, o, t, p):
    h = cfg.hidden
    rows = [(f"hidden layer {k}", n * h + h, n * h * p) for k, n in enumerate(_widths(cfg.window * i, h, cfg.layers))]
    return rows + [_head(h, o, p)]


def _gated(cfg, i, o, t, p):
    g, h = MODEL_KINDS[cfg.kind].gates, cfg.hidden
    rows = [(f"recurrent layer {k}", g * (h * n + h * h + 2 * h), g * h * (n + h) * t)
            for k, n in enumerate(_widths(i, h, cfg.layers))]
    return rows + [_head(h, o, p)]


def _linear(cfg, i, o, t, p):
    maps = ("head", "trend") if cfg.variant == "dlinear" else ("head",)
    return [(name, *_head(cfg.window * i, o, p)[1:]) for name in maps]


def _tcn(cfg, i, o, t, p):
    c, k, rows = cfg.hidden, cfg.kernel, []
    for j, n in enumerate(_widths(i, c, cfg.levels)):
        res = int(n != c)  # a 1×1 convolution on the residual where the widths differ
        macs = c * n * k + c * c * k + res * c * n
        rows.append((f"level {j}", macs + 4 * c + res * c, macs * t))  # 4C: gains and biases of two convolutions
    return rows + [_head(c, o, p)]


def _attention_macs(d: int, t: int) -> int:
    """One block's scores and weighted values over the causal half of T steps: d·T·(T + 1), growing with T²."""
    return d * t * (t + 1)


def _transformer(cfg, i, o, t, p):
    d = cfg.hidden
    rows = [("input projection", i * d + d, i * d * t), ("positions", t * d, 0)]
    rows += [(f"block {k}", 12 * d * d + 13 * d, 12 * d * d * t + _attention_macs(d, t)) for k in range(cfg.layers)]
    return rows + [("final norm", 2 * d, 0), _head(d, o, p)]


def _mingru(cfg, i, o, t, p):
    h = cfg.hidden
    rows = [(f"recurrent layer {k}", 2 * h * n + 2 * h, 2 * h * n * t) for k, n in enumerate(_widths(i, h, cfg.layers))]
    return rows + [_head(h, o, p)]


_FORMULAS = {"linear": _linear, "tcn": _tcn, "transformer": _transformer, "mingru": _mingru}  # the others:
# the gated-recurrent formula (gates > 0) or the FFNN's


def _layers(cfg: ModelConfig, io: ModelIO) -> list[tuple[str, int, int]]:
    """(group, parameters, forward MACs per sample) of every group but the embedding, in module order."""
    formula = _FORMULAS.get(cfg.kind) or (_gated if MODEL_KINDS[cfg.kind].gates else _ffnn)
    return formula(cfg, _input_size(cfg, io), io.n_outputs, io.seq_len, io.seq_len if io.per_step else 1)


def flops(cfg: ModelConfig, io: ModelIO) -> dict:
    """Analytic FLOPs per sample.

    Convention: only the multiply-adds of matrix products are counted (1 MAC = 2 FLOPs); biases,
    activations, normalisation, gate products, scans, moving averages and embedding look-ups are ignored.
    I is the input (or embedding) size, H the hidden size, O the outputs, T the steps, P = T when per_step
    (the head, and a window, at every step) else 1, w the window, k the TCN kernel:
    recurrent layer (G gate blocks): G·H·(I_k + H)·T; FFNN: w·I·H·P for the first layer, H·H·P for later ones;
    linear: w·I·O·P (twice for DLinear); TCN level j: (C·I_j·k + C·C·k + C·I_j where a 1×1 residual
    convolution is needed)·T, every step computed; Transformer: input projection I·d·T, each block
    12·d²·T (QKV 3d², output d², MLP 8d²) + d·T·(T+1) (scores and weighted values over the causal half, which
    grows with T²); minGRU layer: 2·H·I_k·T; head H·O·P. A training step ≈ 3× the forward (backward ≈ 2×
    forward). Returns forward_macs, forward_flops, train_flops and groups (forward FLOPs per `param_groups`
    group but the embedding).
    """
    macs = {group: m for group, _, m in _layers(cfg, io)}
    forward = sum(macs.values())
    return {"forward_macs": forward, "forward_flops": 2 * forward, "train_flops": 6 * forward,
            "groups": {g: 2 * m for g, m in macs.items()}}


# ---------------------------------------------------------------- measurement

def _setup(ds: SequenceDataset, cfg: ModelConfig, train_cfg: TrainConfig, device: torch.device):
    """The seeded model of a run, its optimiser and step(batch indices): lib.train's own parts."""
    train_cfg.validate()
    model = seeded_model(cfg, ModelIO.from_dataset(ds), train_cfg.seed).to(device).train()
    opt = make_optimizer(model, train_cfg)
    x, y = ds.train.x.to(device), ds.train.y.to(device)

    def step(idx: torch.Tensor) -> torch.Tensor:
        return train_step(model, opt, ds, x[idx], y[idx], train_cfg)

    return model, step


def _batches(n: int, batch_size: int, gen: torch.Generator, device: torch.device) -> list[torch.Tensor]:
    return [idx.to(device) for idx in torch.randperm(n, generator=gen).split(batch_size)]


def _time_training(ds, cfg, train_cfg, epochs, warmup):
    """Wall-clock seconds of `epochs` training epochs over ds.train (no validation), after `warmup` untimed
    steps; steps run back to back as in lib.train, with the device synchronised before each clock read.
    Returns (timing, trained model); timing has epoch_seconds (median), epoch_seconds_all, step_seconds
    (median epoch / steps per epoch), epoch_cpu_seconds (median CPU time of this process per epoch),
    step_cpu_seconds and step_cpu_spread_seconds (median and spread of every timed step's CPU time),
    steps_per_epoch, samples_per_epoch and env."""
    if epochs < 1 or warmup < 0:
        raise ConfigError(f"epochs must be at least 1 and warmup at least 0, got {epochs} and {warmup}.")
    device = resolve_device(train_cfg.device)
    model, step = _setup(ds, cfg, train_cfg, device)
    gen = torch.Generator().manual_seed(train_cfg.seed)
    n = len(ds.train)
    for idx in _batches(n, train_cfg.batch_size, gen, device)[:warmup]:  # one-time costs: kernels, allocator
        step(idx)
    epoch_s, cpu_s, step_cpu = [], [], []
    for _ in range(epochs):
        batches = _batches(n, train_cfg.batch_size, gen, device)
        sync(device)
        t0, cpu0 = time.perf_counter(), time.process_time()
        for idx in batches:
            c0 = time.process_time()  # a CPU clock read needs no device sync: it costs ~1 µs a step
            step(idx)
            step_cpu.append(time.process_time() - c0)
        sync(device)
        epoch_s.append(time.perf_counter() - t0)
        cpu_s.append(time.process_time() - cpu0)
    median = statistics.median(epoch_s)
    step_median, step_spread = timed(step_cpu)
    result = {"epoch_seconds": median, "epoch_seconds_all": epoch_s, "step_seconds": median / len(batches),
              "epoch_cpu_seconds": statistics.median(cpu_s), "step_cpu_seconds": step_median,
              "step_cpu_spread_seconds": step_spread,
              "steps_per_epoch": len(batches), "samples_per_epoch": n, "env": environment(device)}
    return result, model


def time_inference(model: nn.Module, x: torch.Tensor, repeats: int = 20, warmup: int = 3) -> dict:
    """Median wall-clock time of one forward pass over the batch x in eval mode without autograd.

    Returns batch_seconds (median of `repeats` after `warmup` untimed calls), seconds_per_sample
    (batch_seconds / len(x); with a batch of one this is the latency of answering one query),
    batch_size, repeats and env.
    """
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats must be at least 1 and warmup at least 0, got {repeats} and {warmup}.")
    device = next(model.parameters()).device
    x = x.to(device)
    was_training = model.training
    model.eval()
    times = []
    with torch.inference_mode():
        for r in range(warmup + repeats):
            sync(device)
            t0 = time.perf_counter()
            model(x)
            sync(device)
            if r >= warmup:
                times.append(time.perf_counter() - t0)
    model.train(was_training)
    batch = statistics.median(times)
    return {"batch_seconds": batch, "seconds_per_sample": batch / len(x), "batch_size": len(x),
            "spread_seconds": spread(times) / len(x), "repeats": repeats, "env": environment(device)}


def peak_memory(ds: SequenceDataset, cfg: ModelConfig, train_cfg: TrainConfig = TrainConfig(),
                steps: int = 2) -> dict:
    """Peak bytes held by PyTorch tensors while building the model and its optimiser and running `steps`
    training steps, above what was held before: weights, gradients, optimiser state, the batch, saved
    activations and temporaries. Not the process RSS (interpreter, libraries and allocator caches are
    left out), and the training data already on the device are not counted.

    CUDA: torch.cuda.max_memory_allocated. CPU: the running sum of the CPU allocator's allocation and
    free events recorded by torch.profiler (profile_memory=True). Returns peak_bytes, peak_mb (1e6 bytes),
    method and env.
    """
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}.")
    device = resolve_device(train_cfg.device)
    gen = torch.Generator().manual_seed(train_cfg.seed)
    batches = _batches(len(ds.train), train_cfg.batch_size, gen, torch.device("cpu"))
    batches = [batches[s % len(batches)] for s in range(steps)]
    ds_on_device = replace(ds, train=Split(ds.train.x.to(device), ds.train.y.to(device)))
    gc.collect()

    def run() -> None:
        _, step = _setup(ds_on_device, cfg, train_cfg, device)
        for idx in batches:
            step(idx.to(device))

    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        sync(device)
        peak, method = torch.cuda.max_memory_allocated(device) - base, "torch.cuda.max_memory_allocated"
    else:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run()
        events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                        key=lambda e: e.start_ns())
        held = peak = 0
        for e in events:  # nbytes > 0 allocates, < 0 frees
            held += e.nbytes()
            peak = max(peak, held)
        method = "torch.profiler CPU allocator events"
    return {"peak_bytes": int(peak), "peak_mb": peak / 1e6, "method": method, "env": environment(device)}


def _env_columns(env: dict) -> dict:
    return {col: env[key] for col, key in _ENV_FIELDS.items()}


def _limit_columns(ds, cfg, train_flops, train_cfg, gflops) -> dict:
    """How close a step is to this CPU's limit (lib.limits); nothing for a GPU run."""
    if resolve_device(train_cfg.device).type != "cpu":
        return {}
    lim = step_limits(ds, cfg, train_flops, train_cfg, gflops=gflops)
    return {"step_ms": lim["step_s"] * 1e3, "core_layer_ms": lim["core_layer_s"] * 1e3,
            "roofline_ms": lim["roofline_s"] * 1e3, "binding": lim["binding"]}


def cost_report(ds: SequenceDataset, model_cfgs: list[ModelConfig], train_cfg: TrainConfig = TrainConfig(),
                epochs: int = 1, warmup: int = 3, repeats: int = 20,
                on_row: Callable[[dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> pd.DataFrame:
    """One row per model config on ds.

    Columns: label, kind, hidden, layers, init, n_params, forward_flops, train_flops (per sample),
    epoch_seconds and step_seconds (median training epoch over ds.train, and per step), epoch_cpu_seconds (its
    CPU time in this process), step_cpu_ms and step_cpu_spread_ms (median and spread of the timed steps' CPU
    time: what a sentence ranks by), latency_ms (one test sequence, `time_inference`), peak_memory_mb
    (`peak_memory`), step_ms (median of timed steps), core_layer_ms, roofline_ms and binding (lib.limits)
    and the ENV_COLUMNS. Repeated labels get
    " #2", " #3". on_row receives each row as it is measured (for progress); once should_stop() is true no
    further model is measured, and the rows so far are returned.
    """
    io = ModelIO.from_dataset(ds)
    rows, seen, gflops = [], {}, matmul_gflops(repeats=30)
    for cfg in model_cfgs:
        if should_stop is not None and should_stop():
            break
        timing, model = _time_training(ds, cfg, train_cfg, epochs, warmup)
        latency = time_inference(model, ds.test.x[:1], repeats=repeats)
        memory = peak_memory(ds, cfg, train_cfg)
        f = flops(cfg, io)
        seen[cfg.label] = seen.get(cfg.label, 0) + 1
        label = cfg.label if seen[cfg.label] == 1 else f"{cfg.label} #{seen[cfg.label]}"
        row = {"label": label, "kind": cfg.kind, "hidden": cfg.hidden, "layers": cfg.layers,
               "init": cfg.resolved_init, "n_params": count_params(model),
               "forward_flops": f["forward_flops"], "train_flops": f["train_flops"],
               "epoch_seconds": timing["epoch_seconds"], "step_seconds": timing["step_seconds"],
               "epoch_cpu_seconds": timing["epoch_cpu_seconds"], "step_cpu_ms": timing["step_cpu_seconds"] * 1e3,
               "step_cpu_spread_ms": timing["step_cpu_spread_seconds"] * 1e3,
               "latency_ms": latency["seconds_per_sample"] * 1e3,
               "peak_memory_mb": memory["peak_mb"], **_limit_columns(ds, cfg, f["train_flops"], train_cfg, gflops),
               **_env_columns(timing["env"])}
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return pd.DataFrame(rows)


HIDDEN_VALUES = (16, 32, 64, 128, 256)  # the Costs page's scaling points
LENGTH_VALUES = (25, 50, 100, 250, 500, 1000, 2000)  # far enough that attention's T² parts from the linear kinds


def scaling(kind: str, what: str = "hidden", values: tuple[int, ...] = (32, 64, 128, 256),
            base: ModelConfig | None = None, seq_len: int = 50, input_size: int = 16, batch_size: int = 64,
            repeats: int = 5, warmup: int = 2, device: str = "auto", seed: int = 0,
            on_row: Callable[[dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> pd.DataFrame:
    """Median seconds per training step and analytic FLOPs as the hidden size or sequence length grows.

    Uses synthetic regression data: one batch of `batch_size` random sequences of `input_size` features,
    trained with lib.train's step (Adam). `what` is "hidden" (values are hidden sizes, seq_len fixed) or
    "seq_len" (values are sequence lengths, hidden from `base`). Columns: label, kind, what, value, hidden,
    seq_len, n_params, forward_flops, train_flops, step_seconds, peak_memory_mb (`peak_memory`), sequential_depth
    (lib.models.sequential_depth) and the ENV_COLUMNS. on_row and should_stop as in `cost_report`.
    """
    if what not in ("hidden", "seq_len"):
        raise ConfigError(f"scaling runs over 'hidden' or 'seq_len', got {what!r}.")
    if not values or min(values) < 1:
        raise ConfigError(f"scaling needs positive {what} values, got {list(values)}.")
    base = replace(base or ModelConfig(), kind=kind)
    train_cfg = TrainConfig(batch_size=batch_size, seed=seed, device=device)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for value in values:
        if should_stop is not None and should_stop():
            break
        cfg = replace(base, hidden=value) if what == "hidden" else base
        t = value if what == "seq_len" else seq_len
        cfg = replace(cfg, window=min(cfg.window, t))
        x = torch.randn(batch_size, t, input_size, generator=gen)  # (B, T, I)
        split = Split(x, torch.randn(batch_size, generator=gen))
        ds = SequenceDataset("synthetic", "random sequences for timing", REGRESSION, split, split, split,
                             seq_len=t, n_features=input_size, n_outputs=1)
        timing, model = _time_training(ds, cfg, train_cfg, epochs=repeats, warmup=warmup)
        f = flops(cfg, ModelIO.from_dataset(ds))
        rows.append({"label": f"{cfg.label} {'H' if what == 'hidden' else 'T'}={value}", "kind": kind,
                     "what": what, "value": value, "hidden": cfg.hidden, "seq_len": t,
                     "layers": cfg.layers, "n_params": count_params(model), "forward_flops": f["forward_flops"],
                     "train_flops": f["train_flops"], "step_seconds": timing["step_seconds"],
                     "peak_memory_mb": peak_memory(ds, cfg, train_cfg)["peak_mb"],
                     "sequential_depth": sequential_depth(cfg, t), **_env_columns(timing["env"])})
        if on_row is not None:
            on_row(rows[-1])
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- cost sentences a user can trust

def spread(values) -> float:
    """The interquartile range of repeated measurements of one cost (0 for a single one, NaN for none): how far
    a median of them may move from one measurement to the next."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return math.nan
    if len(v) == 1:
        return 0.0
    q = statistics.quantiles(v, n=4, method="inclusive")
    return q[2] - q[0]


def timed(values) -> tuple[float, float]:
    """(median, spread) of repeated measurements of one cost; (NaN, NaN) without any."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return (statistics.median(v), spread(v)) if v else (math.nan, math.nan)


def update_cpu_ms(runs, steps_per_epoch: int) -> tuple[float, float]:
    """(median, spread) of the CPU milliseconds per optimizer update over every timed epoch of the runs (lib.train
    history records: epoch_cpu_seconds, or epoch_seconds for runs stored before CPU time was recorded), with the
    spread between seeds counted too (the larger of the pooled epochs' spread and the range of the per-run
    medians). CPU seconds, not wall-clock: a run that shared its cores with other work waited without them."""
    per_run, pooled = [], []
    for run in runs:
        key = "epoch_cpu_seconds" if all("epoch_cpu_seconds" in h for h in run.history) else "epoch_seconds"
        values = [h[key] / steps_per_epoch * 1e3 for h in run.history]
        if values:
            pooled += values
            per_run.append(statistics.median(values))
    if not pooled:
        return math.nan, math.nan
    seeds = max(per_run) - min(per_run) if len(per_run) > 1 else 0.0
    return statistics.median(pooled), max(spread(pooled), seeds)


def rank(a: float, spread_a: float, b: float, spread_b: float) -> int:
    """-1 when cost a is below b, 1 when above, by more than the larger of their spreads (NaN counts as no
    spread: an exact count such as parameters); 0 when they differ by less, or either is unknown: not ranked."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return 0
    noise = max(0.0 if math.isnan(x) else x for x in (spread_a, spread_b))
    if abs(a - b) <= noise:
        return 0
    return -1 if a < b else 1


# (column, its spread column or None for an exact count, name, format, unit) of what a study's sentence compares
SENTENCE_COSTS = (("n_params", None, "parameters", "{:,.0f}", ""),
                  ("update_cpu_ms", "update_cpu_spread_ms", "training time", "{:.3g}", " CPU ms per update"),
                  ("latency_ms", "latency_spread_ms", "prediction time", "{:.3g}", " ms per sequence"))


def cost_sentence(a: str, row_a, b: str, row_b) -> str:
    """What model a costs next to model b, from their rows (mappings with SENTENCE_COSTS' columns): parameters,
    median CPU milliseconds per training update and median latency of one prediction, each timed cost with its
    spread; a cost is ranked only where the two differ by more than their spread (`rank`). "" without any cost."""
    get = lambda row, col: float(row[col]) if col in row and pd.notna(row[col]) else math.nan  # noqa: E731
    shown = [c for c in SENTENCE_COSTS if math.isfinite(get(row_a, c[0])) and math.isfinite(get(row_b, c[0]))]
    if not shown:
        return ""

    def values(row) -> str:
        out = []
        for col, sp, _, fmt, unit in shown:
            noise = get(row, sp) if sp else math.nan
            out.append(fmt.format(get(row, col)) + (f" (spread {noise:.2g})" if noise > 0 else "") + unit)
        return ", ".join(out)

    order = {name: rank(get(row_a, col), get(row_a, sp) if sp else math.nan, get(row_b, col),
                        get(row_b, sp) if sp else math.nan) for col, sp, name, _, _ in shown}
    cheaper = [name for name, r in order.items() if r < 0]
    dearer = [name for name, r in order.items() if r > 0]
    timed_ = {name for _, sp, name, _, _ in shown if sp}
    tied = [name for name, r in order.items() if r == 0 and name in timed_]
    same = [name for name, r in order.items() if r == 0 and name not in timed_]
    text = f"Costs ({', '.join(order)}): {a} {values(row_a)}; {b} {values(row_b)}"
    if cheaper and not dearer and not tied and not same:
        text += f", so {a} costs less on every count"
    elif dearer and not cheaper and not tied and not same:
        text += f", so {a} costs more on every count"
    elif cheaper or dearer:
        said = [f"less in {' and '.join(cheaper)}"] * bool(cheaper) + [f"more in {' and '.join(dearer)}"] * bool(dearer)
        text += f", so {a} costs {' and '.join(said)}"
    if same:
        text += f"; they have the same {' and '.join(same)}"
    if tied:
        one = len(tied) == 1
        text += (f"; their {' and '.join(tied)} {'differs' if one else 'differ'} by less than the spread of repeated "
                 f"timed steps, so {'it is' if one else 'they are'} not ranked")
    return text + "."


# ---------------------------------------------------------------- as jobs of lib.jobs

def cost_job(task, model_cfgs: list[ModelConfig], train_cfg: TrainConfig, *, on_run=None, should_stop=None,
             **_progress) -> pd.DataFrame:
    """`cost_report` of the task's dataset, as a job of lib.jobs: each row goes to on_run as it is measured,
    and a cancelled job returns the rows measured so far."""
    return cost_report(dataset(task), model_cfgs, train_cfg, on_row=on_run, should_stop=should_stop)


def depth_note(df: pd.DataFrame) -> str | None:
    """What runs one after another at the longest measured length, from `scaling` rows over seq_len: "At T =
    1,000, one training forward runs 1,000 layer steps one after another for RNN, …"; None for a hidden-size
    scaling or rows without sequential_depth."""
    if df.empty or df["what"].iloc[0] != "seq_len" or "sequential_depth" not in df:
        return None
    longest = df[df["value"] == df["value"].max()]
    t = int(longest["value"].iloc[0])
    groups = longest.groupby("sequential_depth", sort=True)["label"].apply(
        lambda s: ", ".join(label.rsplit(" ", 1)[0] for label in s))
    parts = "; ".join(f"{int(d):,} for {names}" for d, names in groups.items())
    return (f"At T = {t:,}, one training forward runs this many layer steps one after another (no number of cores "
            f"shortens them; the output layer not counted): {parts}. A recurrence needs one per step; a TCN two "
            "convolutions per level, however long the sequence; attention and minGRU's parallel scan one per layer, "
            "at a cost in memory and arithmetic instead.")


def attention_note(df: pd.DataFrame) -> str | None:
    """How much of a Transformer's arithmetic its attention scores take at the shortest and longest measured
    length, from `scaling` rows over seq_len; None without a Transformer among them."""
    if df.empty or not {"kind", "layers"} <= set(df) or df["what"].iloc[0] != "seq_len":
        return None  # a hidden-size scaling, or rows measured before the layers were recorded
    rows = df[df["kind"] == "transformer"].sort_values("value")
    if rows.empty:
        return None

    def share(r) -> float:
        return 2 * r["layers"] * _attention_macs(int(r["hidden"]), int(r["seq_len"])) / r["forward_flops"]

    first, last = rows.iloc[0], rows.iloc[-1]
    return (f"The Transformer's attention scores grow with T² (d·T² per layer, against 12·d²·T for its "
            f"projections and feed-forward layer): they are {share(first):.0%} of its FLOPs at T = "
            f"{int(first['value']):,} and {share(last):.0%} at T = {int(last['value']):,}, and outgrow the rest of a "
            f"block once T exceeds 12 × its width ({12 * int(last['hidden']):,} steps here). Below that, attention "
            "grows about as fast as the other kinds.")


def scaling_job(kinds: list[str], what: str, values: tuple[int, ...], *, on_run=None, should_stop=None,
                **_progress) -> pd.DataFrame:
    """`scaling` of every kind, one frame, as a job of lib.jobs (like `cost_job`)."""
    frames = [scaling(kind, what, values, on_row=on_run, should_stop=should_stop) for kind in kinds]
    return pd.concat(frames, ignore_index=True)


def _fused_on_cpu(kind) -> bool:
    """Whether PyTorch runs this kind as one fused oneDNN kernel on CPU while others loop over time steps:
    why measured time can rank models differently from their FLOPs."""
    return kind in MODEL_KINDS and MODEL_KINDS[kind].fused_on_cpu


def flops_vs_time_note(df: pd.DataFrame, min_gap: float = 0.1) -> str | None:
    """A plain-language note when a model with more FLOPs was measurably faster than one with fewer
    (faster by more than `min_gap`, a fraction, and by more than the spread of their timed steps, so timing
    noise does not count); None when the FLOP ranking and the time ranking agree. Reads label, train_flops (or
    forward_flops), a time: step_cpu_ms with step_cpu_spread_ms (the median CPU time of repeated timed steps)
    when present, else epoch_seconds or step_seconds, and, when present, kind, device and mkldnn.
    """
    flop_col = next((c for c in ("train_flops", "forward_flops") if c in df), None)
    time_col = next((c for c in ("step_cpu_ms", "epoch_seconds", "step_seconds") if c in df), None)
    if flop_col is None or time_col is None:
        raise ConfigError("the note needs a FLOPs column (train_flops or forward_flops) and a time column "
                          f"(step_cpu_ms, epoch_seconds or step_seconds); got columns: "
                          f"{', '.join(map(str, df.columns))}.")
    rows = df.dropna(subset=[flop_col, time_col]).to_dict("records")
    noise = lambda row: row.get("step_cpu_spread_ms", math.nan) if time_col == "step_cpu_ms" else math.nan  # noqa: E731
    pairs = []
    for a, b in combinations(rows, 2):
        more, fewer = (a, b) if a[flop_col] > b[flop_col] else (b, a)
        if more[flop_col] > fewer[flop_col] and more[time_col] < fewer[time_col] * (1 - min_gap) and \
                rank(more[time_col], noise(more), fewer[time_col], noise(fewer)) < 0:
            pairs.append((more, fewer))
    if not pairs:
        return None
    pairs.sort(key=lambda p: p[0][flop_col] / p[1][flop_col], reverse=True)
    unit, short = {"step_cpu_ms": ("CPU ms per training step (median)", "ms"), "epoch_seconds": ("s per epoch", "s"),
                   "step_seconds": ("s per training step", "s")}[time_col]
    lines = [f"{m['label']} needs {m[flop_col] / f[flop_col]:.1f}× the FLOPs of {f['label']} yet took "
             f"{m[time_col]:.3g} {unit} against {f[time_col]:.3g} {short}." for m, f in pairs[:3]]
    if len(pairs) > 3:
        lines.append(f"({len(pairs) - 3} more such pairs.)")
    fused = any(_fused_on_cpu(m.get("kind")) and not _fused_on_cpu(f.get("kind"))
                and str(m.get("device", "cpu")).startswith("cpu") and m.get("mkldnn", True) for m, f in pairs)
    if fused:
        lines.append("FLOPs count arithmetic, not how it is run: on CPU PyTorch runs nn.LSTM (float32) as "
                     "one fused oneDNN kernel over the whole sequence, while nn.RNN and nn.GRU loop over the "
                     "time steps with separate small kernels, so per-step overhead outweighs the LSTM's "
                     "extra arithmetic.")
    else:
        lines.append("FLOPs count arithmetic, not how it is run: at these sizes time goes to per-operation "
                     "overhead, memory traffic and how well each kernel is fused, so more FLOPs need not "
                     "mean more time.")
    return " ".join(lines)
