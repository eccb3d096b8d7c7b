"""One run's lifecycle: its dataset (the one cache), its config, reuse of a stored identical run, and its record
in the run store (start -> each epoch -> finish, with weights only when it completed).

`run_one` trains one run in this process; the local backend (here or in its workers) calls it, and the Ray
backend's driver records the runs its workers train through the same `RunRecorder`.
"""
from __future__ import annotations

import re
from contextlib import suppress
from functools import lru_cache

from lib.configs import from_dict, to_dict
from lib.errors import LookbackError
from lib.models import ModelConfig, ModelIO, build_model
from lib.runtime import Status, environment, resolve_device
from lib.tasks import SequenceDataset, make_dataset, task_dict
from lib.train import RunResult, TrainConfig, train

RUN_ID = re.compile(r"[0-9a-f]{12}")  # a run store id (lib.store)


@lru_cache(maxsize=8)
def dataset(task_cfg) -> SequenceDataset:
    """Datasets are deterministic in their frozen config, so one build serves every run."""
    return make_dataset(task_cfg)


def run_config(task_cfg, model_cfg: ModelConfig, train_cfg: TrainConfig) -> dict:
    """The full, JSON-friendly config of one run: what the store hashes and a bundle records."""
    return {"task": task_dict(task_cfg), "model": to_dict(model_cfg), "train": to_dict(train_cfg),
            "io": to_dict(ModelIO.from_dataset(dataset(task_cfg)))}


def result_from_record(record: dict, state_dict: dict | None) -> RunResult:
    """Rebuild a stored run; its model carries the stored weights, or is None without them."""
    cfg = record["config"]
    model_cfg, train_cfg = from_dict(ModelConfig, cfg["model"]), from_dict(TrainConfig, cfg["train"])
    model = None
    if state_dict is not None:
        model = build_model(model_cfg, from_dict(ModelIO, cfg["io"]))
        model.load_state_dict(state_dict)
        model.eval()
    return RunResult(model_cfg, train_cfg, record["status"], record["message"], record["history"],
                     record["best_epoch"], record["metrics"] or {}, record["n_params"], record["env"], model,
                     record["id"])


def stored_result(task_cfg, model_cfg: ModelConfig, train_cfg: TrainConfig, store) -> RunResult | None:
    """The stored completed run of the identical config, seed and code fingerprint, with its weights; or None."""
    env = environment(resolve_device(train_cfg.device))  # its "code" fingerprint is part of the reuse key
    hit = store.find(run_config(task_cfg, model_cfg, train_cfg), train_cfg.seed, env["code"])
    if hit is None:
        return None
    result = result_from_record(hit, store.load_weights(hit["id"]))
    if result.model is None:
        return None
    result.message = f"reused stored run {hit['id']}: {result.message}"
    result.run_id, result.reused = hit["id"], str(hit["created"])
    return result


class RunRecorder:
    """One run's record in a run store (lib.store.RunStore), written as it trains: start, log each epoch, then
    finish with its result or fail without one. Without a store, or before start, it records nothing."""

    def __init__(self, store, task_cfg, model_cfg: ModelConfig, train_cfg: TrainConfig):
        self.store, self.task_cfg, self.model_cfg, self.train_cfg = store, task_cfg, model_cfg, train_cfg
        self.run_id: str | None = None  # the store's id, once started

    def start(self, env: dict) -> None:
        """Record the run as running (a crash from here on leaves it "interrupted", never completed)."""
        if self.store is not None:
            self.run_id = self.store.start_run(run_config(self.task_cfg, self.model_cfg, self.train_cfg),
                                               self.train_cfg.seed, self.model_cfg.label, self.task_cfg.name, env)

    def log(self, record: dict) -> None:
        if self.run_id is not None:
            self.store.log_epoch(self.run_id, record)

    def finish(self, result: RunResult) -> RunResult:
        """Record how the run ended, keeping its weights only when it completed; the result gets the run id.
        When that write fails (e.g. a full disk), the run is recorded as failed, without its result, and the
        store's error is raised; should even that fail, the run reads "interrupted" once its process ends."""
        if self.run_id is not None:
            try:
                self.store.finish_run(self.run_id, result.status, result.message, result.test,
                                      state_dict=result.model.state_dict() if result.status == Status.COMPLETED
                                      else None, best_epoch=result.best_epoch, n_params=result.n_params)
            except LookbackError as err:
                with suppress(LookbackError):
                    self.store.finish_run(self.run_id, Status.FAILED, f"its result could not be stored: {err}", {})
                raise
        result.run_id = self.run_id
        return result

    def fail(self, status: str, message: str) -> None:
        """Record a run that ended without a result (failed, or cancelled because the sweep stopped)."""
        if self.run_id is not None:
            self.store.finish_run(self.run_id, status, message, {})


def run_one(task_cfg, model_cfg: ModelConfig, train_cfg: TrainConfig, store=None, force: bool = False,
            on_epoch=None, should_stop=None) -> RunResult:
    """Train one model, or return the stored result of the identical config, seed and code fingerprint.

    With a store, the run is recorded as it trains (so a crash leaves it "interrupted", never completed)
    and its weights are kept. force=True retrains even when a stored result exists.
    """
    ds = dataset(task_cfg)
    if store is None:
        return train(ds, model_cfg, train_cfg, on_epoch=on_epoch, should_stop=should_stop)
    if not force and (stored := stored_result(task_cfg, model_cfg, train_cfg, store)) is not None:
        return stored
    recorder = RunRecorder(store, task_cfg, model_cfg, train_cfg)
    recorder.start(environment(resolve_device(train_cfg.device)))

    def log(record: dict) -> None:
        recorder.log(record)
        if on_epoch is not None:
            on_epoch(record)

    try:
        result = train(ds, model_cfg, train_cfg, on_epoch=log, should_stop=should_stop)
    except BaseException as err:
        recorder.fail(Status.FAILED, f"{type(err).__name__}: {err}")
        raise
    return recorder.finish(result)
