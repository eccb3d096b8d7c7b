"""lib.agreement: a result that disagrees with the reference says what differs; a smaller budget is named."""
import pandas as pd

from lib import agreement
from lib.models import ModelConfig
from lib.settings import Settings
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig

MODELS = (ModelConfig(kind="ffnn", window=5), ModelConfig(kind="rnn"), ModelConfig(kind="lstm"))


def summary(**metrics) -> pd.DataFrame:
    return pd.DataFrame({"label": [k.replace("_", " ") for k in metrics], "status": "completed",
                         "metric": list(metrics.values())})


def test_an_rnn_that_holds_the_cue_at_distance_40_on_a_quick_budget_is_told_what_differs():
    quick = Settings(TextRecallConfig(distance=40, n_train=1000), MODELS, TrainConfig(epochs=10), (0,))
    notes = agreement.disagreement(quick, summary(FFNN_w5=0.17, RNN=0.975, LSTM=0.96), "accuracy", True)
    assert notes == [
        "Unlike the reference at distance 40: your RNN 97.5%, the reference's 66.9% with the same seed (66.9% to "
        "99.9% over its 3 seeds). Here RNN comes out ahead; in the reference LSTM does. What differs from the "
        "reference's settings: training sentences 4,000 → 1,000; max epochs 60 → 10. A smaller training "
        "budget, other data, other seeds and the initialisation each seed draws can each change who wins; "
        "train with the reference's settings to compare like with like."]
    assert agreement.smaller_budget(quick).startswith(
        "A smaller budget than the reference's: 1,000 training sequences (the reference: 4,000) and at most 10 "
        "epochs (the reference: 60). With less training, who wins can change")


def test_a_result_like_the_reference_or_without_one_says_nothing():
    full = Settings(TextRecallConfig(distance=40), MODELS, TrainConfig(), (0, 1, 2))
    assert agreement.disagreement(full, summary(FFNN_w5=0.17, RNN=0.74, LSTM=1.0), "accuracy", True) == []
    assert agreement.smaller_budget(full) is None
    elsewhere = Settings(TextRecallConfig(distance=3, n_train=300), MODELS, TrainConfig(epochs=2), (0,))
    assert agreement.disagreement(elsewhere, summary(RNN=0.2), "accuracy", True) == []
    assert agreement.smaller_budget(elsewhere) is None


def test_a_sweep_is_checked_at_each_of_its_distances():
    sweep = Settings(TextRecallConfig(), MODELS, TrainConfig(), (0,), distances=(10, 40))
    rows = pd.concat([summary(LSTM=1.0).assign(distance=10), summary(LSTM=0.3).assign(distance=40)])
    notes = agreement.disagreement(sweep, rows, "accuracy", True)
    assert len(notes) == 1 and notes[0].startswith("Unlike the reference at distance 40: your LSTM 30.0%")
    assert "What differs" not in notes[0] and "The settings are the reference's, so the difference comes from how " \
        "this run went" in notes[0]


def test_a_model_stopped_early_on_its_plateau_is_named_with_its_epochs():
    default = Settings(TextRecallConfig(distance=20), (ModelConfig(kind="rnn"), ModelConfig(kind="lstm")),
                       TrainConfig(), (0,))
    rows = summary(RNN=0.322, LSTM=1.0).assign(epochs=[11, 12])
    (note,) = agreement.disagreement(default, rows, "accuracy", True)
    assert note.startswith("Unlike the reference at distance 20: your RNN 32.2%, the reference's 100.0% with the same "
                           "seed (all 3 of its seeds: 100.0%). Your RNN trained 11 epoch(s), the reference's 16: early "
                           "stopping ended the run while it sat on a plateau"), note
    ran_out = Settings(default.task, default.models, TrainConfig(epochs=11), (0,))  # max epochs, not early stopping
    assert "early stopping" not in agreement.disagreement(ran_out, rows, "accuracy", True)[0]
