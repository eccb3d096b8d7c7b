"""Copy stored runs into an MLflow tracking server, one MLflow run per Lookback run.

Each MLflow run gets the run's config as params (nested keys joined with dots, plus the seed), its per-epoch
history as metrics with step = epoch, its test metrics (test_<name>), parameter count and best epoch as
metrics, its status, message, environment (env.<key>) and dataset fingerprint as tags, and its reproducible
bundle (lib.bundles) as an artifact. The tag `lookback.run_id` is written last, once everything else is
there, and marks a run as exported: exporting it again skips it. MLflow is an optional extra, imported
only here and only when used.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from lib.errors import ConfigError, LookbackError

INSTALL_MLFLOW = "MLflow is not installed; pip install -r requirements-team.txt"
DEFAULT_EXPERIMENT = "Lookback"
RUN_ID_TAG = "lookback.run_id"
# MLflow's log-batch limits per request (REST API: 1000 metrics, 100 params, 100 tags)
MAX_METRICS, MAX_PARAMS_OR_TAGS = 1000, 100
MAX_TAG_CHARS = 5000  # MLflow keeps tag values up to 8000 characters; a long message is cut to this
STATUS = {"completed": "FINISHED", "cancelled": "KILLED", "diverged": "FAILED", "failed": "FAILED",
          "interrupted": "FAILED"}


def _client(tracking_uri: str):
    try:
        from mlflow import MlflowClient
    except ImportError as err:
        raise ConfigError(f"{INSTALL_MLFLOW}.") from err
    return MlflowClient(tracking_uri)


def export_runs(store, run_ids: Iterable[str], tracking_uri: str | None,
                experiment: str = DEFAULT_EXPERIMENT) -> dict:
    """Export the given runs of a lib.store.RunStore to the MLflow server at tracking_uri.

    Returns {"tracking_uri", "experiment", "experiment_id", "exported": [{"run_id", "mlflow_run_id"}],
    "skipped": [{"run_id", "mlflow_run_id", "reason"}]}: runs exported before and runs still running are
    skipped. Every id is checked against the store before anything is sent.
    """
    ids = list(dict.fromkeys([run_ids] if isinstance(run_ids, str) else run_ids))
    if not ids:
        raise ConfigError("choose at least one run to export.")
    if not tracking_uri:
        raise ConfigError("give the MLflow tracking URI (--tracking-uri or MLFLOW_TRACKING_URI), e.g. "
                          "http://mlflow.example.org:5000.")
    if not experiment or not experiment.strip():
        raise ConfigError("give the MLflow experiment a name (--experiment).")
    records = [store.get(run_id) for run_id in ids]
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, tracking_uri, experiment)
    summary = {"tracking_uri": tracking_uri, "experiment": experiment, "experiment_id": experiment_id,
               "exported": [], "skipped": []}
    datasets: dict[str, str] = {}  # task config JSON -> fingerprint, so that each dataset is built once
    for rec in records:
        if rec["status"] == "running":
            summary["skipped"].append({"run_id": rec["id"], "mlflow_run_id": None,
                                       "reason": "still running; export it once it has finished"})
            continue
        existing = client.search_runs([experiment_id], f"tags.`{RUN_ID_TAG}` = '{rec['id']}'", max_results=1)
        if existing:
            summary["skipped"].append({"run_id": rec["id"], "mlflow_run_id": existing[0].info.run_id,
                                       "reason": "already exported"})
            continue
        task_key = json.dumps(rec["config"]["task"], sort_keys=True)
        if task_key not in datasets:
            datasets[task_key] = _dataset_fingerprint(rec["config"]["task"])
        mlflow_id = _export_one(client, experiment_id, store, rec, datasets[task_key])
        summary["exported"].append({"run_id": rec["id"], "mlflow_run_id": mlflow_id})
    return summary


def _experiment_id(client, tracking_uri: str, name: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            return client.create_experiment(name)
    except MlflowException as err:
        raise ConfigError(f"cannot use the MLflow server at {tracking_uri}: {err.message}; check "
                          f"--tracking-uri and that the server is running.") from err
    if exp.lifecycle_stage != "active":
        raise ConfigError(f"the MLflow experiment {name!r} is deleted; restore it in MLflow or export to "
                          f"another --experiment.")
    return exp.experiment_id


def _export_one(client, experiment_id: str, store, rec: dict, dataset_fingerprint: str) -> str:
    from mlflow.entities import Metric, Param, RunTag

    from lib.bundles import export_bundle

    start, end = _millis(rec["created"]), _millis(rec["updated"])
    run = client.create_run(experiment_id, start_time=start, run_name=f"{rec['label']} seed {rec['seed']}")
    mlflow_id = run.info.run_id
    try:
        params = [Param(k, v) for k, v in params_of(rec).items()]
        metrics = [Metric(k, v, ts, step) for k, v, ts, step in metrics_of(rec)]
        tags = [RunTag(k, v) for k, v in tags_of(rec, dataset_fingerprint).items()]
        for i in range(0, len(params), MAX_PARAMS_OR_TAGS):
            client.log_batch(mlflow_id, params=params[i:i + MAX_PARAMS_OR_TAGS])
        for i in range(0, len(tags), MAX_PARAMS_OR_TAGS):
            client.log_batch(mlflow_id, tags=tags[i:i + MAX_PARAMS_OR_TAGS])
        for i in range(0, len(metrics), MAX_METRICS):
            client.log_batch(mlflow_id, metrics=metrics[i:i + MAX_METRICS])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"lookback-{rec['id']}.zip"
            path.write_bytes(export_bundle(store, [rec["id"]]))
            client.log_artifact(mlflow_id, str(path))
        client.set_tag(mlflow_id, RUN_ID_TAG, rec["id"])  # last: marks the export complete
        client.set_terminated(mlflow_id, status=STATUS[rec["status"]], end_time=end)
    except BaseException:
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):  # the server may be what failed; the error below says so
            client.delete_run(mlflow_id)  # no half-exported run left behind (it lacks the run-id tag anyway)
        raise
    return mlflow_id


def params_of(rec: dict) -> dict[str, str]:
    """The run's config flattened to MLflow params ("model.hidden" -> "64"), plus its seed."""
    return {"seed": str(rec["seed"]), **_flatten(rec["config"])}


