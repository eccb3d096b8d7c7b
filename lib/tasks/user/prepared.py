"""Stage 4 of user data: the prepared dataset kept on disk, and the task config that names it.

`prepare(data, filename, spec)` reads an upload (read.py), builds its dataset (build.py) and keeps the
prepared arrays in `userdata_dir()/<sha256>.npz` (lib.paths: beside the run store); the returned
`UserDataConfig` names them by that hash, so compare, run_one, the run store and `python -m lib rerun` treat it
as any other task config, and the same file with the same spec reuses stored runs. The kept copy is all a rerun
needs: the upload itself is not kept. Each copy is capped at `max_prepared_bytes()` (uncompressed arrays).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar

import numpy as np
import torch

from lib.configs import Checked, knob
from lib.errors import ConfigError, LookbackError
from lib.paths import userdata_dir
from lib.tasks.base import SequenceDataset, Split
from lib.tasks.user.build import build_dataset
from lib.tasks.user.read import Source, content_sha256, load_table, read_npz
from lib.tasks.user.spec import UploadSpec, guess_spec

NAME = "user data"  # every prepared dataset's name, so that the same data under another file name is the same
MAX_MB_ENV = "LOOKBACK_USERDATA_MAX_MB"
DEFAULT_MAX_MB = 256
_SHA = re.compile(r"[0-9a-f]{64}")
_META = ("description", "kind", "seq_len", "n_features", "n_outputs", "per_step", "vocab", "class_names",
         "chance", "baselines", "cue_lag", "distance_name")
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class UserDataConfig(Checked):
    """Prepared user data, named by the SHA-256 of its arrays; make it with `prepare` or `keep`."""

    name: ClassVar[str] = "userdata"
    title: ClassVar[str] = "Your data"
    distance_field: ClassVar[None] = None  # the data decide how far back the signal lies
    shown: ClassVar[tuple[str, ...]] = ("sha256", "shape")  # in every result's header

    sha256: str = knob("", "Prepared data", header="prepared data (SHA-256)")  # of the prepared arrays
    # (dataset_sha256): names the kept copy make_userdata loads
    sources: tuple[str, ...] = ()  # SHA-256 of each uploaded file's bytes: the training file, then a test file
    spec: UploadSpec = UploadSpec(layout="arrays")  # how the upload became the dataset
    shape: tuple[int, ...] = knob((), "Shape", header="shape (train, val, test, steps, features)")  # (train,
    # val, test sequences, steps per sequence, features per step)

    @property
    def cue_lag(self) -> None:
        """Unknown: finding how far back the signal lies is what a study of the data is for."""
        return None

    def validate(self) -> None:
        if not _SHA.fullmatch(self.sha256):
            raise ConfigError(f"sha256 must be the 64 hex digits that name prepared user data, got "
                              f"{self.sha256!r}; prepare the file with lib.tasks.user.prepared.prepare or run "
                              f"`python -m lib study FILE`.")
        for sha in self.sources:
            if not _SHA.fullmatch(sha):
                raise ConfigError(f"each source must be a file's SHA-256 (64 hex digits), got {sha!r}.")
        if len(self.shape) != 5 or min(self.shape) < 1:
            raise ConfigError(f"shape must be (train, val, test sequences, steps, features), each at least 1; "
                              f"got {self.shape}.")
        self.spec.validate()


def max_prepared_bytes() -> int:
    """The largest prepared dataset kept: LOOKBACK_USERDATA_MAX_MB mebibytes, 256 unless set."""
    text = os.environ.get(MAX_MB_ENV)
    if text is None:
        return DEFAULT_MAX_MB * 1024 ** 2
    try:
        mb = float(text)
    except ValueError:
        mb = float("nan")
    if not mb > 0:
        raise ConfigError(f"{MAX_MB_ENV} must be a positive number of mebibytes, got {text!r}.")
    return int(mb * 1024 ** 2)


def _size(n: int) -> str:
    return f"{n / 1024 ** 2:.1f} MiB" if n >= 1024 ** 2 else f"{n / 1024:.1f} KiB"


def _arrays(ds: SequenceDataset) -> dict[str, np.ndarray]:
    """The dataset's tensors by name, e.g. train_x, val_y, test_distance (where set)."""
    out = {}
    for part in _SPLITS:
        split = getattr(ds, part)
        for key in ("x", "y", "distance"):
            value = getattr(split, key)
            if value is not None:
                out[f"{part}_{key}"] = np.ascontiguousarray(value.numpy())
    return out


