"""The essay's cost point in words: what each step of a fixed window adds to a model's parameters, and how the
widest window compares with the recurrent models, whose parameters do not grow with how far back they look.
Counted from the models themselves (built on the meta device: no memory, no weights)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from lib.configs import knobs
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, build_model, count_params
from lib.settings import fmt
from lib.tasks.base import TaskConfig


def n_params(cfg: ModelConfig, io: ModelIO) -> int:
    with torch.device("meta"):
        return count_params(build_model(cfg, io))


def step_noun(task: TaskConfig) -> str:
    """What one step of the task is ("word", "frame"): the unit of its distance knob, in the singular."""
    unit = knobs(task).get(task.distance_field).unit if task.distance_field else None
    word = (unit or "steps").split()[-1]
    return word[:-1] if word.endswith("s") else word


def _ratio(a: int, b: int) -> str:
    r = a / b
    return f"{r:.1f}×" if r < 10 else f"{r:.0f}×"


def window_cost(models: Sequence[ModelConfig], io: ModelIO, task: TaskConfig) -> str | None:
    """A sentence such as "Each frame in FFNN w21's window adds 144 inputs (one frame's features), so 9,216
    parameters: FFNN w21 has 194,250 parameters, 14× the RNN's 14,090, 3.6× the LSTM's 54,410. ..."; None without
    both a windowed and a recurrent model. Labels are the models' own (ModelConfig.label)."""
    windowed = [m for m in models if MODEL_KINDS[m.kind].windowed]
    recurrent = [m for m in models if MODEL_KINDS[m.kind].memory == "recurrence"]
    if not windowed or not recurrent:
        return None
    wide = max(windowed, key=lambda m: (m.window, m.kind == "ffnn"))  # the essay's FFNN where windows tie
    io_wider = replace(io, seq_len=max(io.seq_len, wide.window + 1))
    per_step = n_params(replace(wide, window=wide.window + 1), io_wider) - n_params(wide, io_wider)
    inputs = wide.embed_dim if io.tokens else io.n_features
    noun = step_noun(task)
    what = f"{fmt(inputs)} inputs (one {noun}'s {'embedding' if io.tokens else 'features'})"
    total = n_params(wide, io)
    others = [(m.label, n_params(m, io)) for m in recurrent]
    against = ", ".join(f"{_ratio(total, n)} the {label}'s {fmt(n)}" for label, n in others)
    return (f"Each {noun} in {wide.label}'s window adds {what}, so {fmt(per_step)} parameters: "
            f"{wide.label} has {fmt(total)} parameters, {against}. The recurrent models read one {noun} at a time "
            f"with the same weights, so their parameters stay the same however far back the cue lies, while the "
            f"window, and with it {wide.label}'s parameters, must grow linearly with the distance.")
