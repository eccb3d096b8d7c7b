"""The memory study: budget, convergence flags, verdicts on constructed seed statistics, user data as a task
(reuse, rerun from the store without the file) and `python -m lib study`."""
import re

import pandas as pd
import pytest
import torch

from lib.cli import main
from lib.errors import ConfigError
from lib.models import ModelConfig
from lib.runs import dataset, run_one
from lib.runtime import Status
from lib.store import RunStore
from lib.study import (
    Budget,
    Standings,
    at_chance,
    baseline_sentence,
    best_model,
    best_sentence,
    geometric_windows,
    judge,
    memory_sentences,
    memory_study,
    plan_budget,
    run_issue,
    smallest_matching_window,
)
from lib.tasks.user.prepared import prepare
from lib.train import RunResult, TrainConfig
from tests.support.user_files import labelled_csv

ERROR = "python -m lib: error: "


def raises(message: str):
    return pytest.raises(ConfigError, match="^" + re.escape(message) + "$")


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    """A fresh run store, and so a fresh folder of prepared data, per test."""
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "db" / "runs.sqlite"))
    dataset.cache_clear()


# ---------------------------------------------------------------- budget and grid

def test_small_data_get_smaller_batches_and_the_same_minimum_of_updates():
    small, large = plan_budget(140), plan_budget(7000)
    assert small == Budget(updates=1008, batch_size=16, steps_per_epoch=9, epochs=112, patience=56)
    assert large == Budget(updates=1100, batch_size=64, steps_per_epoch=110, epochs=10, patience=5)
    assert plan_budget(100_000).epochs == 5  # at least five epochs, so that early stopping has something to read
    assert plan_budget(20).batch_size == 8


@pytest.mark.parametrize("args, message", [
    ((20, 5000), "5000 updates need 1667 epochs of 20 training sequences in batches of 8 (limit 1000); ask for at "
                 "most 3000 updates."),
    ((100, 0), "min_updates must be between 1 and 1000000, got 0."),
])
def test_budget_refuses_what_training_cannot_do(args, message):
    with raises(message):
        plan_budget(*args)


def test_geometric_windows_double_up_to_the_sequence_length():
    assert geometric_windows(24) == (1, 2, 4, 8, 16, 24)
    assert geometric_windows(16) == (1, 2, 4, 8, 16)
    assert geometric_windows(1) == (1,)


# ---------------------------------------------------------------- verdicts on constructed statistics

def stats(metrics: dict[str, list[float]], issues: dict[str, str] | None = None, costs: dict | None = None):
    """summary (one row per seed) and table (one row per model) as memory_study makes them."""
    rows, table = [], []
    for label, values in metrics.items():
        window = int(label.split("w")[1]) if label.startswith("FFNN") else None
        rows += [{"label": label, "seed": s, "status": "completed", "metric": v} for s, v in enumerate(values)]
        n, secs, ms = (costs or {}).get(label, (1000 * (window or 10), 0.1, 0.05))
        table.append({"label": label, "window": window, "n_params": n, "epoch_seconds": secs, "latency_ms": ms,
                      "issue": (issues or {}).get(label)})
    return pd.DataFrame(rows), pd.DataFrame(table)


def test_memory_is_needed_when_a_recurrent_model_beats_every_window_beyond_noise():
    summary, table = stats({"FFNN w1": [0.50, 0.52, 0.51], "FFNN w8": [0.68, 0.70, 0.66],
                            "GRU": [0.97, 0.98, 0.99], "LSTM": [0.96, 0.99, 0.97]},
                           costs={"GRU": (13000, 0.2, 0.5), "FFNN w8": (700, 0.01, 0.02)})
    v = judge(summary, table, "accuracy", True, 1000, chance=0.5)
    assert (v.memory, v.best, v.best_recurrent, v.window) == ("needed", None, "GRU", None)
    assert v.sentences[1] == ("Memory helps on this data: GRU (accuracy 98.0% ± 2.5%) beats the best FFNN window up "
                              "to 8 steps, FFNN w8 (accuracy 68.0% ± 5.0%; p = 0.0002, 3 seeds), beyond seed noise.")
    assert v.sentences[2] == ("Costs (parameters, training time, prediction time): GRU 13,000, 0.2 s per epoch, 0.5 "
                              "ms per sequence; FFNN w8 700, 0.01 s per epoch, 0.02 ms per sequence, so GRU costs "
                              "more on every count.")


