"""Reproducible zip bundles of runs: config, per-epoch history, metrics, environment and weights.

Layout: manifest.json plus one folder per run, `<run_id>/` with config.json, history.csv, metrics.json,
environment.json and optionally weights.pt. The manifest names the format, its version, the Lookback
version and every file with its sha256. `import_bundle` validates all of a bundle before it writes
anything, and never unpickles: weights are read with torch.load(weights_only=True) only.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import stat
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime

import torch

from lib.errors import ConfigError
from lib.models import ModelConfig, ModelIO, build_model
from lib.runtime import __version__
from lib.store import FINAL_STATUSES, RunStore, config_hash

FORMAT = "lookback-bundle"
FORMAT_VERSION = 1
MAX_BYTES = 256 * 2**20  # compressed bundle
MAX_UNCOMPRESSED = 1024 * 2**20  # all members together, unpacked
MAX_MEMBERS = 10_000
MAX_RATIO = 100  # unpacked / packed size of one member above RATIO_FLOOR: more looks like a zip bomb
RATIO_FLOOR = 2**20
REQUIRED_FILES = ("config.json", "history.csv", "metrics.json", "environment.json")
OPTIONAL_FILES = ("weights.pt",)
CONFIG_KEYS = ("task", "label", "seed", "config")
METRICS_KEYS = ("status", "message", "best_epoch", "n_params", "test")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_INT = re.compile(r"[+-]?\d+")


class BundleError(ConfigError):
    """A bundle cannot be exported or imported; the message names the member and the fault."""


@dataclass(frozen=True)
class _Run:
    """One validated run of a bundle, ready to store."""

    config: dict
    seed: int
    label: str
    task: str
    created: str | None
    record: dict
    state_dict: dict | None


# -- export ------------------------------------------------------------------------------------------


def export_bundle(store: RunStore, run_ids, include_weights: bool = True) -> bytes:
    """A zip of the given finished runs (see the module docstring) that `import_bundle` accepts."""
    ids = list(dict.fromkeys([run_ids] if isinstance(run_ids, str) else run_ids))
    if not ids:
        raise BundleError("choose at least one run to export.")
    buf = io.BytesIO()
    entries = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for run_id in ids:
            rec = store.get(run_id)
            if rec["status"] not in FINAL_STATUSES:
                raise BundleError(f"run {run_id!r} is still {rec['status']}; wait for it to finish or cancel "
                                  f"it before exporting.")
            files = {
                "config.json": _json_bytes({"id": run_id, "task": rec["task"], "label": rec["label"],
                                            "seed": rec["seed"], "created": rec["created"],
                                            "config_hash": rec["config_hash"], "config": rec["config"]}),
                "history.csv": _history_csv(run_id, rec["history"]),
                "metrics.json": _json_bytes({"status": rec["status"], "message": rec["message"],
                                             "best_epoch": rec["best_epoch"], "n_params": rec["n_params"],
                                             "test": rec["metrics"], "costs": rec["costs"]}),
                "environment.json": _json_bytes(rec["env"]),
            }
            if include_weights and rec["has_weights"]:
                weights = io.BytesIO()
                torch.save(store.load_weights(run_id), weights)
                files["weights.pt"] = weights.getvalue()
            for name, data in files.items():
                _write_member(zf, f"{run_id}/{name}", data)
            entries.append({"id": run_id, "label": rec["label"], "task": rec["task"],
                            "files": {name: _sha256(data) for name, data in files.items()}})
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "lookback": __version__,
                    "exported": datetime.now(UTC).isoformat(timespec="seconds"), "runs": entries}
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
                  max_uncompressed: int = MAX_UNCOMPRESSED) -> list[str]:
    """Validate a whole bundle, then store its runs atomically under new ids; returns those ids.

    Raises BundleError naming the first fault found; the store is unchanged when it does.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BundleError(f"a bundle must be bytes (the .zip file's contents), got {type(data).__name__}.")
    data = bytes(data)
    if len(data) > max_bytes:
        raise BundleError(f"bundle is {_size(len(data))}, more than the {_size(max_bytes)} limit.")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise BundleError(f"not a bundle: the data is not a zip file ({e}).") from e
    with zf:
        members = _check_members(zf, max_uncompressed)
        manifest = _read_manifest(zf, members)
        listed = {"manifest.json"}
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
        runs = []
        for entry in manifest["runs"]:
            files = {}
            for name, digest in entry["files"].items():
                member = f"{entry['id']}/{name}"
                files[name] = _read(zf, members[member])
                if _sha256(files[name]) != digest:
                    raise BundleError(f"checksum mismatch for {member}: the file is damaged or was edited "
                                      f"after export; export the runs again.")
            runs.append(_parse_run(entry["id"], files))
    return store.save_results([{"config": r.config, "seed": r.seed, "label": r.label, "task": r.task,
                                "created": r.created, "record": r.record, "state_dict": r.state_dict}
                               for r in runs])


