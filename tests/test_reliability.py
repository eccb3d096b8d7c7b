"""Regression tests for the reliability audit's defects, one behaviour each: bad bundles, store faults,
reruns, user data, configs and links are refused with the project's own errors, never crash or mislead."""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lib import store as store_module
from lib.bundles import BundleError, export_bundle, import_bundle
from lib.cli import main
from lib.configs import from_dict
from lib.errors import ConfigError
from lib.models import ModelConfig, ModelIO, build_model, count_params
from lib.runs import dataset, run_config, run_one
from lib.runtime import Status, environment
from lib.store import RunStore, StoreError
from lib.tasks.text import TextRecallConfig
from lib.tasks.user import from_arrays, from_dataframe, from_series, required_length
from lib.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TASK = TextRecallConfig(distance=2, n_train=60, n_val=20, n_test=20)
GRU = ModelConfig(kind="gru", hidden=4)
TRAIN = TrainConfig(epochs=2, patience=0)


# -- bundles -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A store holding one GRU trained here for two epochs, and its id."""
    path = tmp_path_factory.mktemp("trained") / "runs.sqlite"
    with RunStore(path) as s:
        return path, run_one(TASK, GRU, TRAIN, s).run_id


@pytest.fixture
def bundle(trained) -> bytes:
    path, run_id = trained
    with RunStore(path) as s:
        return export_bundle(s, [run_id])


@pytest.fixture
def shared(tmp_path):
    with RunStore(tmp_path / "shared.sqlite") as s:
        yield s


