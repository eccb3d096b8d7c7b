"""Looking inside trained models: gradient through time, gates, attention, next-word guesses, forecasts.

Probes run the model in eval mode (no dropout) and restore its mode afterwards. Hidden states and gates of
recurrent models come from unrolling nn.RNNCell / nn.GRUCell / nn.LSTMCell that share the fused module's
weight tensors, because the fused module's per-step outputs are not the states later steps depend on.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from lib.errors import ConfigError
from lib.models import ModelIO
from lib.tasks.base import CLASSIFICATION, SequenceDataset
from lib.train import predict, seeded_model

CELLS = {nn.RNN: nn.RNNCell, nn.GRU: nn.GRUCell, nn.LSTM: nn.LSTMCell}


@contextmanager
def _eval(model: nn.Module):
    """Eval mode without cuDNN (its RNN backward refuses eval mode); the previous mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.backends.cudnn.flags(enabled=False):
            yield
    finally:
        model.train(was_training)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# ---------------------------------------------------------------- Cell unroll

def cells(rnn: nn.RNNBase) -> list[nn.RNNCellBase]:
    """One Cell per layer of a fused nn.RNN / nn.GRU / nn.LSTM, holding references to its weight tensors
    (weight_ih_l{k} etc.), so gradients and values are those of the fused module."""
    if rnn.bidirectional or getattr(rnn, "proj_size", 0):
        raise ConfigError("the Cell unroll supports unidirectional recurrent layers without projection.")
    cell_cls = CELLS[type(rnn)]
    extra = {"nonlinearity": rnn.nonlinearity} if hasattr(rnn, "nonlinearity") else {}
    out = []
    for k in range(rnn.num_layers):
        in_size = rnn.input_size if k == 0 else rnn.hidden_size
        cell = cell_cls(in_size, rnn.hidden_size, bias=rnn.bias, device="meta", **extra)  # no RNG use
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if rnn.bias else ("weight_ih", "weight_hh")
        for name in names:
            setattr(cell, name, getattr(rnn, f"{name}_l{k}"))
        out.append(cell)
    return out


def unroll(model: nn.Module, e: torch.Tensor) -> list[list]:
    """Run a Recurrent model's layers step by step on embedded inputs e (B, T, I).

    Returns per layer the list of T states: h_t (B, H), or (h_t, c_t) for the LSTM. Dropout between layers
    is applied as in the fused module (a no-op in eval mode).
    """
    layers, inp = [], e
    for k, cell in enumerate(cells(model.rnn)):
        state, steps = None, []
        for t in range(inp.shape[1]):
            state = cell(inp[:, t], state)
            steps.append(state)
        layers.append(steps)
        inp = torch.stack([_h(s) for s in steps], 1)  # (B, T, H)
        if k < model.rnn.num_layers - 1:
            inp = F.dropout(inp, model.rnn.dropout, model.training)
    return layers


def _h(state) -> torch.Tensor:
    return state[0] if isinstance(state, tuple) else state


def _is_recurrent(model: nn.Module) -> bool:
    return isinstance(getattr(model, "rnn", None), nn.RNNBase)


# ---------------------------------------------------------------- gradient through time

def _final_loss(ds: SequenceDataset, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of each sample's loss at the prediction point (the last step)."""
    if ds.per_step:
        out, y = out[:, -1], y[:, -1]  # (B, n_out), (B,)
    if ds.kind == CLASSIFICATION:
        return F.cross_entropy(out, y, ignore_index=-100, reduction="sum")
    return F.mse_loss(out.squeeze(-1), y.to(out.dtype), reduction="sum")


def _input_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     ds: SequenceDataset) -> torch.Tensor:
    """∂L/∂e (B, T, I) through the model's own forward, e = model.inputs(x) made a leaf by a hook."""
    captured = {}

    def hook(_module, _args, out):
        captured["e"] = out.detach().requires_grad_()
        return captured["e"]

    handle = model.inputs.register_forward_hook(hook)
    try:
        out = model(x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(_final_loss(ds, out, y), captured["e"])
    return grad


def _hidden_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      ds: SequenceDataset) -> torch.Tensor:
    """∂L/∂h_t (B, T, H) for the last layer's hidden state, from the Cell unroll."""
    hs = [_h(s) for s in unroll(model, model.inputs(x))[-1]]  # T × (B, H)
    out = model.head(model.drop(hs[-1]))
    if ds.per_step:
        out = out[:, None]  # only the prediction point: (B, 1, n_out)
        y = y[:, -1:]
    return torch.stack(torch.autograd.grad(_final_loss(ds, out, y), hs), 1)