def _size(n: int) -> str:
    return f"{n} bytes" if n < 2**20 else f"{n / 2**20:.1f} MiB"


def _check_members(zf: zipfile.ZipFile, max_uncompressed: int) -> dict[str, zipfile.ZipInfo]:
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
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise BundleError(f"member {name!r} unpacks {ratio:.0f}-fold (limit {MAX_RATIO}); refusing a "
                              f"likely zip bomb.")
        members[name] = info
    total = sum(i.file_size for i in members.values())
    if total > max_uncompressed:
        raise BundleError(f"bundle unpacks to {_size(total)}, more than the {_size(max_uncompressed)} limit.")
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
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        raise BundleError(f"member {info.filename!r} cannot be unpacked ({e}); the zip is damaged.") from e
    if len(data) != info.file_size:
        raise BundleError(f"member {info.filename!r} is not the size its zip entry declares; the zip is "
                          f"damaged.")
    return data


def _json(data: bytes, member: str):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{member} is not valid JSON ({e}).") from e


def _read_manifest(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> dict:
    if "manifest.json" not in members:
        raise BundleError("bundle has no manifest.json; make bundles with Lookback's export.")
    manifest = _json(_read(zf, members["manifest.json"]), "manifest.json")
    if not isinstance(manifest, dict):
        raise BundleError(f"manifest.json must be a JSON object, got {type(manifest).__name__}.")
    if manifest.get("format") != FORMAT:
        raise BundleError(f"not a Lookback bundle: manifest format is {manifest.get('format')!r}, expected "
                          f"{FORMAT!r}.")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise BundleError(f"bundle format version {version!r} is not supported; this Lookback "
                          f"({__version__}) reads version {FORMAT_VERSION}. Upgrade Lookback to import it.")
    runs = manifest.get("runs")
    if not isinstance(runs, list) or not runs:
        raise BundleError("manifest.json lists no runs; 'runs' must be a non-empty list.")
    seen = set()
    for n, entry in enumerate(runs, 1):
        if not isinstance(entry, dict):
            raise BundleError(f"manifest.json run #{n} must be an object, got {type(entry).__name__}.")
        run_id = entry.get("id")
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            raise BundleError(f"manifest.json run #{n} has an invalid id {run_id!r}; ids are 1-64 letters, "
                              f"digits, '_' or '-'.")
        if run_id in seen:
            raise BundleError(f"manifest.json lists run {run_id!r} twice.")
        seen.add(run_id)
        files = entry.get("files")
        if not isinstance(files, dict):
            raise BundleError(f"manifest.json run {run_id!r} needs 'files', an object of file name -> "
                              f"sha256.")
        for name, digest in files.items():
            if name not in REQUIRED_FILES + OPTIONAL_FILES:
                raise BundleError(f"manifest.json run {run_id!r} lists unknown file {name!r}; expected "
                                  f"{', '.join(REQUIRED_FILES + OPTIONAL_FILES)}.")
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                raise BundleError(f"manifest.json run {run_id!r} gives {name} a malformed sha256 {digest!r}.")
        missing = [f for f in REQUIRED_FILES if f not in files]
        if missing:
            raise BundleError(f"manifest.json run {run_id!r} lacks {', '.join(missing)}.")
    return manifest


def _parse_run(run_id: str, files: dict[str, bytes]) -> _Run:
    cfg = _parse_config(run_id, files["config.json"])
    metrics = _parse_metrics(run_id, files["metrics.json"])
    env = _json(files["environment.json"], f"{run_id}/environment.json")
    if not isinstance(env, dict):
        raise BundleError(f"{run_id}/environment.json must be a JSON object, got {type(env).__name__}.")
    history = _parse_history(run_id, files["history.csv"])
    state = _parse_weights(run_id, files["weights.pt"], cfg["config"]) if "weights.pt" in files else None
    record = {**metrics, "history": history, "env": env}
    return _Run(cfg["config"], cfg["seed"], cfg["label"], cfg["task"], cfg.get("created"), record, state)


def _json_object(data: bytes, member: str, keys) -> dict:
    """A member's JSON object holding every one of `keys`."""
    obj = _json(data, member)
    if not isinstance(obj, dict):
        raise BundleError(f"{member} must be a JSON object, got {type(obj).__name__}.")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise BundleError(f"{member} is missing key(s): {', '.join(missing)}.")
    return obj


def _parse_config(run_id: str, data: bytes) -> dict:
    member = f"{run_id}/config.json"
    cfg = _json_object(data, member, CONFIG_KEYS)
    for key, kind in (("task", str), ("label", str), ("config", dict)):
        if not isinstance(cfg[key], kind):
            raise BundleError(f"{member}: {key!r} must be a {'JSON object' if kind is dict else 'string'}, "
                              f"got {type(cfg[key]).__name__}.")
    if isinstance(cfg["seed"], bool) or not isinstance(cfg["seed"], int):
        raise BundleError(f"{member}: 'seed' must be an integer, got {cfg['seed']!r}.")
    if "config_hash" in cfg and cfg["config_hash"] != config_hash(cfg["config"]):
        raise BundleError(f"{member}: config_hash does not match the config; the config was edited after "
                          f"export.")
    if cfg.get("created") is not None:
        try:
            datetime.fromisoformat(cfg["created"])
        except (TypeError, ValueError) as e:
            raise BundleError(f"{member}: 'created' must be an ISO 8601 timestamp, got "
                              f"{cfg['created']!r}.") from e
    return cfg


def _parse_metrics(run_id: str, data: bytes) -> dict:
    member = f"{run_id}/metrics.json"
    m = _json_object(data, member, METRICS_KEYS)
    if m["status"] not in FINAL_STATUSES:
        raise BundleError(f"{member}: status {m['status']!r} is not one of {', '.join(FINAL_STATUSES)}.")
    if not isinstance(m["message"], str):
        raise BundleError(f"{member}: 'message' must be a string.")
    for key in ("best_epoch", "n_params"):
        if m[key] is not None and (isinstance(m[key], bool) or not isinstance(m[key], int) or m[key] < 0):
            raise BundleError(f"{member}: {key!r} must be a non-negative integer or null, got {m[key]!r}.")
    test = m["test"]
    if not isinstance(test, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in test.values()):
        raise BundleError(f"{member}: 'test' must be an object of metric name -> number, got {test!r}.")
    if m.get("costs") is not None and not isinstance(m["costs"], dict):
        raise BundleError(f"{member}: 'costs' must be a JSON object or null.")
    return {k: m.get(k) for k in (*METRICS_KEYS, "costs")}


def _parse_history(run_id: str, data: bytes) -> list[dict]:
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
    if any(not c for c in header) or len(set(header)) != len(header):
        raise BundleError(f"{member} has a bad header: column names must be non-empty and unique.")
    history, epochs = [], set()
    for line, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise BundleError(f"{member} line {line} has {len(row)} values; the header has {len(header)}.")
        rec = {}
        for col, cell in zip(header, row, strict=True):
            if cell == "":
                continue
            if _INT.fullmatch(cell):
                rec[col] = int(cell)
                continue
            try:
                rec[col] = float(cell)
            except ValueError:
                raise BundleError(f"{member} line {line}, column {col!r}: {cell!r} is not a "
                                  f"number.") from None
        epoch = rec.get("epoch")
        if not isinstance(epoch, int) or epoch in epochs:
            raise BundleError(f"{member} line {line}: epoch must be a unique integer, got {row[0]!r}.")
        epochs.add(epoch)
        history.append(rec)
    return history


def _parse_weights(run_id: str, data: bytes, config: dict) -> dict:
    member = f"{run_id}/weights.pt"
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
    if isinstance(config.get("model"), dict) and isinstance(config.get("io"), dict):
        _check_shapes(member, state, config["model"], config["io"])
    return state


def _check_shapes(member: str, state: dict, model: dict, model_io: dict) -> None:
    try:
        with torch.device("meta"):  # shapes only: no memory, no init cost
            expected = build_model(ModelConfig(**model), ModelIO(**model_io)).state_dict()
    except (TypeError, ConfigError) as e:
        raise BundleError(f"{member}: the model in config.json cannot be rebuilt to check the weights "
                          f"({e}).") from e
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        raise BundleError(f"{member} does not fit the model in config.json: missing {missing or 'none'}, "
                          f"unexpected {extra or 'none'}.")
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise BundleError(f"{member} does not fit the model in config.json: {key} has shape "
                              f"{tuple(state[key].shape)}, the model needs {tuple(ref.shape)}.")
