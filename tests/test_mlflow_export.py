"""Export to a real MLflow tracking server (SQLite backend, temporary artifact folder), started here and
stopped afterwards; every number read back through the MLflow client must equal the store's."""
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import pytest

from lib.bundles import import_bundle
from lib.cli import main
from lib.errors import ConfigError
from lib.experiments import compare
from lib.mlflow_export import dataset_fingerprint, export_runs
from lib.models import ModelConfig
from lib.runs import dataset
from lib.store import RunStore, StoreError
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig

TASK = TextRecallConfig(distance=2, n_train=300, n_val=100, n_test=100, seed=1)
FAST = TrainConfig(epochs=2, patience=0, device="cpu")


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    pytest.importorskip("mlflow")
    folder = tmp_path_factory.mktemp("mlflow")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = folder / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
             "--default-artifact-root", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no job-runner processes
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the MLflow server did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.25)
        yield uri
    finally:
        _stop_group(server)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group that proc leads, SIGKILL to whatever of it is left after 30 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # all gone
    proc.wait()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two completed runs, one cancelled mid-run and one still running; exporting leaves the store as it is."""
    with RunStore(tmp_path_factory.mktemp("store") / "runs.sqlite") as s:
        compare(TASK, [ModelConfig(kind="ffnn", window=3, hidden=8), ModelConfig(kind="gru", hidden=8)], FAST,
                store=s)
        polls = iter(range(100))
        compare(TASK, [ModelConfig(kind="lstm", hidden=8)], FAST, store=s, should_stop=lambda: next(polls) > 6)
        s.start_run({"task": {"name": "text_recall"}}, 0, "LSTM", "text_recall", {})
        yield s


def _client(uri):
    from mlflow import MlflowClient

    return MlflowClient(uri)


def test_export_copies_every_number_and_exports_a_run_once(tracking_uri, store, tmp_path):
    runs = store.runs()
    ids = list(runs["id"])
    summary = export_runs(store, ids, tracking_uri, "lookback-test")
    finished = list(runs.loc[runs["status"] != "running", "id"])
    assert sorted(r["run_id"] for r in summary["exported"]) == sorted(finished)
    running = runs.loc[runs["status"] == "running", "id"].item()
    assert summary["skipped"] == [{"run_id": running, "mlflow_run_id": None,
                                   "reason": "still running; export it once it has finished"}]
    client = _client(tracking_uri)
    fingerprint = dataset_fingerprint(dataset(TASK))
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)
    for row in summary["exported"]:
        rec = store.get(row["run_id"])
        run = client.get_run(row["mlflow_run_id"])
        assert run.info.experiment_id == summary["experiment_id"]
        assert run.info.status == {"completed": "FINISHED", "cancelled": "KILLED"}[rec["status"]]
        assert run.info.run_name == f"{rec['label']} seed {rec['seed']}"
        expected_params = {"seed": str(rec["seed"])} | {
            f"{section}.{k}": str(v) for section, values in rec["config"].items() for k, v in values.items()}
        assert run.data.params == expected_params
        for key in ("train_loss", "val_loss", "val_metric", "epoch_seconds", "elapsed_seconds"):
            history = client.get_metric_history(row["mlflow_run_id"], key)
            assert [(m.step, m.value) for m in history] == [(h["epoch"], h[key]) for h in rec["history"]]
        metrics = run.data.metrics
        assert {k: metrics[f"test_{k}"] for k in rec["metrics"]} == rec["metrics"]
        assert metrics["n_params"] == rec["n_params"]
        if rec["best_epoch"] is None:
            assert "best_epoch" not in metrics
        else:
            assert metrics["best_epoch"] == rec["best_epoch"]
        tags = run.data.tags
        assert tags["lookback.run_id"] == rec["id"] and tags["lookback.status"] == rec["status"]
        assert tags["lookback.message"] == rec["message"] and tags["lookback.config_hash"] == rec["config_hash"]
        assert tags["lookback.dataset_fingerprint"] == fingerprint
        assert {k[4:]: v for k, v in tags.items() if k.startswith("env.")} == {
            k: str(v) for k, v in rec["env"].items()}
        [artifact] = client.list_artifacts(row["mlflow_run_id"])
        assert artifact.path == f"lookback-{rec['id']}.zip"
        bundle = (tmp_path / "dl" / row["run_id"])
        bundle.mkdir(parents=True)
        data = open(client.download_artifacts(row["mlflow_run_id"], artifact.path, str(bundle)), "rb").read()
        assert f"{rec['id']}/history.csv" in zipfile.ZipFile(io.BytesIO(data)).namelist()
        with RunStore(tmp_path / f"imported-{rec['id']}.sqlite") as other:
            [imported] = import_bundle(other, data).imported
            assert other.get(imported)["history"] == rec["history"]
    # a second export skips them all and makes no new MLflow run
    again = export_runs(store, ids, tracking_uri, "lookback-test")
    assert again["exported"] == []
    assert sorted((r["run_id"], r["mlflow_run_id"]) for r in again["skipped"] if r["mlflow_run_id"]) == sorted(
        (r["run_id"], r["mlflow_run_id"]) for r in summary["exported"])
    assert {r["reason"] for r in again["skipped"] if r["mlflow_run_id"]} == {"already exported"}
    assert len(client.search_runs([summary["experiment_id"]])) == len(finished)


def test_runs_of_the_new_kinds_export_with_their_own_settings(tracking_uri, tmp_path):
    """Issue 19: the linear map, TCN, Transformer and minGRU carry their settings (variant, kernel, levels, heads)
    to MLflow as params."""
    models = [ModelConfig(kind="linear", window=4, variant="dlinear"), ModelConfig(kind="tcn", hidden=4, levels=2),
              ModelConfig(kind="transformer", hidden=8, heads=4), ModelConfig(kind="mingru", hidden=4)]
    with RunStore(tmp_path / "new.sqlite") as s:
        comp = compare(TASK, models, TrainConfig(epochs=1, patience=0, device="cpu"), store=s, n_jobs=1)
        summary = export_runs(s, [r.run_id for r in comp.runs], tracking_uri, "lookback-new-kinds")
    assert [r["run_id"] for r in summary["exported"]] == [r.run_id for r in comp.runs]
    client = _client(tracking_uri)
    params = [client.get_run(r["mlflow_run_id"]).data.params for r in summary["exported"]]
    assert [p["model.kind"] for p in params] == ["linear", "tcn", "transformer", "mingru"]
    assert (params[0]["model.variant"], params[1]["model.levels"], params[1]["model.kernel"],
            params[2]["model.heads"]) == ("dlinear", "2", "3", "4")
    runs = [client.get_run(r["mlflow_run_id"]) for r in summary["exported"]]
    assert [r.data.metrics["n_params"] for r in runs] == [r.n_params for r in comp.runs]


def test_cli_exports_every_finished_run(tracking_uri, store, monkeypatch, capsys):
    monkeypatch.setenv("LOOKBACK_DB", str(store.path))
    assert main(["export-mlflow", "--tracking-uri", tracking_uri, "--experiment", "cli"]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"^exported [0-9a-f]+ -> MLflow run [0-9a-f]+$", out, re.M)) == 3
    assert re.search(r"^3 exported, 0 skipped; experiment 'cli' \(id \d+\) at http://127\.0\.0\.1:\d+$", out, re.M)
    first = store.runs()["id"].iloc[-1]
    assert main(["export-mlflow", first, "--tracking-uri", tracking_uri, "--experiment", "cli"]) == 0
    assert f"skipped {first}: already exported" in capsys.readouterr().out


def test_export_refuses_before_sending_anything(tracking_uri, store, monkeypatch):
    with pytest.raises(StoreError, match=r"^no run 'nope' in "):
        export_runs(store, ["nope"], tracking_uri, "refused")
    with pytest.raises(ConfigError, match=r"^choose at least one run to export\.$"):
        export_runs(store, [], tracking_uri)
    with pytest.raises(ConfigError, match=r"^give the MLflow tracking URI \(--tracking-uri or MLFLOW_TRACKING_URI\)"):
        export_runs(store, list(store.runs()["id"]), None)
    assert _client(tracking_uri).get_experiment_by_name("refused") is None
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ConfigError, match=r"^MLflow is not installed; pip install -r requirements-team\.txt\.$"):
        export_runs(store, list(store.runs()["id"]), tracking_uri)


def test_an_unreachable_server_is_a_config_error(store, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    with pytest.raises(ConfigError, match=rf"^cannot use the MLflow server at http://127\.0\.0\.1:{port}: "):
        export_runs(store, list(store.runs()["id"]), f"http://127.0.0.1:{port}")


def test_runs_page_exports_the_selected_finished_runs(tracking_uri, store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from pages._run import _open_store
    from tests.test_pages import APP, runs_table

    monkeypatch.setenv("LOOKBACK_DB", str(store.path))
    _open_store.clear()
    try:
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.switch_page("pages/runs.py").run()
        finished = runs_table(at).value.query("status != 'running'")
        at.session_state[runs_table(at).key] = {"selection": {"rows": list(finished.index), "columns": []}}
        at.run()
        at.text_input(key="runs_mlflow_uri").set_value(tracking_uri)
        at.text_input(key="runs_mlflow_experiment").set_value("lookback-page")
        at.button(key="runs_mlflow_export").click().run()
        assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
        assert [s.value for s in at.success] == [
            f"Exported {len(finished)} run(s) to experiment “lookback-page” at {tracking_uri}; skipped 0 exported "
            f"before."]
        exported = _client(tracking_uri).search_runs(
            [_client(tracking_uri).get_experiment_by_name("lookback-page").experiment_id])
        assert sorted(r.data.tags["lookback.run_id"] for r in exported) == sorted(finished["id"])
    finally:
        _open_store.clear()