def metrics_of(rec: dict) -> list[tuple[str, float, int, int]]:
    """(key, value, timestamp ms, step) for every number of the run: each epoch's record (step = epoch,
    timestamp = start + elapsed time), then test metrics, parameter count and best epoch (step 0, at the end)."""
    start, end = _millis(rec["created"]), _millis(rec["updated"])
    out = []
    for record in rec["history"]:
        ts = start + round(1000 * record.get("elapsed_seconds", 0.0))
        out += [(k, float(v), ts, int(record["epoch"])) for k, v in record.items() if k != "epoch" and _number(v)]
    out += [(f"test_{k}", float(v), end, 0) for k, v in (rec["metrics"] or {}).items() if _number(v)]
    out += [(k, float(rec[k]), end, 0) for k in ("n_params", "best_epoch") if _number(rec[k])]
    return out


def tags_of(rec: dict, dataset_fingerprint: str) -> dict[str, str]:
    """Status, message, identity and environment of the run as MLflow tags (the run-id tag comes last)."""
    tags = {"lookback.status": rec["status"], "lookback.message": rec["message"][:MAX_TAG_CHARS],
            "lookback.task": rec["task"], "lookback.label": rec["label"], "lookback.created": rec["created"],
            "lookback.config_hash": rec["config_hash"], "lookback.version": rec["version"],
            "lookback.dataset_fingerprint": dataset_fingerprint}
    if rec.get("code"):
        tags["lookback.code"] = rec["code"]
    tags |= {f"env.{k}": str(v)[:MAX_TAG_CHARS] for k, v in (rec["env"] or {}).items()}
    return tags


def dataset_fingerprint(ds) -> str:
    """Short sha256 over a dataset's splits: the shape, dtype and bytes of every input and target tensor."""
    digest = hashlib.sha256()
    for split in (ds.train, ds.val, ds.test):
        for t in (split.x, split.y):
            t = t.detach().cpu().contiguous()
            digest.update(f"{tuple(t.shape)} {t.dtype}\0".encode() + t.numpy().tobytes())
    return digest.hexdigest()[:16]


def _dataset_fingerprint(task: Mapping) -> str:
    """The fingerprint of the dataset that this task config builds (datasets are deterministic in it)."""
    from lib.runs import dataset
    from lib.tasks import task_from_dict

    try:
        return dataset_fingerprint(dataset(task_from_dict(task)))
    except LookbackError as err:  # e.g. user data, which the config alone cannot rebuild
        return f"unavailable: {err}"[:MAX_TAG_CHARS]


def _flatten(obj: Mapping, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out |= _flatten(v, f"{key}.")
        else:
            out[key] = json.dumps(v) if isinstance(v, list | tuple) else str(v)
    return out


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _millis(iso: str) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1000)