def _meta(ds: SequenceDataset) -> dict:
    return {k: list(v) if isinstance(v := getattr(ds, k), tuple) else v for k in _META}


def dataset_sha256(ds: SequenceDataset) -> str:
    """SHA-256 over the dataset's arrays (name, dtype, shape, bytes) and its description fields."""
    digest = hashlib.sha256(json.dumps(_meta(ds), sort_keys=True, separators=(",", ":")).encode())
    for key, a in sorted(_arrays(ds).items()):
        digest.update(f"\0{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def keep(ds: SequenceDataset, spec: UploadSpec, sources: tuple[str, ...] = ()) -> UserDataConfig:
    """Keep a built dataset's arrays in userdata_dir() and return the config that names them.

    Refuses (ConfigError) a dataset whose arrays exceed max_prepared_bytes(). Writing is atomic, and data
    already kept under the same hash are left as they are.
    """
    sha = save(ds)
    shape = (len(ds.train), len(ds.val), len(ds.test), ds.seq_len, ds.n_features)
    return UserDataConfig(sha256=sha, sources=tuple(sources), spec=spec, shape=shape)


def save(ds: SequenceDataset) -> str:
    """Write a dataset's arrays to userdata_dir()/<sha256>.npz unless kept already; return that SHA-256."""
    size, limit = prepared_bytes(ds), max_prepared_bytes()
    if size > limit:
        raise ConfigError(f"the prepared data take {_size(size)}, over the {_size(limit)} kept per dataset; use a "
                          f"shorter window or fewer rows or columns, or raise {MAX_MB_ENV}.")
    sha = dataset_sha256(ds)
    path = kept_path(sha)
    if _used(path):  # kept already
        return sha
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{sha[:12]}-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, meta=np.array(json.dumps(_meta(ds))), **_arrays(ds))
            os.chmod(tmp, 0o644)  # readable like the run store beside it (mkstemp makes it 0600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise ConfigError(f"cannot keep the prepared data in {path.parent} ({err.strerror or err}); make the folder "
                          f"writable or set LOOKBACK_DB to a file in a writable folder.") from err
    return sha


def prepared_bytes(ds: SequenceDataset) -> int:
    """What a dataset's arrays take, as kept (uncompressed); max_prepared_bytes() caps it."""
    return sum(a.nbytes for a in _arrays(ds).values())


def named_by(config: dict) -> str | None:
    """The SHA-256 of the prepared data a stored run's config trains on; None for a built-in task."""
    task = config.get("task")
    return task.get("sha256") if isinstance(task, dict) and task.get("name") == UserDataConfig.name else None


def kept_path(sha256: str) -> Path:
    """Where the prepared data of that SHA-256 are kept (the file may not exist)."""
    return userdata_dir() / f"{sha256}.npz"


