"""Reproducible zip bundles of runs: config, per-epoch history, metrics, environment and weights.

Layout: manifest.json plus one folder per run, `<run_id>/` with config.json, history.csv, metrics.json,
environment.json and optionally weights.pt; runs on user data bring the prepared arrays their config names,
as `userdata/<sha256>.npz` (format version 2), so that they rerun on another machine. The manifest names the
format, its version, the Lookback version and every file with its sha256.

`import_bundle` checks all of a bundle before it writes anything, and never unpickles: weights are read
with torch.load(weights_only=True) only. JSON Schemas (below) fix the shape of each JSON member; the code
checks what a schema cannot: checksums, the config hash, configs that Lookback can rebuild and train,
ISO 8601 times, a history that the engine could have written, weights that fit the model. A run that
passes can be listed, charted, compared and rerun like one trained here. Sizes are checked against the
zip's declared sizes before anything is unpacked, and every read is capped at the declared size.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import torch
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from lib import __version__
from lib.configs import INT64, from_dict
from lib.errors import ConfigError, LookbackError
from lib.models import ModelConfig, ModelIO, build_model, count_params
from lib.models import validate as validate_model
from lib.runtime import Status
from lib.store import RunStore, config_hash
from lib.tasks import task_from_dict
from lib.tasks.user import prepared
from lib.tasks.user.arrays import printable
from lib.train import TrainConfig

FORMAT = "lookback-bundle"
FORMAT_VERSION = 2  # 2 adds prepared user data; a bundle without them is written as version 1
DATA_FOLDER = "userdata"
MAX_BYTES = 256 * 2**20  # compressed bundle
MAX_UNCOMPRESSED = 1024 * 2**20  # all members together, unpacked
MAX_MEMBERS = 10_000
# All members together may unpack to at most MAX_RATIO times the bundle's size (RATIO_FLOOR at least):
# real bundles are floats and JSON, which pack 2- to 10-fold; far more is a zip bomb.
MAX_RATIO = 50
RATIO_FLOOR = 8 * 2**20
# The most each member may unpack to, checked on the zip's declared sizes before anything is read.
MEMBER_LIMITS = {"manifest.json": 4 * 2**20, "config.json": 64 * 2**10, "metrics.json": 64 * 2**10,
                 "environment.json": 16 * 2**10, "history.csv": 512 * 2**10, "weights.pt": 512 * 2**20}
WEIGHTS_SLACK = 2**20  # torch.save's archive around the tensors' bytes
REQUIRED_FILES = ("config.json", "history.csv", "metrics.json", "environment.json")
OPTIONAL_FILES = ("weights.pt",)
# Per-epoch columns of lib.train's records; all but epoch_cpu_seconds and load_1min are required. Only val_loss
# and val_metric of a diverged run's last epoch may be NaN or infinite: the engine records that epoch, then stops.
HISTORY_REQUIRED = ("epoch", "train_loss", "val_loss", "val_metric", "epoch_seconds", "elapsed_seconds")
HISTORY_COLUMNS = (*HISTORY_REQUIRED, "epoch_cpu_seconds", "load_1min")
# Test metrics lib.train.evaluate writes, with the range each lies in.
TEST_METRICS = {"loss": (0.0, math.inf), "accuracy": (0.0, 1.0), "perplexity": (1.0, math.inf),
                "mse": (0.0, math.inf), "mae": (0.0, math.inf)}
MAX_LABEL, MAX_MESSAGE = 100, 10_000  # characters
_INT = re.compile(r"[+-]?\d{1,20}")
_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf)")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
# A pattern's "description" replaces the regex in messages: "'a b' is not 1-64 letters, ...".
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "a sha256 (64 hex digits)"}
_RUN_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
           "description": "an id of 1-64 letters, digits, '_' or '-'"}
_INT64 = {"type": "integer", "minimum": -INT64, "maximum": INT64 - 1}
_TEXT = {"type": "string", "maxLength": 500}

# Checked first, so that a bundle of a later format is told to upgrade instead of failing the full schema.
HEAD_SCHEMA = {
    "type": "object",
    "required": ["format", "format_version"],
    "properties": {"format": {"const": FORMAT}, "format_version": {"type": "integer", "minimum": 1}},
}
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["format", "format_version", "lookback", "runs"],
    "properties": {
        "format": {"const": FORMAT},
        "format_version": {"type": "integer"},
        "lookback": _TEXT,
        "exported": _TEXT,
        "data": {"type": "object", "minProperties": 1, "propertyNames": _SHA256,  # dataset sha256 -> file sha256
                 "additionalProperties": _SHA256},
        "runs": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["id", "files"],
            "properties": {
                "id": _RUN_ID,
                "label": _TEXT,
                "task": _TEXT,
                "files": {"type": "object", "required": list(REQUIRED_FILES),
                          "propertyNames": {"enum": list(REQUIRED_FILES + OPTIONAL_FILES)},
                          "additionalProperties": _SHA256},
            },
            "additionalProperties": False,
        }},
    },
    "additionalProperties": False,
}
CONFIG_SCHEMA = {
    "type": "object",
    "required": ["task", "label", "seed", "config"],
    "properties": {
        "id": _RUN_ID,
        "task": {"type": "string", "maxLength": 64},
        "label": {"type": "string", "minLength": 1, "maxLength": MAX_LABEL},
        "seed": _INT64,  # any further rule is TrainConfig.seed's, checked when the config is rebuilt
        "created": {"type": ["string", "null"], "maxLength": 40},
        "config_hash": _SHA256,
        "config": {  # lib.runs.run_config: each part is rebuilt and validated by the code
            "type": "object",
            "required": ["task", "model", "train", "io"],
            "properties": {part: {"type": "object", "maxProperties": 32} for part in ("task", "model", "train")}
            | {"io": {"type": "object", "properties": {
                "seq_len": {"type": "integer", "minimum": 1, "maximum": 100_000},
                "n_features": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                "n_outputs": {"type": "integer", "minimum": 1, "maximum": 1_000_000}}}},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
METRICS_SCHEMA = {
    "type": "object",
    "required": ["status", "message", "best_epoch", "n_params", "test"],
    "properties": {
        "status": {"enum": [str(s) for s in Status.finished()]},
        "message": {"type": "string", "maxLength": MAX_MESSAGE},
        "best_epoch": {"type": ["integer", "null"], "minimum": 1, "maximum": INT64 - 1},
        "n_params": {"type": ["integer", "null"], "minimum": 0, "maximum": INT64 - 1},
        "test": {"type": "object", "propertyNames": {"enum": list(TEST_METRICS)},
                 "additionalProperties": {"type": "number"}},
    },
    "additionalProperties": False,
}
ENVIRONMENT_SCHEMA = {  # lib.runtime.environment(), plus what a backend adds (e.g. the node)
    "type": "object",
    "required": ["lookback"],
    "maxProperties": 32,
    "properties": {
        "lookback": {"type": "string", "pattern": r"^\d+(\.\d+)*[A-Za-z0-9.+-]*$", "maxLength": 40,
                     "description": "a version number"},
        "code": {"type": ["string", "null"], "pattern": "^[0-9a-f]{16}$",
                 "description": "a code fingerprint (16 hex digits)"},
        "threads": {"type": "integer", "minimum": 1, "maximum": 4096},
        "workers": {"type": "integer", "minimum": 1, "maximum": 4096},
    },
    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,39}$", "description": "a name of up to 40 letters, "
                      "digits or '_'"},
    "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": 500},
}
ENVIRONMENT_REQUIRED = ("torch", "python", "device", "threads")  # of a completed run: what rerun recreates
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in (
    ("head", HEAD_SCHEMA), ("manifest", MANIFEST_SCHEMA), ("config", CONFIG_SCHEMA), ("metrics", METRICS_SCHEMA),
    ("environment", ENVIRONMENT_SCHEMA))}


class BundleError(ConfigError):
    """A bundle cannot be exported or imported; the message names the member and the fault."""


@dataclass(frozen=True)
class ImportReport:
    """What import_bundle did: the new ids, and the runs it skipped because the store already holds them."""

    imported: tuple[str, ...]  # ids of the newly stored runs, in bundle order
    existing: tuple[tuple[str, str], ...]  # (id in the bundle, id of the identical run already stored)
    data: tuple[str, ...] = ()  # SHA-256 of the prepared user data the bundle brought
    no_data: tuple[str, ...] = ()  # ids of imported runs whose user data neither the bundle nor this install has

    def summary(self) -> str:
        parts = [f"Imported {len(self.imported)} run(s)"]
        if self.existing:
            same = ", ".join(f"{old} as {new}" for old, new in self.existing)
            parts.append(f"skipped {len(self.existing)} already stored ({same})")
        if self.data:
            parts.append(f"kept the prepared user data of {len(self.data)} dataset(s), so those runs can be rerun")
        text = "; ".join(parts) + ". Imported runs are listed and charted, never reused as a new training's result."
        if self.no_data:
            text += (f" Run(s) {', '.join(self.no_data)} use user data that the bundle does not carry: prepare the "
                     f"same file with the same settings on the Your data page to rerun them.")
        return text


@dataclass(frozen=True)
class _Run:
    """One checked run of a bundle, ready to store."""

    bundle_id: str
    config: dict
    seed: int
    label: str
    task: str
    created: str | None
    record: dict
    state_dict: dict | None

    def identity(self) -> str:
        return _identity(config_hash(self.config), self.seed, self.record)


# -- export ------------------------------------------------------------------------------------------


def export_bundle(store: RunStore, run_ids, include_weights: bool = True, include_data: bool = True) -> bytes:
    """A zip of the given finished runs (see the module docstring) that `import_bundle` accepts.

    include_data: bring the prepared arrays of the user data the runs were trained on, where this install
    keeps them.
    """
    ids = list(dict.fromkeys([run_ids] if isinstance(run_ids, str) else run_ids))
    if not ids:
        raise BundleError("choose at least one run to export.")
    buf = io.BytesIO()
    entries, data = [], {}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for run_id in ids:
            rec = store.get(run_id)
            if rec["status"] not in Status.finished():
                raise BundleError(f"run {run_id!r} is still {rec['status']}; wait for it to finish or cancel "
                                  f"it before exporting.")
            files = {
                "config.json": _json_bytes({"id": run_id, "task": rec["task"], "label": rec["label"],
                                            "seed": rec["seed"], "created": rec["created"],
                                            "config_hash": rec["config_hash"], "config": rec["config"]}),
                "history.csv": _history_csv(run_id, rec["history"]),
                "metrics.json": _json_bytes({"status": rec["status"], "message": rec["message"],
                                             "best_epoch": rec["best_epoch"], "n_params": rec["n_params"],
                                             "test": rec["metrics"]}),
                "environment.json": _json_bytes(rec["env"]),
            }
            if include_weights and rec["has_weights"]:
                weights = io.BytesIO()
                torch.save(store.load_weights(run_id), weights)
                files["weights.pt"] = weights.getvalue()
            for name, blob in files.items():
                _write_member(zf, f"{run_id}/{name}", blob)
            entries.append({"id": run_id, "label": rec["label"], "task": rec["task"],
                            "files": {name: _sha256(blob) for name, blob in files.items()}})
            sha = prepared.named_by(rec["config"])
            if include_data and sha and sha not in data and (path := prepared.kept_path(sha)).exists():
                data[sha] = path.read_bytes()
        for sha, blob in data.items():
            _write_member(zf, f"{DATA_FOLDER}/{sha}.npz", blob)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION if data else 1, "lookback": __version__,
                    "exported": datetime.now(UTC).isoformat(timespec="seconds"), "runs": entries}
        if data:
            manifest["data"] = {sha: _sha256(blob) for sha, blob in data.items()}
        _write_member(zf, "manifest.json", _json_bytes(manifest))
    return buf.getvalue()


def _write_member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=datetime.now().timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    zf.writestr(info, data)


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, indent=1).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _history_csv(run_id: str, history: list[dict]) -> bytes:
    columns = list(dict.fromkeys(["epoch", *(k for rec in history for k in rec)]))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for rec in history:
        for key, value in rec.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise BundleError(f"run {run_id!r} epoch {rec.get('epoch')} has {key} = {value!r}, not a "
                                  f"number; bundles carry numeric per-epoch records only.")
        writer.writerow(["" if rec.get(c) is None else repr(rec[c]) for c in columns])
    return buf.getvalue().encode()


# -- import ------------------------------------------------------------------------------------------


def import_bundle(store: RunStore, data: bytes, max_bytes: int = MAX_BYTES,
                  max_uncompressed: int = MAX_UNCOMPRESSED) -> ImportReport:
    """Check a whole bundle, then store its runs atomically under new ids, skipping runs already stored.

    A run counts as already stored when the store (or an earlier run of the same bundle) holds one with
    the same config hash, seed, status, test metrics and per-epoch losses and metrics. Imported runs are
    kept apart from runs trained here: they are never reused as the result of a training.
    Raises BundleError naming the first fault found; the store is unchanged when it does.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BundleError(f"a bundle must be bytes (the .zip file's contents), got {type(data).__name__}.")
    data = bytes(data)
    if len(data) > max_bytes:
        raise BundleError(f"bundle is {_size(len(data))}, more than the {_size(max_bytes)} limit.")
    if not data.startswith(b"PK\x03\x04"):
        raise BundleError("not a bundle: the data does not start with a zip member (a .zip made by Lookback's "
                          "export does); export the runs again.")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise BundleError(f"not a bundle: the data is not a zip file ({e}).") from e
    with zf:
        members = _check_members(zf, len(data), max_uncompressed)
        manifest = _read_manifest(zf, members)
        listed = {"manifest.json", *(f"{DATA_FOLDER}/{sha}.npz" for sha in manifest.get("data", {}))}
        for entry in manifest["runs"]:
            listed |= {f"{entry['id']}/{name}" for name in entry["files"]}
            for name in entry["files"]:
                if f"{entry['id']}/{name}" not in members:
                    raise BundleError(f"manifest.json lists {entry['id']}/{name} but the bundle has no such "
                                      f"file; export the runs again.")
        extra = sorted(set(members) - listed)
        if extra:
            raise BundleError(f"unexpected member {extra[0]!r}: manifest.json does not list it; bundles hold "
                              f"only the files their manifest names.")
        memo: dict = {}  # checks done once per distinct content: duplicate runs share all but config.json
        runs = [_parse_run(zf, members, entry, memo) for entry in manifest["runs"]]
        datasets = _parse_data(zf, members, manifest, runs)
    kept = tuple(prepared.save(ds) for ds in datasets)  # content-addressed: harmless if the runs fail to store
    known = _stored_identities(store, runs)
    new, existing = [], []
    for run in runs:
        key = run.identity()
        if key in known:
            existing.append((run.bundle_id, known[key]))
        else:
            known[key] = run.bundle_id
            new.append(run)
    ids = store.save_results([{"config": r.config, "seed": r.seed, "label": r.label, "task": r.task,
                               "created": r.created, "record": r.record, "state_dict": r.state_dict,
                               "origin": "imported"} for r in new]) if new else []
    no_data = tuple(new_id for new_id, run in zip(ids, new, strict=True)
                    if (sha := prepared.named_by(run.config)) and not prepared.kept_path(sha).exists())
    return ImportReport(tuple(ids), tuple(existing), kept, no_data)