def edit(data: bytes, name: str, change, raw: bool = False) -> bytes:
    """The bundle with member `<run>/name` replaced by change(its JSON object), or by change(its bytes) for a
    CSV, weights or with `raw`; the manifest's sha256 is fixed so that only the edit can be refused."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(files.pop("manifest.json"))
    entry = manifest["runs"][0]
    member = f"{entry['id']}/{name}"
    if name.endswith(".json") and not raw:
        files[member] = json.dumps(change(json.loads(files[member]))).encode()
    else:
        files[member] = change(files[member])
    entry["files"][name] = hashlib.sha256(files[member]).hexdigest()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in {**files, "manifest.json": json.dumps(manifest).encode()}.items():
            zf.writestr(n, d)
    return buf.getvalue()


def refused(store: RunStore, data: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=re.escape(message)):
        import_bundle(store, data)
    assert store.runs().empty


def run_folder(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return json.loads(zf.read("manifest.json"))["runs"][0]["id"]


def test_a_week_date_created_is_refused_so_the_runs_list_keeps_working(shared, bundle):
    refused(shared, edit(bundle, "config.json", lambda c: c | {"created": "2024-W01-1"}),
            f"{run_folder(bundle)}/config.json: 'created' '2024-W01-1' is not an ISO 8601 time (expected "
            f"YYYY-MM-DDTHH:MM:SS[.ffffff] with Z or a UTC offset).")


def test_a_stored_time_that_is_not_iso_8601_does_not_hide_the_other_runs(shared, bundle):
    import_bundle(shared, bundle)
    with sqlite3.connect(shared.path) as db:
        db.execute("UPDATE runs SET created = '2024-W01-1'")
    frame = shared.runs()
    assert len(frame) == 1 and pd.isna(frame["created"].iloc[0])


def test_a_created_time_in_the_future_is_refused(shared, bundle):
    refused(shared, edit(bundle, "config.json", lambda c: c | {"created": "9999-01-01T00:00:00+00:00"}),
            f"{run_folder(bundle)}/config.json: 'created' '9999-01-01T00:00:00+00:00' lies in the future.")


def test_a_history_without_epoch_seconds_is_refused_so_compare_cannot_crash(shared, bundle):
    def drop(csv: bytes) -> bytes:
        frame = pd.read_csv(io.BytesIO(csv)).drop(columns="epoch_seconds")
        return frame.to_csv(index=False).encode()

    refused(shared, edit(bundle, "history.csv", drop),
            f"{run_folder(bundle)}/history.csv lacks column(s) epoch_seconds.")


def test_an_imported_run_is_never_reused_as_the_result_of_a_training(tmp_path, shared):
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
    (imported,) = import_bundle(shared, data).imported
    assert shared.runs()["origin"].tolist() == ["imported"]
    assert shared.find(config, 0, environment()["code"]) is None
    result = run_one(TASK, GRU, TRAIN, shared)
    assert result.run_id != imported and not result.message.startswith("reused")
    assert result.test["accuracy"] < 1.0
    assert run_one(TASK, GRU, TRAIN, shared).run_id == result.run_id  # a run trained here is reused


def test_importing_the_same_bundle_twice_stores_it_once_and_says_so(shared, bundle):
    first = import_bundle(shared, bundle)
    second = import_bundle(shared, bundle)
    assert len(first.imported) == 1 and second.imported == ()
    assert second.existing == ((run_folder(bundle), first.imported[0]),)
    assert second.summary() == (f"Imported 0 run(s); skipped 1 already stored ({run_folder(bundle)} as "
                                f"{first.imported[0]}). Imported runs are listed and charted, never reused as "
                                f"a new training's result.")
    assert len(shared.runs()) == 1


def test_a_run_trained_here_is_recognised_when_its_own_bundle_comes_back(trained, bundle):
    path, run_id = trained
    with RunStore(path) as s:
        assert import_bundle(s, bundle).existing == ((run_id, run_id),)
        assert len(s.runs()) == 1


def test_history_members_of_exactly_one_mebibyte_are_size_checked(shared, bundle):
    rows = "epoch," + ",".join(f"c{i}" for i in range(200)) + "\n"
    big = (rows + "".join(f"{n}," + ",".join("0" * 200) + "\n" for n in range(1, 3000))).encode()[:2**20]
    refused(shared, edit(bundle, "history.csv", lambda _: big),
            f"member '{run_folder(bundle)}/history.csv' unpacks to 1.0 MiB, more than the 512.0 KiB such a file "
            f"may take.")


@pytest.mark.parametrize(("member", "key"), [("config.json", "seed"), ("metrics.json", "best_epoch")])
def test_integers_beyond_sqlite_range_are_a_bundle_error(shared, bundle, member, key):
    refused(shared, edit(bundle, member, lambda c: c | {key: 2**70}),
            f"{run_folder(bundle)}/{member}: {key}: 1180591620717411303424 is greater than the maximum of "
            f"9223372036854775807.")


def test_a_corrupted_deflate_stream_is_a_bundle_error(shared, bundle):
    data = bytearray(bundle)
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        first = zf.infolist()[0]
    name_len, extra_len = int.from_bytes(data[26:28], "little"), int.from_bytes(data[28:30], "little")
    data[first.header_offset + 30 + name_len + extra_len + 5] ^= 0xFF
    with pytest.raises(BundleError, match=re.escape(f"member {first.filename!r} cannot be unpacked (")):
        import_bundle(shared, bytes(data))
    assert shared.runs().empty


@pytest.mark.parametrize(("text", "why"), [
    ("NaN", "NaN is not a number JSON allows"), ("Infinity", "Infinity is not a number JSON allows"),
    ("1e400", "1e400 is beyond the range of a float")])
def test_non_finite_test_metrics_are_refused(shared, bundle, text, why):
    def forge(metrics: bytes) -> bytes:
        return re.sub(rb'"accuracy": [^,}\n]+', b'"accuracy": ' + text.encode(), metrics)

    refused(shared, edit(bundle, "metrics.json", forge, raw=True),
            f"{run_folder(bundle)}/metrics.json is not valid JSON ({why}")


def test_a_400_digit_test_metric_is_refused(shared, bundle):
    refused(shared, edit(bundle, "metrics.json", lambda m: m | {"test": {"accuracy": 10**400}}),
            f"{run_folder(bundle)}/metrics.json: test accuracy 1{'0' * 400} is outside [0, 1].")


def test_an_unknown_task_is_refused(shared, bundle):
    def rename(c):
        c["config"]["task"]["name"] = "music"
        c.pop("config_hash")
        return c

    refused(shared, edit(bundle, "config.json", rename),
            f"{run_folder(bundle)}/config.json: the config cannot be rebuilt (unknown task 'music'; choose one of: ")


def test_a_junk_array_in_the_config_is_refused(shared, bundle):
    def junk(c):
        c["config"]["junk"] = list(range(1000))
        c.pop("config_hash")
        return c

    refused(shared, edit(bundle, "config.json", junk),
            f"{run_folder(bundle)}/config.json: config: Additional properties are not allowed ('junk' was "
            f"unexpected).")


@pytest.mark.parametrize("label", ["GRU\x1b[31m", "GRU\x00", "\u202eURG", "a" * 101])
def test_labels_with_control_characters_or_too_long_are_refused(shared, bundle, label):
    with pytest.raises(BundleError, match=re.escape(f"{run_folder(bundle)}/config.json")):
        import_bundle(shared, edit(bundle, "config.json", lambda c: c | {"label": label}))
    assert shared.runs().empty


def test_a_five_megabyte_label_is_refused_by_a_size_rule_not_as_a_zip_bomb(shared, bundle):
    refused(shared, edit(bundle, "config.json", lambda c: c | {"label": "x" * 5_000_000}),
            f"member '{run_folder(bundle)}/config.json' unpacks to 4.8 MiB, more than the 64.0 KiB such a file "
            f"may take.")


def test_a_png_header_in_front_of_the_zip_is_refused(shared, bundle):
    refused(shared, b"\x89PNG\r\n\x1a\n" + bundle,
            "not a bundle: the data does not start with a zip member (a .zip made by Lookback's export does); "
            "export the runs again.")


@pytest.mark.parametrize(("version", "shown"), [("1", "'1'"), (True, "True")])
def test_a_format_version_of_the_wrong_type_is_not_told_to_upgrade(shared, bundle, version, shown):
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(files["manifest.json"]) | {"format_version": version}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in (files | {"manifest.json": json.dumps(manifest).encode()}).items():
            zf.writestr(n, d)
    refused(shared, buf.getvalue(), f"manifest.json: format_version: {shown} is not of type 'integer'.")


def test_nan_weights_are_refused(shared, bundle):
    def poison(data: bytes) -> bytes:
        state = torch.load(io.BytesIO(data), weights_only=True)
        state["head.bias"][0] = math.nan
        out = io.BytesIO()
        torch.save(state, out)
        return out.getvalue()

    refused(shared, edit(bundle, "weights.pt", poison),
            f"{run_folder(bundle)}/weights.pt: head.bias holds NaN or infinite values.")


# -- the run store -----------------------------------------------------------------------------------


def test_a_zero_byte_store_is_refused_not_replaced_by_an_empty_one(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"")
    with pytest.raises(StoreError, match=re.escape(f"{path} is empty (0 bytes): it is not a run store, or a run "
                                                   f"store that was cut short and lost its runs.")):
        RunStore(path)
    assert path.read_bytes() == b"" and sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite"]


def _store_with_runs(path: Path, n: int = 30) -> None:
    with RunStore(path) as s:
        record = {"status": "completed", "message": "ok", "test": {"accuracy": 0.5}, "env": environment(),
                  "history": [{"epoch": e, "train_loss": 1.0 / e} for e in range(1, 20)]}
        s.save_results([{"config": {"i": i, "pad": "x" * 2000}, "seed": 0, "label": "GRU", "task": "text_recall",
                         "record": record, "state_dict": {"w": torch.randn(2000)}} for i in range(n)])


def test_damaged_pages_after_the_first_are_a_store_error(tmp_path):
    path = tmp_path / "runs.sqlite"
    _store_with_runs(path)
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(np.random.default_rng(0).bytes(path.stat().st_size - 4096))
    with pytest.raises(StoreError, match=re.escape(f"the run store {path} is a damaged SQLite database (")):
        with RunStore(path) as s:
            s.runs()


def test_damaged_weights_are_a_store_error(tmp_path):
    path = tmp_path / "runs.sqlite"
    _store_with_runs(path, 1)
    with RunStore(path) as s:
        (run_id,) = s.runs()["id"]
        with sqlite3.connect(path) as db:
            (blob,) = db.execute("SELECT data FROM weights").fetchone()
            db.execute("UPDATE weights SET data = ?", (blob[:300] + bytes(40) + blob[340:],))
        with pytest.raises(StoreError, match=re.escape(f"the weights of run {run_id!r} in {path} are damaged (")):
            s.load_weights(run_id)


def test_a_write_lock_held_past_the_busy_timeout_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as s:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match=re.escape(
                    f"the run store {path} is locked by another process (database is locked), longer than the "
                    f"0.2 s Lookback waits;")):
                s.start_run({}, 0, "GRU", "text_recall", environment())
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert s.runs().empty


def _as_unprivileged(code: str, path: Path) -> subprocess.CompletedProcess:
    """Run `code` in a Python child that file permissions bind: as root, without the capabilities that
    override them (setpriv drops them from the bounding set, so the child never gets them)."""
    env = {**os.environ, "LOOKBACK_DB": str(path), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file permissions cannot bind a child process")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]
    return subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


OPEN_AND_WRITE = """
    from lib.store import RunStore, StoreError
    try:
        RunStore().start_run({}, 0, "GRU", "text_recall", {})
    except StoreError as e:
        print(e)