def _used(path: Path) -> bool:
    """Mark kept data as just used (see prune); False when they are not kept."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:
        pass  # read-only data are still kept
    return path.exists()


def prune(keep: Iterable[str], unused_for_s: float) -> list[str]:
    """Delete the kept data that no SHA-256 in `keep` names and that nobody prepared or loaded for
    `unused_for_s` seconds, and temporary files left as long by an interrupted write; returns the SHA-256 of
    the data deleted. A shared server calls it with the SHA-256 its stored runs name."""
    keep, now, gone = set(keep), time.time(), []
    for path in userdata_dir().glob("*.npz") if userdata_dir().is_dir() else ():
        sha = path.stem
        if sha in keep or not (_SHA.fullmatch(sha) or sha.startswith(".")):
            continue
        try:
            if now - path.stat().st_mtime > unused_for_s:
                path.unlink()
                gone += [sha] if _SHA.fullmatch(sha) else []
        except FileNotFoundError:
            continue
    return gone


def prepare(data: bytes, filename: str, spec: UploadSpec | None = None, test: tuple[bytes, str] | None = None,
            source: Source | None = None) -> UserDataConfig:
    """An uploaded file (and optionally a test file, as (bytes, filename)) -> its kept dataset's config.

    spec None takes guess_spec's proposal; source: the file already read by load_table, to skip reading it
    again. Every problem with the file or the spec raises ConfigError.
    """
    source = load_table(data, filename) if source is None else source
    spec = guess_spec(source) if spec is None else spec
    test_source = None if test is None else load_table(*test)
    ds = build_dataset(source, spec, test_source, name=NAME)
    sources = (content_sha256(data),) + (() if test is None else (content_sha256(test[0]),))
    return keep(ds, spec, sources)


def make_userdata(cfg: UserDataConfig) -> SequenceDataset:
    """The kept dataset cfg names; ConfigError when it is missing or does not match its hash."""
    cfg.validate()
    path = kept_path(cfg.sha256)
    if not path.exists():
        raise ConfigError(f"the prepared user data {cfg.sha256[:12]} are not in {path.parent}; prepare the same "
                          f"file with the same settings again (python -m lib study FILE, or the Your data page), "
                          f"import a bundle that carries them, or set LOOKBACK_DB beside the folder that holds "
                          f"them.")
    try:
        ds = read_prepared(path, cfg.sha256, f"the prepared user data {path}")
    except LookbackError as err:
        raise ConfigError(f"{err}; delete the file and prepare the data again.") from err
    _used(path)
    shape = (len(ds.train), len(ds.val), len(ds.test), ds.seq_len, ds.n_features)
    if shape != cfg.shape:
        raise ConfigError(f"the prepared user data {cfg.sha256[:12]} have shape {shape}, but the config says "
                          f"{cfg.shape}; correct the config's shape.")
    return ds


def read_prepared(source: Path | BinaryIO, sha256: str, what: str) -> SequenceDataset:
    """The dataset in a kept .npz (a path or a binary file); ConfigError, naming `what` and the fault but no
    remedy, unless it reads (read.read_npz: no pickles, shapes checked before allocating) within
    max_prepared_bytes() and matches sha256."""
    arrays = read_npz(source, what, max_prepared_bytes() + 2**20)  # the arrays plus .npy headers and the meta string
    try:
        meta = json.loads(str(arrays.pop("meta")))
        if not isinstance(meta, dict):
            raise ValueError("its description is not a JSON object")
        splits = {part: Split(*(torch.from_numpy(arrays[f"{part}_{k}"]) if f"{part}_{k}" in arrays else None
                                for k in ("x", "y", "distance"))) for part in _SPLITS}
        ds = SequenceDataset(name=NAME, **splits, **{k: tuple(v) if isinstance(v, list) else v
                                                     for k, v in meta.items()})
    except (ValueError, KeyError, TypeError, RuntimeError) as err:  # RuntimeError: torch refuses the array
        raise ConfigError(f"{what} cannot be read ({type(err).__name__}: {err})") from err
    if dataset_sha256(ds) != sha256:
        raise ConfigError(f"{what} do not match their SHA-256 (the file was changed or damaged)")
    return ds


__all__ = ["UserDataConfig", "dataset_sha256", "keep", "kept_path", "make_userdata", "max_prepared_bytes", "named_by",
           "prepare", "prepared_bytes", "prune", "read_prepared", "save"]
