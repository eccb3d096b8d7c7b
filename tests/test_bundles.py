"""Bundles: export -> import round trip, and a specific refusal for every malformed bundle."""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import sqlite3
import stat
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lib import bundles
from lib.bundles import MAX_MEMBERS, BundleError, export_bundle, import_bundle
from lib.cli import main
from lib.experiments import compare, load_comparison, rerun_job
from lib.models import ModelConfig, ModelIO, build_model, count_params
from lib.runs import dataset, run_config, run_one
from lib.runtime import environment
from lib.store import RunStore, StoreError
from lib.tables import rerun_table, rerun_verdict
from lib.tasks import make_dataset, task_from_dict
from lib.tasks.text import TextRecallConfig
from lib.tasks.user.prepared import dataset_sha256, prepare
from lib.train import RunResult, TrainConfig
from tests.support.user_files import npy_declaring, zip_of

GRU = ModelConfig(kind="gru", hidden=4)
TRAIN = TrainConfig(epochs=2, patience=0)

TASK = TextRecallConfig(distance=2, n_train=60, n_val=20, n_test=20)
MODEL = ModelConfig(kind="lstm", hidden=4)
IO = ModelIO.from_dataset(dataset(TASK))


def _config(model: ModelConfig = MODEL, seed: int = 0) -> dict:
    return run_config(TASK, model, TrainConfig(epochs=2, seed=seed))


def _record(status: str = "completed", model: ModelConfig = MODEL, seed: int = 0) -> dict:
    history = [{"epoch": 1, "train_loss": 1.25, "val_loss": 1.5, "val_metric": 0.25, "epoch_seconds": 0.1,
                "elapsed_seconds": 0.1},
               {"epoch": 2, "train_loss": 0.75, "val_loss": 1.0, "val_metric": 0.5, "epoch_seconds": 0.1,
                "elapsed_seconds": 0.2}]
    if status == "diverged":  # the engine records the epoch whose validation loss blew up, then stops
        history[1] |= {"val_loss": math.nan, "val_metric": 0.0}
    n_params = count_params(build_model(model, IO))
    result = RunResult(model, TrainConfig(epochs=2, seed=seed), status, "trained 2 epochs", history, 1,
                       {"loss": 1.0, "accuracy": 0.5}, n_params, environment())
    return result.record()


def _item(model: ModelConfig = MODEL, seed: int = 0, status: str = "completed", weights: bool = True) -> dict:
    torch.manual_seed(seed)
    state = build_model(model, IO).state_dict() if weights else None
    return {"config": _config(model, seed), "seed": seed, "label": model.label, "task": TASK.name,
            "record": _record(status, model, seed), "state_dict": state}


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
    """Two finished runs: an LSTM with weights and a diverged GRU without."""
    return tuple(store.save_results([_item(), _item(GRU, seed=1, status="diverged", weights=False)]))


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
        for sha in manifest.get("data", {}):
            if f"userdata/{sha}.npz" in files:
                manifest["data"][sha] = hashlib.sha256(files[f"userdata/{sha}.npz"]).hexdigest()
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
    report = import_bundle(target, bundle)
    new_ids = report.imported
    assert len(new_ids) == 2 and not set(new_ids) & set(runs) and report.existing == ()
    for old_id, new_id in zip(runs, new_ids, strict=True):
        old, new = store.get(old_id), target.get(new_id)
        for key in ("task", "label", "seed", "config", "config_hash", "status", "message", "metrics",
                    "env", "version", "code", "best_epoch", "n_params", "history", "created", "has_weights"):
            assert new[key] == old[key], key
    weights, original = target.load_weights(new_ids[0]), store.load_weights(runs[0])
    assert weights.keys() == original.keys()
    assert all(torch.equal(weights[k], original[k]) for k in original)
    assert target.load_weights(new_ids[1]) is None
    assert math.isnan(target.get(new_ids[1])["history"][1]["val_loss"])  # a diverged run keeps its NaN epoch


NEW_KINDS = (ModelConfig(kind="linear", window=3, variant="dlinear"), ModelConfig(kind="tcn", hidden=4, levels=2),
             ModelConfig(kind="transformer", hidden=8), ModelConfig(kind="mingru", hidden=4))


