import math
import re
from dataclasses import replace

import pytest
import torch

from lib.errors import ConfigError
from lib.models import MODEL_KINDS, ModelConfig, ModelIO
from lib.runtime import Status, code_fingerprint
from lib.train import TrainConfig, evaluate, make_optimizer, seeded_model, train, train_step

FAST = TrainConfig(epochs=4, patience=0, batch_size=32)


def _losses(result):
    return [(h["train_loss"], h["val_loss"], h["val_metric"]) for h in result.history]


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_same_seed_gives_identical_history_different_seed_differs_and_inputs_are_untouched(tiny_text, kind):
    before = tiny_text.train.x.clone(), tiny_text.train.y.clone()
    cfg = ModelConfig(kind=kind, hidden=8, window=3, dropout=0.2)
    short = replace(FAST, epochs=2)
    a, b = train(tiny_text, cfg, short), train(tiny_text, cfg, short)
    c = train(tiny_text, cfg, replace(short, seed=1))
    assert _losses(a) == _losses(b)
    assert _losses(a) != _losses(c)
    assert torch.equal(tiny_text.train.x, before[0]) and torch.equal(tiny_text.train.y, before[1])


def test_global_random_state_is_left_alone(tiny_text):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(tiny_text, ModelConfig(kind="rnn", hidden=8), FAST)
    assert torch.equal(torch.rand(3), expected)


def test_history_records_every_epoch_and_best_weights_are_restored(tiny_text):
    seen = []
    result = train(tiny_text, ModelConfig(kind="gru", hidden=16), FAST, on_epoch=seen.append)
    assert result.status == Status.COMPLETED
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4] and seen == result.history
    assert set(seen[0]) == {"epoch", "train_loss", "val_loss", "val_metric", "epoch_seconds",
                            "epoch_cpu_seconds", "elapsed_seconds", "load_1min"}
    assert all(h["epoch_seconds"] > 0 and h["epoch_cpu_seconds"] > 0 for h in result.history)
    # the load average while it trained: after every epoch, and at the start and on average in its environment
    assert all(h["load_1min"] >= 0 for h in result.history)
    assert result.env["load_1min_start"] >= 0
    assert result.env["load_1min_mean"] == pytest.approx(sum(h["load_1min"] for h in result.history) / 4)
    best = result.history[result.best_epoch - 1]
    assert best["val_metric"] == max(h["val_metric"] for h in result.history)
    assert evaluate(result.model, tiny_text.val, tiny_text)["accuracy"] == pytest.approx(best["val_metric"])


def test_cancel_returns_partial_history(tiny_text):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 25  # ten batches per epoch: cancels inside the third epoch

    result = train(tiny_text, ModelConfig(kind="lstm", hidden=8), FAST, should_stop=stop)
    assert result.status == Status.CANCELLED
    assert len(result.history) == 2
    assert result.message == "cancelled during epoch 3"
    assert "accuracy" in result.test


def _regression(x, y):
    from lib.tasks.base import REGRESSION, SequenceDataset, Split
    split = Split(x, y)
    return SequenceDataset("bad", "bad", REGRESSION, split, split, split, seq_len=x.shape[1],
                           n_features=x.shape[2], n_outputs=1)


def test_nan_inputs_diverge_with_a_message():
    ds = _regression(torch.full((300, 4, 1), float("nan")), torch.zeros(300))
    result = train(ds, ModelConfig(kind="rnn", hidden=4), FAST)
    assert result.status == Status.DIVERGED
    assert result.message == ("training diverged in epoch 1: the loss became nan; lower the learning rate "
                              "(now 0.003) or turn on gradient clipping.")
    assert result.history == [] and result.test == {}


def test_overflowing_loss_is_reported_not_raised():
    ds = _regression(torch.randn(300, 4, 1), torch.full((300,), 1e30))
    result = train(ds, ModelConfig(kind="lstm", hidden=4), FAST)
    assert result.status == Status.DIVERGED
    assert result.message.startswith("training diverged in epoch 1: the loss became inf;")


