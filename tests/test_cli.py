import json

import pytest

from lib.cli import main, parse_model
from lib.errors import ConfigError
from lib.store import RunStore

TINY = ["--set", "distance=2", "n_train=300", "n_val=100", "n_test=100", "--epochs", "2", "--quiet"]


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "cli.sqlite"))


def test_parse_model_reads_kind_and_settings():
    cfg = parse_model("ffnn:window=7,hidden=32,dropout=0.1")
    assert (cfg.kind, cfg.window, cfg.hidden, cfg.dropout) == ("ffnn", 7, 32, 0.1)
    with pytest.raises(ConfigError, match="^unknown model setting\\(s\\) widht; valid: "):
        parse_model("ffnn:widht=3")


def test_compare_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "res.json"
    assert main(["compare", *TINY, "--models", "ffnn:window=3", "rnn:hidden=8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "FFNN w3" in printed and "RNN" in printed
    rows = json.loads(out.read_text())
    assert [r["label"] for r in rows] == ["FFNN w3", "RNN"]
    assert len(RunStore().runs()) == 2


def test_bad_settings_exit_2_with_the_message(capsys):
    assert main(["compare", *TINY, "--models", "ffnn:window=99"]) == 2
    assert "error: FFNN window 99 is longer than the sequence (7 steps)" in capsys.readouterr().err


def test_parallel_sweep_matches_serial_and_rerun_reproduces(tmp_path, capsys):
    import pandas as pd
    import torch

    from lib.experiments import worker_plan

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
