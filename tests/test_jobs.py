"""The job engine (lib/jobs.py): worker processes, the queue, one job per visitor, limits and cancelling, and
faults: a killed worker, one that ignores its stop flag, a job that cannot be sent.

One engine with one slot serves most tests; each test sets the limits it needs. Jobs train tiny text-recall
models, so every test takes a second or two besides the start of a fresh worker (one per job). Tests wait for
states and events (a job that holds its slot until it is stopped, a worker's pid sent as progress), never for
a job to be still busy at the moment of a check.
"""
import functools
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from dataclasses import replace
from multiprocessing import spawn as mp_spawn
from pathlib import Path

import psutil
import pytest

from lib import hosting, jobs
from lib.costs import cost_job
from lib.experiments import Comparison, compare
from lib.jobs import CRASHED, DONE, QUEUED, RUNNING, Engine, Job, JobRefused
from lib.models import ModelConfig
from lib.runtime import Status
from lib.store import RunStore, StoreError
from lib.tasks.text import TextRecallConfig
from lib.train import TrainConfig

TASK = TextRecallConfig(distance=2, n_train=300, n_val=100, n_test=100, seed=1)
QUICK = ModelConfig(kind="ffnn", window=3, hidden=8)
SLOW = ModelConfig(kind="lstm", hidden=128)
OPEN = replace(hosting.LOCAL, queue=None, job_seconds=None, idle_seconds=None)


def quick_job(owner=None, epochs=2) -> Job:
    fn = functools.partial(compare, TASK, [QUICK], TrainConfig(epochs=epochs), (0,))
    return Job("quick", fn, total_runs=1, epochs=epochs, owner=owner)


def quick_then_slow(on_epoch, should_stop, on_run):
    """Two epochs of a small model, then a large one that trains until it is stopped."""
    compare(TASK, [QUICK], TrainConfig(epochs=2), (0,), on_epoch=on_epoch, should_stop=should_stop, on_run=on_run)
    return compare(TASK, [SLOW], TrainConfig(epochs=1000, patience=0), (0,), on_epoch=on_epoch,
                   should_stop=should_stop, on_run=on_run)


def slow_job(owner=None) -> Job:
    return Job("slow", quick_then_slow, total_runs=2, epochs=1000, owner=owner)


def die(**callbacks):
    """A job whose worker process dies, as when the kernel kills it for memory."""
    os._exit(3)


def hold(on_epoch, should_stop, on_run):
    """A job that sends its worker's pid as progress, then holds its slot until it is stopped."""
    on_epoch("hold", 0, {"epoch": 0, "pid": os.getpid()})
    while not should_stop():
        time.sleep(0.02)
    return "released"


def ignore_stop(on_epoch, **_):
    """A job that never looks at its stop flag."""
    on_epoch("stubborn", 0, {"epoch": 0, "pid": os.getpid()})
    time.sleep(3600)


def final_writes_fail(store, **callbacks):
    """A job whose run store takes every epoch but no final write (as a disk that fills up at the end): its run
    can be marked neither completed nor failed."""
    def full(*_, **__):
        raise StoreError("the disk is full")

    RunStore.finish_run = full  # in this job's worker process only
    return compare(TASK, [QUICK], TrainConfig(epochs=2), (0,), store=store, **callbacks)


def pid_of(job: Job) -> int:
    """The pid of the worker training a `hold` or `ignore_stop` job, once it has sent it."""
    until(lambda: job.progress)
    (record,) = job.progress.values()
    return record["pid"]


def idle_workers(eng: Engine) -> int:
    """Workers ready for a job and without one (read under the engine's lock: a worker's readiness and the
    dispatch it allows happen in one step)."""
    with eng._lock:
        return sum(w is not None and w.ready and w.job is None for w in eng._workers)


def gone(pid: int) -> bool:
    """The process has ended (a zombie not yet reaped counts as ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def until(condition, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def engine():
    eng = Engine(OPEN, hosting.Plan(jobs=1, threads=1))
    yield eng
    eng.close()


@pytest.fixture
def limits(engine):
    """Set the engine's limits for one test; every job is cancelled and the limits restored afterwards."""
    def set_limits(**changes):
        engine.limits = replace(OPEN, **changes)
    yield set_limits
    for job in list(engine._jobs.values()):
        job.cancel()
        job.wait(30)
    engine.limits = OPEN



