import json
import math
import re
from pathlib import Path

import pytest

from lib.cli import _parser, main, parse_model
from lib.errors import ConfigError
from lib.store import RunStore

TINY = ["--set", "distance=2", "n_train=300", "n_val=100", "n_test=100", "--epochs", "2", "--quiet"]
TIMELESS = ("epoch", "train_loss", "val_loss", "val_metric")


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "cli.sqlite"))


def fails(argv: list[str], capsys) -> str:
    """The last stderr line of a command that must exit with status 2, without a traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_parse_model_reads_kind_and_settings_by_field_type():
    cfg = parse_model("ffnn:window=7,hidden=32,dropout=0.1")
    assert (cfg.kind, cfg.window, cfg.hidden, cfg.dropout) == ("ffnn", 7, 32, 0.1)
    assert type(parse_model("lstm:dropout=0").dropout) is float
    with pytest.raises(ConfigError, match="^unknown parameter\\(s\\) for ModelConfig: widht; valid: "):
        parse_model("ffnn:widht=3")


@pytest.mark.parametrize("command", ["compare", "window-sweep", "distance-sweep", "sweep"])
def test_every_training_command_uses_every_core_unless_told(command):
    required = {"window-sweep": ["--windows", "3"], "distance-sweep": ["--distances", "3"]}
    args = _parser().parse_args([command, *required.get(command, [])])
    assert args.jobs is None and callable(args.func)  # None: one worker per torch thread (lib.backends)
    assert _parser().parse_args([command, *required.get(command, []), "--jobs", "1"]).jobs == 1
    assert _parser().parse_args([command, *required.get(command, []), "--jobs", "-1"]).jobs == -1


def test_compare_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "res.json"
    assert main(["compare", *TINY, "--models", "ffnn:window=3", "rnn:hidden=8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "FFNN w3" in printed and "RNN" in printed
    rows = json.loads(out.read_text())
    assert [r["label"] for r in rows] == ["FFNN w3", "RNN"]
    assert len(RunStore().runs()) == 2


def test_the_new_kinds_train_from_the_command_line_and_a_window_sweep_sweeps_the_tcn(tmp_path, capsys):
    """Issue 19: `--models tcn:levels=4,kernel=3 transformer linear:window=8`; a window sweep with --swept."""
    tiny = ["--set", "distance=4", "n_train=120", "n_val=40", "n_test=40", "--epochs", "1", "--quiet", "--jobs", "1"]
    out = tmp_path / "res.json"
    models = ["tcn:levels=4,kernel=3,hidden=8", "transformer:hidden=8", "linear:window=8", "mingru:hidden=8"]
    assert main(["compare", *tiny, "--models", *models, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["label"], r["status"]) for r in rows] == [("TCN k3 n4", "completed"), ("Transformer", "completed"),
                                                         ("Linear w8", "completed"), ("minGRU", "completed")]
    seen = [r["steps_seen"] for r in rows]  # 1 + 2(3 - 1)(2^4 - 1) for the TCN; None (NaN): the whole sequence
    assert seen[0::2] == [61, 8] and all(math.isnan(v) for v in seen[1::2])
    assert "steps_seen" in capsys.readouterr().out
    assert main(["window-sweep", *tiny, "--windows", "2", "9", "--swept", "linear", "tcn:kernel=2,hidden=4",
                 "--references", "transformer:hidden=8", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())  # the cue lies 9 steps back: TCN fields 3 and 7 lie in 2..9, 15 reaches it
    assert [(r["label"], r["steps_seen"]) for r in rows[:-1]] == [
        ("Linear w2", 2), ("Linear w9", 9), ("TCN k2 n1", 3), ("TCN k2 n2", 7), ("TCN k2 n3", 15)]
    assert rows[-1]["label"] == "Transformer" and math.isnan(rows[-1]["steps_seen"])
    assert fails(["window-sweep", *tiny, "--windows", "2", "--swept", "lstm"], capsys) == (
        "python -m lib: error: --swept takes the models that see a fixed number of steps back (ffnn, linear, tcn), "
        "not lstm; give the others as --references.")


ERROR = "python -m lib: error: "
BIG = "between -9223372036854775808 and 9223372036854775807"


@pytest.mark.parametrize("args, message", [
    (["--set", "distance=abc"], ERROR + "distance must be a whole number, got 'abc'."),
    (["--set", "distance=2.5"], ERROR + "distance must be a whole number, got 2.5."),
    (["--set", "n_train=300.5"], ERROR + "n_train must be a whole number, got 300.5."),
    (["--set", "seed=-1"], ERROR + "data seed (seed) must be at least 0, got -1."),
    (["--set", "distance"], ERROR + "task settings look like name=value, got 'distance'."),
    (["--set", "colour=red"], ERROR + "unknown parameter(s) for task 'text_recall': colour; valid: cues, distance, "
                                      "distance_max, n_test, n_train, n_val, objective, seed."),
    (["--models", "lstm:hidden=2.5"], ERROR + "hidden must be a whole number, got 2.5."),
    (["--models", "lstm:hidden=abc"], ERROR + "hidden must be a whole number, got 'abc'."),
    (["--models", "lstm:hidden=1e9"], ERROR + "hidden units (hidden) must be between 1 and 4096, got 1000000000."),
    (["--models", "ffnn:window=none"], ERROR + "window must be a whole number, got 'none'."),
    (["--models", "ffnn:window=99"], ERROR + "FFNN window 99 is longer than the sequence (7 steps); choose a "
                                             "window between 1 and 7."),
    (["--models", "mamba"], re.compile(re.escape(ERROR + "unknown model 'mamba'; choose one of: ") + ".+")),
    (["--task", "sine", "--set", "periods=24"],
     ERROR + "give one amplitude per period: 1 period(s) but 2 amplitude(s)."),
    (["--task", "sine", "--set", "periods=24,x"], ERROR + "periods[1] must be a finite number, got 'x'."),
    (["--seeds", "99999999999999999999"], ERROR + f"seed must fit in 64 bits ({BIG}), got 99999999999999999999."),
    (["--seeds", "9223372036854775808"], ERROR + f"seed must fit in 64 bits ({BIG}), got 9223372036854775808."),
    (["--epochs", "-1"], ERROR + "max epochs (epochs) must be between 1 and 1000, got -1."),
    (["--lr", "nan"], ERROR + "lr must be a finite number, got nan."),
    (["--device", "tpu"], ERROR + "unknown device 'tpu'; use 'auto', 'cpu' or 'cuda'."),
    (["--out", "/"], ERROR + "--out / is a folder; give a file name ending in .csv or .json."),
    (["--jobs", "0"], "python -m lib compare: error: argument --jobs: give -1 (one per core) or a positive "
                      "number of processes, got '0'"),
    (["--seeds", "x"], "python -m lib compare: error: argument --seeds: invalid int value: 'x'"),
])
def test_bad_values_exit_2_with_one_line_before_any_training(args, message, capsys):
    base = ["compare", *TINY, "--models", "ffnn:window=3"]
    line = fails([*base, *args], capsys)
    assert message.fullmatch(line) if isinstance(message, re.Pattern) else line == message
    assert RunStore().runs().empty


@pytest.mark.parametrize("task", [
    ["--task", "text_recall", "--set", "distance=2", "n_train=60", "n_val=20", "n_test=20"],
    ["--task", "sine", "--set", "periods=4", "amplitudes=1", "length=200", "seq_len=8"],
    ["--task", "video", "--set", "gap=1", "n_train=20", "n_val=10", "n_test=10"],
], ids=["text_recall", "sine", "video"])
def test_rerun_reproduces_a_stored_run_of_every_task(task, capsys):
    assert main(["compare", *task, "--models", "gru:hidden=4", "--epochs", "2", "--quiet"]) == 0
    store = RunStore()
    (stored,) = store.runs()["id"]
    capsys.readouterr()
    assert main(["rerun", stored]) == 0
    assert "the numbers match" in capsys.readouterr().out
    old, new = (store.get(i) for i in store.runs()["id"])
    assert old["config"] == new["config"] and new["metrics"] == old["metrics"]
    assert [{k: h[k] for k in TIMELESS} for h in new["history"]] == [
        {k: h[k] for k in TIMELESS} for h in old["history"]]


def test_rerun_of_a_run_without_a_task_name_says_so(capsys):
    store = RunStore()
    run_id = store.start_run({"task": {"distance": 3}, "model": {}, "train": {}}, 0, "LSTM", "text_recall", {})
    assert fails(["rerun", run_id], capsys) == (
        f"{ERROR}run {run_id} cannot be rerun: unknown task None; choose one of: text_recall, sine, video, adding, "
        "copy_memory, userdata.")
    run_id = store.start_run({"task": {"name": "sine"}}, 0, "LSTM", "sine", {})
    assert fails(["rerun", run_id], capsys) == f"{ERROR}run {run_id} cannot be rerun: its config lacks model, train."


def test_parallel_sweep_matches_serial_and_rerun_reproduces(tmp_path, capsys):
    import pandas as pd
    import torch

    from lib.backends import worker_plan

    # bitwise equality needs the same torch thread count per run (it sets the summation order)
    threads = torch.get_num_threads()
    torch.set_num_threads(worker_plan(2, 3)[1])
    args = ["sweep", *TINY, "--windows", "1", "3", "--models", "lstm:hidden=8", "--no-store"]
    assert main([*args, "--jobs", "1", "--out", str(tmp_path / "serial.csv")]) == 0
    assert main([*args, "--jobs", "2", "--out", str(tmp_path / "parallel.csv")]) == 0
    serial, parallel = pd.read_csv(tmp_path / "serial.csv"), pd.read_csv(tmp_path / "parallel.csv")
    assert list(serial["label"]) == ["FFNN w1", "FFNN w3", "LSTM"]
    assert serial[["label", "metric", "test_loss"]].equals(parallel[["label", "metric", "test_loss"]])
    torch.set_num_threads(threads)
    assert main(["sweep", *TINY, "--windows", "2", "--models", "--jobs", "2"]) == 0
    run_id = RunStore().runs()["id"].iloc[0]
    capsys.readouterr()
    assert main(["rerun", run_id]) == 0
    assert "the numbers match" in capsys.readouterr().out


def airline_csv(path, months: int = 144):
    """A monthly series as short as the classic airline data: a trend and a yearly cycle, 1949-01 on."""
    import numpy as np
    import pandas as pd

    t = np.arange(months)
    passengers = (120 + 2 * t + 40 * np.sin(2 * np.pi * t / 12)).round().astype(int)
    dates = pd.period_range("1949-01", periods=months, freq="M").astype(str)
    pd.DataFrame({"Date": dates, "Passengers": passengers}).to_csv(path, index=False)
    return path


def test_study_naming_only_target_and_time_keeps_the_window_that_fits_a_short_series(tmp_path, capsys):
    data, out = airline_csv(tmp_path / "airline.csv"), tmp_path / "out"
    assert main(["study", str(data), "--target", "Passengers", "--time", "Date", "--seeds", "0", "--windows", "1",
                 "--models", "gru", "--hidden", "4", "--updates", "5", "--no-store", "--quiet",
                 "--out-dir", str(out)]) == 0
    assert "past windows of 12 rows" in capsys.readouterr().out  # the longest leaving 10 windows in val and test
    assert (out / "study.csv").exists()


@pytest.mark.parametrize("where", ["under_a_file", "in_proc"])
def test_study_refuses_an_out_dir_it_cannot_write_before_any_training(tmp_path, monkeypatch, capsys, where):
    import lib.study

    def trained(*args, **kwargs):
        raise AssertionError("the study trained")

    monkeypatch.setattr(lib.study, "memory_study", trained)
    (tmp_path / "file").write_text("")
    out, why = {"under_a_file": (tmp_path / "file" / "out", "Not a directory"),
                "in_proc": (Path("/proc/lookback_out"), "No such file or directory")}[where]
    if where == "in_proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    argv = ["study", str(airline_csv(tmp_path / "airline.csv", 240)), "--target", "Passengers", "--window", "12",
            "--out-dir", str(out)]
    assert fails(argv, capsys) == (f"{ERROR}--out-dir {out} cannot be written ({why}); give a folder you can "
                                   f"create and write to.")


def test_checking_the_out_dir_leaves_no_folder_behind_when_the_study_is_refused(tmp_path, capsys):
    out = tmp_path / "new" / "out"
    argv = ["study", str(airline_csv(tmp_path / "airline.csv", 240)), "--target", "Passengers", "--window", "12",
            "--updates", "0", "--out-dir", str(out)]
    assert fails(argv, capsys) == f"{ERROR}min_updates must be between 1 and 1000000, got 0."
    assert not (tmp_path / "new").exists()


def test_a_quick_study_trains_one_seed_on_a_coarse_grid_prints_the_time_left_and_what_it_gives_up(tmp_path, capsys):
    data, out = airline_csv(tmp_path / "airline.csv"), tmp_path / "out"
    assert main(["study", str(data), "--target", "Passengers", "--time", "Date", "--quick", "--models", "gru",
                 "--hidden", "4", "--updates", "5", "--no-store", "--jobs", "1", "--out-dir", str(out)]) == 0
    printed = capsys.readouterr()
    runs = [line for line in printed.err.splitlines() if " seed " in line]
    assert runs and all(" seed 0: " in line for line in runs)  # one seed
    assert "runs finished in" in runs[-1] and f"{len(runs)} of {len(runs)} runs finished" in runs[-1]
    assert "A quick study: one seed and a coarse grid of FFNN windows" in printed.out
    assert "wider intervals" in printed.out and "no seed-to-seed noise" in printed.out
