"""Sweeps on a real Ray cluster (`ray start --head --num-cpus 2`, started here and stopped afterwards):
equal to serial training, live progress, cancel, and a worker killed mid-run."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from lib import backends
from lib.backends import RayBackend
from lib.cli import main
from lib.errors import ConfigError
from lib.experiments import compare, window_sweep
from lib.models import ModelConfig
from lib.store import RunStore
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig

TASK = TextRecallConfig(distance=2, n_train=300, n_val=100, n_test=100, seed=1)
FAST = TrainConfig(epochs=2, patience=0, device="cpu")
TIMELESS = ("epoch", "train_loss", "val_loss", "val_metric")  # what must match; timings never do


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster(NamedTuple):
    address: str
    session: int  # the process session of the head node and of every process it starts

    @property
    def backend(self) -> RayBackend:
        return RayBackend(address=self.address)


@pytest.fixture(scope="module")
def cluster():
    """A fresh two-CPU Ray head node; the test process is disconnected and the node stopped afterwards."""
    ray = pytest.importorskip("ray")
    # a node on this machine for this test only: no token authentication, whatever ~/.ray holds
    saved_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp = Path(tempfile.mkdtemp(prefix="lbray", dir="/tmp"))  # Ray's socket paths must stay short
    port = _free_port()
    log = temp / "head.log"
    ray_cli = Path(sys.executable).with_name("ray")
    with log.open("w") as out:
        head = subprocess.Popen(
            [str(ray_cli if ray_cli.exists() else shutil.which("ray")), "start", "--head", "--block",
             "--num-cpus", "2", "--port", str(port), "--temp-dir", str(temp), "--include-dashboard=false",
             "--disable-usage-stats"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head node did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Cluster(f"127.0.0.1:{port}", head.pid)  # start_new_session: the head leads its own session
    finally:
        ray.shutdown()  # disconnect first: a driver whose head vanishes waits a minute and then aborts
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the node's processes on SIGTERM
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # anything of the node still left
        except ProcessLookupError:
            pass
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)
        if saved_mode is None:
            os.environ.pop("RAY_AUTH_MODE")
        else:
            os.environ["RAY_AUTH_MODE"] = saved_mode


@pytest.fixture
def one_thread():
    """Serial training at the thread count of a one-CPU Ray task."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _timeless(history):
    return [{k: h[k] for k in TIMELESS} for h in history]


def test_backend_names_and_defaults():
    assert backends.resolve(None) == "local" and backends.resolve("local") == "local"
    assert backends.resolve("ray") == RayBackend()
    with pytest.raises(ConfigError, match=r"^unknown backend 'dask'; choose one of: local, ray\.$"):
        backends.resolve("dask")
    with pytest.raises(ConfigError, match=r"^cpus_per_run must be a whole number of at least 1, got 0\.$"):
        compare(TASK, [ModelConfig(kind="ffnn", window=3)], FAST, backend=RayBackend(cpus_per_run=0))


def test_missing_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ConfigError, match=r"^Ray is not installed; pip install -r requirements-cluster\.txt\.$"):
        compare(TASK, [ModelConfig(kind="ffnn", window=3)], FAST, backend="ray")


def test_ray_runs_equal_serial_runs_and_the_driver_writes_the_store(cluster, one_thread, tmp_path):
    models = [ModelConfig(kind="ffnn", window=3, hidden=8), ModelConfig(kind="gru", hidden=8)]
    serial = compare(TASK, models, FAST, seeds=(0, 1))
    epochs, finished = [], []
    with RunStore(tmp_path / "runs.sqlite") as store:
        comp = compare(TASK, models, FAST, seeds=(0, 1), store=store, backend=cluster.backend,
                       on_epoch=lambda label, seed, rec: epochs.append((label, seed, rec["epoch"])),
                       on_run=finished.append)
        assert not comp.cancelled
        assert [(r.label, r.train_config.seed) for r in comp.runs] == [
            (r.label, r.train_config.seed) for r in serial.runs]  # spec order, as serial
        for ray_run, local in zip(comp.runs, serial.runs, strict=True):
            assert ray_run.status == "completed" and ray_run.test == local.test
            assert _timeless(ray_run.history) == _timeless(local.history)
            assert ray_run.n_params == local.n_params and ray_run.env["threads"] == 1
        assert sorted(epochs) == sorted((r.label, r.train_config.seed, e) for r in serial.runs for e in (1, 2))
        assert len(finished) == 4
        stored = store.runs()
        assert sorted(stored["status"]) == ["completed"] * 4 and set(stored["epochs"]) == {2}
        rec = store.get(comp.runs[1].run_id)
        assert _timeless(rec["history"]) == _timeless(serial.runs[1].history)
        assert rec["metrics"] == serial.runs[1].test and rec["host"] == socket.gethostname()
        assert rec["env"]["node"] == socket.gethostname() and store.load_weights(rec["id"]) is not None
        # identical runs are reused from the store, as with local runs
        again = compare(TASK, models, FAST, seeds=(0, 1), store=store, backend=cluster.backend)
        assert [r.run_id for r in again.runs] == [r.run_id for r in comp.runs]
        assert all(r.message.startswith("reused stored run") for r in again.runs)