def _identity(config_digest: str, seed: int, record: dict) -> str:
    """What makes two stored runs the same result: config, seed, outcome and every epoch's numbers."""
    timeless = [{k: h.get(k) for k in HISTORY_REQUIRED[:4]} for h in record["history"]]
    return json.dumps([config_digest, seed, str(record["status"]), record["best_epoch"], record["n_params"],
                       record["test"], timeless], sort_keys=True)


def _stored_identities(store: RunStore, runs: list[_Run]) -> dict[str, str]:
    """identity -> id of the stored runs that share a config hash and seed with one of `runs`."""
    wanted = {(config_hash(r.config), r.seed) for r in runs}
    frame = store.runs()
    found = {}
    for run_id, digest, seed in zip(frame["id"], frame["config_hash"], frame["seed"], strict=True):
        if (digest, int(seed)) in wanted:
            rec = store.get(run_id)
            found.setdefault(_identity(digest, int(seed), {**rec, "test": rec["metrics"]}), run_id)
    return found


def _size(n: int) -> str:
    if n < 2**10:
        return f"{n} bytes"
    return f"{n / 2**10:.1f} KiB" if n < 2**20 else f"{n / 2**20:.1f} MiB"


def _check_members(zf: zipfile.ZipFile, packed: int, max_uncompressed: int) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"bundle has {len(infos)} members, more than the limit of {MAX_MEMBERS}.")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        reason = _unsafe_path(name)
        if reason:
            raise BundleError(f"unsafe member path {name!r}: {reason}; bundles hold relative paths only.")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BundleError(f"member {name!r} is a symbolic link; bundles hold plain files only.")
        if info.flag_bits & 0x1:
            raise BundleError(f"member {name!r} is encrypted; bundles are never encrypted.")
        if name in members:
            raise BundleError(f"member {name!r} appears more than once in the zip.")
        if info.is_dir():
            continue
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(f"member {name!r} uses compression method {info.compress_type}; bundles are "
                              f"stored or deflated only.")
        limit = MEMBER_LIMITS.get(name.rsplit("/", 1)[-1])
        if limit is not None and info.file_size > limit:
            raise BundleError(f"member {name!r} unpacks to {_size(info.file_size)}, more than the "
                              f"{_size(limit)} such a file may take.")
        members[name] = info
    total = sum(i.file_size for i in members.values())
    if total > max_uncompressed:
        raise BundleError(f"bundle unpacks to {_size(total)}, more than the {_size(max_uncompressed)} limit.")
    if total > max(MAX_RATIO * packed, RATIO_FLOOR):
        raise BundleError(f"bundle unpacks {total / packed:.0f}-fold, to {_size(total)} (limit {MAX_RATIO}-fold "
                          f"above {_size(RATIO_FLOOR)}); refusing a likely zip bomb.")
    return members