def test_the_smallest_window_within_noise_of_the_best_models_is_named_with_its_costs():
    summary, table = stats({"FFNN w1": [0.70, 0.71, 0.69], "FFNN w2": [0.80, 0.79, 0.81],
                            "FFNN w4": [0.95, 0.96, 0.97], "FFNN w8": [0.96, 0.95, 0.97],
                            "GRU": [0.96, 0.97, 0.94], "RNN": [0.70, 0.95, 0.90]},
                           costs={"FFNN w4": (450, 0.005, 0.02), "GRU": (13000, 0.03, 0.14)})
    v = judge(summary, table, "accuracy", True, 1000, chance=0.5)
    assert (v.memory, v.best_recurrent, v.window) == ("not needed", "GRU", 4)
    assert v.sentences[1] == ("Memory beyond the last 4 steps does not pay on this data: FFNN w4 (accuracy 96.0% ± "
                              "2.5%) matches the best recurrent model, GRU (accuracy 95.7% ± 3.8%; p = 0.77, 3 "
                              "seeds), within seed noise.")
    assert v.sentences[2].endswith("so FFNN w4 costs less on every count.")


def test_a_model_that_did_not_converge_is_inconclusive_not_worse():
    summary, table = stats({"FFNN w8": [0.60, 0.61, 0.59], "GRU": [0.97, 0.98, 0.97], "LSTM": [0.80, 0.81, 0.80]},
                           issues={"LSTM": "its training loss never fell below that of a constant prediction"})
    v = judge(summary, table, "accuracy", True, 1008, chance=0.5)
    assert (v.memory, v.best, v.best_recurrent) == ("needed", "GRU", "GRU")
    assert v.sentences[0].endswith("beyond seed noise of the runner-up, FFNN w8 (accuracy 60.0% ± 2.5%; p = 6.8e-06, "
                                   "3 seeds).")
    assert v.sentences[-2:] == ("LSTM did not converge within 1,008 updates (its training loss never fell below "
                                "that of a constant prediction); the comparison is inconclusive for it.",
                                "A budget of more than 1,008 updates may settle it.")
    assert not any("LSTM (" in s for s in v.sentences)  # never ranked as the worse model


def test_models_that_did_not_converge_for_one_reason_share_a_sentence():
    improving = "its validation accuracy was still improving when the budget ran out"
    summary, table = stats({"FFNN w4": [0.90, 0.91, 0.90], "GRU": [0.95, 0.96, 0.95], "LSTM": [0.8, 0.8, 0.81],
                            "RNN": [0.7, 0.7, 0.71]},
                           issues={"LSTM": f"2 of 3 seeds: {improving}", "RNN": f"3 of 3 seeds: {improving}"})
    v = judge(summary, table, "accuracy", True, 1000, chance=0.5)
    assert v.sentences[-2:] == ("LSTM and RNN did not converge within 1,000 updates (their validation accuracy was "
                                "still improving when the budget ran out); the comparison is inconclusive for them.",
                                "A budget of more than 1,000 updates may settle them.")


def test_without_a_converged_recurrent_model_memory_is_inconclusive():
    summary, table = stats({"FFNN w4": [0.80, 0.82, 0.81], "LSTM": [0.5, 0.5, 0.5]},
                           issues={"LSTM": "its validation accuracy was still improving when the budget ran out"})
    v = judge(summary, table, "accuracy", True, 600, chance=0.5)
    assert (v.memory, v.best_recurrent, v.window) == ("inconclusive", None, None)
    assert v.sentences[1] == ("No recurrent model converged within 600 updates, so whether memory helps on this data "
                              "is inconclusive; the best FFNN window is FFNN w4 (accuracy 81.0% ± 2.5%).")