@pytest.mark.parametrize(("cfg", "message"), [
    (TrainConfig(lr=0), r"learning rate \(lr\) must be in \(0, 1\], got 0\."),
    (TrainConfig(batch_size=0), "batch_size must be between 1 and 8192, got 0."),
    (TrainConfig(optimizer="sgd"), "optimizer must be 'adam' or 'adamw', got 'sgd'."),
    (TrainConfig(epochs=0), r"max epochs \(epochs\) must be between 1 and 1000, got 0\."),
    (TrainConfig(device="tpu"), "unknown device 'tpu'; use 'auto', 'cpu' or 'cuda'."),
])
def test_invalid_train_configs_raise_one_clear_error(tiny_text, cfg, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        train(tiny_text, ModelConfig(kind="rnn", hidden=4), cfg)


def test_early_stopping_ends_a_run_that_stops_improving(tiny_text):
    result = train(tiny_text, ModelConfig(kind="gru", hidden=8), TrainConfig(epochs=100, patience=3))
    assert len(result.history) < 100
    assert result.message.startswith("stopped early after epoch")
    assert f"best at epoch {result.best_epoch}" in result.message  # the message and best_epoch agree
    assert not math.isnan(result.test["accuracy"])


def test_a_run_that_stays_at_chance_ends_as_did_not_learn(tiny_text):
    """A window of one step cannot see the cue: after `patience` epochs within noise of chance it stops."""
    result = train(tiny_text, ModelConfig(kind="ffnn", window=1, hidden=8), TrainConfig(epochs=100, patience=3))
    assert len(result.history) == 3
    assert result.message.startswith("did not learn: after 3 epochs the best validation accuracy")


def test_a_run_at_the_ceiling_stops_at_once(tiny_text):
    """Validation accuracy 100% cannot improve: the run ends in that epoch, not `patience` epochs later."""
    cue = tiny_text.cue_lag
    result = train(tiny_text, ModelConfig(kind="ffnn", window=cue, hidden=32), TrainConfig(epochs=100, patience=20))
    best = max(h["val_metric"] for h in result.history)
    assert best == 1.0 and result.history[-1]["val_metric"] == 1.0
    assert len(result.history) < 20
    assert "reached its ceiling (100.0%)" in result.message


def test_patience_zero_trains_every_epoch_even_at_the_ceiling(tiny_text):
    cue = tiny_text.cue_lag
    result = train(tiny_text, ModelConfig(kind="ffnn", window=cue, hidden=32), TrainConfig(epochs=6, patience=0))
    assert len(result.history) == 6


def test_train_step_is_the_engine_step(tiny_text):
    """One epoch of train_step over the engine's batch order gives the engine's weights and train loss."""
    cfg, tc = ModelConfig(kind="gru", hidden=8), replace(FAST, epochs=1)
    engine = train(tiny_text, cfg, tc)
    model = seeded_model(cfg, ModelIO.from_dataset(tiny_text), tc.seed)
    opt = make_optimizer(model, tc)
    x, y = tiny_text.train.x, tiny_text.train.y
    total = 0.0
    for idx in torch.randperm(len(x), generator=torch.Generator().manual_seed(tc.seed)).split(tc.batch_size):
        loss = train_step(model, opt, tiny_text, x[idx], y[idx], tc)
        assert not loss.requires_grad
        total += loss.item() * len(idx)
    assert engine.history[0]["train_loss"] == total / len(x)
    trained = engine.model.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in model.state_dict().items())


def test_seeded_model_is_reproducible_and_leaves_the_global_random_state_alone(tiny_text):
    io = ModelIO.from_dataset(tiny_text)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    a, b = (seeded_model(ModelConfig(kind="lstm", hidden=4), io, 3) for _ in range(2))
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = seeded_model(ModelConfig(kind="lstm", hidden=4), io, 4)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_make_optimizer_follows_the_config(tiny_text):
    model = seeded_model(ModelConfig(kind="rnn", hidden=4), ModelIO.from_dataset(tiny_text), 0)
    opt = make_optimizer(model, TrainConfig(optimizer="adamw", lr=0.01, weight_decay=0.1))
    assert type(opt) is torch.optim.AdamW
    assert (opt.defaults["lr"], opt.defaults["weight_decay"]) == (0.01, 0.1)
    assert type(make_optimizer(model, TrainConfig())) is torch.optim.Adam


def test_environment_records_code_fingerprint_and_load(tiny_text):
    env = train(tiny_text, ModelConfig(kind="rnn", hidden=4), replace(FAST, epochs=1)).env
    assert env["code"] == code_fingerprint() and re.fullmatch(r"[0-9a-f]{16}", env["code"])
    assert env["load_1min"] is None or env["load_1min"] >= 0


def test_copy_memory_accuracy_counts_every_copied_symbol():
    """A model that gets only the last of the 10 copied symbols right scores 10 %, not 100 %."""
    from lib.tasks.copy_memory import CopyMemoryConfig, make_copy_memory

    ds = make_copy_memory(CopyMemoryConfig(delay=5))

    class LastOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            out = torch.zeros(*x.shape, ds.n_outputs)
            out[:, -1] = torch.nn.functional.one_hot(x[:, 9], ds.n_outputs).float()  # the 10th symbol
            return out

    assert ds.scored_steps == 10
    assert evaluate(LastOnly(), ds.test, ds)["accuracy"] == pytest.approx(0.1)