def test_runs_of_the_new_kinds_reuse_from_the_store_and_come_back_from_a_bundle_predicting_the_same(store, target):
    """Issue 19: the linear map, TCN, Transformer and minGRU through the run store and a bundle round trip."""
    trained = compare(TASK, NEW_KINDS, TrainConfig(epochs=1, patience=0), store=store, n_jobs=1)
    again = compare(TASK, NEW_KINDS, TrainConfig(epochs=1, patience=0), store=store, n_jobs=1)
    assert all(r.message.startswith(f"reused stored run {t.run_id}") for r, t in zip(again.runs, trained.runs,
                                                                                      strict=True))
    report = import_bundle(target, export_bundle(store, [r.run_id for r in trained.runs]))
    loaded, dropped = load_comparison(target, report.imported)
    assert dropped == [] and [r.label for r in loaded.runs] == ["DLinear w3", "TCN k3 n2", "Transformer", "minGRU"]
    x = dataset(TASK).test.x[:5]
    with torch.no_grad():
        for old, new in zip(trained.runs, loaded.runs, strict=True):
            assert new.model_config == old.model_config and new.test == old.test
            assert torch.equal(new.model.eval()(x), old.model.eval()(x)), old.label


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
        "epoch,train_loss,val_loss,val_metric,epoch_seconds,elapsed_seconds", "1,1.25,1.5,0.25,0.1,0.1"]


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
    rejects(target, pack(manifest, files), f"{runs[1]}/metrics.json: [] is not of type 'object'.")


def test_a_run_trained_with_seed_minus_1_comes_back_from_its_own_bundle(store, target):
    """Training allows any 64-bit seed (TrainConfig.seed), and import reads the rule from there."""
    run_id = run_one(TASK, GRU, replace(TRAIN, seed=-1), store).run_id
    (imported,) = import_bundle(target, export_bundle(store, [run_id])).imported
    assert target.get(imported)["seed"] == -1 and target.get(imported)["config"]["train"]["seed"] == -1


