"""Who remembers on text recall, with every model's best-practice defaults: a window short of the cue stays
at chance, a window that reaches it and the LSTM recall it, and the RNN forgets over long distances."""
import pytest

from lib.experiments import aggregate, compare, window_sweep
from lib.models import ModelConfig
from lib.runs import dataset
from lib.tasks.text import TextRecallConfig, cue_lag

pytestmark = pytest.mark.slow
SEEDS = (0, 1, 2)


def _means(task, models):
    table = aggregate(compare(task, models, seeds=SEEDS).summary())
    return dict(zip(table["label"], table["metric_mean"], strict=True)), table


def test_at_distance_20_only_models_that_reach_the_cue_recall_it():
    """The default comparison. Its RNN seed 0 sits at a third correct until epoch 15 and then solves the task:
    the stopping rules must not end it on that plateau."""
    task = TextRecallConfig(distance=20)
    reach = cue_lag(20)
    means, table = _means(task, [ModelConfig(kind="ffnn", window=5), ModelConfig(kind="ffnn", window=reach),
                                 ModelConfig(kind="rnn"), ModelConfig(kind="lstm")])
    print(table.to_string())
    assert means["FFNN w5"] <= dataset(task).chance + 0.10
    assert means[f"FFNN w{reach}"] >= 0.95
    assert means["RNN"] >= 0.95 and means["LSTM"] >= 0.95


def test_at_distance_60_the_rnn_forgets_and_the_lstm_remembers():
    # measured: at distance 40 the orthogonal-init RNN still solves 2 of 3 seeds (mean 0.79); at 60 none
    means, table = _means(TextRecallConfig(distance=60), [ModelConfig(kind="rnn"), ModelConfig(kind="lstm")])
    print(table.to_string())
    assert means["RNN"] <= 0.5
    assert means["LSTM"] >= 0.95


def test_ffnn_accuracy_jumps_where_its_window_first_reaches_the_cue():
    task = TextRecallConfig(distance=10, n_train=2000)
    reach = cue_lag(10)
    windows = [1, 5, reach - 4, reach - 3, reach - 2, reach - 1, reach]  # the sentence is `reach` words long
    sweep = window_sweep(task, windows, references=())
    acc = dict(zip(sweep["window"], sweep["metric"], strict=True))
    print(acc)
    first_solved = min(w for w in windows if acc[w] >= 0.95)
    assert abs(first_solved - reach) <= 1
    assert all(acc[w] <= dataset(task).chance + 0.15 for w in windows if w < reach - 1)
    assert acc[reach] >= 0.95


def test_the_stopping_rules_end_runs_early_without_costing_accuracy():
    """Measured with the rules before the ceiling and did-not-learn stops, at distance 40: this RNN seed sat
    at chance for 5 epochs and then solved the task (test 100 %); the LSTM trained 12 epochs after reaching
    100 % validation accuracy in epoch 2; the FFNN w5 trained 12 epochs at chance."""
    comp = compare(TextRecallConfig(distance=40), [ModelConfig(kind="rnn"), ModelConfig(kind="lstm"),
                                                   ModelConfig(kind="ffnn", window=5)], seeds=(1,))
    rnn, lstm, ffnn = comp.runs
    assert rnn.test["accuracy"] >= 0.99  # the late learner was not stopped before it learned
    assert lstm.test["accuracy"] >= 0.99 and len(lstm.history) <= 4 and "reached its ceiling" in lstm.message
    assert ffnn.message.startswith("did not learn") and len(ffnn.history) == 20
    assert ffnn.test["accuracy"] <= dataset(comp.task).chance + 0.05
