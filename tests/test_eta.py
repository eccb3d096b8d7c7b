"""The time a job still needs: measured seconds per update, scaled by the budgets left, over the workers."""
from types import SimpleNamespace

import pytest

from lib.eta import Eta, Planned, Seen, Tracker, eta, eta_text, from_runs, plan_of
from lib.models import ModelConfig

PLAN = [Planned(("FFNN w1", 0), "ffnn", 100), Planned(("LSTM", 0), "lstm", 100),
        Planned(("FFNN w1", 1), "ffnn", 100), Planned(("LSTM", 1), "lstm", 100)]


def test_eta_scales_each_models_pace_by_the_budget_share_finished_runs_used():
    seen = [Seen(("FFNN w1", 0), "ffnn", 5.0, 50, True),  # 0.1 s per update; stopped at half its budget
            Seen(("LSTM", 0), "lstm", 4.0, 20, False)]  # in flight: 0.2 s per update
    # serially: FFNN w1 1 needs 50 x 0.1 = 5 s; no LSTM has finished, so its runs are taken to use their whole
    # budget (another kind's early stop says nothing of theirs): LSTM 0 has (100 - 20) x 0.2 = 16 s left, LSTM 1 20 s
    assert eta(PLAN, seen, workers=1) == Eta(pytest.approx(41.0), True)
    # two workers: LSTM 0 keeps its worker (16 s); FFNN w1 1 takes the free one (5 s), then LSTM 1 (to 25 s)
    assert eta(PLAN, seen, workers=2).seconds == pytest.approx(25.0)
    # more workers than runs: the longest run left decides
    assert eta(PLAN, seen, workers=8).seconds == pytest.approx(20.0)
    # once an LSTM finishes after 40 updates, the other is expected to take as many
    lstm = Seen(("LSTM", 0), "lstm", 8.0, 40, True)
    assert eta(PLAN, [seen[0], lstm], workers=1).seconds == pytest.approx(5.0 + 40 * 0.2)


def test_eta_is_none_before_any_update_and_rough_while_a_model_has_no_pace_of_its_own():
    assert eta(PLAN, [], workers=2) is None
    only_ffnn = [Seen(("FFNN w1", 0), "ffnn", 10.0, 100, True)]
    estimate = eta(PLAN, only_ffnn, workers=1)
    assert not estimate.firm and estimate.seconds == pytest.approx(30.0)  # three runs at the FFNN's 10 s each
    assert "rough until every model has trained an epoch" in eta_text(estimate, 1, 4, 10.0)


def test_a_run_that_used_more_than_expected_is_done_not_negative():
    seen = [Seen(("FFNN w1", 0), "ffnn", 2.0, 20, True), Seen(("FFNN w1", 1), "ffnn", 9.0, 90, False)]
    plan = [PLAN[0], PLAN[2]]
    assert eta(plan, seen, workers=1).seconds == 0.0


def test_eta_text_says_minutes_seconds_and_what_is_finished():
    assert eta_text(Eta(40.2, True), 5, 27, 12.3) == "about 40 s left (5 of 27 runs finished in 12 s)"
    assert eta_text(Eta(600.0, True), 5, 27, 12.3).startswith("about 10 min left")
    assert eta_text(None, 0, 27, 1.0) == "0 of 27 runs finished in 1 s; time left: known once a run has trained an " \
                                         "epoch"


def test_tracker_reads_finished_runs_and_epoch_records_in_the_plan_order_of_compare():
    models = [ModelConfig(kind="ffnn", window=1), ModelConfig(kind="lstm")]
    plan = plan_of(models, [0, 1], 100)
    assert [p.key for p in plan] == [("FFNN w1", 0), ("LSTM", 0), ("FFNN w1", 1), ("LSTM", 1)]
    assert [p.key for p in plan_of(models, [0, 1], 100, workers=2)] == [  # the worker processes start windows last
        ("LSTM", 0), ("LSTM", 1), ("FFNN w1", 0), ("FFNN w1", 1)]
    tracker = Tracker(plan, steps_per_epoch=10, workers=1)
    run = SimpleNamespace(label="FFNN w1", train_config=SimpleNamespace(seed=0), model_config=models[0],
                          history=[{"elapsed_seconds": 2.5}, {"elapsed_seconds": 5.0}])
    tracker.on_run(run)
    tracker.on_epoch("LSTM", 0, {"epoch": 2, "elapsed_seconds": 4.0})
    seen = from_runs(plan, tracker.finished, tracker.curves, 10)
    assert {s.key: (s.seconds, s.updates, s.finished) for s in seen} == {("FFNN w1", 0): (5.0, 20, True),
                                                                         ("LSTM", 0): (4.0, 20, False)}
    # FFNN w1 took 0.25 s per update and a fifth of its budget: 5 s more for seed 1; the LSTMs, at 0.2 s per update
    # and their whole budget: (100 - 20) x 0.2 = 16 s and 20 s
    assert tracker.estimate().seconds == pytest.approx(41.0)


def test_a_run_in_flight_is_paced_by_its_epochs_after_the_first_which_holds_the_warm_up():
    plan = [Planned(("GRU", 0), "gru", 100)]
    curve = [{"epoch": 1, "elapsed_seconds": 10.0}, {"epoch": 2, "elapsed_seconds": 12.0},
             {"epoch": 3, "elapsed_seconds": 14.5}, {"epoch": 4, "elapsed_seconds": 16.5}]
    (seen,) = from_runs(plan, [], {("GRU", 0): curve}, steps_per_epoch=10)
    assert seen.recent == pytest.approx(0.2) and seen.updates == 40  # median epoch 2 s, not 16.5 / 4
    assert eta(plan, [seen], workers=1).seconds == pytest.approx(60 * 0.2)
    (latest,) = from_runs(plan, [], {("GRU", 0): curve[-1]}, steps_per_epoch=10)  # a lone latest record
    assert latest.recent is None and eta(plan, [latest], workers=1).seconds == pytest.approx(60 * 16.5 / 40)


def test_a_probe_stands_in_for_an_unmeasured_model_scaled_only_by_a_model_of_like_pace():
    plan = [Planned(("FFNN w1", 0), "ffnn", 100), Planned(("GRU", 0), "gru", 100), Planned(("LSTM", 0), "lstm", 100)]
    prior = {"FFNN w1": 0.01, "GRU": 1.0, "LSTM": 0.5}  # probed seconds per update
    assert eta(plan, [], workers=1, prior=prior) == Eta(pytest.approx(151.0), True)  # nothing measured: the probes
    # the FFNN ran 5x faster than its probe; its probe is 100x the GRU's, so that says nothing about the others
    ffnn = Seen(("FFNN w1", 0), "ffnn", 0.2, 100, True)
    assert eta(plan, [ffnn], workers=1, prior=prior).seconds == pytest.approx(150.0)
    # the GRU, in flight, runs at 2x its probe: the LSTM, whose probe is within 4x of the GRU's, is taken to as well
    gru = Seen(("GRU", 0), "gru", 20.0, 10, False)
    assert eta(plan, [ffnn, gru], workers=1, prior=prior).seconds == pytest.approx(2.0 * 90 + 1.0 * 100)