def test_identical_runs_of_a_bundle_are_rebuilt_and_their_weights_loaded_once(store, target, monkeypatch):
    """B76: a bundle of many identical runs repeated every check per run (112 s for 1,999 under load)."""
    data = export_bundle(store, store.save_results([_item()] * 50))
    calls = {"build_model": 0, "load": 0}

    def counted(name, fn):
        def call(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return call

    monkeypatch.setattr(bundles, "build_model", counted("build_model", bundles.build_model))
    monkeypatch.setattr(bundles.torch, "load", counted("load", torch.load))
    report = import_bundle(target, data)
    assert (len(report.imported), len(report.existing)) == (1, 49)
    assert calls == {"build_model": 1, "load": 1}


def test_an_edited_copy_among_identical_runs_is_still_refused(store, target):
    ids = store.save_results([_item()] * 3)
    manifest, files = unpack(export_bundle(store, ids))
    state = torch.load(io.BytesIO(files[f"{ids[2]}/weights.pt"]), weights_only=True)
    files[f"{ids[2]}/weights.pt"] = _saved({k: torch.full_like(v, math.nan) for k, v in state.items()})
    rejects(target, pack(manifest, files), f"{ids[2]}/weights.pt: {next(iter(state))} holds NaN or infinite values.")



# -- refusals: the zip itself -------------------------------------------------------------------------


def test_not_a_zip(target):
    rejects(target, b"PK\x03\x04 but not really a zip",
            "not a bundle: the data is not a zip file (File is not a zip file).")


def test_too_large_compressed(target, bundle):
    rejects(target, bundle, f"bundle is {len(bundle) / 1024:.1f} KiB, more than the 1000 bytes limit.",
            max_bytes=1000)


def test_too_large_uncompressed(target, bundle):
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        total = sum(i.file_size for i in zf.infolist())
    rejects(target, bundle, f"bundle unpacks to {total / 1024:.1f} KiB, more than the 2.0 KiB limit.",
            max_uncompressed=2048)


def test_zip_bomb_ratio(target):
    data = pack({}, {"bomb.bin": bytes(16 * 2**20)})
    rejects(target, data, f"bundle unpacks {16 * 2**20 / len(data):.0f}-fold, to 16.0 MiB (limit 50-fold above "
                          f"8.0 MiB); refusing a likely zip bomb.")


@pytest.mark.parametrize(("name", "limit"), [("config.json", "64.0 KiB"), ("history.csv", "512.0 KiB")])
def test_each_member_kind_has_a_size_limit_even_at_exactly_one_mebibyte(target, bundle, runs, name, limit):
    manifest, files = unpack(bundle)
    files[f"{runs[0]}/{name}"] = bytes(2**20)
    rejects(target, pack(manifest, files),
            f"member '{runs[0]}/{name}' unpacks to 1.0 MiB, more than the {limit} such a file may take.")


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
    rejects(target, pack(manifest | {"format_version": 3}, files),
            f"bundle format version 3 is not supported; this Lookback ({environment()['lookback']}) reads "
            f"version 2. Upgrade Lookback to import it.")


def test_manifest_without_runs(target, bundle):
    manifest, _ = unpack(bundle)
    rejects(target, pack(manifest | {"runs": []}, {}), "manifest.json: runs: [] should be non-empty.")


def test_duplicate_run_ids(target, bundle):
    manifest, files = unpack(bundle)
    manifest["runs"].append(manifest["runs"][0])
    rejects(target, pack(manifest, files), f"manifest.json lists run {manifest['runs'][0]['id']!r} twice.")


def test_invalid_run_id(target, bundle):
    manifest, files = unpack(bundle)
    manifest["runs"][0]["id"] = "a b"
    rejects(target, pack(manifest, files),
            "manifest.json: runs.0.id: 'a b' is not an id of 1-64 letters, digits, '_' or '-'.")


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
    (b"[1, 2]", "config.json: [1, 2] is not of type 'object'."),
    (b'{"task": "text_recall", "config": {}}', "config.json: 'label' is a required property."),
    (b'{"task": "t", "label": "L", "seed": "0", "config": {}}', "config.json: seed: '0' is not of type 'integer'."),
    (b'{"task": "t", "label": "L", "seed": 1180591620717411303424, "config": {}}',
     "config.json: seed: 1180591620717411303424 is greater than the maximum of 9223372036854775807."),
    (b'{"task": "t", "label": "L", "seed": 0, "config": {"a": 1}, "config_hash": "00"}',
     "config.json: config_hash: '00' is not a sha256 (64 hex digits)."),
    (b'{"task": "t", "label": "L", "seed": 0, "config": {"a": 1}, "config_hash": "' + b"0" * 64 + b'"}',
     "config.json: config: 'task' is a required property."),
])
def test_bad_config_json(target, bundle, runs, content, message):
    manifest, files = unpack(bundle)
    files[f"{runs[1]}/config.json"] = content
    rejects(target, pack(manifest, files), f"{runs[1]}/{message}")


HEADER = b"epoch,train_loss,val_loss,val_metric,epoch_seconds,elapsed_seconds\n"


@pytest.mark.parametrize(("content", "message"), [
    (b"", "history.csv is empty; expected a header row starting with 'epoch'."),
    (b"step,loss\n1,0.5\n", "history.csv has a bad header: the first column must be 'epoch', got 'step'."),
    (b"epoch,val_loss,val_loss\n1,0.5,0.5\n", "history.csv has a bad header: column names must be unique."),
    (b"epoch,c0\n1,0\n", "history.csv has an unknown column 'c0'; the columns are epoch, train_loss, val_loss, "
                          "val_metric, epoch_seconds, elapsed_seconds, epoch_cpu_seconds, load_1min."),
    (b"epoch,val_loss\n1,0.5\n", "history.csv lacks column(s) train_loss, val_metric, epoch_seconds, "
                                 "elapsed_seconds."),
    (HEADER + b"1,1,1,1,1,1\n2,1,abc,1,1,1\n", "history.csv line 3, column 'val_loss': 'abc' is not a number."),
    (HEADER + b"1,1,1,1,1,1_0\n", "history.csv line 2, column 'elapsed_seconds': '1_0' is not a number."),
    (HEADER + b"1,1,1,1,1,1,7\n", "history.csv line 2 has 7 values; the header has 6."),
    (HEADER + b"1,1,1,1,1,1\n1,1,1,1,1,1\n", "history.csv line 3: epoch must be 2 (epochs count 1, 2, ... in "
                                             "order), got '1'."),
    (HEADER + b"1.0,1,1,1,1,1\n", "history.csv line 2: epoch must be a whole number, got '1.0'."),
    (HEADER + b"1,nan,1,1,1,1\n", "history.csv line 2, column 'train_loss': 'nan' is not a finite number."),
    (HEADER + b"1,1,1,1,1e400,1\n", "history.csv line 2, column 'epoch_seconds': '1e400' is not a finite number."),
    (HEADER + b"1,1,inf,1,1,1\n2,1,1,1,1,1\n",  # only a diverged run's last epoch may hold NaN or infinity
     "history.csv line 2, column 'val_loss': 'inf' is not a finite number."),
    (HEADER + b"1,1,1,1,-1,1\n", "history.csv line 2, column 'epoch_seconds': '-1' is negative."),
    (HEADER + b"1,1,1,1,1,1\n2,1,1,1,1,1\n3,1,1,1,1,1\n",
     "history.csv has 3 epochs; the config trains at most 2."),
])
def test_bad_history_csv(target, bundle, runs, content, message):
    manifest, files = unpack(bundle)
    files[f"{runs[1]}/history.csv"] = content
    rejects(target, pack(manifest, files), f"{runs[1]}/{message}")