def test_chance_level_everywhere_is_no_evidence_either_way():
    summary, table = stats({"FFNN w4": [0.51, 0.50, 0.52], "GRU": [0.50, 0.52, 0.51]})
    v = judge(summary, table, "accuracy", True, 1000, chance=0.5)
    assert v.memory == "inconclusive" and v.sentences[1].startswith("No model did better than chance (50.0%)")


def test_mse_verdicts_prefer_lower_and_one_seed_uses_a_tolerance():
    summary, table = stats({"FFNN w2": [0.50], "FFNN w8": [0.104], "LSTM": [0.100]})
    v = judge(summary, table, "mse", False, 1000)
    assert (v.memory, v.window) == ("not needed", 8)
    assert "LSTM (mse 0.1; one seed, so seed noise is not measured)" in v.sentences[1]


def test_no_finished_run_means_nothing_to_judge():
    summary, table = stats({"GRU": [0.9]})
    v = judge(summary.assign(status="cancelled"), table, "accuracy", True, 1000)
    assert v.memory == "inconclusive" and v.text == "No run finished, so there is nothing to judge yet."


# ---------------------------------------------------------------- the verdict's pieces, one by one

def standings(metrics: dict[str, list[float]], metric: str = "accuracy", issues: dict[str, str] | None = None
              ) -> Standings:
    return Standings.of(*stats(metrics, issues), metric, metric == "accuracy")


def test_standings_rank_models_by_mean_and_know_their_windows():
    s = standings({"FFNN w8": [0.6, 0.7], "FFNN w2": [0.5, 0.5], "LSTM": [0.9, 0.8], "GRU": [0.95, 0.9]},
                  issues={"LSTM": "it ended diverged: nan"})
    assert s.order == ["GRU", "LSTM", "FFNN w8", "FFNN w2"] and s.mean("LSTM") == pytest.approx(0.85)
    assert s.ffnn == ["FFNN w2", "FFNN w8"] and s.windows == {"FFNN w8": 8, "FFNN w2": 2}
    assert s.recurrent == ["GRU", "LSTM"] and s.issue == {"GRU": None, "LSTM": "it ended diverged: nan",
                                                          "FFNN w8": None, "FFNN w2": None}
    assert s.said("GRU") == "GRU (accuracy 92.5% ± 31.8%)" and s.said("GRU", "p") == "GRU (accuracy 92.5% ± 31.8%; p)"
    assert standings({"FFNN w1": [0.3], "GRU": [0.1]}, "mse").order == ["GRU", "FFNN w1"]  # lower MSE is better
    summary, table = stats({"GRU": [0.9], "LSTM": [0.8]})
    summary.loc[summary["label"] == "LSTM", "status"] = "cancelled"
    assert Standings.of(summary, table, "accuracy", True).order == ["GRU"]  # only completed runs count


def test_the_best_model_comes_with_the_models_within_seed_noise_of_it():
    clear = standings({"GRU": [0.97, 0.98, 0.99], "LSTM": [0.96, 0.99, 0.97], "FFNN w1": [0.50, 0.52, 0.51]})
    assert best_model(clear) == ("GRU", ["LSTM"])
    assert best_model(standings({"GRU": [0.9, 0.91, 0.9], "FFNN w1": [0.5, 0.52, 0.51]})) == ("GRU", [])
    assert best_model(standings({"FFNN w2": [0.104], "LSTM": [0.100]}, "mse")) == ("LSTM", ["FFNN w2"])  # one seed