def _unsafe_path(name: str) -> str | None:
    if "\\" in name:
        return "it contains a backslash"
    if name.startswith("/"):
        return "it is absolute"
    if re.match(r"[A-Za-z]:", name):
        return "it starts with a drive letter"
    if "\x00" in name:
        return "it contains a NUL character"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "it climbs out of the bundle with '..'"
    if any(p in ("", ".") for p in parts):
        return "it has an empty or '.' component"
    return None


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)  # never more than declared (checked above)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        raise BundleError(f"member {info.filename!r} cannot be unpacked ({e}); the zip is damaged.") from e
    if len(data) != info.file_size:
        raise BundleError(f"member {info.filename!r} is not the size its zip entry declares; the zip is "
                          f"damaged.")
    return data


def _not_finite(token: str):
    raise ValueError(f"{token} is not a number JSON allows; bundles hold finite numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond the range of a float; bundles hold finite numbers only")
    return value


def _json(data: bytes, member: str, schema: str | None):
    """A member's JSON, with NaN, infinities and overflowing floats refused, checked against `schema`."""
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_not_finite, parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise BundleError(f"{member} is not valid JSON ({e}).") from e
    if schema is not None:
        _check_schema(obj, schema, member)
    return obj


def _check_schema(obj, schema: str, member: str) -> None:
    """BundleError naming where `obj` breaks _VALIDATORS[schema] first, if it does."""
    error = best_match(_VALIDATORS[schema].iter_errors(obj))
    if error is not None:
        where = ".".join(map(str, error.absolute_path))
        message = error.message
        if error.validator == "pattern" and "description" in error.schema:
            message = f"{error.instance!r} is not {error.schema['description']}"
        raise BundleError(f"{member}: {f'{where}: ' if where else ''}{message}.")