@pytest.mark.parametrize(("edit", "message"), [
    ({"status": "running"}, "metrics.json: status: 'running' is not one of ['completed', 'cancelled', "
                             "'diverged', 'failed', 'interrupted']."),
    ({"test": {"accuracy": "high"}}, "metrics.json: test.accuracy: 'high' is not of type 'number'."),
    ({"test": {"accuracy": 1.5}}, "metrics.json: test accuracy 1.5 is outside [0, 1]."),
    ({"test": {"accuracy": 10 ** 400}}, "metrics.json: test accuracy " + "1" + "0" * 400 + " is outside [0, 1]."),
    ({"test": {"score": 1.0}}, "metrics.json: test: 'score' is not one of ['loss', 'accuracy', 'perplexity', "
                               "'mse', 'mae']."),
    ({"n_params": -1}, "metrics.json: n_params: -1 is less than the minimum of 0."),
    ({"n_params": 7}, f"metrics.json: n_params 7 is not the {count_params(build_model(GRU, IO))} parameters of "
                      f"the model in config.json."),
    ({"best_epoch": 9}, "metrics.json: best_epoch 9 is not an epoch of history.csv."),
    ({"best_epoch": 2**70}, "metrics.json: best_epoch: 1180591620717411303424 is greater than the maximum of "
                            "9223372036854775807."),
    ({"message": True}, "metrics.json: message: True is not of type 'string'."),
    ({"extra": 1}, "metrics.json: Additional properties are not allowed ('extra' was unexpected)."),
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
            f"{runs[0]}/weights.pt does not fit the model in config.json: rnn.weight_ih_l0 is torch.float32 of "
            f"shape (20, 16), the model needs torch.float32 of shape (16, 16).")
    right = build_model(MODEL, IO).state_dict()
    renamed = {("x" if k == "head.bias" else k): v for k, v in right.items()}
    files[f"{runs[0]}/weights.pt"] = _saved(renamed)
    rejects(target, pack(manifest, files),
            f"{runs[0]}/weights.pt does not fit the model in config.json: missing ['head.bias'], "
            f"unexpected ['x'].")


# -- refusals: a run trained here, its bundle edited (the reliability audit's regressions) ------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A store holding one GRU trained here for two epochs, and its id."""
    path = tmp_path_factory.mktemp("trained") / "runs.sqlite"
    with RunStore(path) as s:
        return path, run_one(TASK, GRU, TRAIN, s).run_id


@pytest.fixture
def trained_bundle(trained) -> bytes:
    path, run_id = trained
    with RunStore(path) as s:
        return export_bundle(s, [run_id])


def edit_member(data: bytes, name: str, change, raw: bool = False) -> bytes:
    """The bundle with member `<run>/name` replaced by change(its JSON object), or by change(its bytes) for a
    CSV, weights or with `raw`; the manifest's sha256 is fixed so that only the edit can be refused."""
    manifest, files = unpack(data)
    member = f"{manifest['runs'][0]['id']}/{name}"
    if name.endswith(".json") and not raw:
        files[member] = json.dumps(change(json.loads(files[member]))).encode()
    else:
        files[member] = change(files[member])
    return pack(manifest, files)


def run_folder(data: bytes) -> str:
    return unpack(data)[0]["runs"][0]["id"]


def test_a_week_date_created_is_refused_so_the_runs_list_keeps_working(target, trained_bundle):
    rejects(target, edit_member(trained_bundle, "config.json", lambda c: c | {"created": "2024-W01-1"}),
            f"{run_folder(trained_bundle)}/config.json: 'created' '2024-W01-1' is not an ISO 8601 time (expected "
            f"YYYY-MM-DDTHH:MM:SS[.ffffff] with Z or a UTC offset).")


def test_a_stored_time_that_is_not_iso_8601_does_not_hide_the_other_runs(target, trained_bundle):
    import_bundle(target, trained_bundle)
    with sqlite3.connect(target.path) as db:
        db.execute("UPDATE runs SET created = '2024-W01-1'")
    frame = target.runs()
    assert len(frame) == 1 and pd.isna(frame["created"].iloc[0])


def test_a_created_time_in_the_future_is_refused(target, trained_bundle):
    rejects(target, edit_member(trained_bundle, "config.json",
                                lambda c: c | {"created": "9999-01-01T00:00:00+00:00"}),
            f"{run_folder(trained_bundle)}/config.json: 'created' '9999-01-01T00:00:00+00:00' lies in the future.")


def test_a_history_without_epoch_seconds_is_refused_so_compare_cannot_crash(target, trained_bundle):
    def drop(csv: bytes) -> bytes:
        frame = pd.read_csv(io.BytesIO(csv)).drop(columns="epoch_seconds")
        return frame.to_csv(index=False).encode()

    rejects(target, edit_member(trained_bundle, "history.csv", drop),
            f"{run_folder(trained_bundle)}/history.csv lacks column(s) epoch_seconds.")


def test_an_imported_run_is_never_reused_as_the_result_of_a_training(tmp_path, target):
    """A forged run with the exact config of a training, untrained weights and accuracy 1.0."""
    with RunStore(tmp_path / "forge.sqlite") as forge:
        net = build_model(GRU, ModelIO.from_dataset(dataset(TASK)))
        record = {"status": "completed", "message": "trained 60 epochs", "test": {"accuracy": 1.0, "loss": 0.0},
                  "history": [{"epoch": 1, "train_loss": 0.0, "val_loss": 0.0, "val_metric": 1.0,
                               "epoch_seconds": 0.01, "elapsed_seconds": 0.01}],
                  "env": environment(), "best_epoch": 1, "n_params": count_params(net)}
        config = run_config(TASK, GRU, TRAIN)
        forged = forge.save_results([{"config": config, "seed": 0, "label": "GRU", "task": TASK.name,
                                      "record": record, "state_dict": net.state_dict()}])
        data = export_bundle(forge, forged)
    (imported,) = import_bundle(target, data).imported
    assert target.runs()["origin"].tolist() == ["imported"]
    assert target.find(config, 0, environment()["code"]) is None
    result = run_one(TASK, GRU, TRAIN, target)
    assert result.run_id != imported and not result.message.startswith("reused")
    assert result.test["accuracy"] < 1.0
    assert run_one(TASK, GRU, TRAIN, target).run_id == result.run_id  # a run trained here is reused


def test_importing_the_same_bundle_twice_stores_it_once_and_says_so(target, trained_bundle):
    first = import_bundle(target, trained_bundle)
    second = import_bundle(target, trained_bundle)
    assert len(first.imported) == 1 and second.imported == ()
    assert second.existing == ((run_folder(trained_bundle), first.imported[0]),)
    assert second.summary() == (f"Imported 0 run(s); skipped 1 already stored ({run_folder(trained_bundle)} as "
                                f"{first.imported[0]}). Imported runs are listed and charted, never reused as "
                                f"a new training's result.")
    assert len(target.runs()) == 1


def test_a_run_trained_here_is_recognised_when_its_own_bundle_comes_back(trained, trained_bundle):
    path, run_id = trained
    with RunStore(path) as s:
        assert import_bundle(s, trained_bundle).existing == ((run_id, run_id),)
        assert len(s.runs()) == 1


def test_history_members_of_exactly_one_mebibyte_are_size_checked(target, trained_bundle):
    rows = "epoch," + ",".join(f"c{i}" for i in range(200)) + "\n"
    big = (rows + "".join(f"{n}," + ",".join("0" * 200) + "\n" for n in range(1, 3000))).encode()[:2**20]
    rejects(target, edit_member(trained_bundle, "history.csv", lambda _: big),
            f"member '{run_folder(trained_bundle)}/history.csv' unpacks to 1.0 MiB, more than the 512.0 KiB such a "
            f"file may take.")


@pytest.mark.parametrize(("member", "key"), [("config.json", "seed"), ("metrics.json", "best_epoch")])
def test_integers_beyond_sqlite_range_are_a_bundle_error(target, trained_bundle, member, key):
    rejects(target, edit_member(trained_bundle, member, lambda c: c | {key: 2**70}),
            f"{run_folder(trained_bundle)}/{member}: {key}: 1180591620717411303424 is greater than the maximum of "
            f"9223372036854775807.")


def test_a_corrupted_deflate_stream_is_a_bundle_error(target, trained_bundle):
    data = bytearray(trained_bundle)
    with zipfile.ZipFile(io.BytesIO(trained_bundle)) as zf:
        first = zf.infolist()[0]
    name_len, extra_len = int.from_bytes(data[26:28], "little"), int.from_bytes(data[28:30], "little")
    data[first.header_offset + 30 + name_len + extra_len + 5] ^= 0xFF
    with pytest.raises(BundleError, match=re.escape(f"member {first.filename!r} cannot be unpacked (")):
        import_bundle(target, bytes(data))
    assert target.runs().empty


@pytest.mark.parametrize(("text", "why"), [
    ("NaN", "NaN is not a number JSON allows"), ("Infinity", "Infinity is not a number JSON allows"),
    ("1e400", "1e400 is beyond the range of a float")])
def test_non_finite_test_metrics_are_refused(target, trained_bundle, text, why):
    def forge(metrics: bytes) -> bytes:
        return re.sub(rb'"accuracy": [^,}\n]+', b'"accuracy": ' + text.encode(), metrics)

    rejects(target, edit_member(trained_bundle, "metrics.json", forge, raw=True),
            f"{run_folder(trained_bundle)}/metrics.json is not valid JSON ({why}")


def test_a_400_digit_test_metric_is_refused(target, trained_bundle):
    rejects(target, edit_member(trained_bundle, "metrics.json", lambda m: m | {"test": {"accuracy": 10**400}}),
            f"{run_folder(trained_bundle)}/metrics.json: test accuracy 1{'0' * 400} is outside [0, 1].")


def test_an_unknown_task_is_refused(target, trained_bundle):
    def rename(c):
        c["config"]["task"]["name"] = "music"
        c.pop("config_hash")
        return c

    rejects(target, edit_member(trained_bundle, "config.json", rename),
            f"{run_folder(trained_bundle)}/config.json: the config cannot be rebuilt (unknown task 'music'; choose "
            f"one of: ")


def test_a_junk_array_in_the_config_is_refused(target, trained_bundle):
    def junk(c):
        c["config"]["junk"] = list(range(1000))
        c.pop("config_hash")
        return c

    rejects(target, edit_member(trained_bundle, "config.json", junk),
            f"{run_folder(trained_bundle)}/config.json: config: Additional properties are not allowed ('junk' was "
            f"unexpected).")


@pytest.mark.parametrize("label", ["GRU\x1b[31m", "GRU\x00", "\u202eURG", "a" * 101])
def test_labels_with_control_characters_or_too_long_are_refused(target, trained_bundle, label):
    with pytest.raises(BundleError, match=re.escape(f"{run_folder(trained_bundle)}/config.json")):
        import_bundle(target, edit_member(trained_bundle, "config.json", lambda c: c | {"label": label}))
    assert target.runs().empty


def test_a_five_megabyte_label_is_refused_by_a_size_rule_not_as_a_zip_bomb(target, trained_bundle):
    rejects(target, edit_member(trained_bundle, "config.json", lambda c: c | {"label": "x" * 5_000_000}),
            f"member '{run_folder(trained_bundle)}/config.json' unpacks to 4.8 MiB, more than the 64.0 KiB such a "
            f"file may take.")


def test_a_png_header_in_front_of_the_zip_is_refused(target, trained_bundle):
    rejects(target, b"\x89PNG\r\n\x1a\n" + trained_bundle,
            "not a bundle: the data does not start with a zip member (a .zip made by Lookback's export does); "
            "export the runs again.")


@pytest.mark.parametrize(("version", "shown"), [("1", "'1'"), (True, "True")])
def test_a_format_version_of_the_wrong_type_is_not_told_to_upgrade(target, trained_bundle, version, shown):
    with zipfile.ZipFile(io.BytesIO(trained_bundle)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(files["manifest.json"]) | {"format_version": version}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in (files | {"manifest.json": json.dumps(manifest).encode()}).items():
            zf.writestr(n, d)
    rejects(target, buf.getvalue(), f"manifest.json: format_version: {shown} is not of type 'integer'.")


def test_nan_weights_are_refused(target, trained_bundle):
    def poison(data: bytes) -> bytes:
        state = torch.load(io.BytesIO(data), weights_only=True)
        state["head.bias"][0] = math.nan
        out = io.BytesIO()
        torch.save(state, out)
        return out.getvalue()

    rejects(target, edit_member(trained_bundle, "weights.pt", poison),
            f"{run_folder(trained_bundle)}/weights.pt: head.bias holds NaN or infinite values.")


# -- prepared user data -------------------------------------------------------------------------------


def _user_csv(n: int = 40, steps: int = 5) -> bytes:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, steps)).round(3)
    frame = pd.DataFrame(x, columns=[f"s{i}" for i in range(steps)]).assign(label=np.where(x[:, 0] > 0, "up", "down"))
    return frame.to_csv(index=False).encode()