def test_the_best_model_sentence_for_one_model_a_clear_lead_no_converged_rival_a_tie_and_noise():
    one = standings({"GRU": [0.9]})
    assert best_sentence(one, "GRU", []) == "Only GRU (accuracy 90.0%) finished."
    lead = standings({"GRU": [0.9, 0.91], "LSTM": [0.5, 0.52], "FFNN w1": [0.6, 0.6]}, issues={"LSTM": "stuck"})
    assert best_sentence(lead, "GRU", []) == ("GRU (accuracy 90.5% ± 6.4%) is best, beyond seed noise of the "
                                              "runner-up, FFNN w1 (accuracy 60.0% ± 0.0%; p = 0.01, 2 seeds).")
    alone = standings({"GRU": [0.9, 0.91], "LSTM": [0.5, 0.52]}, issues={"LSTM": "stuck"})
    assert best_sentence(alone, "GRU", []) == "GRU (accuracy 90.5% ± 6.4%) has the best mean; no other model converged."
    tie = standings({"GRU": [0.9], "LSTM": [0.9]})
    assert best_sentence(tie, "GRU", ["LSTM"]) == "GRU and LSTM tie at accuracy 90.0%."
    many = standings({f"FFNN w{w}": [0.90 - w / 1000] for w in range(1, 7)} | {"GRU": [0.9]})
    assert best_sentence(many, "GRU", many.order[1:]) == (
        "GRU (accuracy 90.0%) has the best mean, but FFNN w1, FFNN w2, FFNN w3, FFNN w4 and 2 more are within seed "
        "noise of it, so no single model is best beyond noise.")
    assert best_sentence(many, "GRU", ["FFNN w1"]).endswith("but FFNN w1 is within seed noise of it, so no single "
                                                           "model is best beyond noise.")


def test_an_mse_verdict_quotes_the_best_naive_forecast_and_an_accuracy_verdict_does_not():
    s = standings({"FFNN w1": [0.5], "GRU": [0.2]}, "mse")
    assert baseline_sentence(s, {"last_value_mse": 0.3, "train_mean_mse": 1.0, "last_value_mae": 0.1}) == (
        "For comparison, repeating the last value gives test mse 0.3; 1 of 2 models beat it.")
    assert baseline_sentence(s, {"odd_guess_mse": 0.123456}).startswith("For comparison, odd guess gives test mse "
                                                                        "0.1235;")
    assert baseline_sentence(s, None) == "" and baseline_sentence(standings({"GRU": [0.9]}), {"x_mse": 1.0}) == ""


def test_chance_level_is_the_best_mean_within_the_one_seed_tolerance_of_chance():
    s = standings({"GRU": [0.515], "FFNN w1": [0.5]})
    assert at_chance(s, "GRU", 0.5) and not at_chance(s, "GRU", 0.49) and not at_chance(s, "GRU", None)
    assert not at_chance(standings({"GRU": [0.5]}, "mse"), "GRU", 0.5)  # chance is for accuracy only


def test_the_smallest_window_must_match_both_the_best_recurrent_model_and_the_best_window():
    s = standings({"FFNN w1": [0.70, 0.71, 0.69], "FFNN w4": [0.95, 0.96, 0.97], "FFNN w8": [0.96, 0.95, 0.97],
                   "GRU": [0.96, 0.97, 0.94]})
    assert smallest_matching_window(s, "GRU") == "FFNN w4"
    lower = standings({"FFNN w1": [0.90, 0.91, 0.90], "FFNN w8": [0.99, 0.99, 0.98], "RNN": [0.80, 0.81, 0.80]})
    assert smallest_matching_window(lower, "RNN") == "FFNN w8"  # w1 beats the RNN, yet is worse than w8
    assert smallest_matching_window(standings({"FFNN w1": [0.5, 0.52, 0.51], "GRU": [0.97, 0.98, 0.99]}),
                                    "GRU") is None
    assert smallest_matching_window(standings({"GRU": [0.9]}), "GRU") is None