def test_a_process_forked_while_the_engine_thread_holds_its_lock_still_exits(engine):
    """A training worker forked from a process with an engine (compare with n_jobs in a test, the CLI) inherits the
    engine's exit hook; run there it would wait forever for a lock the fork copied as held."""
    held, release = threading.Event(), threading.Event()

    def hold_lock():
        with engine._lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    held.wait(10)
    try:
        child = multiprocessing.get_context("fork").Process(target=int)
        child.start()
        child.join(20)
        hung = child.exitcode is None
        if hung:
            child.kill()
            child.join()
    finally:
        release.set()
        holder.join()
    assert not hung and child.exitcode == 0


def test_a_job_trains_in_a_worker_with_the_planned_threads(engine, limits):
    job = engine.submit(quick_job(epochs=3))
    assert job.wait(60)
    assert job.error is None
    assert isinstance(job.result, Comparison)
    (run,) = job.result.runs
    assert run.status == "completed" and len(run.history) == 3
    assert run.env["threads"] == 1  # the plan's thread count, set in the worker
    assert [r.label for r in job.finished] == ["FFNN w3"]
    assert job.progress[("FFNN w3", 0)]["epoch"] == 3
    assert job.fraction() == 1.0 and job.state == DONE and not job.cancelled


def test_the_queue_shows_the_place_and_refuses_when_full(engine, limits):
    limits(queue=1)
    first = engine.submit(slow_job("a"))
    until(lambda: first.state == RUNNING)
    second = engine.submit(quick_job("b"))
    assert second.state == QUEUED
    assert engine.position(second) == (1, 1)
    assert engine.position(first) is None
    assert engine.estimated_start(second) > 0
    with pytest.raises(JobRefused) as err:
        engine.submit(quick_job("c"))
    assert str(err.value) == "the training queue is full (1 waiting); try again in a few minutes."
    first.cancel()
    assert second.wait(60) and second.error is None and second.result is not None


def test_one_job_per_visitor(engine, limits):
    first = engine.submit(slow_job("visitor"))
    with pytest.raises(JobRefused) as err:
        engine.submit(quick_job("visitor"))
    assert str(err.value).startswith("you already have a job on this server (“slow”, ")
    assert str(err.value).endswith("); wait for it to finish or cancel it first: one job per visitor.")
    engine.submit(quick_job("someone else")).cancel()
    first.cancel()
    assert first.wait(30)
    assert engine.submit(quick_job("visitor")).wait(60)


def test_the_time_limit_cancels_and_keeps_the_finished_runs(engine, limits):
    job = engine.submit(slow_job())
    until(lambda: ("LSTM", 0) in job.progress)  # the quick run has finished and the slow one has an epoch
    limits(job_seconds=0.5)  # already past it: however long it took to get here under load
    assert job.wait(60)
    assert job.stop_reason == "stopped at this server's limit of 0.5 seconds per job; the runs that finished are kept"
    assert job.error is None
    assert [(r.label, r.status) for r in job.finished] == [("FFNN w3", "completed"), ("LSTM", "cancelled")]
    assert job.result.cancelled and job.result.runs[0].history  # the stopped run keeps its epochs


def test_cancel_while_queued_ends_the_job_untrained(engine, limits):
    first = engine.submit(slow_job())
    second = engine.submit(quick_job())
    second.cancel()
    assert second.state == DONE and second.wait(0)
    assert second.result is None and second.finished == []
    first.cancel("cancelled by its visitor")
    assert first.wait(30)
    assert first.stop_reason == "cancelled by its visitor"


def test_an_idle_visitors_job_is_cancelled(engine, limits):
    limits(idle_seconds=1.0)
    job = engine.submit(slow_job("gone"))
    assert job.wait(60)
    assert job.stop_reason == "cancelled because its page was closed"


def test_a_dead_worker_ends_its_job_and_fresh_workers_take_the_next(engine, limits):
    job = engine.submit(Job("dies", die, total_runs=1, epochs=1))
    assert job.wait(60)
    assert job.error == CRASHED
    after = engine.submit(quick_job())
    assert after.wait(90) and after.error is None


