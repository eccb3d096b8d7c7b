"""One run's lifecycle (lib.runs): the dataset cache, reuse, and the store record from start to finish."""
from dataclasses import replace

import pytest
import torch

from lib.models import ModelConfig
from lib.runs import RUN_ID, RunRecorder, dataset, result_from_record, run_config, run_one, stored_result
from lib.runtime import Status
from lib.store import RunStore, StoreError
from lib.train import TrainConfig

FAST = TrainConfig(epochs=2, patience=0, batch_size=64)
GRU = ModelConfig(kind="gru", hidden=8)


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "runs.sqlite") as s:
        yield s


def test_one_dataset_serves_every_run_of_a_config(tiny_text_config):
    assert dataset(tiny_text_config) is dataset(replace(tiny_text_config))
    assert dataset(tiny_text_config) is not dataset(replace(tiny_text_config, seed=2))


def test_a_run_is_recorded_as_it_trains_and_keeps_its_weights(store, tiny_text_config):
    seen = []

    def on_epoch(record):
        row = store.runs().iloc[0]
        seen.append((row["status"], row["epochs"], record["epoch"]))

    result = run_one(tiny_text_config, GRU, FAST, store, on_epoch=on_epoch)
    assert seen == [("running", 1, 1), ("running", 2, 2)]  # each epoch is in the store before the caller hears
    rec = store.get(result.run_id)
    assert RUN_ID.fullmatch(result.run_id) and rec["status"] == Status.COMPLETED
    assert rec["config"] == run_config(tiny_text_config, GRU, FAST) and rec["history"] == result.history
    assert rec["metrics"] == result.test and rec["best_epoch"] == result.best_epoch
    weights = store.load_weights(result.run_id)
    assert all(torch.equal(weights[k], v) for k, v in result.model.state_dict().items())


def test_a_run_without_a_store_is_not_recorded(tiny_text_config):
    result = run_one(tiny_text_config, GRU, FAST)
    assert result.status == Status.COMPLETED and result.run_id is None


def test_a_stopped_run_is_stored_without_weights_and_never_reused(store, tiny_text_config):
    result = run_one(tiny_text_config, GRU, FAST, store, should_stop=lambda: True)
    rec = store.get(result.run_id)
    assert result.status == rec["status"] == Status.CANCELLED and store.load_weights(result.run_id) is None
    assert stored_result(tiny_text_config, GRU, FAST, store) is None
    assert run_one(tiny_text_config, GRU, FAST, store).run_id != result.run_id


def test_a_run_whose_training_raises_is_stored_failed_and_the_error_is_raised(store, tiny_text_config):
    def broken(record):
        raise RuntimeError("the caller broke")

    with pytest.raises(RuntimeError, match="^the caller broke$"):
        run_one(tiny_text_config, GRU, FAST, store, on_epoch=broken)
    (run_id,) = store.runs()["id"]
    rec = store.get(run_id)
    assert (rec["status"], rec["message"]) == (Status.FAILED, "RuntimeError: the caller broke")
    assert len(rec["history"]) == 1 and store.load_weights(run_id) is None  # the epoch logged before the caller


def test_a_run_whose_final_write_fails_is_stored_failed_not_running_and_the_error_is_raised(store, tiny_text_config,
                                                                                          monkeypatch):
    """The write of the result and weights fails (e.g. a full disk): the run is marked failed, never left
    "running" (the full disk itself: tests/test_store.py; when even this mark fails: tests/test_jobs.py)."""
    write = store.finish_run

    def full(run_id, status, message, metrics, state_dict=None, **kwargs):
        if status == Status.COMPLETED:
            raise StoreError("the disk is full")
        return write(run_id, status, message, metrics, state_dict, **kwargs)

    monkeypatch.setattr(store, "finish_run", full)
    with pytest.raises(StoreError, match="^the disk is full$"):
        run_one(tiny_text_config, GRU, FAST, store)
    (run_id,) = store.runs()["id"]
    rec = store.get(run_id)
    assert (rec["status"], rec["message"]) == (Status.FAILED, "its result could not be stored: the disk is full")
    assert len(rec["history"]) == 2 and store.load_weights(run_id) is None


def test_an_identical_run_is_reused_with_its_weights_unless_forced(store, tiny_text_config):
    first = run_one(tiny_text_config, GRU, FAST, store)
    hit = stored_result(tiny_text_config, GRU, FAST, store)
    assert hit.run_id == first.run_id and hit.message.startswith(f"reused stored run {first.run_id}: ")
    assert hit.reused == str(store.get(first.run_id)["created"])
    x = torch.randint(1, 10, (4, 7))
    assert torch.equal(hit.model(x), first.model(x))
    assert run_one(tiny_text_config, GRU, FAST, store).run_id == first.run_id
    assert run_one(tiny_text_config, GRU, FAST, store, force=True).run_id != first.run_id
    assert stored_result(tiny_text_config, GRU, replace(FAST, seed=3), store) is None


def test_a_record_without_weights_rebuilds_a_run_without_a_model(store, tiny_text_config):
    first = run_one(tiny_text_config, GRU, FAST, store)
    again = result_from_record(store.get(first.run_id), None)
    assert again.model is None and again.run_id == first.run_id
    assert (again.model_config, again.train_config, again.history, again.test) == (GRU, FAST, first.history,
                                                                                   first.test)


def test_the_recorder_writes_start_epochs_and_finish_once_started(store, tiny_text_config):
    recorder = RunRecorder(store, tiny_text_config, GRU, FAST)
    recorder.log({"epoch": 1})  # before start: nothing to write to
    recorder.fail(Status.FAILED, "not started")
    assert store.runs().empty and recorder.run_id is None
    recorder.start({"node": "here"})
    assert store.get(recorder.run_id)["env"]["node"] == "here"
    recorder.fail(Status.CANCELLED, "cancelled: the sweep stopped on KeyboardInterrupt")
    rec = store.get(recorder.run_id)
    assert (rec["status"], rec["message"], rec["metrics"]) == (Status.CANCELLED, "cancelled: the sweep stopped on "
                                                               "KeyboardInterrupt", {})


def test_the_recorder_without_a_store_records_nothing(tiny_text_config):
    recorder = RunRecorder(None, tiny_text_config, GRU, FAST)
    recorder.start({})
    recorder.log({"epoch": 1})
    result = run_one(tiny_text_config, GRU, FAST)
    assert recorder.finish(result) is result and result.run_id is None
