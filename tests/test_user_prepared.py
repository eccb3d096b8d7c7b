"""Prepared user data (lib/tasks/user/prepared.py): the task config that names them, the kept copy and its
checks."""
import json
import re

import pytest

from lib.errors import ConfigError
from lib.paths import userdata_dir
from lib.runs import dataset
from lib.tasks import make_dataset, task_dict, task_from_dict
from lib.tasks.user.prepared import UserDataConfig, dataset_sha256, prepare
from tests.support.user_files import labelled_csv, npy_declaring, raises, zip_of


@pytest.fixture(autouse=True)
def _store(tmp_path, monkeypatch):
    """A fresh run store, and so a fresh folder of prepared data, per test."""
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "db" / "runs.sqlite"))
    dataset.cache_clear()


def test_user_data_config_round_trips_and_names_the_same_data():
    cfg = prepare(labelled_csv(), "mine.csv")
    data = json.loads(json.dumps(task_dict(cfg)))
    assert data["name"] == "userdata" and data["spec"]["layout"] == "wide" and data["shape"] == [42, 9, 9, 6, 1]
    back = task_from_dict(data)
    assert back == cfg and hash(back) == hash(cfg)
    ds = make_dataset(back)
    assert dataset_sha256(ds) == cfg.sha256 and (userdata_dir() / f"{cfg.sha256}.npz").exists()
    assert prepare(labelled_csv(), "renamed.csv") == cfg  # the same bytes and spec are the same task
    assert prepare(labelled_csv(seed=1), "mine.csv").sha256 != cfg.sha256


def test_missing_or_damaged_prepared_data_say_what_to_do():
    cfg = prepare(labelled_csv(), "mine.csv")
    path = userdata_dir() / f"{cfg.sha256}.npz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError, match=rf"^the prepared user data {re.escape(str(path))} cannot be read"):
        make_dataset(cfg)
    path.unlink()
    with raises(f"the prepared user data {cfg.sha256[:12]} are not in {path.parent}; prepare the same file with the "
                f"same settings again (python -m lib study FILE, or the Your data page), import a bundle that carries "
                f"them, or set LOOKBACK_DB beside the folder that holds them."):
        make_dataset(cfg)
    with raises("sha256 must be the 64 hex digits that name prepared user data, got ''; prepare the file with "
                "lib.tasks.user.prepared.prepare or run `python -m lib study FILE`."):
        make_dataset(UserDataConfig())


def test_prepared_data_over_the_size_cap_are_refused(monkeypatch):
    monkeypatch.setenv("LOOKBACK_USERDATA_MAX_MB", "0.001")
    with raises("the prepared data take 1.9 KiB, over the 1.0 KiB kept per dataset; use a shorter window or fewer "
                "rows or columns, or raise LOOKBACK_USERDATA_MAX_MB."):
        prepare(labelled_csv(), "mine.csv")


def test_prepared_data_declaring_a_huge_array_are_refused_before_allocating():
    cfg = prepare(labelled_csv(), "mine.csv")
    path = userdata_dir() / f"{cfg.sha256}.npz"
    path.write_bytes(zip_of({"train_x.npy": npy_declaring((100_000, 100_000))}))
    with raises(f"array train_x in the prepared user data {path} declares shape (100000, 100000) of float64, 74.5 GiB "
                f"(limit 257 MiB); delete the file and prepare the data again."):
        make_dataset(cfg)
