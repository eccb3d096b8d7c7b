"""Bundles: export -> import round trip, and a specific refusal for every malformed bundle."""
from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile
from dataclasses import asdict

import pytest
import torch

from lib.bundles import MAX_MEMBERS, BundleError, export_bundle, import_bundle
from lib.models import ModelConfig, ModelIO, build_model
from lib.runtime import environment
from lib.store import RunStore, StoreError
from lib.train import RunResult, TrainConfig

IO = ModelIO(seq_len=6, n_features=12, n_outputs=3, tokens=True)
MODEL = ModelConfig(kind="lstm", hidden=4)


def _config(model: ModelConfig = MODEL) -> dict:
    return {"task": {"distance": 3}, "model": asdict(model), "train": asdict(TrainConfig(epochs=2)),
            "io": asdict(IO)}


def _record(status: str = "completed") -> dict:
    history = [{"epoch": 1, "train_loss": 1.25, "val_loss": 1.5, "val_metric": 0.25, "epoch_seconds": 0.1},
               {"epoch": 2, "train_loss": 0.75, "val_loss": 1.0, "val_metric": 0.5, "epoch_seconds": 0.1}]
    result = RunResult(MODEL, TrainConfig(epochs=2), status, "trained 2 epochs", history, 2,
                       {"loss": 1.0, "accuracy": 0.5}, 123, environment())
    return result.record() | {"costs": {"train_seconds": 0.2, "per_layer": {"rnn": 96}}}


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "source.sqlite") as s:
        yield s


@pytest.fixture
def target(tmp_path):
    with RunStore(tmp_path / "target.sqlite") as s:
        yield s


@pytest.fixture
def runs(store):
    """Two finished runs: an LSTM with weights and a plain record without."""
    torch.manual_seed(0)
    model = build_model(MODEL, IO)
    with_weights = store.save_result(_config(), 0, "LSTM", "text_recall", _record(), model.state_dict())
    plain = store.save_result({"task": {"distance": 5}}, 1, "GRU", "text_recall", _record("diverged"))
    return with_weights, plain


@pytest.fixture
def bundle(store, runs) -> bytes:
    return export_bundle(store, runs)


