"""Every model kind behind one registry and one forward signature: FFNN and linear maps over a fixed window,
vanilla RNN, GRU and LSTM, a causal TCN, a small causal Transformer and minGRU.

Every model maps x (B, T) token ids or (B, T, F) features to (B, n_out), or to (B, T, n_out) when the
task has a target at every step.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from lib.configs import Checked, check_knobs, knob
from lib.errors import ConfigError

INITS = ("auto", "pytorch", "orthogonal", "forget1", "chrono")
VARIANTS = ("linear", "nlinear", "dlinear")
VARIANT_NAMES = {"linear": "Linear", "nlinear": "NLinear", "dlinear": "DLinear"}  # as Zeng et al. 2023 write them
MOVING_AVERAGE = 25  # DLinear's trend kernel (Zeng et al. 2023), clipped to the window


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
    variant: str = knob("linear", "Linear variant", choices=VARIANTS,
                        titles=("plain", "NLinear: last value subtracted", "DLinear: trend + remainder"),
                        help="NLinear subtracts the window's last value and adds it back; DLinear fits the moving-"
                             "average trend and the remainder with one map each (Zeng et al. 2023).")
    kernel: int = knob(3, "TCN kernel size", low=2, high=8, unit="steps")  # taps per causal convolution
    levels: int = knob(4, "TCN levels", low=1, high=12, cap="levels",  # two convolutions each, dilation 2^i
                       help="Each level doubles the dilation: the receptive field is 1 + 2(k - 1)(2^n - 1) steps.")
    heads: int = knob(2, "Attention heads", low=1, high=16, form=(1, 8))  # Transformer: must divide hidden

    @property
    def label(self) -> str:
        return MODEL_KINDS[self.kind].label(self) if self.kind in MODEL_KINDS else self.kind.upper()

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


def _windows(e: torch.Tensor, window: int, per_step: bool) -> torch.Tensor:
    """The last `window` steps of e (B, T, I): (B, w, I); with per_step a window ending at every step,
    zero-padded on the left: (B, T, w, I)."""
    if not per_step:
        return e[:, -window:]
    return F.pad(e, (0, 0, window - 1, 0)).unfold(1, window, 1).transpose(2, 3)


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
        w = _windows(self.inputs(x), self.window, self.per_step)  # (B, [T,] w, I)
        return self.head(self.body(w.flatten(-2)))  # (B, [T,] n_out)


class WindowLinear(nn.Module):
    """One linear map from the last `window` steps, flattened, to the outputs (LTSF-Linear, Zeng et al. 2023).

    nlinear: the window's last step is subtracted from every step and added back to the output (one output per
    input feature). dlinear: a moving average (MOVING_AVERAGE steps, clipped to the window, edges repeated) is
    the trend, mapped by `trend`; the remainder by `head`.
    """

    def __init__(self, cfg: ModelConfig, io: ModelIO):
        super().__init__()
        self.window, self.per_step, self.variant = cfg.window, io.per_step, cfg.variant
        self.inputs = _Inputs(cfg, io)
        width = cfg.window * self.inputs.size
        self.head = nn.Linear(width, io.n_outputs)
        self.trend = nn.Linear(width, io.n_outputs) if cfg.variant == "dlinear" else None
        k = min(MOVING_AVERAGE, cfg.window)
        self.kernel = k - (k % 2 == 0)  # odd, so the average keeps the window's length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = _windows(self.inputs(x), self.window, self.per_step)  # (B, [T,] w, I)
        if self.variant == "nlinear":
            last = w[..., -1, :]  # (B, [T,] I), one per output
            return self.head((w - last.unsqueeze(-2)).flatten(-2)) + last
        if self.variant == "dlinear":
            half = (self.kernel - 1) // 2
            edges = torch.arange(-half, self.window + half, device=w.device).clamp(0, self.window - 1)
            trend = w.index_select(-2, edges).unfold(-2, self.kernel, 1).mean(-1)  # (B, [T,] w, I)
            return self.trend(trend.flatten(-2)) + self.head((w - trend).flatten(-2))
        return self.head(w.flatten(-2))


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


class _Level(nn.Module):
    """One TCN level: two causal dilated convolutions (weight-normalised, ReLU, dropout) plus the residual, a 1×1
    convolution where the widths differ (Bai et al. 2018): (B, C_in, T) -> (B, C, T)."""

    def __init__(self, n_in: int, n_out: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.pad = (kernel - 1) * dilation  # on the left only: step t sees no later step
        self.conv1 = weight_norm(nn.Conv1d(n_in, n_out, kernel, dilation=dilation))
        self.conv2 = weight_norm(nn.Conv1d(n_out, n_out, kernel, dilation=dilation))
        self.residual = nn.Conv1d(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.relu(self.conv1(F.pad(x, (self.pad, 0)))))
        h = self.drop(F.relu(self.conv2(F.pad(h, (self.pad, 0)))))
        return F.relu(h + self.residual(x))


class TCN(nn.Module):
    """Temporal convolutional network: `levels` levels of `hidden` channels, dilation 2^i at level i; it sees
    `receptive_field(cfg)` steps back. The head reads the last step, or every step for per-step targets."""

    def __init__(self, cfg: ModelConfig, io: ModelIO):
        super().__init__()
        self.per_step, self._built_from = io.per_step, (cfg, io)
        self.inputs = _Inputs(cfg, io)
        sizes = [self.inputs.size] + [cfg.hidden] * cfg.levels
        self.levels = nn.ModuleList(_Level(a, b, cfg.kernel, 2 ** i, cfg.dropout)
                                    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)))
        self.head = nn.Linear(cfg.hidden, io.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inputs(x).transpose(1, 2)  # (B, I, T)
        for level in self.levels:
            h = level(h)
        h = h.transpose(1, 2)  # (B, T, C)
        return self.head(h if self.per_step else h[:, -1])

    def __reduce__(self):
        """weight_norm's parametrized convolutions refuse to be pickled (a finished run goes back from a worker
        process pickled): rebuild from the config and the weights instead."""
        return _rebuilt_tcn, (*self._built_from, self.state_dict(), self.training)


def _rebuilt_tcn(cfg: ModelConfig, io: ModelIO, state: dict, training: bool) -> TCN:
    model = TCN(cfg, io)
    model.load_state_dict(state)
    return model.train(training)


class _SelfAttention(nn.Module):
    """Causal multi-head self-attention: (B, T, d) -> (B, T, d)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def _qkv(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 × (B, nh, T, dh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, dh)
        return self.out(y.transpose(1, 2).flatten(2))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """softmax(QKᵀ/√d_head) under the causal mask, what `forward` averages the values with: (B, nh, T, T),
        row t over the steps up to t."""
        q, k, _ = self._qkv(x)
        later = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device).triu(1)
        return (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(later, -math.inf).softmax(-1)


class _Block(nn.Module):
    """Pre-norm Transformer block: x + attention(LN(x)), then x + MLP(LN(x)) with a 4× wide GELU MLP."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width), _SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


class Transformer(nn.Module):
    """Small causal Transformer encoder: inputs projected to `hidden`, learned positions, `layers` blocks, a
    final LayerNorm; the head reads the last step, or every step for per-step targets."""

    def __init__(self, cfg: ModelConfig, io: ModelIO):
        super().__init__()
        self.per_step = io.per_step
        self.inputs = _Inputs(cfg, io)
        self.project = nn.Linear(self.inputs.size, cfg.hidden)
        self.positions = nn.Embedding(io.seq_len, cfg.hidden)  # one learned vector per step
        self.blocks = nn.ModuleList(_Block(cfg.hidden, cfg.heads, cfg.dropout) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, io.n_outputs)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        e = self.inputs(x)  # (B, T, I)
        return self.project(e) + self.positions.weight[:e.shape[1]]  # (B, T, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._embed(x)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        return self.head(h if self.per_step else h[:, -1])

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The attention weights of every block on x: (B, layers, heads, T, T), row t over steps up to t."""
        h, maps = self._embed(x), []
        for block in self.blocks:
            maps.append(block.attn.weights(block.norm1(h)))
            h = block(h)
        return torch.stack(maps, 1)


def _log_g(x: torch.Tensor) -> torch.Tensor:
    """log g(x), g(x) = x + 0.5 for x >= 0 and sigmoid(x) below: positive, so log-space works."""
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


class _MinGRULayer(nn.Module):
    """minGRU (Feng et al. 2024): h_t = (1 - z_t) h_{t-1} + z_t h̃_t, z_t = σ(W_z x_t), h̃_t = g(W_h x_t), h_0 = 0.
    The gates read the input only, so all T steps are one parallel scan."""

    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Linear(n_in, 2 * hidden)  # (update z, candidate h̃) pre-activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """All steps at once, in log space (Heinsen 2023): log h_t = a*_t + logcumsumexp(log b - a*)_t with
        a*_t = Σ_{s<=t} log(1 - z_s) and b_s = z_s h̃_s. (B, T, I) -> (B, T, H)."""
        k, c = self.gates(x).chunk(2, -1)
        log_a = -F.softplus(k)  # log(1 - z)
        a_star = log_a.cumsum(1)
        log_b = -F.softplus(-k) + _log_g(c)  # log z + log h̃
        return (a_star + torch.logcumsumexp(log_b - a_star, 1)).exp()

    def step(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step of the recurrence: x_t (B, I), h_{t-1} (B, H) -> h_t (B, H)."""
        k, c = self.gates(x_t).chunk(2, -1)
        z = k.sigmoid()
        return (1 - z) * h + z * torch.where(c >= 0, c + 0.5, c.sigmoid())


class MinGRU(nn.Module):
    """`layers` stacked minGRU layers (dropout between them) and a linear head; `forward` trains with the
    parallel scan, `step` runs the same recurrence one step at a time with O(H) state per layer."""

    def __init__(self, cfg: ModelConfig, io: ModelIO):
        super().__init__()
        self.per_step = io.per_step
        self.inputs = _Inputs(cfg, io)
        sizes = [self.inputs.size] + [cfg.hidden] * cfg.layers
        self.cells = nn.ModuleList(_MinGRULayer(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, io.n_outputs)
        if cfg.resolved_init == "chrono":  # z = σ(-log u), u ~ U(1, T - 1): memory for about u steps at first
            for cell in self.cells:
                with torch.no_grad():
                    cell.gates.bias[:cfg.hidden] = -_chrono(cfg.hidden, io.seq_len)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inputs(x)  # (B, T, I)
        for k, cell in enumerate(self.cells):
            h = cell(self.drop(h) if k else h)  # (B, T, H)
        return self.head(self.drop(h if self.per_step else h[:, -1]))

    def step(self, x_t: torch.Tensor, state: list[torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One input step, x_t (B,) token ids or (B, F) features, and the per-layer states (B, H) (None:
        zeros) -> (the head's output at this step (B, n_out), the new states)."""
        u = self.inputs(x_t[:, None])[:, 0]  # (B, I)
        state = state or [u.new_zeros(len(u), cell.hidden) for cell in self.cells]
        new = []
        for k, (cell, h) in enumerate(zip(self.cells, state, strict=True)):
            u = cell.step(self.drop(u) if k else u, h)
            new.append(u)
        return self.head(self.drop(u)), new

    def recurrence(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` computed step by step with `step`: the same outputs, sequentially."""
        state, outs = None, []
        for t in range(x.shape[1]):
            out, state = self.step(x[:, t], state)
            outs.append(out)
        return torch.stack(outs, 1) if self.per_step else outs[-1]


COMMON = ("hidden", "layers", "dropout", "embed_dim")  # the ModelConfig fields most kinds read
IN_LABEL = ("window", "variant", "kernel", "levels")  # the ModelConfig fields that labels show, where read


def _name(cfg: ModelConfig) -> str:
    return MODEL_KINDS[cfg.kind].name


@dataclass(frozen=True)
class ModelKind:
    """What the rest of Lookback needs to know about one kind of model."""

    builder: type[nn.Module]
    name: str  # how labels and sentences name the kind, as its papers write it
    title: str  # how the app's pickers name the kind
    gates: int  # weight blocks per recurrent layer (0 for the FFNN)
    default_init: str
    inits: tuple[str, ...]  # lib.models.INITS schemes it offers; "pytorch": PyTorch's default for every layer
    about: str
    recurrent: bool = True  # carries a hidden state through time
    windowed: bool = False  # sees only the last `window` steps (ModelConfig.window applies)
    gate_names: tuple[str, ...] = ()  # sigmoid gates that lib.probes.gate_activations reports
    fused_on_cpu: bool = False  # PyTorch runs the whole sequence in one fused oneDNN kernel on CPU
    memory: str = "recurrence"  # how it reaches back: "window", "receptive field", "attention" or "recurrence"
    reads: tuple[str, ...] = (*COMMON, "init")  # the ModelConfig fields that change this kind's model
    label: Callable[[ModelConfig], str] = _name  # ModelConfig.label: unique among the kind's usual variants
    # layer applications one training forward over T steps must run one after another (no core count shortens
    # them): a recurrence one per step and layer
    depth: Callable[[ModelConfig, int], int] = lambda c, t: t * c.layers


MODEL_KINDS: dict[str, ModelKind] = {
    "ffnn": ModelKind(FFNN, "FFNN", "FFNN (fixed window)", 0, "pytorch", ("pytorch",),
                      "feed-forward net over the last w steps; no memory beyond its window",
                      recurrent=False, windowed=True, memory="window", reads=(*COMMON, "window"),
                      label=lambda c: f"FFNN w{c.window}", depth=lambda c, t: c.layers),
    "rnn": ModelKind(Recurrent, "RNN", "Vanilla RNN", 1, "orthogonal", ("pytorch", "orthogonal"),
                     "vanilla tanh RNN; orthogonal recurrent weights by default"),
    "gru": ModelKind(Recurrent, "GRU", "GRU", 3, "chrono", ("pytorch", "orthogonal", "chrono"),
                     "GRU (reset, update, new); chrono update-gate bias by default", gate_names=("reset", "update")),
    "lstm": ModelKind(Recurrent, "LSTM", "LSTM", 4, "chrono", ("pytorch", "orthogonal", "forget1", "chrono"),
                      "LSTM (input, forget, cell, output gates); chrono initialisation by default",
                      gate_names=("input", "forget", "output"), fused_on_cpu=True),
    "linear": ModelKind(WindowLinear, "Linear", "Linear (fixed window)", 0, "pytorch", ("pytorch",),
                        "one linear map from the last w steps (LTSF-Linear; NLinear and DLinear as variants); "
                        "the cheapest model that sees a window",
                        recurrent=False, windowed=True, memory="window", reads=("embed_dim", "window", "variant"),
                        label=lambda c: f"{VARIANT_NAMES[c.variant]} w{c.window}", depth=lambda c, t: 1),
    "tcn": ModelKind(TCN, "TCN", "TCN (causal convolution)", 0, "pytorch", ("pytorch",),
                     "causal dilated convolutions, two per level, weight-normalised, with residuals (Bai et al. "
                     "2018); sees its receptive field 1 + 2(k-1)(2^n - 1) steps",
                     recurrent=False, memory="receptive field",
                     reads=("hidden", "levels", "kernel", "dropout", "embed_dim"),
                     label=lambda c: f"TCN k{c.kernel} n{c.levels}", depth=lambda c, t: 2 * c.levels),
    "transformer": ModelKind(Transformer, "Transformer", "Transformer (causal attention)", 0, "pytorch", ("pytorch",),
                             "small causal Transformer encoder with learned positions; attends to every earlier "
                             "step, at a cost that grows with the square of the length",
                             recurrent=False, memory="attention", reads=(*COMMON, "heads"),
                             depth=lambda c, t: c.layers),
    "mingru": ModelKind(MinGRU, "minGRU", "minGRU (parallel scan)", 2, "chrono", ("pytorch", "chrono"),
                        "minGRU (Feng et al. 2024): gates read only the input, so training is a parallel scan; "
                        "one step at a time at inference; chrono update-gate bias by default",
                        depth=lambda c, t: c.layers),  # one parallel scan per layer in training
}
ESSAY_KINDS = ("ffnn", "rnn", "gru", "lstm")  # the essay's mechanisms: the default wherever every kind is offered


def receptive_field(cfg: ModelConfig) -> int:
    """Input steps a TCN output depends on, its own step included: 1 + 2(k - 1)(2^n - 1) for n levels of two
    convolutions of kernel k with dilations 2^i."""
    return 1 + 2 * (cfg.kernel - 1) * (2 ** cfg.levels - 1)


def covering_levels(steps: int, kernel: int = 3, max_levels: int = 12) -> int:
    """The fewest TCN levels (at most max_levels) whose receptive field with this kernel covers `steps` input steps."""
    return next((n for n in range(1, max_levels + 1)
                 if receptive_field(ModelConfig(kind="tcn", kernel=kernel, levels=n)) >= steps), max_levels)


def sequential_depth(cfg: ModelConfig, seq_len: int) -> int:
    """Layer applications one training forward over seq_len steps must run one after another, the output head
    not counted: an RNN, GRU or LSTM one per step and layer; minGRU one parallel scan per layer; a TCN two
    convolutions per level; a Transformer one attention block per layer; an FFNN its hidden layers; a linear map
    its one map."""
    return MODEL_KINDS[cfg.kind].depth(cfg, seq_len)


def sees(cfg: ModelConfig, seq_len: int | None = None) -> int | None:
    """How many input steps, the current one included, an output can depend on: the window, the TCN's
    receptive field, or for attention and recurrence the whole sequence (seq_len; None when not given)."""
    memory = MODEL_KINDS[cfg.kind].memory
    if memory == "window":
        return cfg.window
    if memory == "receptive field":
        return receptive_field(cfg)
    return seq_len


def _chrono(hidden: int, t_max: int) -> torch.Tensor:
    """Chrono gate biases log(u), u ~ U(1, t_max - 1) (Tallec & Ollivier 2018): (hidden,)."""
    return torch.log(torch.empty(hidden).uniform_(1.0, max(t_max - 1.0, 2.0)))


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
                bias = _chrono(hidden, t_max)
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
        name = kind.name
        raise ConfigError(
            f"{name} window {cfg.window} is longer than the sequence ({io.seq_len} steps); "
            f"choose a window between 1 and {io.seq_len}."
            if cfg.window > io.seq_len else f"{name} window must be at least 1, got {cfg.window}."
        )
    if "heads" in kind.reads and cfg.hidden % cfg.heads:
        raise ConfigError(f"hidden units ({cfg.hidden}) must be a multiple of the attention heads ({cfg.heads}); "
                          f"choose for example {max(cfg.hidden // cfg.heads, 1) * cfg.heads} hidden units.")
    if cfg.variant == "nlinear" and "variant" in kind.reads and (io.tokens or io.n_features != io.n_outputs):
        raise ConfigError("NLinear adds each feature's last value back to its own output, so it needs as many "
                          f"features per step as outputs (a series forecast); this task has {io.n_features} "
                          f"{'tokens' if io.tokens else 'features'} and {io.n_outputs} output(s). Choose the "
                          "plain or DLinear variant.")


def build_model(cfg: ModelConfig, io: ModelIO) -> nn.Module:
    validate(cfg, io)
    return MODEL_KINDS[cfg.kind].builder(cfg, io)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def match_params(cfg: ModelConfig, io: ModelIO, budget: int) -> ModelConfig:
    """The config with the hidden size whose parameter count comes closest to `budget` (a multiple of the
    attention heads for the Transformer); a kind without hidden units (the linear map) is returned as it is."""
    if budget < 1:
        raise ConfigError(f"parameter budget must be positive, got {budget}.")
    reads = MODEL_KINDS[cfg.kind].reads if cfg.kind in MODEL_KINDS else COMMON
    if "hidden" not in reads:
        return cfg
    unit = cfg.heads if "heads" in reads else 1

    def size(m: int) -> int:
        with torch.device("meta"):
            return count_params(build_model(replace(cfg, hidden=m * unit), io))

    lo, hi = 1, 4096 // unit
    while lo < hi:  # smallest hidden size whose count reaches the budget
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if size(mid) < budget else (lo, mid)
    best = min({max(lo - 1, 1), lo}, key=lambda m: abs(size(m) - budget))
    return replace(cfg, hidden=best * unit)