def test_memory_sentences_without_windows_name_the_recurrent_model_and_say_nothing():
    assert memory_sentences(standings({"GRU": [0.9], "LSTM": [0.8]}), 1000) == ("inconclusive", None, "GRU", [])
    memory, window, best, sentences = memory_sentences(standings({"FFNN w1": [0.5], "GRU": [0.9]}), 1000)
    assert (memory, window, best) == ("needed", None, "GRU") and sentences[0].startswith("Memory helps on this data")


# ---------------------------------------------------------------- convergence of one run

def run(kind: str, losses: list[float], val: list[float] | None = None, status=Status.COMPLETED) -> RunResult:
    val = val or [0.5] * len(losses)
    history = [{"epoch": i + 1, "train_loss": t, "val_loss": t, "val_metric": v}
               for i, (t, v) in enumerate(zip(losses, val, strict=True))]
    return RunResult(ModelConfig(kind=kind), TrainConfig(), status, "msg", history, 1, {}, 10, {})


RISING = [0.5, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.75]


@pytest.mark.parametrize("kind, losses, val, status, issue", [
    ("lstm", [0.69] * 10, None, Status.COMPLETED, "its training loss never fell below that of a constant prediction"),
    ("ffnn", [0.69] * 10, None, Status.COMPLETED, None),  # a short window may see nothing to learn from
    ("gru", [0.5] * 10, RISING, Status.COMPLETED, "its validation accuracy was still improving when the budget ran "
                                                  "out"),
    ("gru", [0.5] * 10, RISING[:-1] + [0.705], Status.COMPLETED, None),  # a gain below one point is noise
    ("gru", [0.5] * 6, RISING[:6], Status.COMPLETED, None),  # stopped early: it converged
    ("rnn", [0.5] * 2, None, Status.DIVERGED, "it ended diverged: msg"),
])
def test_run_issue_flags_runs_that_did_not_converge(kind, losses, val, status, issue):
    budget = Budget(updates=100, batch_size=8, steps_per_epoch=10, epochs=10, patience=5)
    assert run_issue(run(kind, losses, val, status), budget, 0.693, "accuracy") == issue


def test_a_regression_run_still_improving_by_more_than_one_percent_is_flagged():
    budget = Budget(updates=100, batch_size=8, steps_per_epoch=10, epochs=10, patience=5)
    mse = [1.0, 0.5, 0.4, 0.3, 0.3, 0.3, 0.3, 0.3]
    assert run_issue(run("gru", [0.1] * 10, mse + [0.299, 0.298]), budget, 1.0, "mse") is None
    assert run_issue(run("gru", [0.1] * 10, mse + [0.29, 0.28]), budget, 1.0, "mse") == (
        "its validation mse was still improving when the budget ran out")


# ---------------------------------------------------------------- user data as a task

def test_identical_data_reuse_the_stored_run_and_rerun_needs_no_file(capsys):
    cfg = prepare(labelled_csv(), "mine.csv")
    train_cfg = TrainConfig(epochs=2, batch_size=16)
    with RunStore() as store:
        first = run_one(cfg, ModelConfig(kind="gru", hidden=4), train_cfg, store)
        again = run_one(prepare(labelled_csv(), "copy.csv"), ModelConfig(kind="gru", hidden=4), train_cfg, store)
    assert again.message.startswith(f"reused stored run {first.run_id}") and again.test == first.test
    dataset.cache_clear()  # a fresh process: only the stored config and the kept arrays remain
    assert main(["rerun", first.run_id]) == 0
    assert "the numbers match" in capsys.readouterr().out


# ---------------------------------------------------------------- the study and its command

TINY = {"windows": (1, 6), "kinds": ("gru",), "hidden": 8, "min_updates": 12}


