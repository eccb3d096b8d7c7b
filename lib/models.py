"""FFNN over a fixed window, vanilla RNN, GRU and LSTM behind one registry and one forward signature.

Every model maps x (B, T) token ids or (B, T, F) features to (B, n_out), or to (B, T, n_out) when the
task has a target at every step.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from lib.configs import Checked, check_knobs, knob
from lib.errors import ConfigError

INITS = ("auto", "pytorch", "orthogonal", "forget1", "chrono")


@dataclass(frozen=True)
class ModelConfig(Checked):
    kind: str = "lstm"  # one of MODEL_KINDS
    hidden: int = knob(64, "Hidden units", low=1, high=4096, cap="hidden", form=(4, 512), step=4)  # per layer
    layers: int = knob(1, "Layers", low=1, high=4, cap="layers", form=(1, 3))  # stacked hidden / recurrent layers
    dropout: float = knob(0.0, "Dropout", low=0.0, high=1.0, excludes="high", form=(0.0, 0.5), step=0.05)
    window: int = knob(5, "FFNN window", unit="steps", form=(1, 400))  # windowed kinds: the last steps seen
    embed_dim: int = knob(16, "Embedding size", low=1, high=1024)  # token tasks: embedding size per word
    init: str = knob("auto", "Recurrent initialisation", choices=INITS, header="initialisation",  # "auto" = best
                     titles=("best practice", "PyTorch default", "orthogonal recurrent", "forget-gate bias 1",
                             "chrono + orthogonal"))  # practice for the kind (see MODEL_KINDS)

    @property
    def label(self) -> str:
        windowed = self.kind in MODEL_KINDS and MODEL_KINDS[self.kind].windowed
        return f"{self.kind.upper()} w{self.window}" if windowed else self.kind.upper()

    @property
    def resolved_init(self) -> str:
        return MODEL_KINDS[self.kind].default_init if self.init == "auto" else self.init


@dataclass(frozen=True)
class ModelIO:
    """What a model needs to know about its task's inputs and outputs."""

    seq_len: int
    n_features: int  # features per step, or vocabulary size for token inputs
    n_outputs: int
    tokens: bool = False
    per_step: bool = False

    @classmethod
    def from_dataset(cls, ds) -> ModelIO:
        return cls(ds.seq_len, ds.n_features, ds.n_outputs, ds.vocab is not None, ds.per_step)


class _Inputs(nn.Module):
    """Token embedding, or the identity for feature inputs: (B, T[, F]) -> (B, T, I)."""

    def __init__(self, cfg: ModelConfig, io: ModelIO):
        super().__init__()
        self.embed = nn.Embedding(io.n_features, cfg.embed_dim, padding_idx=0) if io.tokens else None
        self.size = cfg.embed_dim if io.tokens else io.n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x) if self.embed is not None else x


class FFNN(nn.Module):
    """A memoryless net: sees only the last `window` steps, flattened."""

    def __init__(self, cfg: ModelConfig, io: ModelIO):
        super().__init__()
        self.window, self.per_step = cfg.window, io.per_step
        self.inputs = _Inputs(cfg, io)
        layers, width = [], cfg.window * self.inputs.size
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = cfg.hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, io.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.inputs(x)  # (B, T, I)
        if not self.per_step:
            return self.head(self.body(e[:, -self.window:].flatten(1)))  # (B, n_out)
        # a window ending at every step, zero-padded on the left: (B, T, w*I)
        padded = nn.functional.pad(e, (0, 0, self.window - 1, 0))
        windows = padded.unfold(1, self.window, 1).transpose(2, 3).flatten(2)
        return self.head(self.body(windows))  # (B, T, n_out)


class Recurrent(nn.Module):
    """Vanilla tanh RNN, GRU or LSTM with a linear head on its hidden state."""

    def __init__(self, cfg: ModelConfig, io: ModelIO):
        super().__init__()
        self.kind, self.per_step = cfg.kind, io.per_step
        self.inputs = _Inputs(cfg, io)
        rnn_cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cfg.kind]
        self.rnn = rnn_cls(self.inputs.size, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                           dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, io.n_outputs)
        initialise(self.rnn, cfg.kind, cfg.resolved_init, t_max=io.seq_len)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.inputs(x))  # (B, T, H)
        if not self.per_step:
            out = out[:, -1]  # (B, H)
        return self.head(self.drop(out))


@dataclass(frozen=True)
class ModelKind:
    """What the rest of Lookback needs to know about one kind of model."""

    builder: type[nn.Module]
    title: str  # how the app names the kind
    gates: int  # weight blocks per recurrent layer (0 for the FFNN)
    default_init: str
    inits: tuple[str, ...]
    about: str
    recurrent: bool = True  # carries a hidden state through time
    windowed: bool = False  # sees only the last `window` steps (ModelConfig.window applies)
    gate_names: tuple[str, ...] = ()  # sigmoid gates that lib.probes.gate_activations reports
    fused_on_cpu: bool = False  # PyTorch runs the whole sequence in one fused oneDNN kernel on CPU