@pytest.fixture
def user_bundle(tmp_path, monkeypatch) -> tuple[bytes, str, str]:
    """(bundle, run id, data sha256) of one tiny GRU run on uploaded data, made under a store in tmp_path/a."""
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "a" / "runs.sqlite"))
    cfg = prepare(_user_csv(), "mine.csv")
    result = run_one(cfg, GRU, TrainConfig(epochs=2, batch_size=8), RunStore())
    return export_bundle(RunStore(), [result.run_id]), result.run_id, cfg.sha256


def test_a_bundle_brings_the_user_data_its_runs_trained_on_and_they_rerun(tmp_path, monkeypatch, capsys,
                                                                             user_bundle):
    data, run_id, sha = user_bundle
    manifest, files = unpack(data)
    assert manifest["format_version"] == 2 and list(manifest["data"]) == [sha]
    assert files[f"userdata/{sha}.npz"] == (tmp_path / "a" / "userdata" / f"{sha}.npz").read_bytes()
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "b" / "runs.sqlite"))  # another machine
    report = import_bundle(RunStore(), data)
    assert report.data == (sha,) and report.no_data == ()
    assert "kept the prepared user data of 1 dataset(s), so those runs can be rerun" in report.summary()
    (new_id,) = report.imported
    stored = RunStore().get(new_id)
    task = task_from_dict(stored["config"]["task"])
    assert dataset_sha256(make_dataset(task)) == sha  # the other machine now has the data the run names
    dataset.cache_clear()  # a fresh process: only the imported run and the data it brought
    assert main(["rerun", new_id]) == 0
    assert "the numbers match" in capsys.readouterr().out


