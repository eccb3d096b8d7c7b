import numpy as np
import pandas as pd
import pytest

from lib.stats import (
    cancel_note,
    compare_groups,
    distance_verdict,
    eta_text,
    fmt_metric,
    loglog_slope,
    mean_ci,
    results_table,
    timing_note,
    verdict,
    window_verdict,
)


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
    assert text.startswith("LSTM is best with test accuracy 99.7%; RNN (22.3%) stays near chance level (16.7%).")
    assert "beyond seed noise" in text
    noisy = _summary([("GRU", "gru", None, 100, [0.9, 0.6, 0.95]), ("LSTM", "lstm", None, 100, [0.8, 0.99, 0.7])])
    assert "within seed noise" in verdict(noisy, "accuracy", True)
    one_seed = _summary([("GRU", "gru", None, 100, [0.9]), ("LSTM", "lstm", None, 100, [0.8])])
    assert "one seed each" in verdict(one_seed, "accuracy", True)
    tie = _summary([("FFNN w25", "ffnn", 25, 100, [1.0]), ("LSTM", "lstm", None, 100, [1.0]),
                    ("FFNN w5", "ffnn", 5, 100, [0.16])])
    assert verdict(tie, "accuracy", True, chance=1 / 6) == (
        "FFNN w25 and LSTM tie at test accuracy 100.0%; FFNN w5 (16.0%) stays near chance level (16.7%). Their "
        "lead over FFNN w5 (16.0%) comes from one seed each; run more seeds to tell it from seed noise.")


def test_window_verdict_reports_the_matching_window_and_its_cost():
    sweep = _summary([("FFNN w5", "ffnn", 5, 1000, [0.17]), ("FFNN w15", "ffnn", 15, 3000, [0.99]),
                      ("FFNN w20", "ffnn", 20, 4000, [1.0]), ("LSTM", "lstm", None, 1500, [1.0])])
    text = window_verdict(sweep, "accuracy", True, cue_lag=15)
    assert text == ("The FFNN needs a window of 15 to match the LSTM (accuracy 99.0% vs 100.0%), with 3,000 "
                    "parameters: 2.0× the LSTM's 1,500. The decisive input lies 15 steps back.")


def test_runs_that_did_not_complete_are_named_and_left_out_of_the_verdict():
    runs = _summary([("RNN", "rnn", None, 50, [0.9]), ("LSTM", "lstm", None, 100, [0.95])])
    runs.loc[1, "status"] = "cancelled"
    assert verdict(runs, "accuracy", True).endswith(
        "Left out, as it did not complete: LSTM (seed 0, cancelled).")
    none_done = runs.assign(status="cancelled")
    assert verdict(none_done, "accuracy", True) == (
        "No run completed (RNN (seed 0, cancelled) and LSTM (seed 0, cancelled)), so there is nothing to compare.")


def test_the_results_table_says_when_seconds_were_measured_and_shows_cpu_seconds():
    runs = _summary([("RNN", "rnn", None, 50, [0.9, 0.8]), ("LSTM", "lstm", None, 100, [1.0])]).assign(
        total_seconds=1.0, epochs_to_threshold=None, epoch_cpu_seconds=[0.2, 0.3, 0.4],
        reused=[None, "2026-11-20T10:00:00+00:00", "2026-11-21T09:00:00+00:00"])
    runs.loc[2, "status"] = "cancelled"
    table = results_table(runs, "accuracy").set_index("model")
    assert table.loc["RNN", "seconds measured"] == "now, 2026-11-20 (reused run)"
    assert table.loc["LSTM", "seconds measured"] == "2026-11-21 (reused run)"
    assert table.loc["RNN", "CPU s / epoch"] == 0.25 and table.loc["RNN", "wall s / epoch"] == 0.1
    assert table.loc["LSTM", "test accuracy"] == "—"  # no completed run, no test metric
    assert results_table(runs, "accuracy", "2026-11-26 (precomputed)")["seconds measured"].unique().tolist() == [
        "2026-11-26 (precomputed)"]
    assert timing_note(runs) == ("2 of 3 run(s) were reused from the run store, trained on 2026-11-20 and 2026-11-21: "
                                 "their seconds were measured then, not now. Tick “Retrain runs already stored” to "
                                 "measure them again.")
    assert timing_note(runs.assign(reused=None)) is None


def test_distance_verdict_says_how_far_each_model_holds():
    rows = [("LSTM", [1.0, 1.0, 0.999]), ("FFNN w5", [1.0, 0.16, 0.17]), ("RNN", [1.0, 0.98, 0.55]),
            ("GRU", [0.17, 0.18, 0.16])]
    sweep = pd.DataFrame([{"label": lab, "distance": d, "metric": m, "status": "completed", "seed": 0}
                          for lab, ms in rows for d, m in zip((0, 20, 60), ms, strict=True)])
    assert distance_verdict(sweep, "accuracy", True, chance=1 / 6) == (
        "LSTM stays at 99.9% or above up to distance 60; FFNN w5 scores 100.0% at distance 0 but is at chance from "
        "distance 20; RNN holds 100.0% up to distance 20 then falls to 55.0% at distance 60; GRU is at chance at "
        "every distance tried.")


def test_cancel_note_and_eta():
    runs = _summary([("RNN", "rnn", None, 50, [0.9]), ("LSTM", "lstm", None, 100, [0.3])]).assign(epochs=[4, 1])
    runs.loc[1, "status"] = "cancelled"
    assert cancel_note(runs, planned=4) == ("Cancelled: 1 of 4 planned run(s) completed; stopped part-way: LSTM "
                                            "(seed 0, 1 epoch); 2 never started. Only completed runs count in the "
                                            "verdict and the test metrics.")
    assert eta_text(10.0, 0.25) == "about 30 s left (25% done in 10 s)"
    assert eta_text(10.0, 0.01) is None


def test_loglog_slope_reads_the_power_law():
    x = [16, 32, 64, 128]
    assert loglog_slope(x, [v ** 2 for v in x]) == pytest.approx(2.0)
    assert loglog_slope(x, [3 * v for v in x]) == pytest.approx(1.0)
    assert np.isnan(loglog_slope([1], [1]))


def test_a_metric_reads_the_same_in_every_verdict_and_table():
    assert fmt_metric("accuracy", 0.9967) == "99.7%" and fmt_metric("accuracy", 1.0) == "100.0%"  # not a rounded 100%
    assert fmt_metric("mse", 0.123456) == "0.1235" and fmt_metric("mse", 12345.6) == "1.235e+04"
    assert fmt_metric("accuracy", float("nan")) == "" and fmt_metric("mse", np.nan) == ""