MODEL_KINDS: dict[str, ModelKind] = {
    "ffnn": ModelKind(FFNN, "FFNN (fixed window)", 0, "pytorch", ("pytorch",),
                      "feed-forward net over the last w steps; no memory beyond its window",
                      recurrent=False, windowed=True),
    "rnn": ModelKind(Recurrent, "Vanilla RNN", 1, "orthogonal", ("pytorch", "orthogonal"),
                     "vanilla tanh RNN; orthogonal recurrent weights by default"),
    "gru": ModelKind(Recurrent, "GRU", 3, "chrono", ("pytorch", "orthogonal", "chrono"),
                     "GRU (reset, update, new); chrono update-gate bias by default", gate_names=("reset", "update")),
    "lstm": ModelKind(Recurrent, "LSTM", 4, "chrono", ("pytorch", "orthogonal", "forget1", "chrono"),
                      "LSTM (input, forget, cell, output gates); chrono initialisation by default",
                      gate_names=("input", "forget", "output"), fused_on_cpu=True),
}


def initialise(rnn: nn.RNNBase, kind: str, scheme: str, t_max: int) -> None:
    """Apply an initialisation scheme in place.

    orthogonal: orthogonal recurrent weight blocks, zero biases. forget1: LSTM forget bias 1
    (Jozefowicz et al. 2015). chrono: orthogonal plus gate biases b ~ log(U(1, t_max - 1)) that keep
    memory for about t_max steps (Tallec & Ollivier 2018): the LSTM forget gate (input gate = -forget),
    the GRU update gate.
    """
    if scheme == "pytorch":
        return
    hidden = rnn.hidden_size
    for layer in range(rnn.num_layers):
        w_hh = getattr(rnn, f"weight_hh_l{layer}")
        b_ih, b_hh = getattr(rnn, f"bias_ih_l{layer}"), getattr(rnn, f"bias_hh_l{layer}")
        with torch.no_grad():
            for block in w_hh.split(hidden):  # one square block per gate
                nn.init.orthogonal_(block)
            b_ih.zero_()
            b_hh.zero_()
            if scheme == "forget1":
                b_ih[hidden:2 * hidden] = 1.0
            elif scheme == "chrono":
                bias = torch.log(torch.empty(hidden).uniform_(1.0, max(t_max - 1.0, 2.0)))
                if kind == "lstm":  # gates (i, f, g, o)
                    b_ih[hidden:2 * hidden] = bias
                    b_ih[:hidden] = -bias
                else:  # GRU gates (r, z, n); h' = (1 - z) * n + z * h
                    b_ih[hidden:2 * hidden] = bias


def validate(cfg: ModelConfig, io: ModelIO) -> None:
    """Raise ConfigError with what to change when cfg cannot run on io."""
    if cfg.kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model {cfg.kind!r}; choose one of: {', '.join(MODEL_KINDS)}.")
    check_knobs(cfg)
    kind = MODEL_KINDS[cfg.kind]
    if cfg.init != "auto" and cfg.init not in kind.inits:
        raise ConfigError(
            f"init {cfg.init!r} does not apply to {cfg.kind}; choose one of: auto, {', '.join(kind.inits)}."
        )
    if kind.windowed and not 1 <= cfg.window <= io.seq_len:
        name = cfg.kind.upper()
        raise ConfigError(
            f"{name} window {cfg.window} is longer than the sequence ({io.seq_len} steps); "
            f"choose a window between 1 and {io.seq_len}."
            if cfg.window > io.seq_len else f"{name} window must be at least 1, got {cfg.window}."
        )


def build_model(cfg: ModelConfig, io: ModelIO) -> nn.Module:
    validate(cfg, io)
    return MODEL_KINDS[cfg.kind].builder(cfg, io)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def match_params(cfg: ModelConfig, io: ModelIO, budget: int) -> ModelConfig:
    """The config with the hidden size whose parameter count comes closest to `budget`."""
    if budget < 1:
        raise ConfigError(f"parameter budget must be positive, got {budget}.")

    def size(h: int) -> int:
        with torch.device("meta"):
            return count_params(build_model(replace(cfg, hidden=h), io))

    lo, hi = 1, 4096
    while lo < hi:  # smallest hidden size whose count reaches the budget
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if size(mid) < budget else (lo, mid)
    best = min({max(lo - 1, 1), lo}, key=lambda h: abs(size(h) - budget))
    return replace(cfg, hidden=best)