def gradient_through_time(model: nn.Module, x: torch.Tensor, y: torch.Tensor, ds: SequenceDataset,
                          wrt: str = "hidden") -> pd.DataFrame:
    """How strongly the loss at the prediction point depends on each earlier step.

    L is each sample's loss at the last step (per-step models: the final word only). wrt="hidden": the
    gradient norm ‖∂L/∂h_t‖ of the last recurrent layer's hidden state (for the LSTM h_t, with c_t held
    fixed), unrolled with Cells; the FFNN has no state through time, so it reports its inputs instead.
    wrt="input": ‖∂L/∂e_t‖ on the embedded (token) or feature inputs, for every kind through its own
    forward; zero outside an FFNN's window. Norms are averaged over the batch.
    Columns: steps_back (T-1-t, 0 = prediction point), grad_norm, wrt ("hidden" or "input").
    """
    if wrt not in ("hidden", "input"):
        raise ConfigError(f"wrt must be 'hidden' or 'input', got {wrt!r}.")
    device = _device(model)
    x, y = x.to(device), y.to(device)
    hidden = wrt == "hidden" and _is_recurrent(model)
    with _eval(model), torch.enable_grad():
        grad = _hidden_gradients(model, x, y, ds) if hidden else _input_gradients(model, x, y, ds)
    norms = grad.norm(dim=-1).mean(0).detach().cpu()  # (T,)
    t = len(norms)
    return pd.DataFrame({"steps_back": np.arange(t), "grad_norm": norms.flip(0).double().numpy(),
                         "wrt": "hidden" if hidden else "input"})


# ---------------------------------------------------------------- gates

def _lstm_gates(cell: nn.LSTMCell, u: torch.Tensor, h_prev: torch.Tensor) -> dict:
    pre = F.linear(u, cell.weight_ih, cell.bias_ih) + F.linear(h_prev, cell.weight_hh, cell.bias_hh)
    i, f, g, o = pre.chunk(4, -1)  # nn.LSTM gate order (input, forget, cell, output)
    return {"input": i.sigmoid(), "forget": f.sigmoid(), "candidate": g.tanh(), "output": o.sigmoid()}


def _gru_gates(cell: nn.GRUCell, u: torch.Tensor, h_prev: torch.Tensor) -> dict:
    gi, gh = F.linear(u, cell.weight_ih, cell.bias_ih), F.linear(h_prev, cell.weight_hh, cell.bias_hh)
    (ir, iz, in_), (hr, hz, hn) = gi.chunk(3, -1), gh.chunk(3, -1)  # nn.GRU order (reset, update, new)
    r = (ir + hr).sigmoid()
    return {"reset": r, "update": (iz + hz).sigmoid(), "candidate": (in_ + r * hn).tanh()}


GATES = {nn.LSTM: _lstm_gates, nn.GRU: _gru_gates}


def gate_activations(model: nn.Module, x_single: torch.Tensor, layer: int = -1) -> dict[str, np.ndarray]:
    """Gate activations of one input sequence, each an array (T, H), for one recurrent layer (default the
    last, the one the head reads).

    LSTM: input, forget, output (sigmoid, in [0, 1]), candidate (tanh), cell (c_t), hidden (h_t); gate
    order (i, f, g, o) as in nn.LSTM. GRU: reset, update (sigmoid), candidate (tanh n_t), hidden;
    h_t = (1 - update) * candidate + update * h_{t-1}; order (r, z, n) as in nn.GRU.
    x_single: (T,) token ids or (T, F) features, with or without a leading batch of 1.
    """
    rnn = getattr(model, "rnn", None)
    if type(rnn) not in GATES:
        what = type(rnn).__name__ if _is_recurrent(model) else type(model).__name__
        raise ConfigError(f"gate activations exist only for LSTM and GRU; this model is {what}, which has "
                          "no gates. Pick an LSTM or GRU run.")
    n_layers = rnn.num_layers
    if not -n_layers <= layer < n_layers:
        raise ConfigError(f"layer {layer} does not exist; this model has {n_layers} recurrent layer(s), "
                          f"0 to {n_layers - 1} (-1 = last).")
    x = _one_sequence(model, x_single, "gate activations")
    with _eval(model), torch.no_grad():
        e = model.inputs(x.to(_device(model)))  # (1, T, I)
        layers = unroll(model, e)
        k = layer % n_layers
        u = e if k == 0 else torch.stack([_h(s) for s in layers[k - 1]], 1)  # (1, T, I_k)
        states = layers[k]
        h = torch.stack([_h(s) for s in states], 1)  # (1, T, H)
        h_prev = F.pad(h, (0, 0, 1, 0))[:, :-1]  # h_{t-1}, zeros at t = 0
        gates = GATES[type(rnn)](cells(model.rnn)[k], u, h_prev)
        if isinstance(states[0], tuple):
            gates["cell"] = torch.stack([s[1] for s in states], 1)
        gates["hidden"] = h
    return {name: v[0].cpu().double().numpy() for name, v in gates.items()}


