"""Moving-digit video: name a handwritten digit seen only in a clip's first frames.

A digit from scikit-learn's bundled 8x8 digits moves and bounces on a small canvas, visible for the first
`visible` frames; then `gap` frames show nothing of its identity (blank, pixel noise, or a solid block
moving where the digit would be) and the label is due at the last frame. The gap is the distance knob.
Digit images are split into train / val / test before clips are made, so test clips show unseen digits.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch

from lib.configs import Checked, check_knobs, knob
from lib.errors import ConfigError
from lib.tasks.base import CLASSIFICATION, SequenceDataset, Split, check_bytes, majority_chance

GAP_MODES = ("blank", "noise", "occluded")
FEATURES = ("pixels", "pca")
SPLITS = ("train", "val", "test")
IMAGE_FRACTIONS = (0.6, 0.2, 0.2)  # digit images per split, drawn before any clip is made
DIGIT = 8  # side of a digit image in pixels
MAX_GAP = 100


@lru_cache(maxsize=1)
def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits: images (M, 8, 8) float32 in [0, 1] and labels (M,) int64."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


@dataclass(frozen=True)
class VideoConfig(Checked):
    name: ClassVar[str] = "video"
    title: ClassVar[str] = "Video frames"
    distance_field: ClassVar[str] = "gap"

    shown: ClassVar[tuple[str, ...]] = ("gap", "gap_mode", "features", "n_train")  # the form's settings

    gap: int = knob(20, "Gap", low=0, high=MAX_GAP, unit="frames", cap="distance",  # between the last visible
                    help="Frames between the digit and the answer.")  # frame and the answer
    visible: int = knob(3, "Visible frames", low=1, high=10, unit="frames")  # at the start, showing the digit
    gap_mode: str = knob("blank", "Gap frames show", choices=GAP_MODES, key="mode")  # "blank" (zeros), "noise"
    # or "occluded" (a moving block where the digit would be)
    features: str = knob("pixels", "Frame features", choices=FEATURES, key="feat")  # "pixels" (canvas flattened)
    # or "pca" (fitted on train frames)
    n_components: int = knob(32, "PCA components", low=1)  # per frame when features == "pca"
    canvas: int = knob(12, "Canvas", low=DIGIT, high=64, unit="pixels")  # side; the 8x8 digit moves inside it
    max_speed: float = knob(1.5, "Max speed", low=0.0, high=4.0, unit="pixels per frame")  # each clip's speed is
    # drawn from [max_speed / 3, max_speed]
    n_train: int = knob(6000, "Training clips", low=10, high=100_000, cap="samples", key="clips",
                        form=(200, 20_000), step=200)  # each split's clips reuse only that split's digit images
    n_val: int = knob(500, "Validation clips", low=10, high=100_000)
    n_test: int = knob(1000, "Test clips", low=10, high=100_000)
    seed: int = knob(0, "Data seed", low=0)  # image split, trajectories and noise; not the training seed

    @property
    def seq_len(self) -> int:
        return self.visible + self.gap

    @property
    def n_features(self) -> int:
        return self.n_components if self.features == "pca" else self.canvas ** 2

    @property
    def cue_lag(self) -> int:
        """Steps from the last visible frame to the answer."""
        return self.gap + 1

    def frames(self, split: str = "test", index: int = 0) -> np.ndarray:
        """One clip as pictures, frames (T, H, W) in [0, 1]: see clip_frames."""
        return clip_frames(self, split, index)

    def validate(self) -> None:
        check_knobs(self)
        if self.features == "pca" and not self.n_components <= self.canvas ** 2:
            raise ConfigError(f"n_components must be between 1 and the pixels per frame "
                              f"({self.canvas ** 2}), got {self.n_components}.")
        check_bytes(4 * (self.n_train + self.n_val + self.n_test) * self.seq_len * self.canvas ** 2,
                    "these clips' frames", "use fewer clips, a shorter gap or a smaller canvas")


def image_split(seed: int) -> dict[str, np.ndarray]:
    """Indices into digit_images() for each split: disjoint, seeded, stratified so every digit is ~10%."""
    labels = digit_images()[1]
    rng = np.random.default_rng([seed, 0])
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        n_train, n_val = round(len(idx) * IMAGE_FRACTIONS[0]), round(len(idx) * IMAGE_FRACTIONS[1])
        for s, chunk in zip(SPLITS, np.split(idx, [n_train, n_train + n_val]), strict=True):
            parts[s].append(chunk)
    return {s: np.sort(np.concatenate(chunks)) for s, chunks in parts.items()}


def _trajectories(cfg: VideoConfig, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Which image each clip shows (n,), and the digit's top-left corner per frame (n, T, 2) int."""
    rng = np.random.default_rng([cfg.seed, 1, SPLITS.index(split)])
    pool = image_split(cfg.seed)[split]
    image = pool[rng.permutation(n) % len(pool)]  # every image of the pool used about equally often
    room = cfg.canvas - DIGIT  # the corner moves in [0, room] on both axes
    start = rng.uniform(0, room, size=(n, 2))
    angle = rng.uniform(0, 2 * np.pi, size=n)
    speed = rng.uniform(cfg.max_speed / 3, cfg.max_speed, size=n)
    velocity = speed[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (n, 2)
    path = start[:, None] + np.arange(cfg.seq_len)[None, :, None] * velocity[:, None]  # (n, T, 2)
    if room > 0:  # bounce: fold the straight path back into [0, room]
        path = np.mod(path, 2 * room)
        path = np.where(path > room, 2 * room - path, path)
    else:
        path = np.zeros_like(path)
    return image, np.rint(path).astype(np.int64)


def _gap_noise(cfg: VideoConfig, split: str, index: int) -> np.ndarray:
    """Pixel noise for one clip's gap frames (gap, H, W): its own stream, blind to the clip's digit."""
    rng = np.random.default_rng([cfg.seed, 2, SPLITS.index(split), index])
    return rng.random((cfg.gap, cfg.canvas, cfg.canvas), dtype=np.float32)


def _render(cfg: VideoConfig, split: str, image: np.ndarray, corner: np.ndarray,
            index: np.ndarray) -> np.ndarray:
    """Canvas frames (n, T, H, W) float32 in [0, 1] for the clips `index` of a split."""
    n, size = len(index), cfg.canvas
    frames = np.zeros((n, cfg.seq_len, size, size), dtype=np.float32)
    pictures = digit_images()[0][image]  # (n, 8, 8)
    span = np.arange(DIGIT)
    clip = np.arange(n)[:, None, None]
    for t in range(cfg.seq_len):
        rows = (corner[:, t, 0, None] + span)[:, :, None]  # (n, 8, 1)
        cols = (corner[:, t, 1, None] + span)[:, None, :]  # (n, 1, 8)
        if t < cfg.visible:
            frames[clip, t, rows, cols] = pictures
        elif cfg.gap_mode == "occluded":  # identity hidden, motion still visible
            frames[clip, t, rows, cols] = 1.0
    if cfg.gap_mode == "noise" and cfg.gap:
        for k, i in enumerate(index):
            frames[k, cfg.visible:] = _gap_noise(cfg, split, int(i))
    return frames


def clip_frames(cfg: VideoConfig, split: str = "test", index: int = 0) -> np.ndarray:
    """The raw canvas frames (T, H, W) float32 in [0, 1] of one clip, exactly as make_video drew them."""
    cfg.validate()
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
    n = getattr(cfg, f"n_{split}")
    if not 0 <= index < n:
        raise ConfigError(f"index must be between 0 and {n - 1} for the {split} split, got {index}.")
    image, corner = _trajectories(cfg, split, n)
    return _render(cfg, split, image[[index]], corner[[index]], np.array([index]))[0]


def _clips(cfg: VideoConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All clips of a split: canvas frames (n, T, H, W) and digit labels (n,)."""
    n = getattr(cfg, f"n_{split}")
    image, corner = _trajectories(cfg, split, n)
    return _render(cfg, split, image, corner, np.arange(n)), digit_images()[1][image]


def fit_pca(frames: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and top principal axes (n_components, D) of frames (M, D), signs fixed for determinism."""
    mean = frames.mean(axis=0, dtype=np.float64)
    lit = frames[frames.any(axis=1)]  # all-zero (blank) frames add nothing to the Gram matrix: skip them
    gram = (lit.T @ lit).astype(np.float64)  # (D, D)
    cov = (gram - len(frames) * np.outer(mean, mean)) / max(len(frames) - 1, 1)
    _, vectors = np.linalg.eigh(cov)
    axes = vectors[:, ::-1][:, :n_components].T  # largest variance first
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    return mean, axes * signs[:, None]


def make_video(cfg: VideoConfig) -> SequenceDataset:
    cfg.validate()
    raw = {s: _clips(cfg, s) for s in SPLITS}
    flat = {s: frames.reshape(len(frames), cfg.seq_len, -1) for s, (frames, _) in raw.items()}  # (n, T, H*W)
    if cfg.features == "pca":  # fitted on training frames only, so val/test leak nothing into it
        mean, axes = fit_pca(flat["train"].reshape(-1, cfg.canvas ** 2), cfg.n_components)
        flat = {s: ((f - mean) @ axes.T).astype(np.float32) for s, f in flat.items()}  # (n, T, k)
    splits = {
        s: Split(torch.from_numpy(np.ascontiguousarray(flat[s])), torch.from_numpy(raw[s][1]),
                 torch.full((len(raw[s][1]),), cfg.gap, dtype=torch.int64))
        for s in SPLITS
    }
    features = f"{cfg.n_components} PCA components" if cfg.features == "pca" else f"{cfg.canvas ** 2} pixels"
    return SequenceDataset(
        name="video",
        description=(f"A handwritten digit moving on a {cfg.canvas}x{cfg.canvas} canvas, visible for "
                     f"{cfg.visible} frames, then {cfg.gap} {cfg.gap_mode} frames; name the digit at the "
                     f"end. {features} per frame; test clips show digit images never used in training."),
        kind=CLASSIFICATION,
        train=splits["train"], val=splits["val"], test=splits["test"],
        seq_len=cfg.seq_len,
        n_features=cfg.n_features,
        n_outputs=10,
        class_names=tuple(str(d) for d in range(10)),
        chance=majority_chance(splits["test"].y, 10),
        cue_lag=cfg.cue_lag,
        distance_name="gap frames between the last visible frame and the answer",
    )