def test_study_trains_every_model_and_seed_with_one_budget_and_reports_costs():
    cfg = prepare(labelled_csv(), "mine.csv")
    epochs, runs = [], []
    result = memory_study(cfg, (0, 1), on_epoch=lambda label, seed, rec: epochs.append((label, seed)),
                          on_run=runs.append, **TINY)
    assert result.budget == Budget(updates=30, batch_size=8, steps_per_epoch=6, epochs=5, patience=3)
    assert [(r.label, r.train_config.seed) for r in runs] == [
        ("FFNN w1", 0), ("FFNN w6", 0), ("GRU", 0), ("FFNN w1", 1), ("FFNN w6", 1), ("GRU", 1)]
    assert {r.train_config.batch_size for r in runs} == {8} and len(epochs) == sum(len(r.history) for r in runs)
    table = result.table
    assert list(table["label"]) == ["FFNN w1", "FFNN w6", "GRU"] and list(table["seeds"]) == [2, 2, 2]
    assert (table["latency_ms"] > 0).all() and (table["n_params"] > 0).all() and not result.cancelled
    assert result.verdict.memory in ("needed", "not needed", "inconclusive") and result.verdict.text


def test_a_cancelled_study_judges_the_runs_it_finished():
    cfg = prepare(labelled_csv(), "mine.csv")
    done = []
    result = memory_study(cfg, (0,), on_run=done.append, should_stop=lambda: len(done) >= 2, **TINY)
    assert result.cancelled and len(result.runs) == 2
    assert result.verdict.sentences[0] == "The study was cancelled; this verdict reads only the runs that finished."


def test_study_command_prints_the_verdict_and_writes_csv_and_html(tmp_path, capsys):
    data = tmp_path / "mine.csv"
    data.write_bytes(labelled_csv())
    out = tmp_path / "out"
    assert main(["study", str(data), "--label", "label", "--seeds", "0", "1", "--windows", "1", "6", "--models",
                 "gru", "--hidden", "8", "--updates", "12", "--out-dir", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "study.csv")
    assert list(table["label"]) == ["FFNN w1", "FFNN w6", "GRU"]
    assert printed.splitlines()[-1] == f"wrote {out / 'study.csv'} and {out / 'report.html'}"
    page = (out / "report.html").read_text()
    verdict = printed.splitlines()[-2]
    assert verdict.split(". ")[0] in page.replace("&#x27;", "'")
    assert page.count("plotly.js v") == 1 and page.count('class="plotly-graph-div"') == 4  # inline once, 4 charts
    assert "<script src=" not in page  # nothing to fetch: it opens offline
    assert len(RunStore().runs()) == 6


@pytest.mark.parametrize("args, message", [
    (["--label", "nope"], "column 'nope' not found; available columns: s0, s1, s2, s3, s4, s5, label."),
    (["--label", "label", "--target", "s0"], "give a target (a column to forecast) or a label (one per sequence), "
                                             "not both; got target 's0' and label 'label'."),
    (["--label", "label", "--updates", "0"], "min_updates must be between 1 and 1000000, got 0."),
    (["--label", "label", "--windows", "9"], "FFNN window 9 is longer than the sequence (6 steps); choose a window "
                                             "between 1 and 6."),
    (["--label", "label", "--models", "ffnn"], "'ffnn' is not a recurrent model; choose from: rnn, gru, lstm."),
    (["--label", "label", "--threads", "0"], "--threads must be at least 1, got 0."),
])
def test_study_command_refuses_bad_values_in_one_line(tmp_path, capsys, args, message):
    data = tmp_path / "mine.csv"
    data.write_bytes(labelled_csv())
    with pytest.raises(SystemExit) as exit_info:
        main(["study", str(data), *args, "--out-dir", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.strip().splitlines() == [ERROR + message]
    assert not (tmp_path / "out").exists()


def test_study_command_names_an_unreadable_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["study", str(tmp_path / "absent.csv")])
    absent = tmp_path / "absent.csv"
    assert capsys.readouterr().err.strip() == f"{ERROR}cannot read {absent}: No such file or directory; check the path."


def test_torch_state_is_left_alone():
    before = torch.random.get_rng_state()
    memory_study(prepare(labelled_csv(), "mine.csv"), (0,), **TINY)
    assert torch.equal(before, torch.random.get_rng_state())