def unpack(data: bytes) -> tuple[dict, dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    return json.loads(files.pop("manifest.json")), files


def pack(manifest: dict | bytes | None, files: dict[str, bytes], fix_checksums: bool = True) -> bytes:
    """A zip of files plus the manifest, with the manifest's checksums recomputed unless told not to."""
    if isinstance(manifest, dict) and fix_checksums:
        for entry in manifest.get("runs", []):
            for name in entry["files"]:
                member = f"{entry['id']}/{name}"
                if member in files:
                    entry["files"][name] = hashlib.sha256(files[member]).hexdigest()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        if manifest is not None:
            zf.writestr("manifest.json", manifest if isinstance(manifest, bytes) else json.dumps(manifest))
    return buf.getvalue()


def rejects(target: RunStore, data: bytes, message: str, **limits) -> None:
    with pytest.raises(BundleError, match=re.escape(message)):
        import_bundle(target, data, **limits)
    assert target.runs().empty  # nothing was written


# -- round trip ---------------------------------------------------------------------------------------


def test_round_trip_keeps_config_history_metrics_environment_and_weights(store, target, runs, bundle):
    new_ids = import_bundle(target, bundle)
    assert len(new_ids) == 2 and not set(new_ids) & set(runs)
    for old_id, new_id in zip(runs, new_ids, strict=True):
        old, new = store.get(old_id), target.get(new_id)
        for key in ("task", "label", "seed", "config", "config_hash", "status", "message", "metrics", "costs",
                    "env", "version", "best_epoch", "n_params", "history", "created", "has_weights"):
            assert new[key] == old[key], key
    weights, original = target.load_weights(new_ids[0]), store.load_weights(runs[0])
    assert weights.keys() == original.keys()
    assert all(torch.equal(weights[k], original[k]) for k in original)
    assert target.load_weights(new_ids[1]) is None
    assert target.find(_config(), 0)["id"] == new_ids[0]  # imported runs are reusable


def test_bundle_layout_and_manifest(runs, bundle):
    manifest, files = unpack(bundle)
    assert (manifest["format"], manifest["format_version"], manifest["lookback"]) == (
        "lookback-bundle", 1, environment()["lookback"])
    assert [r["id"] for r in manifest["runs"]] == list(runs)
    assert sorted(files) == sorted(
        [f"{runs[0]}/{n}" for n in ("config.json", "history.csv", "metrics.json", "environment.json",
                                    "weights.pt")]
        + [f"{runs[1]}/{n}" for n in ("config.json", "history.csv", "metrics.json", "environment.json")])
    for entry in manifest["runs"]:
        for name, digest in entry["files"].items():
            assert hashlib.sha256(files[f"{entry['id']}/{name}"]).hexdigest() == digest
    assert files[f"{runs[0]}/history.csv"].decode().splitlines()[:2] == [
        "epoch,train_loss,val_loss,val_metric,epoch_seconds", "1,1.25,1.5,0.25,0.1"]


def test_export_without_weights_and_export_refusals(store, runs):
    _, files = unpack(export_bundle(store, runs, include_weights=False))
    assert not any(name.endswith("weights.pt") for name in files)
    running = store.start_run(_config(), 2, "LSTM", "text_recall", environment())
    with pytest.raises(BundleError, match=re.escape(
            f"run {running!r} is still running; wait for it to finish or cancel it before exporting.")):
        export_bundle(store, [running])
    with pytest.raises(BundleError, match=re.escape("choose at least one run to export.")):
        export_bundle(store, [])
    with pytest.raises(StoreError, match=re.escape("no run 'nope'")):
        export_bundle(store, ["nope"])


def test_a_bad_run_rejects_the_whole_bundle(target, runs, bundle):
    manifest, files = unpack(bundle)
    files[f"{runs[1]}/metrics.json"] = b"[]"
    rejects(target, pack(manifest, files), f"{runs[1]}/metrics.json must be a JSON object, got list.")


# -- refusals: the zip itself -------------------------------------------------------------------------


def test_not_a_zip(target):
    rejects(target, b"PK\x03\x04 but not really a zip",
            "not a bundle: the data is not a zip file (File is not a zip file).")


def test_too_large_compressed(target, bundle):
    rejects(target, bundle, f"bundle is {len(bundle)} bytes, more than the 1000 bytes limit.", max_bytes=1000)


def test_too_large_uncompressed(target, bundle):
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        total = sum(i.file_size for i in zf.infolist())
    rejects(target, bundle, f"bundle unpacks to {total} bytes, more than the 2000 bytes limit.",
            max_uncompressed=2000)


def test_zip_bomb_ratio(target):
    data = pack({}, {"bomb.bin": bytes(4 * 2**20)})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("bomb.bin")
    fold = info.file_size / info.compress_size
    rejects(target, data,
            f"member 'bomb.bin' unpacks {fold:.0f}-fold (limit 100); refusing a likely zip bomb.")


def test_too_many_members(target):
    data = pack(None, {f"f{i}": b"" for i in range(MAX_MEMBERS + 1)})
    rejects(target, data, f"bundle has {MAX_MEMBERS + 1} members, more than the limit of {MAX_MEMBERS}.")


@pytest.mark.parametrize(("name", "reason"), [
    ("../evil.json", "it climbs out of the bundle with '..'"),
    ("run/../../evil.json", "it climbs out of the bundle with '..'"),
    ("/etc/passwd", "it is absolute"),
    ("run\\config.json", "it contains a backslash"),
    ("C:/windows/evil.json", "it starts with a drive letter"),
    ("run//config.json", "it has an empty or '.' component"),
])
def test_unsafe_member_paths(target, bundle, name, reason):
    manifest, files = unpack(bundle)
    rejects(target, pack(manifest, files | {name: b"{}"}),
            f"unsafe member path {name!r}: {reason}; bundles hold relative paths only.")


def test_symlink_member(target, bundle, runs):
    manifest, files = unpack(bundle)
    buf = io.BytesIO(pack(manifest, files))
    with zipfile.ZipFile(buf, "a") as zf:
        link = zipfile.ZipInfo(f"{runs[0]}/link")
        link.create_system = 3  # unix
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    rejects(target, buf.getvalue(),
            f"member '{runs[0]}/link' is a symbolic link; bundles hold plain files only.")


def test_duplicate_member(target, bundle, runs):
    buf = io.BytesIO(bundle)
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(f"{runs[0]}/config.json", b"{}")
    rejects(target, buf.getvalue(), f"member '{runs[0]}/config.json' appears more than once in the zip.")


# -- refusals: the manifest ---------------------------------------------------------------------------


def test_missing_manifest(target, bundle):
    _, files = unpack(bundle)
    rejects(target, pack(None, files), "bundle has no manifest.json; make bundles with Lookback's export.")


def test_manifest_bad_json(target, bundle):
    _, files = unpack(bundle)
    rejects(target, pack(b"{not json", files),
            "manifest.json is not valid JSON (Expecting property name enclosed in double quotes: line 1 "
            "column 2 (char 1)).")


def test_wrong_format_name(target, bundle):
    manifest, files = unpack(bundle)
    rejects(target, pack(manifest | {"format": "other-tool"}, files),
            "not a Lookback bundle: manifest format is 'other-tool', expected 'lookback-bundle'.")


def test_unsupported_format_version(target, bundle):
    manifest, files = unpack(bundle)
    rejects(target, pack(manifest | {"format_version": 2}, files),
            f"bundle format version 2 is not supported; this Lookback ({environment()['lookback']}) reads "
            f"version 1. Upgrade Lookback to import it.")


def test_manifest_without_runs(target, bundle):
    manifest, _ = unpack(bundle)
    rejects(target, pack(manifest | {"runs": []}, {}),
            "manifest.json lists no runs; 'runs' must be a non-empty list.")


def test_duplicate_run_ids(target, bundle):
    manifest, files = unpack(bundle)
    manifest["runs"].append(manifest["runs"][0])
    rejects(target, pack(manifest, files), f"manifest.json lists run {manifest['runs'][0]['id']!r} twice.")


def test_invalid_run_id(target, bundle):
    manifest, files = unpack(bundle)
    manifest["runs"][0]["id"] = "a b"
    rejects(target, pack(manifest, files),
            "manifest.json run #1 has an invalid id 'a b'; ids are 1-64 letters, digits, '_' or '-'.")


def test_manifest_lists_a_missing_file(target, bundle, runs):
    manifest, files = unpack(bundle)
    del files[f"{runs[0]}/history.csv"]
    rejects(target, pack(manifest, files), f"manifest.json lists {runs[0]}/history.csv but the bundle has no "
                                           f"such file; export the runs again.")


def test_checksum_mismatch(target, bundle, runs):
    manifest, files = unpack(bundle)
    files[f"{runs[0]}/history.csv"] += b"3,0.5,0.5,0.75,0.1\n"
    rejects(target, pack(manifest, files, fix_checksums=False),
            f"checksum mismatch for {runs[0]}/history.csv: the file is damaged or was edited after export; "
            f"export the runs again.")


def test_unexpected_extra_member(target, bundle, runs):
    manifest, files = unpack(bundle)
    rejects(target, pack(manifest, files | {f"{runs[0]}/notes.txt": b"hi"}),
            f"unexpected member '{runs[0]}/notes.txt': manifest.json does not list it; bundles hold only the "
            f"files their manifest names.")


# -- refusals: the run files --------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b"[1, 2]", "config.json must be a JSON object, got list."),
    (b'{"task": "text_recall", "config": {}}', "config.json is missing key(s): label, seed."),
    (b'{"task": "t", "label": "L", "seed": "0", "config": {}}',
     "config.json: 'seed' must be an integer, got '0'."),
    (b'{"task": "t", "label": "L", "seed": 0, "config": {"a": 1}, "config_hash": "00"}',
     "config.json: config_hash does not match the config; the config was edited after export."),
])
def test_bad_config_json(target, bundle, runs, content, message):
    manifest, files = unpack(bundle)
    files[f"{runs[1]}/config.json"] = content
    rejects(target, pack(manifest, files), f"{runs[1]}/{message}")