def _read_manifest(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> dict:
    if "manifest.json" not in members:
        raise BundleError("bundle has no manifest.json; make bundles with Lookback's export.")
    manifest = _json(_read(zf, members["manifest.json"]), "manifest.json", None)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise BundleError(f"not a Lookback bundle: manifest format is {found!r}, expected {FORMAT!r}.")
    _check_schema(manifest, "head", "manifest.json")
    if manifest["format_version"] > FORMAT_VERSION:
        raise BundleError(f"bundle format version {manifest['format_version']} is not supported; this Lookback "
                          f"({__version__}) reads version {FORMAT_VERSION}. Upgrade Lookback to import it.")
    _check_schema(manifest, "manifest", "manifest.json")
    seen = set()
    for entry in manifest["runs"]:
        if entry["id"] in seen:
            raise BundleError(f"manifest.json lists run {entry['id']!r} twice.")
        seen.add(entry["id"])
    return manifest


def _parse_run(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], entry: dict, memo: dict) -> _Run:
    """One run's members, each read and checksummed; parsed once per distinct content (kept in `memo`), since
    parsing depends on the content alone and a failure ends the import."""
    run_id = entry["id"]

    def read(name: str) -> bytes:
        member = f"{run_id}/{name}"
        data = _read(zf, members[member])
        if _sha256(data) != entry["files"][name]:
            raise BundleError(f"checksum mismatch for {member}: the file is damaged or was edited after export; "
                              f"export the runs again.")
        return data

    def parsed(name: str, parse, *context):
        data = read(name)
        key = (name, entry["files"][name], *context)
        if key not in memo:
            memo[key] = parse(data)
        return memo[key]

    cfg = _parse_config(run_id, read("config.json"), entry, memo)
    metrics = parsed("metrics.json", lambda b: _json(b, f"{run_id}/metrics.json", "metrics"))
    env = parsed("environment.json", lambda b: _json(b, f"{run_id}/environment.json", "environment"))
    history = parsed("history.csv", lambda b: _parse_history(run_id, b, metrics["status"]), metrics["status"])
    expected = cfg["expected"]
    _check_outcome(run_id, metrics, history, env, cfg["train"], cfg["n_params"])
    state = None
    if "weights.pt" in entry["files"]:
        member = f"{run_id}/weights.pt"
        if metrics["status"] != Status.COMPLETED:
            raise BundleError(f"{member}: a {metrics['status']} run has no weights; only completed runs keep "
                              f"them.")
        need = sum(t.numel() * t.element_size() for t in expected.state_dict().values()) + WEIGHTS_SLACK
        if members[member].file_size > need:
            raise BundleError(f"{member} unpacks to {_size(members[member].file_size)}; the model in config.json "
                              f"needs at most {_size(need)}.")
        state = parsed("weights.pt", lambda b: _parse_weights(member, b, expected.state_dict()), cfg["digest"])
    record = {**metrics, "history": history, "env": env}
    return _Run(run_id, cfg["raw"], cfg["seed"], cfg["label"], cfg["task"], cfg["created"], record, state)