"""


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_store_is_named_and_left_untouched(tmp_path_factory, what):
    folder = tmp_path_factory.mktemp("ro", numbered=True)
    path = folder / "runs.sqlite"
    RunStore(path).close()
    before = path.read_bytes()
    folder.chmod(0o755 if what == "file" else 0o555)
    path.chmod(0o444 if what == "file" else 0o644)
    try:
        out = _as_unprivileged(OPEN_AND_WRITE, path)
    finally:
        folder.chmod(0o755)
    assert out.stdout.strip() == (f"the run store {path} is read-only (its {what} cannot be written), so no run "
                                  f"could be saved; make it writable or set LOOKBACK_DB to a writable file."), out
    assert path.read_bytes() == before


def test_a_full_disk_is_named_and_nothing_of_the_write_is_kept(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    code = f"""
        import resource, signal, torch
        from lib.store import RunStore, StoreError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing us
        store = RunStore()
        resource.setrlimit(resource.RLIMIT_FSIZE, ({2**20}, {2**20}))
        try:
            store.save_results([{{"config": {{}}, "seed": 0, "label": "GRU", "task": "text_recall",
                                 "record": {{"status": "completed", "message": "", "history": [], "test": {{}},
                                            "env": {{}}}}, "state_dict": {{"w": torch.randn(2**20)}}}}])
        except StoreError as e:
            print(e)
    """
    out = _as_unprivileged(code, path)
    assert out.stdout.startswith(f"the run store {path} could not be read or written (disk I/O error): the disk "
                                 f"may be full, failing or over a file-size limit."), out
    with RunStore(path) as s:
        assert s.runs().empty


def test_a_run_whose_process_died_shows_interrupted_in_an_open_store_within_seconds(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as app_store:  # opened first, as the app's cached store is
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
            import sys, time
            from lib.store import RunStore
            RunStore(sys.argv[1]).start_run({}, 0, "GRU", "text_recall", {})
            print("started", flush=True)
            time.sleep(600)
        """), str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        assert child.stdout.readline().strip() == "started"
        assert app_store.runs()["status"].tolist() == [Status.RUNNING]
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + store_module.RECOVER_EVERY_S + 5
        while app_store.runs()["status"].tolist() != [Status.INTERRUPTED] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert app_store.runs()["status"].tolist() == [Status.INTERRUPTED]


