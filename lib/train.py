"""The training engine: deterministic, early stopping, clipping, divergence guard, callbacks."""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lib.errors import ConfigError
from lib.models import ModelConfig, ModelIO, build_model, count_params
from lib.runtime import environment, resolve_device, sync
from lib.tasks.base import CLASSIFICATION, SequenceDataset, Split

COMPLETED, CANCELLED, DIVERGED = "completed", "cancelled", "diverged"


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adam"  # "adam" or "adamw"
    lr: float = 3e-3  # learning rate
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 60  # upper bound; early stopping usually ends sooner
    patience: int = 10  # epochs without a better validation metric before stopping; 0 = never stop early
    min_delta: float = 0.0  # the validation metric must improve by more than this to count as better
    clip: float = 1.0  # max gradient norm; 0 = no clipping
    seed: int = 0  # model init, dropout and batch order
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"

    def validate(self) -> None:
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}.")
        if not 0 < self.lr <= 1:
            raise ConfigError(f"learning rate must be in (0, 1], got {self.lr}.")
        if self.weight_decay < 0:
            raise ConfigError(f"weight decay must be at least 0, got {self.weight_decay}.")
        if not 1 <= self.batch_size <= 8192:
            raise ConfigError(f"batch size must be between 1 and 8192, got {self.batch_size}.")
        if not 1 <= self.epochs <= 1000:
            raise ConfigError(f"epochs must be between 1 and 1000, got {self.epochs}.")
        if self.min_delta < 0:
            raise ConfigError(f"min_delta must be at least 0, got {self.min_delta}.")
        if self.patience < 0:
            raise ConfigError(f"patience must be at least 0, got {self.patience}.")
        if self.clip < 0:
            raise ConfigError(f"gradient clip must be at least 0 (0 turns it off), got {self.clip}.")


@dataclass
class RunResult:
    """One trained model with its per-epoch history, test metrics and the context that made it."""

    model_config: ModelConfig
    train_config: TrainConfig
    status: str  # COMPLETED, CANCELLED or DIVERGED
    message: str
    history: list[dict]  # one record per finished epoch
    best_epoch: int | None
    test: dict  # metrics of the restored best weights on the test split
    n_params: int
    env: dict
    model: nn.Module | None = field(default=None, repr=False)
    run_id: str | None = None  # the run store's id, when the run was stored

    @property
    def label(self) -> str:
        return self.model_config.label

    def record(self) -> dict:
        """JSON-friendly summary without weights."""
        return {
            "label": self.label, "model": asdict(self.model_config), "train": asdict(self.train_config),
            "status": self.status, "message": self.message, "history": self.history,
            "best_epoch": self.best_epoch, "test": self.test, "n_params": self.n_params, "env": self.env,
            "run_id": self.run_id,
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
    """Loss plus the task's metrics: accuracy (final word and perplexity when per step) or MSE/MAE."""
    out = predict(model, split.x).cpu()
    y = split.y
    metrics = {"loss": float(loss_fn(ds, out, y))}
    if ds.kind != CLASSIFICATION:
        err = out.squeeze(-1) - y
        metrics |= {"mse": float((err ** 2).mean()), "mae": float(err.abs().mean())}
    elif ds.per_step:
        metrics["accuracy"] = float((out[:, -1].argmax(-1) == y[:, -1]).float().mean())  # final word
        metrics["perplexity"] = math.exp(min(metrics["loss"], 50.0))
    else:
        metrics["accuracy"] = float((out.argmax(-1) == y).float().mean())
    return metrics


def train(
    ds: SequenceDataset,
    model_config: ModelConfig,
    train_config: TrainConfig = TrainConfig(),
    on_epoch: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Train one model on one dataset; never raises for a diverging or cancelled run.

    on_epoch receives each epoch's record as it finishes; should_stop is polled every batch and, when it
    returns True, ends the run with status CANCELLED and the history so far.
    """
    train_config.validate()
    io = ModelIO.from_dataset(ds)
    device = resolve_device(train_config.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(train_config.seed)
        model = build_model(model_config, io).to(device)
        return _fit(ds, model, model_config, train_config, device, on_epoch, should_stop)


def _fit(ds, model, model_config, cfg, device, on_epoch, should_stop) -> RunResult:
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    x, y = ds.train.x.to(device), ds.train.y.to(device)
    history: list[dict] = []
    best_score, best_epoch, best_state, improved_epoch = None, None, None, 0
    status, message = COMPLETED, ""
    start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        total, seen = 0.0, 0
        for idx in torch.randperm(len(x), generator=gen).split(cfg.batch_size):
            if should_stop is not None and should_stop():
                status, message = CANCELLED, f"cancelled during epoch {epoch}"
                break
            idx = idx.to(device)
            loss = loss_fn(ds, model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                status = DIVERGED
                message = (f"training diverged in epoch {epoch}: the loss became {loss.item()}; "
                           f"lower the learning rate (now {cfg.lr:g}) or turn on gradient clipping.")
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        if status != COMPLETED:
            break
        sync(device)
        epoch_s = time.perf_counter() - t0
        val = evaluate(model, ds.val, ds)
        record = {"epoch": epoch, "train_loss": total / seen, "val_loss": val["loss"],
                  "val_metric": val[ds.metric], "epoch_seconds": epoch_s,
                  "elapsed_seconds": time.perf_counter() - start}
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if not math.isfinite(val["loss"]):
            status = DIVERGED
            message = (f"training diverged in epoch {epoch}: the validation loss became {val['loss']}; "
                       f"lower the learning rate (now {cfg.lr:g}) or turn on gradient clipping.")
            break
        # best = better validation metric, ties broken by lower validation loss
        sign = 1.0 if ds.higher_is_better else -1.0
        score = (sign * val[ds.metric], -val["loss"])
        if best_state is None or score > best_score:
            if best_state is None or score[0] > best_score[0] + cfg.min_delta:
                improved_epoch = epoch
            best_score, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        if cfg.patience and epoch - improved_epoch >= cfg.patience:
            message = (f"stopped early after epoch {epoch}: no better validation {ds.metric} "
                       f"since epoch {improved_epoch}")
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    test = evaluate(model, ds.test, ds) if best_state is not None else {}
    if status == COMPLETED and not message:
        message = f"trained {len(history)} epochs; best validation {ds.metric} at epoch {best_epoch}"
    return RunResult(model_config, cfg, status, message, history, best_epoch, test,
                     count_params(model), environment(device), model.eval())