def _parse_data(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], manifest: dict,
                runs: list[_Run]) -> list:
    """The prepared user data the manifest lists, each checked against its name and used by a run."""
    used = {prepared.named_by(run.config) for run in runs}
    datasets = []
    for sha, digest in manifest.get("data", {}).items():
        member = f"{DATA_FOLDER}/{sha}.npz"
        if member not in members:
            raise BundleError(f"manifest.json lists {member} but the bundle has no such file; export the runs "
                              f"again.")
        if members[member].file_size > prepared.max_prepared_bytes() + 2**20:  # compressed arrays, headers
            raise BundleError(f"{member} is {_size(members[member].file_size)}, more than the "
                              f"{_size(prepared.max_prepared_bytes())} of prepared data kept per dataset on this "
                              f"install; raise {prepared.MAX_MB_ENV} to import it.")
        if sha not in used:
            raise BundleError(f"{member}: no run in the bundle trains on these data; bundles carry only the data "
                              f"of their runs.")
        blob = _read(zf, members[member])
        if _sha256(blob) != digest:
            raise BundleError(f"checksum mismatch for {member}: the file is damaged or was edited after export; "
                              f"export the runs again.")
        try:
            ds = prepared.read_prepared(io.BytesIO(blob), sha, member)
        except LookbackError as e:
            raise BundleError(f"{e}; export the runs again.") from e
        if (size := prepared.prepared_bytes(ds)) > prepared.max_prepared_bytes():
            raise BundleError(f"{member}: the prepared data take {_size(size)}, over the "
                              f"{_size(prepared.max_prepared_bytes())} kept per dataset on this install; raise "
                              f"{prepared.MAX_MB_ENV} to import them.")
        datasets.append(ds)
    return datasets