def test_without_its_data_an_imported_user_data_run_says_how_to_rerun_it(tmp_path, monkeypatch, user_bundle):
    data, run_id, sha = user_bundle
    lean = export_bundle(RunStore(), [run_id], include_data=False)
    manifest, files = unpack(lean)
    assert manifest["format_version"] == 1 and "data" not in manifest
    assert not any(name.startswith("userdata/") for name in files)
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "c" / "runs.sqlite"))
    report = import_bundle(RunStore(), lean)
    assert report.data == () and report.no_data == report.imported
    assert report.summary().endswith(
        f"Run(s) {report.imported[0]} use user data that the bundle does not carry: prepare the same file with the "
        f"same settings on the Your data page to rerun them.")


def test_user_data_in_a_bundle_are_checked_before_anything_is_written(tmp_path, monkeypatch, user_bundle):
    data, run_id, sha = user_bundle
    manifest, files = unpack(data)
    member = f"userdata/{sha}.npz"
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "d" / "runs.sqlite"))
    target = RunStore()

    def refused(manifest: dict, files: dict, message: str) -> None:
        rejects(target, pack(manifest, files), message)
        assert not (tmp_path / "d" / "userdata").exists()

    with np.load(io.BytesIO(files[member]), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["train_x"] = arrays["train_x"] + 1  # edited data under the original name
    edited = io.BytesIO()
    np.savez_compressed(edited, **arrays)
    refused(manifest, files | {member: edited.getvalue()},
            f"{member} do not match their SHA-256 (the file was changed or damaged); export the runs again.")
    refused(manifest, files | {member: b"not a zip"},
            f"{member} cannot be read (BadZipFile: File is not a zip file); export the runs again.")
    arrays["meta"] = np.array(3.5)  # a description that is not a JSON object
    junk = io.BytesIO()
    np.savez_compressed(junk, **arrays)
    refused(manifest, files | {member: junk.getvalue()},
            f"{member} cannot be read (ValueError: its description is not a JSON object); export the runs again.")
    damaged = bytearray(files[member])  # a flipped byte inside the first array's deflate stream
    name_len, extra_len = int.from_bytes(damaged[26:28], "little"), int.from_bytes(damaged[28:30], "little")
    damaged[30 + name_len + extra_len + 5] ^= 0xFF
    with pytest.raises(BundleError, match=re.escape(f"{member} cannot be read (")):
        import_bundle(target, pack(manifest, files | {member: bytes(damaged)}))
    other = "0" * 64
    refused(manifest | {"data": {sha: "", other: ""}}, files | {f"userdata/{other}.npz": files[member]},
            f"userdata/{other}.npz: no run in the bundle trains on these data; bundles carry only the data of "
            f"their runs.")
    refused(manifest | {"data": {sha: "0" * 64}}, {k: v for k, v in files.items() if k != member},
            f"manifest.json lists {member} but the bundle has no such file; export the runs again.")
    refused(manifest | {"data": {}}, files, "manifest.json: data: {} should be non-empty.")
    monkeypatch.setenv("LOOKBACK_USERDATA_MAX_MB", "0.001")
    refused(manifest, files, f"{member}: the prepared data take 1.1 KiB, over the 1.0 KiB kept per dataset on this "
                             f"install; raise LOOKBACK_USERDATA_MAX_MB to import them.")


def test_a_rerun_names_an_imported_run_whose_numbers_do_not_reproduce(store, target):
    comp = compare(TASK, [GRU], TrainConfig(epochs=2, batch_size=8), (0,), store=store)
    manifest, files = unpack(export_bundle(store, [comp.runs[0].run_id]))
    member = f"{comp.runs[0].run_id}/history.csv"
    header, first, *rest = files[member].decode().splitlines()
    cells = first.split(",")
    cells[1] = repr(float(cells[1]) * 0.5)  # epoch 1's training loss, edited after training
    files[member] = "\n".join([header, ",".join(cells), *rest, ""]).encode()
    (imported,) = import_bundle(target, pack(manifest, files)).imported
    (original,) = import_bundle(target, export_bundle(store, [comp.runs[0].run_id])).imported
    reruns = rerun_job([imported, original], store=target)
    table = rerun_table(reruns)
    assert list(table["same numbers"]) == [False, True]
    assert [r.run_id for r in reruns] == [imported, original]
    assert rerun_verdict(table, 2) == (
        "1 of 2 rerun(s) came out with other numbers than stored (by up to 0.89): the recorded versions, device and "
        "thread count are the same, so the machine or its math libraries differ, or the stored numbers did not come "
        "from this config (an edited import).")
    assert rerun_verdict(table.iloc[1:], 3) == (
        "The one of the 1 rerun(s) reproduced its stored test metrics and every epoch's losses exactly. 2 of the 3 "
        "runs were not rerun (stopped first).")
    assert rerun_job([imported], store=target, should_stop=lambda: True) == []


def test_bundled_user_data_declaring_a_huge_array_are_refused_before_allocating(tmp_path, monkeypatch, user_bundle):
    data, run_id, sha = user_bundle  # the audit's B77: a 2 KB member whose .npy header asks for 74.5 GiB
    manifest, files = unpack(data)
    member = f"userdata/{sha}.npz"
    files[member] = zip_of({"train_x.npy": npy_declaring((100_000, 100_000))})
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "e" / "runs.sqlite"))
    rejects(RunStore(), pack(manifest, files), f"array train_x in {member} declares shape (100000, 100000) of float64, "
                                               f"74.5 GiB (limit 257 MiB); export the runs again.")
    assert not (tmp_path / "e" / "userdata").exists()