def test_a_killed_worker_fails_only_its_own_job_and_every_queued_job_finishes():
    """Two jobs train and two wait; `kill -9` of one worker ends that job with CRASHED, the other trains on
    untouched, and both waiting jobs train in the killed worker's slot."""
    eng = Engine(OPEN, hosting.Plan(jobs=2, threads=1))
    try:
        killed, other = (eng.submit(Job("held", hold, total_runs=1, epochs=1, owner=o)) for o in ("a", "b"))
        queued = [eng.submit(quick_job(owner)) for owner in ("c", "d")]
        pid, _ = pid_of(killed), pid_of(other)  # both train
        assert [job.state for job in queued] == [QUEUED, QUEUED]
        os.kill(pid, signal.SIGKILL)
        assert killed.wait(30) and killed.error == CRASHED
        assert not other.wait(2)  # it holds its slot until it is stopped, whatever happens to another worker
        assert all(job.wait(120) for job in queued)
        assert [job.error for job in queued] == [None, None]
        assert all(isinstance(job.result, Comparison) for job in queued)
        assert other.state == RUNNING and other.error is None
        other.cancel()
        assert other.wait(30) and other.error is None and other.result == "released"
    finally:
        eng.close()


def test_a_worker_killed_while_idle_costs_no_job():
    eng = Engine(OPEN, hosting.Plan(jobs=1, threads=1))
    try:
        until(lambda: eng._workers[0] is not None)
        pid = eng._workers[0].proc.pid
        os.kill(pid, signal.SIGKILL)
        until(lambda: gone(pid))
        job = eng.submit(quick_job())
        assert job.wait(90) and job.error is None and isinstance(job.result, Comparison)
    finally:
        eng.close()


def test_cancel_and_the_time_limit_end_a_job_that_ignores_its_stop_flag(engine, limits, monkeypatch):
    monkeypatch.setattr(jobs, "STOP_GRACE_S", 1.0)
    stubborn = engine.submit(Job("stubborn", ignore_stop, total_runs=1, epochs=1))
    pid = pid_of(stubborn)
    stubborn.cancel()
    assert stubborn.wait(30)
    assert (stubborn.stop_reason, stubborn.error, stubborn.result) == ("cancelled", None, None)
    until(lambda: gone(pid))
    limits(job_seconds=1.0)
    timed = engine.submit(Job("stubborn", ignore_stop, total_runs=1, epochs=1))
    assert timed.wait(60)
    assert timed.stop_reason.startswith("stopped at this server's limit of 1 seconds per job")
    assert timed.error is None


def test_a_worker_starts_without_running_the_servers_main_script(monkeypatch):
    """spawn would run the parent's __main__ (under Streamlit: the page being drawn, so a worker ran the app and
    started an engine of its own); a worker is told of none, whatever __main__ is at the moment it starts,
    while other processes still are."""
    page = types.ModuleType("__main__")
    page.__file__ = str(Path(__file__).resolve().parents[1] / "app.py")
    monkeypatch.setitem(sys.modules, "__main__", page)
    assert "init_main_from_path" not in mp_spawn.get_preparation_data(jobs.WORKER)
    assert mp_spawn.get_preparation_data("other")["init_main_from_path"] == page.__file__


def test_a_job_that_cannot_be_sent_to_a_worker_ends_with_the_reason_and_the_next_one_trains(engine, limits):
    job = engine.submit(Job("local", lambda **_: None, total_runs=1, epochs=1))
    assert job.wait(60)
    assert job.error.startswith("this job cannot be sent to a training process: "), job.error
    after = engine.submit(quick_job())
    assert after.wait(90) and after.error is None


def test_a_measurement_waits_for_every_slot_and_trains_alone():
    """An exclusive job (the Costs page's timings) starts once no job trains, jobs behind it wait for it, and it
    sends one measured row per model."""
    eng = Engine(OPEN, hosting.Plan(jobs=2, threads=1))
    try:
        running = eng.submit(slow_job("a"))
        until(lambda: running.state == RUNNING)
        measure = eng.submit(Job("timing", functools.partial(cost_job, TASK, [QUICK, SLOW], TrainConfig()),
                                 total_runs=2, epochs=1, owner="b", exclusive=True))
        after = eng.submit(quick_job("c"))
        until(lambda: idle_workers(eng) == 1)  # the engine has dispatched what it would to the free slot
        assert (measure.state, after.state) == (QUEUED, QUEUED)  # a slot is free, but the measurement is first
        assert eng.position(after) == (2, 2)
        assert eng.estimated_start(measure) > 0
        running.cancel()
        until(lambda: measure.state != QUEUED)
        assert after.state == QUEUED  # nothing shares the machine with the timings
        assert measure.wait(120) and measure.error is None
        assert list(measure.result["label"]) == ["FFNN w3", "LSTM"] == [row["label"] for row in measure.finished]
        assert list(measure.result["threads"]) == [1, 1]
        assert measure.fraction() == 1.0
        assert after.wait(60) and after.error is None
    finally:
        eng.close()