def _parse_config(run_id: str, data: bytes, entry: dict, memo: dict) -> dict:
    member = f"{run_id}/config.json"
    cfg = _json(data, member, "config")
    if "id" in cfg and cfg["id"] != run_id:
        raise BundleError(f"{member}: id {cfg['id']!r} is not the run's folder {run_id!r}.")
    digest = config_hash(cfg["config"])
    if "config_hash" in cfg and cfg["config_hash"] != digest:
        raise BundleError(f"{member}: config_hash does not match the config; the config was edited after "
                          f"export.")
    if not printable(cfg["label"]):
        raise BundleError(f"{member}: label {cfg['label']!r} holds control or formatting characters.")
    for key in ("label", "task"):
        if key in entry and entry[key] != cfg[key]:
            raise BundleError(f"{member}: {key} {cfg[key]!r} differs from manifest.json's {entry[key]!r}.")
    if ("config", digest) not in memo:  # identical configs are rebuilt once
        memo["config", digest] = _rebuild(member, cfg["config"])
    rebuilt = memo["config", digest]
    if cfg["task"] != rebuilt["task"]:
        raise BundleError(f"{member}: task {cfg['task']!r} is not the config's task {rebuilt['task']!r}.")
    if cfg["seed"] != rebuilt["train"].seed:
        raise BundleError(f"{member}: seed {cfg['seed']} is not the config's training seed "
                          f"{rebuilt['train'].seed}.")
    return rebuilt | {"raw": cfg["config"], "digest": digest, "label": cfg["label"], "seed": cfg["seed"],
                      "created": _created(member, cfg.get("created"))}


