"""The training engine: deterministic, early stopping, clipping, divergence guard, callbacks.

`seeded_model`, `make_optimizer` and `train_step` are the engine's parts; lib.costs and lib.probes build and
step models through them, so what they measure is what `train` does.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lib.configs import Checked, check_knobs, knob
from lib.models import ModelConfig, ModelIO, build_model, count_params
from lib.runtime import Status, environment, flushed_denormals, load_average, resolve_device, sync
from lib.stats import fmt_metric
from lib.tasks.base import CLASSIFICATION, SequenceDataset, Split


@dataclass(frozen=True)
class TrainConfig(Checked):
    shown: ClassVar[tuple[str, ...]] = ("lr", "batch_size", "epochs", "patience")  # in every result's header

    optimizer: str = knob("adam", "Optimizer", choices=("adam", "adamw"))
    lr: float = knob(3e-3, "Learning rate", low=0, high=1, excludes="low",
                     offers=(3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0))
    weight_decay: float = knob(0.0, "Weight decay", low=0)
    batch_size: int = knob(64, "Batch size", low=1, high=8192, key="batch", offers=(16, 32, 64, 128, 256))
    epochs: int = knob(60, "Max epochs", low=1, high=1000, cap="epochs", form=(1, 200))  # early stopping ends sooner
    patience: int = knob(20, "Early-stopping patience", low=0, form=(0, 50),  # epochs without a better validation
                         note="(0 = off)")  # metric before stopping; 20, as the story's RNN leaves its plateau at 15
    min_delta: float = knob(0.0, "Min improvement", low=0)  # how much better the validation metric must get to count
    clip: float = knob(1.0, "Gradient clip", low=0, note="(0 turns it off)")  # max gradient norm
    seed: int = 0  # model init, dropout and batch order
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"

    def validate(self) -> None:
        check_knobs(self)


@dataclass
class RunResult:
    """One trained model with its per-epoch history, test metrics and the context that made it."""

    model_config: ModelConfig
    train_config: TrainConfig
    status: str  # a finished Status: COMPLETED, CANCELLED, DIVERGED or FAILED
    message: str
    history: list[dict]  # one record per finished epoch
    best_epoch: int | None
    test: dict  # metrics of the restored best weights on the test split
    n_params: int
    env: dict
    model: nn.Module | None = field(default=None, repr=False)
    run_id: str | None = None  # the run store's id, when the run was stored
    reused: str | None = None  # when this is a stored run reused instead of trained: when it was trained (ISO)

    @property
    def label(self) -> str:
        return self.model_config.label

    def record(self) -> dict:
        """JSON-friendly summary without weights."""
        return {
            "label": self.label, "model": asdict(self.model_config), "train": asdict(self.train_config),
            "status": self.status, "message": self.message, "history": self.history,
            "best_epoch": self.best_epoch, "test": self.test, "n_params": self.n_params, "env": self.env,
            "run_id": self.run_id, "reused": self.reused,
        }


def loss_fn(ds: SequenceDataset, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if ds.kind != CLASSIFICATION:
        return F.mse_loss(out.squeeze(-1), y)
    if ds.per_step:  # (B, T, V) against (B, T), padding marked -100
        return F.cross_entropy(out.flatten(0, 1), y.flatten(), ignore_index=-100)
    return F.cross_entropy(out, y)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Raw outputs (logits or values) in eval mode, batched, on the model's device."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs = [model(x[i:i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(outs)


def evaluate(model: nn.Module, split: Split, ds: SequenceDataset) -> dict:
    """Loss plus the task's metrics: accuracy (per step: over the last `ds.scored_steps` steps, plus
    perplexity) or MSE/MAE."""
    out = predict(model, split.x).cpu()
    y = split.y
    metrics = {"loss": float(loss_fn(ds, out, y))}
    if ds.kind != CLASSIFICATION:  # the loss is the MSE
        metrics |= {"mse": metrics["loss"], "mae": float((out.squeeze(-1) - y).abs().mean())}
    elif ds.per_step:
        k = ds.scored_steps
        metrics["accuracy"] = float((out[:, -k:].argmax(-1) == y[:, -k:]).float().mean())
        metrics["perplexity"] = math.exp(min(metrics["loss"], 50.0))
    else:
        metrics["accuracy"] = float((out.argmax(-1) == y).float().mean())
    return metrics


def seeded_model(model_config: ModelConfig, io: ModelIO, seed: int) -> nn.Module:
    """The model a run with this seed starts from, built on the CPU; the global random state is left alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(model_config, io)