def test_progress_arrives_mid_run_and_cancel_stops_ray_tasks_quickly(cluster, tmp_path):
    long = replace(FAST, epochs=400)  # minutes if nobody cancels
    progress, asked = [], []  # the first epoch record cancels: it must arrive while the runs are in flight

    def should_stop():
        if progress and not asked:
            asked.append(time.monotonic())
        return bool(progress)

    with RunStore(tmp_path / "runs.sqlite") as store:
        comp = compare(TASK, [ModelConfig(kind="lstm", hidden=8)], long, seeds=(0, 1, 2, 3), store=store,
                       backend=cluster.backend, should_stop=should_stop,
                       on_epoch=lambda *a: progress.append(a))
        stopped_in = time.monotonic() - asked[0]
        assert stopped_in < 3.0, f"the sweep took {stopped_in:.1f} s to stop"
        assert comp.cancelled
        assert 1 <= len(comp.runs) <= 2  # the runs in flight on two CPUs; the queued ones never started
        for run in comp.runs:
            assert run.status == "cancelled" and len(run.history) < 400
            assert run.message.startswith("cancelled during epoch")
        assert max(len(r.history) for r in comp.runs) >= 1
        stored = store.runs()
        assert sorted(stored["id"]) == sorted(r.run_id for r in comp.runs)
        assert set(stored["status"]) == {"cancelled"}
        assert list(stored["epochs"]) == [len(store.get(i)["history"]) for i in stored["id"]]


def _task_workers(session: int) -> list[int]:
    """Pids of this cluster's workers that are training a run right now."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::_train_task")
                    and os.getsid(int(entry.name)) == session):
                pids.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return pids


def test_a_killed_worker_fails_its_run_and_nothing_else(cluster, tmp_path):
    runs_cfg = replace(FAST, epochs=60)
    killed = []

    def kill_one(label, seed, rec):
        if not killed:
            pids = _task_workers(cluster.session)
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

    with RunStore(tmp_path / "runs.sqlite") as store:
        comp = compare(TASK, [ModelConfig(kind="lstm", hidden=8)], runs_cfg, seeds=(0, 1, 2), store=store,
                       backend=cluster.backend, on_epoch=kill_one)
        assert killed, "no training worker was found to kill"
        statuses = sorted(r.status for r in comp.runs)
        assert statuses == ["completed", "completed", "failed"] and not comp.cancelled
        failed = next(r for r in comp.runs if r.status == "failed")
        assert failed.message.startswith("failed: the Ray worker training this run died after ")
        assert "the other runs were not affected" in failed.message and failed.test == {}
        assert all(len(r.history) == 60 for r in comp.runs if r.status == "completed")
        rec = store.get(failed.run_id)
        assert rec["status"] == "failed" and rec["message"] == failed.message
        assert sorted(store.runs()["status"]) == statuses


def test_an_error_here_stops_the_sweep_and_closes_its_runs_in_the_store(cluster, tmp_path):
    def broken(label, seed, rec):
        raise RuntimeError("the caller broke")

    with RunStore(tmp_path / "runs.sqlite") as store:
        with pytest.raises(RuntimeError, match="^the caller broke$"):
            compare(TASK, [ModelConfig(kind="lstm", hidden=8)], replace(FAST, epochs=400), seeds=(0, 1), store=store,
                    backend=cluster.backend, on_epoch=broken)
        stored = store.runs()
        assert len(stored) >= 1 and set(stored["status"]) == {"cancelled"}  # every run still in flight
        assert {store.get(i)["message"] for i in stored["id"]} == {"cancelled: the sweep stopped on RuntimeError"}


def test_ray_cuda_runs_need_a_gpu_in_the_cluster(cluster):
    import ray

    if ray.cluster_resources().get("GPU"):
        pytest.skip("this cluster has a GPU")
    with pytest.raises(ConfigError, match=r"^device 'cuda' was asked for but the Ray cluster \(127\.0\.0\.1:\d+\) "
                                          r"has no GPU; use 'auto' or 'cpu', or add GPU nodes\.$"):
        window_sweep(TASK, [2], replace(FAST, device="cuda"), references=(), backend=cluster.backend)


def test_the_new_kinds_train_on_ray_as_they_do_here(cluster, one_thread):
    """Issue 19: the linear map, TCN, Transformer and minGRU as Ray tasks, equal to serial runs."""
    models = [ModelConfig(kind="linear", window=4), ModelConfig(kind="tcn", hidden=4, levels=2),
              ModelConfig(kind="transformer", hidden=8), ModelConfig(kind="mingru", hidden=4)]
    one_epoch = replace(FAST, epochs=1)
    serial = compare(TASK, models, one_epoch)
    comp = compare(TASK, models, one_epoch, backend=cluster.backend)
    assert [r.label for r in comp.runs] == ["Linear w4", "TCN k3 n2", "Transformer", "minGRU"]
    for ray_run, local in zip(comp.runs, serial.runs, strict=True):
        assert ray_run.status == "completed" and ray_run.test == local.test, ray_run.label
        assert _timeless(ray_run.history) == _timeless(local.history) and ray_run.n_params == local.n_params


def test_cli_runs_a_sweep_on_ray(cluster, capsys):
    code = main(["compare", "--set", "distance=2", "n_train=300", "n_val=100", "n_test=100", "seed=1",
                 "--models", "ffnn:window=3,hidden=8", "--epochs", "2", "--device", "cpu", "--no-store",
                 "--backend", "ray", "--address", cluster.address])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "FFNN w3" in out.out and "completed" in out.out
    assert "epoch   2" in out.err  # per-epoch progress reaches the command line from the workers


def test_local_backend_still_reports_progress_in_this_thread():
    seen = []
    compare(TASK, [ModelConfig(kind="ffnn", window=3, hidden=8)], FAST, backend="local",
            on_epoch=lambda *a: seen.append(threading.current_thread().name))
    assert seen == [threading.current_thread().name] * 2