def _rebuild(member: str, parts: dict) -> dict:
    """The task, model, training and io configs rebuilt and validated (the seed's rule is TrainConfig's), and
    the model they make, built on the meta device."""
    try:
        task = task_from_dict(parts["task"])
        task.validate()
        model_cfg, train_cfg = from_dict(ModelConfig, parts["model"]), from_dict(TrainConfig, parts["train"])
        train_cfg.validate()
        model_io = from_dict(ModelIO, parts["io"])
        validate_model(model_cfg, model_io)
    except (LookbackError, TypeError) as e:  # TypeError: a required field is missing
        raise BundleError(f"{member}: the config cannot be rebuilt ({e}).") from e
    with torch.device("meta"):  # shapes and sizes only: no memory, no init cost
        expected = build_model(model_cfg, model_io)
    return {"task": task.name, "model": model_cfg, "train": train_cfg, "io": model_io, "expected": expected,
            "n_params": count_params(expected)}


def _created(member: str, text: str | None) -> str | None:
    """The creation time as the store writes it (UTC, microseconds), or None to use the import time."""
    if text is None:
        return None
    try:
        if not _TIMESTAMP.fullmatch(text):
            raise ValueError("expected YYYY-MM-DDTHH:MM:SS[.ffffff] with Z or a UTC offset")
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise BundleError(f"{member}: 'created' {text!r} is not an ISO 8601 time ({e}).") from e
    if when > datetime.now(UTC) + timedelta(days=1):
        raise BundleError(f"{member}: 'created' {text!r} lies in the future.")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _check_outcome(run_id: str, metrics: dict, history: list[dict], env: dict, train_cfg: TrainConfig,
                   n_params: int) -> None:
    """Metrics, history and environment that fit together, as the engine writes them."""
    member = f"{run_id}/metrics.json"
    status, epochs = metrics["status"], [h["epoch"] for h in history]
    if len(history) > train_cfg.epochs:
        raise BundleError(f"{run_id}/history.csv has {len(history)} epochs; the config trains at most "
                          f"{train_cfg.epochs}.")
    if metrics["best_epoch"] is not None and metrics["best_epoch"] not in epochs:
        raise BundleError(f"{member}: best_epoch {metrics['best_epoch']} is not an epoch of history.csv.")
    if metrics["n_params"] is not None and metrics["n_params"] != n_params:
        raise BundleError(f"{member}: n_params {metrics['n_params']} is not the {n_params} parameters of the "
                          f"model in config.json.")
    for name, value in metrics["test"].items():
        lo, hi = TEST_METRICS[name]
        if not lo <= value <= hi:
            raise BundleError(f"{member}: test {name} {value!r} is outside [{lo:g}, {hi:g}].")
    if status == Status.COMPLETED:
        if not history or metrics["best_epoch"] is None or not metrics["test"]:
            raise BundleError(f"{member}: a completed run needs at least one epoch in history.csv, a best_epoch "
                              f"and test metrics.")
        missing = [k for k in ENVIRONMENT_REQUIRED if k not in env]
        if missing:
            raise BundleError(f"{run_id}/environment.json of a completed run lacks {', '.join(missing)}; "
                              f"rerunning it needs them.")