def make_optimizer(model: nn.Module, train_config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over all of the model's parameters with the config's learning rate and weight decay."""
    opt_cls = torch.optim.AdamW if train_config.optimizer == "adamw" else torch.optim.Adam
    return opt_cls(model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, ds: SequenceDataset, x: torch.Tensor,
               y: torch.Tensor, train_config: TrainConfig) -> torch.Tensor:
    """One update on the batch (x, y): forward, loss, backward, gradient clipping, optimiser step.

    Returns the batch loss, detached and still on the device: reading it is left to the caller, because
    every read waits for the device.
    """
    loss = loss_fn(ds, model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if train_config.clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), train_config.clip)
    opt.step()
    return loss.detach()


def train(
    ds: SequenceDataset,
    model_config: ModelConfig,
    train_config: TrainConfig = TrainConfig(),
    on_epoch: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Train one model on one dataset; never raises for a diverging or cancelled run.

    on_epoch receives each epoch's record as it finishes; should_stop is polled every batch and, when it
    returns True, ends the run with status CANCELLED and the history so far. Subnormal floats are flushed
    to zero while it trains (`flushed_denormals`), in every path alike, so results agree.
    """
    train_config.validate()
    device = resolve_device(train_config.device)
    model = seeded_model(model_config, ModelIO.from_dataset(ds), train_config.seed).to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(train_config.seed)  # dropout masks; the caller's random state is restored after
        with flushed_denormals():
            return _fit(ds, model, model_config, train_config, device, on_epoch, should_stop)


def trivial_level(ds: SequenceDataset) -> float | None:
    """The validation metric of the trivial predictor: chance accuracy, or the MSE of predicting the training
    mean (per-step tasks: None)."""
    if ds.kind == CLASSIFICATION:
        return None if ds.per_step else ds.chance
    return float(((ds.val.y - ds.train.y.float().mean()) ** 2).mean())


def noise_margin(ds: SequenceDataset, level: float) -> float:
    """Two standard deviations of the validation metric of a predictor scoring `level` on ds.val: binomial for
    an accuracy, chi-square (relative sd sqrt(2/n)) for an MSE."""
    n = max(1, len(ds.val))
    if ds.kind == CLASSIFICATION:
        return 2 * math.sqrt(level * (1 - level) / n)
    return 2 * level * math.sqrt(2 / n)


@dataclass
class _EarlyStopping:
    """The best epoch so far (better validation metric, ties broken by lower validation loss), its weights,
    and the three reasons to end a run early (see `stop`)."""

    sign: float  # 1.0 when a higher metric is better, else -1.0
    min_delta: float
    patience: int  # 0 = never stop early
    ceiling: float | None = None  # the best validation metric possible: reaching it ends the run
    trivial: float | None = None  # never beating this validation metric for `patience` epochs: "did not learn"
    best_score: tuple[float, float] | None = None
    best_epoch: int | None = None
    best_state: dict | None = None
    improved_epoch: int = 0

    @classmethod
    def of(cls, ds: SequenceDataset, cfg: TrainConfig) -> _EarlyStopping:
        """Accuracy's ceiling is 1; an MSE's is the task's noise floor plus its noise on the validation set.
        The trivial predictor's level counts with its noise too, so chance-level jitter is not learning."""
        sign = 1.0 if ds.higher_is_better else -1.0
        if ds.kind == CLASSIFICATION:
            ceiling = 1.0
        else:
            ceiling = None if ds.noise_floor is None else ds.noise_floor + noise_margin(ds, ds.noise_floor) / 2
        trivial = trivial_level(ds)
        if trivial is not None:
            trivial += sign * noise_margin(ds, trivial)
        return cls(sign, cfg.min_delta, cfg.patience, ceiling, trivial)

    def update(self, epoch: int, metric: float, loss: float, model: nn.Module) -> None:
        score = (self.sign * metric, -loss)
        if self.best_score is None or score > self.best_score:
            if self.best_score is None or score[0] > self.best_score[0] + self.min_delta:
                self.improved_epoch = epoch
            self.best_score, self.best_epoch = score, epoch
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def wait(self) -> int:
        """Epochs without a better metric before stopping: `patience`, or a quarter of the epochs the run took
        to its last improvement when that is more (a run that learned late may learn again)."""
        return max(self.patience, math.ceil(self.improved_epoch / 4))

    def stop(self, epoch: int, metric_name: str) -> str | None:
        """Why the run ends after this epoch, or None to go on."""
        if self.patience <= 0 or self.best_score is None:
            return None
        best = self.sign * self.best_score[0]
        if self.ceiling is not None and self.sign * best >= self.sign * self.ceiling:
            return (f"stopped after epoch {epoch}: validation {metric_name} {fmt_metric(metric_name, best)} "
                    f"reached its ceiling ({fmt_metric(metric_name, self.ceiling)}); no better epoch is possible")
        if self.trivial is not None and epoch >= self.patience and self.sign * best <= self.sign * self.trivial:
            return (f"did not learn: after {epoch} epochs the best validation {metric_name} "
                    f"({fmt_metric(metric_name, best)}) was still within noise of the trivial predictor's "
                    f"({fmt_metric(metric_name, self.trivial)} with that noise); stopped")
        if epoch - self.improved_epoch >= self.wait():
            return (f"stopped early after epoch {epoch}: no better validation {metric_name} in "
                    f"{epoch - self.improved_epoch} epochs; best at epoch {self.best_epoch}")
        return None


def _run_epoch(model, opt, ds, x, y, cfg, batches, should_stop) -> torch.Tensor | None:
    """Train on each batch of indices in turn. Returns the batch losses, still on the device, or None when
    should_stop asked to end the run."""
    model.train()
    losses = []
    for idx in batches:
        if should_stop is not None and should_stop():
            return None
        losses.append(train_step(model, opt, ds, x[idx], y[idx], cfg))
    return torch.stack(losses)


def _diverged(epoch: int, what: str, cfg: TrainConfig) -> str:
    return (f"training diverged in epoch {epoch}: {what}; lower the learning rate (now {cfg.lr:g}) or turn "
            f"on gradient clipping.")


def _fit(ds, model, model_config, cfg, device, on_epoch, should_stop) -> RunResult:
    opt = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)  # batch order
    x, y = ds.train.x.to(device), ds.train.y.to(device)
    best = _EarlyStopping.of(ds, cfg)
    history: list[dict] = []
    status, message = Status.COMPLETED, ""
    sync(device)
    start, load_start = time.perf_counter(), load_average()
    for epoch in range(1, cfg.epochs + 1):
        t0, cpu0 = time.perf_counter(), time.process_time()
        batches = torch.randperm(len(x), generator=gen).to(device).split(cfg.batch_size)
        losses = _run_epoch(model, opt, ds, x, y, cfg, batches, should_stop)
        if losses is None:
            status, message = Status.CANCELLED, f"cancelled during epoch {epoch}"
            break
        sync(device)
        epoch_s, epoch_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        values = losses.tolist()  # the epoch's one wait for the device
        bad = next((v for v in values if not math.isfinite(v)), None)
        if bad is not None:
            status, message = Status.DIVERGED, _diverged(epoch, f"the loss became {bad}", cfg)
            break
        train_loss = sum(v * len(b) for v, b in zip(values, batches, strict=True)) / len(x)
        val = evaluate(model, ds.val, ds)
        record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val["loss"],
                  "val_metric": val[ds.metric], "epoch_seconds": epoch_s, "epoch_cpu_seconds": epoch_cpu,
                  "elapsed_seconds": time.perf_counter() - start, "load_1min": load_average()}
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if not math.isfinite(val["loss"]):
            status, message = Status.DIVERGED, _diverged(epoch, f"the validation loss became {val['loss']}", cfg)
            break
        best.update(epoch, val[ds.metric], val["loss"], model)
        message = best.stop(epoch, ds.metric) or ""
        if message:
            break
    if best.best_state is not None:
        model.load_state_dict(best.best_state)
    test = evaluate(model, ds.test, ds) if best.best_state is not None else {}
    if status == Status.COMPLETED and not message:
        message = f"trained {len(history)} epochs; best validation {ds.metric} at epoch {best.best_epoch}"
    return RunResult(model_config, cfg, status, message, history, best.best_epoch, test,
                     count_params(model), environment(device) | training_load(load_start, history), model.eval())


def training_load(start: float | None, history: list[dict]) -> dict:
    """The machine's 1-minute load average while a run trained: at its start, and the mean of the samples taken
    after each epoch (each epoch record's load_1min); None where the OS reports none. A timing read at a load
    above the cores is shared with other work, so its seconds say less about the model."""
    samples = [h["load_1min"] for h in history if h.get("load_1min") is not None]
    return {"load_1min_start": start, "load_1min_mean": sum(samples) / len(samples) if samples else start}