def _one_sequence(model: nn.Module, x_single: torch.Tensor, what: str) -> torch.Tensor:
    """x_single, (T,) token ids or (T, F) features with or without a leading batch of 1, as a batch of one."""
    tokens = model.inputs.embed is not None
    x = x_single if x_single.dim() == (2 if tokens else 3) else x_single.unsqueeze(0)
    if x.shape[0] != 1:
        raise ConfigError(f"{what} take one sequence, got a batch of {x.shape[0]}.")
    return x


def attention_weights(model: nn.Module, x_single: torch.Tensor) -> np.ndarray:
    """The attention weights of one input sequence, (layers, heads, T, T): row t is how the step t attends
    over the steps up to t (each row sums to 1), for a model with attention (the Transformer's
    `attention`). x_single as for gate_activations."""
    if not callable(getattr(model, "attention", None)):
        raise ConfigError(f"attention weights exist only for models with attention; this model is "
                          f"{type(model).__name__}. Pick a Transformer run.")
    x = _one_sequence(model, x_single, "attention weights")
    with _eval(model), torch.no_grad():
        return model.attention(x.to(_device(model)))[0].cpu().double().numpy()


def cue_step(ds: SequenceDataset) -> int | None:
    """The input step that holds the decisive input, counted from 0: cue_lag steps back from the prediction
    point, both counted; None where it varies between sequences."""
    return None if ds.cue_lag is None or ds.cue_lag > ds.seq_len else ds.seq_len - ds.cue_lag


# ---------------------------------------------------------------- next words

def tokenize(prompt: str) -> list[str]:
    """Lower-case words, split on whitespace and punctuation."""
    return re.findall(r"[\w']+", prompt.lower())


def encode_prompt(ds: SequenceDataset, prompt: str) -> torch.Tensor:
    """Token ids (1, seq_len) of a prompt, left-padded with 0 or cut to its last seq_len words, like the
    training data. Raises ConfigError for a non-text task, an empty prompt or unknown words."""
    if ds.vocab is None:
        raise ConfigError(f"next-word guesses need a text task; {ds.name!r} has no vocabulary.")
    words = tokenize(prompt)
    known = ds.vocab[1:]
    if not words:
        raise ConfigError(f"the prompt has no words; try for example: {' '.join(known[:5])}.")
    ids = {w: i for i, w in enumerate(ds.vocab) if i > 0}
    unknown = list(dict.fromkeys(w for w in words if w not in ids))
    if unknown:
        raise ConfigError(f"unknown word(s) in the prompt: {', '.join(unknown)}. The model knows only its "
                          f"{len(known)} training words, e.g. {', '.join(known[:8])}.")
    tokens = [ids[w] for w in words][-ds.seq_len:]
    return torch.tensor([[0] * (ds.seq_len - len(tokens)) + tokens])