# -- reruns --------------------------------------------------------------------------------------------


TINY_CLI = ["--set", "distance=2", "n_train=200", "n_val=60", "n_test=60", "--epochs", "2", "--patience", "0",
            "--quiet"]


def test_rerun_recreates_the_thread_count_a_worker_recorded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "runs.sqlite"))
    torch.set_num_threads(1)  # as a worker process trains
    assert main(["compare", *TINY_CLI, "--models", "gru:hidden=8"]) == 0
    (run_id,) = RunStore().runs()["id"]
    torch.set_num_threads(2)
    capsys.readouterr()
    assert main(["rerun", run_id]) == 0
    out = capsys.readouterr().out
    assert "1 torch thread(s) as recorded" in out and "the numbers match" in out
    assert torch.get_num_threads() == 2


def test_rerun_of_an_interrupted_run_compares_the_epochs_it_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "runs.sqlite"))
    store = RunStore()
    full = run_one(TASK, GRU, TrainConfig(epochs=3, patience=0), store)
    stopped = store.start_run(run_config(TASK, GRU, TrainConfig(epochs=3, patience=0)), 0, "GRU", TASK.name,
                              full.env)
    for record in full.history[:2]:
        store.log_epoch(stopped, record)
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (stopped,))
    capsys.readouterr()
    assert main(["rerun", stopped]) == 0
    out = capsys.readouterr().out
    assert "history: 2 stored epochs, 3 rerun epochs, identical (the stored run was interrupted: its 2 epoch(s) " \
           "against the rerun's first 2)" in out
    assert "the numbers match" in out


# -- user data ---------------------------------------------------------------------------------------


