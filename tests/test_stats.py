"""The verdict engine (gap: beats, trails, matches within the margin, or inconclusive, counting seed and test-set
noise) on constructed per-seed and per-row numbers, the pages' verdicts built on it, and the tables and notes."""
import math

import numpy as np
import pandas as pd
import pytest

from lib.errors import ConfigError
from lib.stats import (
    Margins,
    Scores,
    cancel_note,
    chance_gaps,
    distance_verdict,
    eta_text,
    fmt_metric,
    gap,
    loglog_slope,
    mean_ci,
    results_table,
    timing_note,
    verdict,
    window_verdict,
)

MARGINS = Margins()


def acc(a, b, n_test=None, margins=MARGINS):
    return gap("A", a, "B", b, "accuracy", True, margins, n_test)


def rows(n: int, right: float, seeds: int = 3, seed: int = 0) -> np.ndarray:
    """(seeds, n) outcomes, the same rows right on every seed: a model that ends where its seeds agree."""
    rng = np.random.default_rng(seed)
    return np.tile(rng.random(n) < right, (seeds, 1)).astype(float)


def test_mean_ci_matches_the_t_interval():
    mean, half = mean_ci([0.9, 1.0, 0.95])
    assert mean == pytest.approx(0.95)
    assert half == pytest.approx(4.302653 * 0.05 / 3 ** 0.5, rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    assert mean_ci([0.7]) == (0.7, 0.0)


def test_all_three_seeds_below_all_three_of_the_other_is_never_a_match():
    """Issue: window 32 (0.69, 0.82, 0.81) was credited as matching window 64 (0.93, 0.95, 0.92) because a t-test
    on three seeds could not reject."""
    g = acc(Scores.of([0.69, 0.82, 0.81]), Scores.of([0.93, 0.95, 0.92]), n_test=150)
    assert g.outcome == "trails" and g.high < -MARGINS.accuracy
    assert g.said() == ("trails B by more than the margin of 1 accuracy point (difference -16.0 points, 90% interval "
                        "-27.0 to -5.0 points; 3 seeds each and 150 test rows)")


def test_a_few_rows_apart_at_the_same_rate_is_no_win_even_when_every_seed_agrees():
    """Issue: two models at the same Bayes rate, 3 rows apart of 150, each the same on every seed, gave p = 0."""
    a = rows(150, 0.8)
    b = a.copy()
    a[:, :3], b[:, :3] = 1.0, 0.0  # a is right and b wrong on three rows, on every seed
    g = acc(Scores.of(rows=a), Scores.of(rows=b))
    assert g.outcome == "inconclusive" and g.low < 0 < g.high
    assert g.counted == "3 seeds each and 150 test rows (paired)"
    assert g.settle.startswith("a test set of about ")


def test_two_perfect_models_match_only_once_the_test_set_can_show_it():
    """Agreeing on every row still leaves a finite test set's uncertainty (half a pseudo-row per cell)."""
    small, large = acc(Scores.of(rows=np.ones((3, 150))), Scores.of(rows=np.ones((3, 150)))), \
        acc(Scores.of(rows=np.ones((3, 300))), Scores.of(rows=np.ones((3, 300))))
    assert (small.outcome, large.outcome) == ("inconclusive", "matches")
    assert small.settle == "a test set of about 180 rows"
    assert large.clause() == "matches B within the margin of 1 accuracy point"


def test_a_gap_beyond_the_margin_beats_and_one_inside_it_matches():
    base = rows(2000, 0.7)
    better = base.copy()
    better[:, np.flatnonzero(base[0] == 0)[:200]] = 1.0  # right on 200 more rows: +10 points
    assert acc(Scores.of(rows=better), Scores.of(rows=base)).outcome == "beats"
    assert acc(Scores.of(rows=base), Scores.of(rows=better)).outcome == "trails"
    close = base.copy()
    close[:, np.flatnonzero(base[0] == 0)[:4]] = 1.0  # +0.2 points
    assert acc(Scores.of(rows=close), Scores.of(rows=base)).outcome == "matches"
    assert acc(Scores.of(rows=close), Scores.of(rows=base), margins=Margins(accuracy=0.0)).outcome != "matches"


def test_an_inconclusive_gap_says_about_how_many_more_seeds_would_settle_it():
    """A huge test set, seeds spread: the seeds decide, and their observed spread says how many more it takes."""
    a, b = [0.902, 0.912, 0.894], [0.900, 0.892, 0.905]
    g = acc(Scores.of(a), Scores.of(b), n_test=200_000)
    assert g.outcome == "inconclusive" and g.settle == "about 14 more seeds per model"
    times = math.ceil((3 + 14) / 3)  # the same spread over 18 seeds each
    assert acc(Scores.of(a * times), Scores.of(b * times), n_test=200_000).outcome == "matches"


def test_one_seed_counts_the_test_set_only_and_no_noise_at_all_claims_nothing():
    one = acc(Scores.of([0.5]), Scores.of([0.9]), n_test=150)
    assert one.outcome == "trails" and one.counted == "one seed (so seed noise is not measured) and 150 test rows"
    blind = gap("A", Scores.of([0.5]), "B", Scores.of([0.9]), "mse", False, MARGINS)
    assert blind.outcome == "inconclusive" and blind.settle == "at least two seeds per model (to measure seed noise)"
    assert blind.counted == "one seed (so seed noise is not measured) and no test-set noise (no per-row outcomes)"


def test_an_mse_margin_is_relative_to_the_other_models_mse():
    rng = np.random.default_rng(0)
    err = np.tile(rng.normal(size=4000) ** 2, (3, 1))  # squared errors, the same rows for both models and seeds
    assert gap("A", Scores.of(rows=err * 0.999), "B", Scores.of(rows=err), "mse", False, MARGINS).outcome == "matches"
    g = gap("A", Scores.of(rows=err * 0.9), "B", Scores.of(rows=err), "mse", False, MARGINS)
    assert g.outcome == "beats" and g.amount(g.diff) == "-10.0%"
    assert g.evidence.startswith("MSE -10.0% against B's, 90% interval ")


def test_the_margin_is_a_declared_setting_stated_in_words():
    assert (MARGINS.accuracy, MARGINS.mse) == (0.01, 0.02)
    assert MARGINS.words("accuracy") == "1 accuracy point" and MARGINS.words("mse") == "2% of the MSE"
    assert Margins(accuracy=0.025).words("accuracy") == "2.5 accuracy points"
    with pytest.raises(ConfigError, match=r"^accuracy margin \(accuracy\) must be between 0 and 0.5, got 0.7.$"):
        Margins(accuracy=0.7).validate()


def test_the_chance_check_allows_for_the_test_set_size_and_the_best_of_many_models():
    """Issue: 2 points of slack on 150 test rows, taking the best of 11 models, let chance-level studies through.
    The best of 11 chance-level models lands about 1.6 sd (6 points) above chance; it is not shown to beat it."""
    rng = np.random.default_rng(3)
    trivial = Scores.of(rows=(rng.random(150) < 0.5).astype(float), fixed=True)
    models = {f"M{i}": Scores.of(rows=(rng.random((3, 150)) < 0.5).astype(float)) for i in range(11)}
    gaps = chance_gaps(models, trivial, "chance", "accuracy", True, MARGINS, None)
    best = max(models, key=lambda k: models[k].mean)
    assert models[best].mean - trivial.mean > 0.03
    assert all(g.outcome != "beats" for g in gaps.values()) and gaps[best].level == pytest.approx(1 - 0.1 / 11)


def _summary(rows_):
    return pd.DataFrame([{"label": lab, "seed": i, "metric": m, "status": "completed", "n_params": n,
                          "epoch_seconds": 0.1, "kind": kind, "window": w}
                         for lab, kind, w, n, ms in rows_ for i, m in enumerate(ms)])


def test_verdict_names_the_winner_and_its_gap_to_the_runner_up_with_the_margin():
    clear = _summary([("LSTM", "lstm", None, 100, [1.0, 0.99, 1.0]), ("RNN", "rnn", None, 50, [0.2, 0.17, 0.3])])
    assert verdict(clear, "accuracy", True, chance=1 / 6, n_test=100) == (
        "LSTM is best with test accuracy 99.7%; it beats the runner-up, RNN (22.3%) by more than the margin of 1 "
        "accuracy point (difference +77.3 points, 90% interval +66.7 to +88.0 points; 3 seeds each and 100 test "
        "rows). RNN (22.3%) does not beat chance (16.7%) by more than the margin (1 accuracy point).")
    noisy = _summary([("GRU", "gru", None, 100, [0.9, 0.6, 0.95]), ("LSTM", "lstm", None, 100, [0.8, 0.99, 0.7])])
    assert "inconclusive" in verdict(noisy, "accuracy", True, n_test=100)
    one_seed = _summary([("GRU", "gru", None, 100, [0.9]), ("LSTM", "lstm", None, 100, [0.8])])
    assert "one seed (so seed noise is not measured)" in verdict(one_seed, "accuracy", True, n_test=100)
    tie = _summary([("FFNN w25", "ffnn", 25, 100, [1.0]), ("LSTM", "lstm", None, 100, [1.0]),
                    ("FFNN w5", "ffnn", 5, 100, [0.16])])
    assert verdict(tie, "accuracy", True, chance=1 / 6, n_test=500).startswith(
        "FFNN w25 and LSTM tie at test accuracy 100.0%; each beats the runner-up, FFNN w5 (16.0%) by more than")


def test_verdict_reads_paired_rows_where_it_has_them():
    base = rows(150, 0.8, seeds=1)
    other = base.copy()
    other[:, :3] = 1 - other[:, :3]
    summary = _summary([("GRU", "gru", None, 1, [base.mean()]), ("LSTM", "lstm", None, 1, [other.mean()])])
    text = verdict(summary, "accuracy", True, rows={"GRU": base, "LSTM": other})
    assert "150 test rows (paired)" in text and "inconclusive" in text


def test_window_verdict_reports_the_smallest_window_that_matches_within_the_margin_and_its_cost():
    sweep = _summary([("FFNN w5", "ffnn", 5, 1000, [0.17]), ("FFNN w15", "ffnn", 15, 3000, [0.995]),
                      ("FFNN w20", "ffnn", 20, 4000, [1.0]), ("LSTM", "lstm", None, 1500, [1.0])])
    text = window_verdict(sweep, "accuracy", True, cue_lag=15, n_test=2000)
    assert text.startswith("The FFNN needs a window of 15 to match the LSTM: FFNN w15 (99.5%) matches the LSTM "
                           "(accuracy 100.0%) within the margin of 1 accuracy point (")
    assert text.endswith("It has 3,000 parameters: 2.0× the LSTM's 1,500. The decisive input lies 15 steps back.")
    small = window_verdict(sweep, "accuracy", True, cue_lag=15, n_test=100)  # too few rows to show a match
    assert small.startswith("No FFNN window tried is shown to match the LSTM within the margin of 1 accuracy point: "
                            "FFNN w15 (99.5%), the smallest window not shown to trail it, is neither shown to match")


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


def test_distance_verdict_says_how_far_each_model_holds_within_the_margin():
    rows_ = [("LSTM", [1.0, 1.0, 0.999]), ("FFNN w5", [1.0, 0.16, 0.17]), ("RNN", [1.0, 0.995, 0.55]),
             ("GRU", [0.17, 0.18, 0.16])]
    sweep = pd.DataFrame([{"label": lab, "distance": d, "metric": m, "status": "completed", "seed": 0}
                          for lab, ms in rows_ for d, m in zip((0, 20, 60), ms, strict=True)])
    rule = ("A model holds while it is shown to stay within the margin (1 accuracy point) of its best, and is at "
            "chance while it is not shown to beat chance by more.")
    assert distance_verdict(sweep, "accuracy", True, chance=1 / 6, n_test=2000) == (
        "LSTM stays at 99.9% or above up to distance 60; FFNN w5 scores 100.0% at distance 0 but is at chance from "
        "distance 20; RNN holds 100.0% up to distance 20 then falls to 55.0% at distance 60; GRU is at chance at "
        "every distance tried. " + rule)
    # 200 rows cannot show a 1-point match: not trailing is no longer read as holding (the study's rule)
    assert distance_verdict(sweep, "accuracy", True, chance=1 / 6, n_test=200).startswith(
        "LSTM scores 100.0% at distance 0 then is not shown to hold (99.9% at distance 60); FFNN w5 scores 100.0% at "
        "distance 0 but is at chance from distance 20; RNN scores 100.0% at distance 0 then falls to 55.0% at "
        "distance 60;")


def test_a_window_ahead_but_not_shown_to_match_is_credited_as_no_worse_as_the_study_does():
    sweep = _summary([("FFNN w5", "ffnn", 5, 1000, [0.5, 0.52, 0.51]),
                      ("FFNN w15", "ffnn", 15, 3000, [0.99, 0.97, 1.0]),
                      ("LSTM", "lstm", None, 1500, [0.97, 0.96, 0.98])])
    text = window_verdict(sweep, "accuracy", True, n_test=5000)
    assert text.startswith("The FFNN needs a window of 15 to match the LSTM: FFNN w15 (98.7%) is not worse than the "
                           "LSTM (accuracy 97.0%) by more than the margin of 1 accuracy point (difference +1.7 points")


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
