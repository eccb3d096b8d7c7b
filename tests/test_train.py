import math

import pytest
import torch

from lib.errors import ConfigError
from lib.models import ModelConfig
from lib.train import CANCELLED, COMPLETED, DIVERGED, TrainConfig, train

FAST = TrainConfig(epochs=4, patience=0, batch_size=32)


def _losses(result):
    return [(h["train_loss"], h["val_loss"], h["val_metric"]) for h in result.history]


def test_same_seed_gives_identical_history_and_different_seed_differs(tiny_text):
    a = train(tiny_text, ModelConfig(kind="lstm", hidden=16), FAST)
    b = train(tiny_text, ModelConfig(kind="lstm", hidden=16), FAST)
    c = train(tiny_text, ModelConfig(kind="lstm", hidden=16), TrainConfig(**{**FAST.__dict__, "seed": 1}))
    assert _losses(a) == _losses(b)
    assert _losses(a) != _losses(c)


def test_global_random_state_is_left_alone(tiny_text):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(tiny_text, ModelConfig(kind="rnn", hidden=8), FAST)
    assert torch.equal(torch.rand(3), expected)


def test_history_records_every_epoch_and_best_weights_are_restored(tiny_text):
    seen = []
    result = train(tiny_text, ModelConfig(kind="gru", hidden=16), FAST, on_epoch=seen.append)
    assert result.status == COMPLETED
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4] and seen == result.history
    assert set(seen[0]) == {"epoch", "train_loss", "val_loss", "val_metric", "epoch_seconds", "elapsed_seconds"}
    best = result.history[result.best_epoch - 1]
    assert best["val_metric"] == max(h["val_metric"] for h in result.history)
    from lib.train import evaluate
    assert evaluate(result.model, tiny_text.val, tiny_text)["accuracy"] == pytest.approx(best["val_metric"])


def test_cancel_returns_partial_history(tiny_text):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 25  # ten batches per epoch: cancels inside the third epoch

    result = train(tiny_text, ModelConfig(kind="lstm", hidden=8), FAST, should_stop=stop)
    assert result.status == CANCELLED
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
    assert result.status == DIVERGED
    assert result.message == ("training diverged in epoch 1: the loss became nan; lower the learning rate "
                              "(now 0.003) or turn on gradient clipping.")
    assert result.history == [] and result.test == {}


def test_overflowing_loss_is_reported_not_raised():
    ds = _regression(torch.randn(300, 4, 1), torch.full((300,), 1e30))
    result = train(ds, ModelConfig(kind="lstm", hidden=4), FAST)
    assert result.status == DIVERGED
    assert result.message.startswith("training diverged in epoch 1: the loss became inf;")


@pytest.mark.parametrize(("cfg", "message"), [
    (TrainConfig(lr=0), r"learning rate must be in \(0, 1\], got 0."),
    (TrainConfig(batch_size=0), "batch size must be between 1 and 8192, got 0."),
    (TrainConfig(optimizer="sgd"), "optimizer must be 'adam' or 'adamw', got 'sgd'."),
    (TrainConfig(epochs=0), "epochs must be between 1 and 1000, got 0."),
    (TrainConfig(device="tpu"), "unknown device 'tpu'; use 'auto', 'cpu' or 'cuda'."),
])
def test_invalid_train_configs_raise_one_clear_error(tiny_text, cfg, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        train(tiny_text, ModelConfig(kind="rnn", hidden=4), cfg)


def test_early_stopping_ends_a_run_that_stops_improving(tiny_text):
    result = train(tiny_text, ModelConfig(kind="ffnn", window=1, hidden=8), TrainConfig(epochs=100, patience=3))
    assert len(result.history) < 100
    assert result.message.startswith("stopped early after epoch")
    assert not math.isnan(result.test["accuracy"])