SERIES = np.sin(np.arange(400) / 5)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: from_series(SERIES * 1e308, 5),
     "the series holds 1.99e+307 at position 1, too large to standardise without overflow; the limit is 1e+150."),
    (lambda: from_arrays(np.random.default_rng(0).uniform(0.5, 1.5, (60, 4)) * 1e308, np.arange(60) % 2),
     "X holds 1.14e+308 at sequence 0, too large to standardise without overflow; the limit is 1e+150."),
    (lambda: from_series(SERIES * 1e39, 5, standardize=False),
     "the series holds 3.89e+38 at position 2, too large for float32 (standardize is off); the limit is 3.4e+38."),
])
def test_user_data_that_overflows_is_refused(make, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()


def test_user_data_whose_test_part_lies_far_outside_the_training_spread_is_refused():
    values = np.r_[np.sin(np.arange(300)) * 1e-30, np.ones(100) * 1e30]
    with pytest.raises(ConfigError, match=re.escape("holds values beyond float32's range once standardised")):
        from_series(values, 5)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: from_arrays(np.zeros((60, 5)), np.arange(60) % 2, seed=-1), "seed must be at least 0, got -1."),
    (lambda: from_arrays(np.zeros((60, 5)), np.arange(60) % 2, seed="abc"), "seed must be a whole number, got 'abc'."),
    (lambda: from_arrays(np.zeros((60, 5)), np.arange(60) % 2, val_fraction="0.1"),
     "val_fraction must be a finite number, got '0.1'."),
    (lambda: from_series(SERIES, True), "window must be a whole number of steps, at least 1; got True."),
    (lambda: required_length("abc"), "window must be a whole number of steps, at least 1; got 'abc'."),
    (lambda: required_length(-5), "window must be a whole number of steps, at least 1; got -5."),
    (lambda: from_dataframe(pd.DataFrame({"t": list(range(100)) + [str(i) for i in range(100)],
                                          "v": np.arange(200.0)}), "v", 3, time_column="t"),
     "time column 't' mixes kinds of values (e.g. numbers and text), which have no order;"),
    (lambda: from_dataframe(pd.DataFrame({"t": [1.0, np.nan, *range(2, 200)], "v": np.arange(200.0)}), "v", 3,
                            time_column="t"),
     "time column 't' has 1 missing value(s), the first in row 1; fill or drop those rows first."),
    (lambda: from_dataframe(pd.DataFrame({"value": []}), "value", 3),
     "the table has no rows (columns: value); give a file with a header and one row per time step."),
    (lambda: from_arrays(np.zeros((1000, 2)), np.arange(1000) % 600),
     "y has 600 different labels for 1000 sequences, too few examples per class to learn from;"),
    (lambda: from_arrays(np.zeros((4000, 2)), np.repeat(np.arange(2000), 2)),
     "y has 2000 different labels; the limit is 1000 classes."),
    (lambda: from_arrays(np.zeros((31, 10_001)), np.arange(31) % 2),
     "X has sequences of 10001 steps; the limit is 10000."),
])
def test_user_data_mistakes_are_config_errors(make, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()


# -- configs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [("weight_decay", math.nan), ("weight_decay", math.inf),
                                              ("min_delta", math.nan), ("clip", math.nan), ("epochs", 2.5)])
def test_train_configs_refuse_non_finite_and_fractional_values(field, value):
    with pytest.raises(ConfigError, match=re.escape(f"{field} must be")):
        from_dict(TrainConfig, {field: value})


# -- links ---------------------------------------------------------------------------------------------


@pytest.fixture
def app_store(tmp_path, monkeypatch):
    from pages._ui import _open_store

    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "pages.sqlite"))
    _open_store.clear()
    yield
    _open_store.clear()


@pytest.mark.parametrize(("page", "key", "value", "note"), [
    ("compare", "w_cmp_n", "inf", "w_cmp_n=inf dropped (not a finite number)"),
    ("compare", "w_cmp_n", "-inf", "w_cmp_n=-inf dropped (not a finite number)"),
    ("compare", "w_cmp_window", "1e400", "w_cmp_window=1e400 dropped (not a finite number)"),
    ("compare", "w_cmp_seeds", "inf", "w_cmp_seeds=inf dropped (not a finite number)"),
    ("memory", "w_mem_window", "inf", "w_mem_window=inf dropped (not a finite number)"),
    ("window", "w_win_hi", "inf", "w_win_hi=inf dropped (not a finite number)"),
    ("costs", "w_cost_match", "inf", "w_cost_match=inf dropped (not a finite number)"),
    ("compare", "w_cmp_n", "abc", "w_cmp_n=abc dropped (not a number)"),
    ("compare", "w_cmp_dist", "999", "w_cmp_dist=999 set to 200 (the setting allows 0 to 200)"),
])
def test_a_link_cannot_crash_a_page(app_store, page, key, value, note):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.query_params[key] = value
    at.run()
    assert [w.value for w in at.warning] == [f"This link's settings were adjusted: {note}."]
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]


def test_the_memory_page_checks_every_distance_before_it_starts_training(app_store):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page("pages/memory.py").run()
    at.text_input(key="w_mem_dists").set_value("0, 1, 5000").run()
    if not at.button(key="mem_run").disabled:  # the page may refuse the settings before the click
        at.button(key="mem_run").click().run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and re.search(r"\b5,?000\b", errors[0]), errors
    assert "job" not in at.session_state or at.session_state["job"] is None  # nothing started