def top_k_next_words(model: nn.Module, ds: SequenceDataset, prompt: str,
                     k: int = 5) -> list[tuple[str, float]]:
    """The k most probable words after the prompt, as (word, probability), most probable first.

    Classification text tasks: probabilities of the answer classes (ds.class_names). Per-step tasks: the
    next-token distribution at the last position, padding left out (so the k probabilities sum to ≤ 1).
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}.")
    x = encode_prompt(ds, prompt)
    out = predict(model, x)[0].cpu()  # (n_out,) or (T, V)
    probs = (out[-1] if ds.per_step else out).softmax(-1)
    names = ds.class_names if ds.class_names is not None else ds.vocab
    order = [i for i in probs.argsort(descending=True).tolist() if not (ds.per_step and i == 0)]
    return [(names[i], float(probs[i])) for i in order[:k]]


# ---------------------------------------------------------------- forecasts

def forecast(model: nn.Module, ds: SequenceDataset, start: int = 0, steps: int = 100) -> pd.DataFrame:
    """Forecasts on consecutive test windows against the truth.

    one_step: each prediction sees the true history. free_running (horizon 1 only, else NaN): from the
    window at `start`, each prediction is appended to the input and fed back, so errors compound.
    Columns: step, truth, one_step, free_running.
    """
    if ds.kind == CLASSIFICATION or ds.n_features != 1:
        raise ConfigError(f"forecasts need a one-feature series task; {ds.name!r} is not one.")
    n = len(ds.test)
    if not 0 <= start < n:
        raise ConfigError(f"start must be between 0 and {n - 1}, got {start}.")
    steps = min(steps, n - start)
    truth = ds.test.y[start:start + steps]
    one_step = predict(model, ds.test.x[start:start + steps]).squeeze(-1).cpu()
    free = np.full(steps, np.nan)
    # horizon 1: each next window ends with this window's target, so predictions can be fed back
    if steps > 1 and bool(ds.test.x[start + 1, -1, 0] == truth[0]):
        window = ds.test.x[start:start + 1].clone()  # (1, T, 1)
        for i in range(steps):
            free[i] = float(predict(model, window)[0, 0])
            window = torch.cat([window[:, 1:], torch.tensor([[[free[i]]]], dtype=window.dtype)], 1)
    return pd.DataFrame({"step": np.arange(steps), "truth": truth.numpy(), "one_step": one_step.numpy(),
                         "free_running": free})


def gradients_before_after(runs, ds: SequenceDataset, wrt: str = "hidden", n: int = 256) -> pd.DataFrame:
    """gradient_through_time on n test samples for each run's model at initialisation and after training.

    One run per label (the first given), the at-initialisation rows first. Columns: label, stage, steps_back,
    grad_norm, wrt, and relative: grad_norm over the same curve's value one step back (k = 1, see
    relative_to_one_step_back), so that curves compare by how fast they decay, not by their scale (a trained
    model's loss is near 0, and so are all its gradients).
    """
    x, y = ds.test.x[:n], ds.test.y[:n]
    frames, seen = [], set()
    for run in runs:
        if run.model is None or run.label in seen:
            continue
        seen.add(run.label)
        init = seeded_model(run.model_config, ModelIO.from_dataset(ds), run.train_config.seed)  # run's start
        init = init.to(_device(run.model)).eval()
        for stage, model in (("at initialisation", init), ("after training", run.model)):
            frames.append(gradient_through_time(model, x, y, ds, wrt).assign(label=run.label, stage=stage))
    if not frames:
        raise ConfigError("no trained model to probe; train a comparison first.")
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values("stage", key=lambda s: s != "at initialisation", kind="stable", ignore_index=True)
    return df.assign(relative=relative_to_one_step_back(df))


def relative_to_one_step_back(grads: pd.DataFrame) -> pd.Series:
    """Each (label, stage) curve's grad_norm over its value at steps_back 1: the state one step before the
    prediction point, the first that reaches the loss only through the model's memory (at k = 0 the last state
    also feeds the output directly, which says nothing about memory: an LSTM's is ~10× its k = 1 value). A curve
    without a value there (a one-step sequence, an FFNN with a one-step window) over its largest value; NaN
    when all are 0."""
    keys = [grads["label"], grads["stage"]]
    at1 = grads["grad_norm"].where(grads["steps_back"] == 1).groupby(keys, sort=False).transform("max")
    ref = at1.where(at1 > 0, grads["grad_norm"].groupby(keys, sort=False).transform("max"))
    return grads["grad_norm"] / ref.where(ref > 0)


def step_labels(ds: SequenceDataset, x_single: torch.Tensor) -> list[str]:
    """A readable name per input step: the word for text (· for padding), else the step number."""
    if ds.vocab is not None:
        return [ds.vocab[int(i)] if int(i) else "·" for i in x_single]
    return [f"t{i}" for i in range(x_single.shape[0])]


# ---------------------------------------------------------------- probe views

def forecast_mse(frame: pd.DataFrame) -> dict[str, float]:
    """Mean squared error of a `forecast` frame's one_step and free_running columns against its truth (NaN
    where the column is all NaN)."""
    return {col: float(((frame[col] - frame["truth"]) ** 2).mean()) for col in ("one_step", "free_running")}


def top_k_classes(model: nn.Module, ds: SequenceDataset, x: torch.Tensor, k: int = 3) -> list[tuple[str, float]]:
    """The k most probable classes of one input x ((T,) token ids or (T, F) features, with or without a
    leading batch of 1) as (class name, probability), most probable first; unnamed classes are numbered."""
    if ds.kind != CLASSIFICATION or ds.per_step:
        raise ConfigError(f"class probabilities need a task with one class per sequence; {ds.name!r} is not one.")
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}.")
    batch = x if x.dim() == (2 if ds.vocab is not None else 3) else x.unsqueeze(0)
    probs, idx = predict(model, batch)[0].cpu().softmax(-1).topk(min(k, ds.n_outputs))
    names = ds.class_names or [str(i) for i in range(ds.n_outputs)]
    return [(names[i], float(p)) for p, i in zip(probs.tolist(), idx.tolist(), strict=True)]