def test_an_error_the_user_can_fix_is_shown_as_is(engine, limits):
    fn = functools.partial(compare, TASK, [], TrainConfig(epochs=1), (0,))
    job = engine.submit(Job("empty", fn, total_runs=0, epochs=1))
    assert job.wait(60)
    assert job.error == "choose at least one model to train."


def test_two_jobs_trained_at_once_rerun_to_identical_numbers(tmp_path, monkeypatch, capsys):
    from lib.cli import main
    from lib.store import RunStore

    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("LOOKBACK_DB", str(path))
    two = Engine(OPEN, hosting.Plan(jobs=2, threads=1))
    try:
        jobs = [two.submit(Job(kind, functools.partial(compare, TASK, [ModelConfig(kind=kind, hidden=16)],
                                                       TrainConfig(epochs=3, patience=0), (0,)),
                               total_runs=1, epochs=3, store_path=str(path))) for kind in ("lstm", "gru")]
        assert all(job.wait(120) for job in jobs)
        assert [job.error for job in jobs] == [None, None]
    finally:
        two.close()
    with RunStore(path) as store:
        ids = list(store.runs()["id"])
    assert len(ids) == 2
    for run_id in ids:
        assert main(["rerun", run_id]) == 0, capsys.readouterr().out
        assert "the numbers match" in capsys.readouterr().out


def test_a_run_whose_final_writes_all_fail_reads_interrupted_once_its_job_ends(tmp_path):
    """Neither "completed" nor the "failed" mark can be written: the job ends with the store's error, and the
    run reads "interrupted" once its worker has exited, never "running"."""
    path = tmp_path / "runs.sqlite"
    eng = Engine(OPEN, hosting.Plan(jobs=1, threads=1))
    try:
        job = eng.submit(Job("full", final_writes_fail, total_runs=1, epochs=2, store_path=str(path)))
        assert job.wait(90)
        assert job.error == "the disk is full" and job.result is None
    finally:
        eng.close()

    def status() -> list[str]:
        with RunStore(path) as store:  # as the app's store sees it within seconds (lib.store)
            return store.runs()["status"].tolist()
    until(lambda: status() != [Status.RUNNING], timeout=30)
    assert status() == [Status.INTERRUPTED]


SERVER = """
    import functools, sys, time
    from lib import hosting
    from lib.experiments import compare
    from lib.jobs import Engine, Job
    from lib.models import ModelConfig
    from lib.tasks.text import TextRecallConfig
    from lib.train import TrainConfig

    if __name__ == "__main__":
        engine = Engine(hosting.LOCAL, hosting.Plan(jobs=1, threads=2))  # two runs, each in a process forked by the job
        fn = functools.partial(compare, TextRecallConfig(distance=2, n_train=2000, n_val=100, n_test=100, seed=1),
                               [ModelConfig(kind="gru", hidden=64), ModelConfig(kind="lstm", hidden=64)],
                               TrainConfig(epochs=1000, patience=0), (0,))
        job = engine.submit(Job("long", fn, total_runs=2, epochs=1000, store_path=sys.argv[1]))
        while len(job.progress) < 2:
            time.sleep(0.05)
        print("both runs train", flush=True)
        time.sleep(600)
"""


def test_a_server_killed_mid_job_leaves_no_worker_nor_forked_run_and_its_runs_read_interrupted(tmp_path):
    """`kill -9` of a process serving an engine, while its job trains two runs in processes it forked: every
    descendant ends within seconds (nothing trains on as an orphan), and both runs read "interrupted".
    The same with a real `streamlit run` server and a browser: tests/test_faults_server.py."""
    path = tmp_path / "runs.sqlite"
    (tmp_path / "server.py").write_text(textwrap.dedent(SERVER))
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen([sys.executable, str(tmp_path / "server.py"), str(path)], cwd=root, text=True,
                              stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})
    family = []
    try:
        assert server.stdout.readline().strip() == "both runs train"
        family = psutil.Process(server.pid).children(recursive=True)
        assert len(family) >= 3  # the job's worker and the two processes it forked
        server.kill()
        server.wait(10)
        until(lambda: all(gone(p.pid) for p in family), timeout=10)
    finally:
        server.kill()
        for proc in family:
            if not gone(proc.pid):
                proc.kill()
    with RunStore(path) as store:  # as a restarted server opens it
        runs = store.runs()
    assert runs["status"].tolist() == [Status.INTERRUPTED] * 2
    assert all(runs["epochs"] >= 1)
