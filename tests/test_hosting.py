"""Hosted mode (lib/hosting.py): the switch, the caps a job is checked against, the thread plan and the queue's
estimated start, and what a shared server shows of its paths. The app in hosted mode is tests/test_page_hosted.py;
visitors' views of the run store are in tests/test_store.py."""
import os
import re
from dataclasses import replace

import pytest

from lib import hosting
from lib.errors import ConfigError
from lib.models import ModelConfig
from lib.tasks.sine import SineConfig
from lib.tasks.text import TextRecallConfig
from lib.tasks.video import VideoConfig
from lib.train import TrainConfig

TINY = ModelConfig(kind="ffnn", window=3, hidden=8)


# -- the switch and the limits -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("0", False), ("", False), ("no", False)])
def test_hosted_mode_follows_the_environment(monkeypatch, value, on):
    monkeypatch.setenv(hosting.HOSTED_ENV, value)
    assert hosting.hosted() is on
    assert hosting.limits() is (hosting.HOSTED if on else hosting.LOCAL)


def test_hosted_mode_is_off_without_the_variable(monkeypatch):
    monkeypatch.delenv(hosting.HOSTED_ENV, raising=False)
    assert not hosting.hosted()
    assert hosting.limits() is hosting.LOCAL


def test_the_home_pages_default_comparison_fits_the_hosted_caps():
    task = TextRecallConfig(distance=20)
    models = [ModelConfig(kind="ffnn", window=5), ModelConfig(kind="ffnn", window=25), ModelConfig(kind="rnn"),
              ModelConfig(kind="lstm")]
    hosting.check_job(hosting.HOSTED, task, models, TrainConfig(), [0], runs=4)
    for task in (SineConfig(), VideoConfig(n_train=hosting.HOSTED.samples)):
        hosting.check_job(hosting.HOSTED, task, models, TrainConfig(), [0, 1, 2], runs=12)


def test_a_job_beyond_the_caps_is_refused_with_every_reason():
    models = [ModelConfig(kind="lstm", hidden=512, layers=3), ModelConfig(kind="gru", hidden=64)]
    with pytest.raises(ConfigError) as err:
        hosting.check_job(hosting.HOSTED, TextRecallConfig(distance=150, n_train=20_000), models,
                          TrainConfig(epochs=200), list(range(5)), runs=40)
    assert str(err.value) == (
        "max epochs is 200, above this server's limit of 100; lower Max epochs; "
        "the number of seeds is 5, above this server's limit of 3; use fewer seeds; "
        "the number of runs is 40, above this server's limit of 24; train fewer models, seeds, windows or "
        "distances; "
        "distance is 150, above this server's limit of 50; lower Distance; "
        "training sentences is 20,000, above this server's limit of 5,000; lower Training sentences; "
        "LSTM's hidden units is 512, above this server's limit of 128; lower Hidden units or the parameter "
        "budget; LSTM's layers is 3, above this server's limit of 2; lower Layers.")


def test_locally_nothing_is_capped_beyond_each_settings_own_range():
    big = ModelConfig(kind="lstm", hidden=4096, layers=4)
    hosting.check_job(hosting.LOCAL, TextRecallConfig(distance=200, n_train=100_000), [big] * 10,
                      TrainConfig(epochs=1000), list(range(50)), runs=5000)


@pytest.mark.parametrize(("task", "capped"), [
    (TextRecallConfig(n_train=5001), "training sentences is 5,001"),
    (TextRecallConfig(distance=51), "distance is 51"),
    (TextRecallConfig(distance=10, distance_max=51), "largest distance is 51"),
    (SineConfig(length=5001), "series length is 5,001"),
    (SineConfig(seq_len=51), "input window (steps) is 51"),
    (VideoConfig(gap=51), "gap (frames) is 51"),
    (VideoConfig(n_train=5001), "training clips is 5,001"),
])
def test_each_setting_declared_with_a_cap_is_capped(task, capped):
    with pytest.raises(ConfigError, match=re.escape(capped) + ", above this server's limit of"):
        hosting.check_job(hosting.HOSTED, task, [TINY], TrainConfig(epochs=1), [0], runs=1)


def test_describe_names_the_caps():
    assert hosting.HOSTED.describe() == (
        "Each job trains up to 100 epochs, 5,000 training samples, 128 hidden units, 2 layers, 3 seeds, "
        "24 runs per job, and stops after 5 minutes with the runs finished so far.")


# -- the thread plan -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("jobs", "cores", "threads", "plan"), [
    (1, 2, 2, (1, 2)),  # local: one job with the library's threads
    (2, 2, 2, (2, 1)),  # hosted on 2 cores
    (4, 2, 2, (2, 1)),  # never more jobs than cores
    (2, 16, 16, (2, 8)),
    (3, 16, 16, (3, 5)),
    (1, 8, 1, (1, 1)),  # OMP_NUM_THREADS=1: the library's one thread
    (1, 2, 8, (1, 2)),  # torch's default above the cores a container may use
])
def test_jobs_times_threads_never_exceed_the_cores(jobs, cores, threads, plan):
    p = hosting.plan(jobs, cores=cores, library_threads=threads)
    assert (p.jobs, p.threads) == plan
    assert p.jobs * p.threads <= cores


def test_a_plan_needs_a_job():
    with pytest.raises(ConfigError, match="^jobs must be at least 1, got 0.$"):
        hosting.plan(0, cores=2, library_threads=2)


def test_available_cores_is_positive_and_within_the_machine():
    assert 1 <= hosting.available_cores() <= os.cpu_count()


@pytest.mark.parametrize(("left", "slots", "ahead", "start"), [
    ([], 2, [], 0.0),  # a free slot: starts now
    ([30.0, 10.0], 2, [], 10.0),  # waits for the sooner of two running jobs
    ([30.0, 10.0], 2, [20.0], 30.0),  # the job ahead takes the slot free at 10 until 30; ours the one free at 30
    ([30.0], 1, [20.0, 5.0], 55.0),
    ([30.0, 10.0], 2, [(5.0, True)], 35.0),  # a measurement ahead waits for both, then holds both
    ([30.0, 10.0], 2, [(5.0, True), 20.0], 35.0),
])
def test_estimated_start(left, slots, ahead, start):
    assert hosting.estimated_start(left, slots, ahead) == start


def test_an_exclusive_job_waits_for_every_slot():
    assert hosting.estimated_start([30.0, 10.0], 2, []) == 10.0
    assert hosting.estimated_start([30.0, 10.0], 2, [], exclusive=True) == 30.0
    assert hosting.estimated_start([30.0, 10.0], 2, [20.0], exclusive=True) == 30.0


def test_limits_are_frozen():
    with pytest.raises(AttributeError):
        hosting.HOSTED.epochs = 1  # type: ignore[misc]
    assert replace(hosting.HOSTED, epochs=1).epochs == 1


# -- what a shared server shows -----------------------------------------------------------------------


def test_a_shared_server_shows_no_path_of_its_run_store_or_its_data(monkeypatch):
    store = "/srv/app/data/lookback.sqlite"
    message = ("the prepared user data 0123456789ab are not in /srv/app/data/userdata; prepare the same file again; "
               f"{store} is locked")
    assert hosting.shown(message, store) == message  # locally the paths help
    monkeypatch.setattr(hosting, "hosted", lambda: True)
    assert hosting.shown(message, store) == (
        "the prepared user data 0123456789ab are not in the server's data folder/userdata; prepare the same file "
        "again; the run store is locked")
