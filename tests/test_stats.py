import pandas as pd
import pytest

from lib.stats import compare_groups, mean_ci, verdict, window_verdict


def test_mean_ci_matches_the_t_interval():
    mean, half = mean_ci([0.9, 1.0, 0.95])
    assert mean == pytest.approx(0.95)
    assert half == pytest.approx(4.302653 * 0.05 / 3 ** 0.5, rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    assert mean_ci([0.7]) == (0.7, 0.0)


def test_a_gap_beyond_seed_noise_is_called_significant():
    d = compare_groups("LSTM", [0.99, 1.0, 0.98], "RNN", [0.17, 0.2, 0.16])
    assert (d.better, d.worse, d.significant) == ("LSTM", "RNN", True)
    assert d.p_value < 0.001


def test_a_gap_within_seed_noise_is_not():
    d = compare_groups("GRU", [0.90, 0.60, 0.95], "LSTM", [0.80, 0.99, 0.70])
    assert not d.significant and d.p_value > 0.5


def test_lower_is_better_for_errors():
    d = compare_groups("FFNN", [0.011, 0.012], "LSTM", [0.02, 0.021], higher_is_better=False)
    assert d.better == "FFNN" and d.significant


def _summary(rows):
    return pd.DataFrame([{"label": lab, "seed": i, "metric": m, "status": "completed", "n_params": n,
                          "epoch_seconds": 0.1, "kind": kind, "window": w}
                         for lab, kind, w, n, ms in rows for i, m in enumerate(ms)])


def test_verdict_names_the_winner_and_says_when_the_gap_is_noise():
    clear = _summary([("LSTM", "lstm", None, 100, [1.0, 0.99, 1.0]), ("RNN", "rnn", None, 50, [0.2, 0.17, 0.3])])
    text = verdict(clear, "accuracy", True, chance=1 / 6)
    assert text.startswith("LSTM is best with test accuracy 100%; RNN (22%) stays near chance level (17%).")
    assert "beyond seed noise" in text
    noisy = _summary([("GRU", "gru", None, 100, [0.9, 0.6, 0.95]), ("LSTM", "lstm", None, 100, [0.8, 0.99, 0.7])])
    assert "within seed noise" in verdict(noisy, "accuracy", True)
    one_seed = _summary([("GRU", "gru", None, 100, [0.9]), ("LSTM", "lstm", None, 100, [0.8])])
    assert "one seed each" in verdict(one_seed, "accuracy", True)
    tie = _summary([("FFNN w25", "ffnn", 25, 100, [1.0]), ("LSTM", "lstm", None, 100, [1.0]),
                    ("FFNN w5", "ffnn", 5, 100, [0.16])])
    assert verdict(tie, "accuracy", True, chance=1 / 6) == (
        "FFNN w25 and LSTM tie at test accuracy 100%; FFNN w5 (16%) stays near chance level (17%). Their lead "
        "over FFNN w5 "
        "(16%) comes from one seed each; run more seeds to tell it from seed noise.")


def test_window_verdict_reports_the_matching_window_and_its_cost():
    sweep = _summary([("FFNN w5", "ffnn", 5, 1000, [0.17]), ("FFNN w15", "ffnn", 15, 3000, [0.99]),
                      ("FFNN w20", "ffnn", 20, 4000, [1.0]), ("LSTM", "lstm", None, 1500, [1.0])])
    text = window_verdict(sweep, "accuracy", True, cue_lag=15)
    assert text == ("The FFNN needs a window of 15 to match the LSTM (accuracy 99% vs 100%), with 3,000 "
                    "parameters: 2.0× the LSTM's 1,500. The decisive input lies 15 steps back.")