def _parse_history(run_id: str, data: bytes, status: str) -> list[dict]:
    member = f"{run_id}/history.csv"
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as e:
        raise BundleError(f"{member} is not readable CSV text ({e}).") from e
    if not rows:
        raise BundleError(f"{member} is empty; expected a header row starting with 'epoch'.")
    header = rows[0]
    if not header or header[0] != "epoch":
        raise BundleError(f"{member} has a bad header: the first column must be 'epoch', got "
                          f"{header[0] if header else ''!r}.")
    if len(set(header)) != len(header):
        raise BundleError(f"{member} has a bad header: column names must be unique.")
    unknown = [c for c in header if c not in HISTORY_COLUMNS]
    if unknown:
        raise BundleError(f"{member} has an unknown column {unknown[0]!r}; the columns are "
                          f"{', '.join(HISTORY_COLUMNS)}.")
    missing = [c for c in HISTORY_REQUIRED if c not in header]
    if missing and len(rows) > 1:
        raise BundleError(f"{member} lacks column(s) {', '.join(missing)}.")
    history = []
    for line, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise BundleError(f"{member} line {line} has {len(row)} values; the header has {len(header)}.")
        last = line == len(rows)
        rec = {}
        for col, cell in zip(header, row, strict=True):
            rec[col] = value = _cell(member, line, col, cell)
            may_be_nan = col in ("val_loss", "val_metric") and last and status == Status.DIVERGED
            if not math.isfinite(value) and not may_be_nan:
                raise BundleError(f"{member} line {line}, column {col!r}: {cell!r} is not a finite number.")
            if col != "epoch" and col not in ("val_loss", "val_metric") and value < 0:
                raise BundleError(f"{member} line {line}, column {col!r}: {cell!r} is negative.")
        if rec["epoch"] != line - 1:
            raise BundleError(f"{member} line {line}: epoch must be {line - 1} (epochs count 1, 2, ... in "
                              f"order), got {row[0]!r}.")
        history.append(rec)
    return history


def _cell(member: str, line: int, col: str, cell: str) -> int | float:
    if col == "epoch":
        if not _INT.fullmatch(cell):
            raise BundleError(f"{member} line {line}: epoch must be a whole number, got {cell!r}.")
        return int(cell)
    if not _FLOAT.fullmatch(cell):
        raise BundleError(f"{member} line {line}, column {col!r}: {cell!r} is not a number.")
    return float(cell)


def _parse_weights(member: str, data: bytes, expected: dict) -> dict:
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad archives; weights_only refuses any code
        raise BundleError(f"{member} is not a loadable PyTorch state_dict ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}).") from e
    if not isinstance(state, dict):
        raise BundleError(f"{member} must hold a state_dict (name -> tensor), got {type(state).__name__}.")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise BundleError(f"{member} must map names to tensors; {key!r} maps to {type(value).__name__}.")
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        raise BundleError(f"{member} does not fit the model in config.json: missing {missing or 'none'}, "
                          f"unexpected {extra or 'none'}.")
    for key, ref in expected.items():
        value = state[key]
        if tuple(value.shape) != tuple(ref.shape) or value.dtype != ref.dtype:
            raise BundleError(f"{member} does not fit the model in config.json: {key} is {value.dtype} of shape "
                              f"{tuple(value.shape)}, the model needs {ref.dtype} of shape {tuple(ref.shape)}.")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise BundleError(f"{member}: {key} holds NaN or infinite values.")
    return state