@pytest.mark.parametrize(("content", "message"), [
    (b"", "history.csv is empty; expected a header row starting with 'epoch'."),
    (b"step,loss\n1,0.5\n", "history.csv has a bad header: the first column must be 'epoch', got 'step'."),
    (b"epoch,loss,loss\n1,0.5,0.5\n",
     "history.csv has a bad header: column names must be non-empty and unique."),
    (b"epoch,loss\n1,0.5\n2,abc\n", "history.csv line 3, column 'loss': 'abc' is not a number."),
    (b"epoch,loss\n1,0.5,7\n", "history.csv line 2 has 3 values; the header has 2."),
    (b"epoch,loss\n1,0.5\n1,0.4\n", "history.csv line 3: epoch must be a unique integer, got '1'."),
])
def test_bad_history_csv(target, bundle, runs, content, message):
    manifest, files = unpack(bundle)
    files[f"{runs[1]}/history.csv"] = content
    rejects(target, pack(manifest, files), f"{runs[1]}/{message}")


@pytest.mark.parametrize(("edit", "message"), [
    ({"status": "running"},
     "metrics.json: status 'running' is not one of completed, cancelled, diverged, failed, interrupted."),
    ({"test": {"accuracy": "high"}},
     "metrics.json: 'test' must be an object of metric name -> number, got {'accuracy': 'high'}."),
    ({"n_params": -1}, "metrics.json: 'n_params' must be a non-negative integer or null, got -1."),
])
def test_bad_metrics_json(target, bundle, runs, edit, message):
    manifest, files = unpack(bundle)
    metrics = json.loads(files[f"{runs[1]}/metrics.json"])
    files[f"{runs[1]}/metrics.json"] = json.dumps(metrics | edit).encode()
    rejects(target, pack(manifest, files), f"{runs[1]}/{message}")


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class _Payload:
    """Pickles into a call that would leave a marker file: weights_only loading must refuse it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_weights_that_are_not_a_loadable_state_dict(target, bundle, runs):
    manifest, files = unpack(bundle)
    files[f"{runs[0]}/weights.pt"] = b"random bytes, not a torch archive"
    with pytest.raises(BundleError, match=re.escape(f"{runs[0]}/weights.pt is not a loadable PyTorch "
                                                    f"state_dict (")):
        import_bundle(target, pack(manifest, files))


def test_weights_with_code_are_refused_without_running_it(target, bundle, runs, tmp_path):
    marker = tmp_path / "pwned"
    manifest, files = unpack(bundle)
    files[f"{runs[0]}/weights.pt"] = _saved({"rnn.weight_ih_l0": _Payload(marker)})
    with pytest.raises(BundleError, match=re.escape(f"{runs[0]}/weights.pt is not a loadable PyTorch "
                                                    f"state_dict (UnpicklingError: ")):
        import_bundle(target, pack(manifest, files))
    assert not marker.exists() and target.runs().empty


def test_weights_must_map_names_to_tensors(target, bundle, runs):
    manifest, files = unpack(bundle)
    files[f"{runs[0]}/weights.pt"] = _saved({"rnn.weight_ih_l0": 3})
    rejects(target, pack(manifest, files),
            f"{runs[0]}/weights.pt must map names to tensors; 'rnn.weight_ih_l0' maps to int.")
    files[f"{runs[0]}/weights.pt"] = _saved([torch.zeros(2)])
    rejects(target, pack(manifest, files),
            f"{runs[0]}/weights.pt must hold a state_dict (name -> tensor), got list.")


def test_weights_must_fit_the_model_in_the_config(target, bundle, runs):
    manifest, files = unpack(bundle)
    bigger = build_model(ModelConfig(kind="lstm", hidden=5), IO).state_dict()
    files[f"{runs[0]}/weights.pt"] = _saved(bigger)
    rejects(target, pack(manifest, files),
            f"{runs[0]}/weights.pt does not fit the model in config.json: rnn.weight_ih_l0 has shape "
            f"(20, 16), the model needs (16, 16).")
    right = build_model(MODEL, IO).state_dict()
    renamed = {("x" if k == "head.bias" else k): v for k, v in right.items()}
    files[f"{runs[0]}/weights.pt"] = _saved(renamed)
    rejects(target, pack(manifest, files),
            f"{runs[0]}/weights.pt does not fit the model in config.json: missing ['head.bias'], "
            f"unexpected ['x'].")
