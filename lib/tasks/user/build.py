"""Stage 3b of user data: a loaded file and its UploadSpec -> a SequenceDataset (`build_dataset`).

One builder per layout; the checks they share are in checks.py, and from_arrays / from_series (arrays.py) make
the dataset from the finished arrays. Nothing is dropped, filled, padded or cut unless the spec says so, and the
dataset description reports what was.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from lib.errors import ConfigError
from lib.tasks.base import CLASSIFICATION, SequenceDataset, Split, majority_chance
from lib.tasks.forecast import segment_sizes
from lib.tasks.user.arrays import MAX_STEPS, MIN_EVAL, MIN_TRAIN, from_arrays, from_series, split_indices
from lib.tasks.user.checks import (
    Rows,
    carve_val,
    check_columns,
    check_labels,
    check_scale,
    combine,
    fill_note,
    label_cells,
    label_values,
    numbers,
    order_values,
    refuse_missing,
    row_split,
    show,
    split_values,
    time_blocks,
)
from lib.tasks.user.read import CorpusText, NpzArrays, Source
from lib.tasks.user.spec import UploadSpec

PAD, UNK = "<pad>", "<unk>"
WORD = re.compile(r"[\w']+")  # the same words lib.probes.tokenize finds, so prompts match training text


def build_dataset(source: Source, spec: UploadSpec, test: Source | None = None,
                  name: str = "my data") -> SequenceDataset:
    """The dataset `spec` describes, from a loaded file (and a separate test file, kept as the test split).

    series: forecast `target` `horizon` rows past windows of all `inputs`, split in time. wide / long /
    arrays: one label per sequence, classification or (label_kind "regression") sequence-to-value.
    corpus: the next word at every position of word windows, split in text order.
    """
    spec.validate()
    wanted = {"corpus": CorpusText, "arrays": NpzArrays}.get(spec.layout, pd.DataFrame)
    for what, s in (("the file", source), ("the test file", test)):
        if s is not None and not isinstance(s, wanted):
            raise ConfigError(f"the {spec.layout} layout needs {_KIND[wanted]}, but {what} is {_KIND[type(s)]}; "
                              f"choose the layout that fits the file.")
    build = {"series": _build_series, "wide": _build_wide, "long": _build_long, "corpus": _build_corpus,
             "arrays": _build_arrays}[spec.layout]
    return build(source, spec, test, name)


_KIND = {pd.DataFrame: "a table", CorpusText: "a .txt corpus", NpzArrays: "a .npz of arrays"}


def _fill_steps(x: np.ndarray, how: str) -> np.ndarray:
    """NaN in x (N, T, F) filled along the steps of each sequence: 'ffill' or 'interpolate' (linear)."""
    n, t, f = x.shape
    frame = pd.DataFrame(x.transpose(0, 2, 1).reshape(n * f, t))  # one row per (sequence, feature)
    frame = frame.ffill(axis=1) if how == "ffill" else frame.interpolate(axis=1, limit_direction="both")
    return frame.to_numpy().reshape(n, f, t).transpose(0, 2, 1)


def _fill_groups(values: np.ndarray, groups: np.ndarray, how: str) -> np.ndarray:
    """NaN in values (n, F), rows sorted by group then step, filled within each group."""
    if how == "ffill":
        return pd.DataFrame(values).groupby(groups).ffill().to_numpy(dtype=np.float64)
    out = values.copy()
    index = np.arange(len(values), dtype=np.float64)
    for j in range(values.shape[1]):  # linear in row position, flat beyond a group's first/last value
        known = pd.Series(np.where(np.isnan(values[:, j]), np.nan, index))
        prev = known.groupby(groups).ffill().to_numpy()
        nxt = known.groupby(groups).bfill().to_numpy()
        lo, hi = np.where(np.isnan(prev), nxt, prev), np.where(np.isnan(nxt), prev, nxt)
        ok = ~np.isnan(lo)
        a, b = lo[ok].astype(np.int64), hi[ok].astype(np.int64)
        w = np.divide(index[ok] - a, b - a, out=np.zeros(len(a)), where=b != a)
        out[ok, j] = values[a, j] * (1 - w) + values[b, j] * w
    return out


def _assign_split(n: int, given: np.ndarray | None, spec: UploadSpec) -> tuple[np.ndarray, str]:
    """Each sequence's part: the given split (val carved from train when missing) or a seeded shuffle."""
    if given is not None:
        return carve_val(given, spec, in_time=False)
    split = np.empty(n, dtype="<U5")
    for part, index in zip(("train", "val", "test"), split_indices(n, spec.val_fraction, spec.test_fraction,
                                                                   spec.seed), strict=True):
        split[index] = part
    return split, (f"a seeded shuffle (seed {spec.seed}): {1 - spec.val_fraction - spec.test_fraction:.0%} train, "
                   f"{spec.val_fraction:.0%} val, {spec.test_fraction:.0%} test")


def _labelled(x: np.ndarray, steps: np.ndarray, y: np.ndarray, column: str, where, split: np.ndarray | None,
              spec: UploadSpec, name: str, what: str, notes: str) -> SequenceDataset:
    """x (N, T, F) finite, its last steps[i] steps real and the rest zero padding; y (N,) present labels."""
    n, t, f = x.shape
    check_labels(y, column, spec, where)
    split, how = _assign_split(n, split, spec)
    real = np.arange(t)[None, :] >= (t - steps)[:, None]  # (N, T)
    scaled = ""
    if spec.standardize:  # on the training sequences' real steps; padding stays 0
        ref = x[(split == "train")[:, None] & real]  # (steps, F)
        if len(ref):
            mean, std = ref.mean(axis=0), ref.std(axis=0)
            x = np.where(real[:, :, None], (x - mean) / np.where(std > 0, std, 1.0), 0.0)
        scaled = " Inputs standardised on the training part" + (" (padding stays 0)." if (~real).any() else ".")
    regression = spec.label_kind == "regression"
    if regression:
        y = y.astype(np.float64)
        if spec.standardize:
            train_y = y[split == "train"]
            mean, std = train_y.mean(), train_y.std()
            if not std > 0:
                raise ConfigError(f"label column {column!r} is constant in the training part (every value is "
                                  f"{mean:g}); there is nothing to learn.")
            y = (y - mean) / std
            scaled += f" Label standardised with the training part's mean {mean:g} and std {std:g}."
    # scaled above (padding stays 0, messages name the column): from_arrays checks and packs x and y as they are
    ds = from_arrays(x, y, name=name, val_fraction=spec.val_fraction, test_fraction=spec.test_fraction,
                     seed=spec.seed, standardize=False, regression=regression, split=split)
    task = f"{ds.n_outputs} classes" if ds.kind == CLASSIFICATION else "one number per sequence (regression)"
    return replace(ds, name=name, description=f"{what}: {n} sequences of {t} steps x {f} feature(s), {task}; "
                                              f"split by {how}.{scaled}{notes}")


def _sequences(x: np.ndarray, bad: np.ndarray, names: list[str], y: np.ndarray, no_label: np.ndarray,
               label: str, split: np.ndarray | None, where, spec: UploadSpec, name: str,
               what: str) -> SequenceDataset:
    """Equal-length sequences x (N, T, F), NaN where bad (N, K) names a cell by names[k], to a dataset."""
    if spec.missing == "error":
        refuse_missing(bad, names, where, "steps")
    if spec.missing != "drop":
        refuse_missing(no_label[:, None], [label], where, "labels")
    keep, notes = ~no_label, ""
    if bad.any() and spec.missing == "drop":
        keep &= ~bad.any(axis=1)
        notes = f" {int(bad.any(axis=1).sum())} sequence(s) with empty, NaN or infinite steps were dropped."
    elif bad.any():
        n_bad = int(np.isnan(x).sum())
        x = _fill_steps(x, spec.missing)
        if np.isnan(x).any():
            i = int(np.flatnonzero(np.isnan(x).any(axis=(1, 2)))[0])
            raise ConfigError(f"{where(i)} starts with empty steps, so there is no earlier value to repeat; set "
                              f"missing to 'drop' or 'interpolate'.")
        verb = "repeated from the previous step" if spec.missing == "ffill" else "interpolated along the steps"
        notes = f" {n_bad} empty, NaN or infinite step value(s) were {verb}."
    if no_label.any():
        notes += f" {int(no_label.sum())} sequence(s) without a label were dropped."
    rows = np.flatnonzero(keep)
    x = x[keep]
    if len(names) == x.shape[2]:  # names are features
        check_scale(x.reshape(-1, x.shape[2]), names, spec.standardize, lambda i: where(rows[i // x.shape[1]]))
    else:  # names are the steps of one feature
        check_scale(x[:, :, 0], names, spec.standardize, lambda i: where(rows[i]))
    return _labelled(x, np.full(len(x), x.shape[1]), y[keep], label, lambda k: where(rows[k]),
                     split[keep] if split is not None else None, spec, name, what, notes)


def _build_wide(df: pd.DataFrame, spec: UploadSpec, test: pd.DataFrame | None, name: str) -> SequenceDataset:
    df, files, where = combine(df, test)
    check_columns(df, spec)
    names = list(spec.inputs)
    x = np.stack([numbers(df, c, where) for c in names], axis=1)[:, :, None]  # (N, T, 1)
    x = np.where(np.isfinite(x), x, np.nan)
    return _sequences(x, np.isnan(x[:, :, 0]), names, label_values(df[spec.target]), label_cells(df, spec.target),
                      spec.target, row_split(df, spec, files, where), where, spec, name,
                      f"Labelled sequences from {len(names)} step columns, label {spec.target!r}")


def _build_arrays(source: NpzArrays, spec: UploadSpec, test: NpzArrays | None, name: str) -> SequenceDataset:
    x, y = np.asarray(source.x), np.asarray(source.y)
    split = None if source.split is None else np.asarray(source.split)
    where = Rows(noun="sequence", first=0)
    if test is not None:
        if split is not None or test.split is not None:
            raise ConfigError("both a test file and a split array were given; use one.")
        tx = np.asarray(test.x)
        if tx.shape[1:] != x.shape[1:]:
            raise ConfigError(f"the test file's X has shape {tx.shape}, the training file's {x.shape}; give both "
                              f"the same steps and features.")
        split, where = np.array(["train"] * len(x) + ["test"] * len(tx)), Rows(len(x), "sequence", 0)
        x, y = np.concatenate([x, tx]), np.concatenate([y, np.asarray(test.y)])
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"X must hold numbers, got an array of dtype {x.dtype}; save X as floats.")
    if x.ndim not in (2, 3) or 0 in x.shape:
        raise ConfigError(f"X must have shape (N, T) or (N, T, F) with at least one step and feature; got shape "
                          f"{x.shape}.")
    if y.shape != (len(x),) or y.dtype.kind not in "biufU":
        raise ConfigError(f"y must hold one number or string label per sequence, shape ({len(x)},); got shape "
                          f"{y.shape} of dtype {y.dtype}.")
    if split is not None and test is None:
        if split.shape != (len(x),):
            raise ConfigError(f"split must hold train, val or test per sequence, shape ({len(x)},); got shape "
                              f"{split.shape}.")
        split = split_values(pd.Series(split.astype(str)), "split", where)
    x = x.astype(np.float64).reshape(len(x), x.shape[1], -1)  # (N, T, F)
    x = np.where(np.isfinite(x), x, np.nan)
    labels = y.astype(np.float64) if y.dtype.kind in "biuf" else y.astype(str)
    no_label = ~np.isfinite(labels) if labels.dtype.kind == "f" else np.zeros(len(y), dtype=bool)
    return _sequences(x, np.isnan(x).any(axis=1), [f"X[..., {j}]" for j in range(x.shape[2])], labels, no_label,
                      "y", split, where, spec, name, "Labelled sequences from X and y")


def _build_series(df: pd.DataFrame, spec: UploadSpec, test: pd.DataFrame | None, name: str) -> SequenceDataset:
    df, files, where = combine(df, test)
    check_columns(df, spec)
    split = row_split(df, spec, files, where)
    order = "in row order"
    if spec.time is not None:
        t, shown = order_values(df, spec.time, where), df[spec.time]
        step = np.diff(t)
        if (step <= 0).any():
            i = int(np.flatnonzero(step <= 0)[0]) + 1
            if step[i - 1] == 0:
                raise ConfigError(f"time column {spec.time!r} repeats {show(shown.iloc[i])} at {where(i)} and the row "
                                  f"before; give each row its own time, or aggregate rows per time first.")
            if files is not None and i == where.n_train_file:
                raise ConfigError(f"the test file starts at {show(shown.iloc[i])}, before the training file ends "
                                  f"({show(shown.iloc[i - 1])}); the test rows must come after the training rows.")
            raise ConfigError(f"time column {spec.time!r} is not in order: {where(i)} ({show(shown.iloc[i])}) "
                              f"comes after {show(shown.iloc[i - 1])}; sort the rows by {spec.time!r} first.")
        order = f"ordered by {spec.time!r}"
    names = list(spec.inputs)
    values = np.stack([numbers(df, c, where) for c in names], axis=1)  # (T, F)
    values = np.where(np.isfinite(values), values, np.nan)
    bad = np.isnan(values)
    keep, notes = np.ones(len(values), dtype=bool), ""
    if spec.missing == "error":
        refuse_missing(bad, names, where, "rows")
    elif bad.any() and spec.missing == "drop":
        keep = ~bad.any(axis=1)
        notes = f" {int((~keep).sum())} row(s) with empty, NaN or infinite inputs were dropped."
    elif bad.any():
        values = pd.DataFrame(values)
        values = (values.ffill() if spec.missing == "ffill" else values.interpolate(limit_direction="both")).to_numpy()
        notes = fill_note(values, spec.missing, int(bad.sum()), ("repeated from the previous row", "interpolated"),
                           lambda: f"column {names[int(np.flatnonzero(np.isnan(values).any(axis=0))[0])]!r} "
                                   f"starts with empty cells ({where(0)})")
    rows = np.flatnonzero(keep)
    values = values[keep]
    check_scale(values, names, spec.standardize, lambda i: where(rows[i]))
    sizes, how = None, (f"in time: {1 - spec.val_fraction - spec.test_fraction:.0%} train, then "
                        f"{spec.val_fraction:.0%} val, then {spec.test_fraction:.0%} test")
    if split is not None:
        split, how = carve_val(split[keep], spec, in_time=True)
        sizes = time_blocks(split, lambda i: where(rows[i]))
    target = names.index(spec.target)
    if spec.standardize:
        n_train = sizes[0] if sizes else segment_sizes(len(values), spec.val_fraction, spec.test_fraction)[0]
        if np.ptp(values[:n_train, target]) == 0:
            raise ConfigError(f"the target {spec.target!r} is constant in the training part (every value is "
                              f"{values[0, target]:g}); there is nothing to learn.")
    ds = from_series(values, spec.window, spec.horizon, target=target, name=name, val_fraction=spec.val_fraction,
                     test_fraction=spec.test_fraction, standardize=spec.standardize, sizes=sizes)
    scaled = " Each column standardised with the training part's mean and std." if spec.standardize else ""
    return replace(ds, name=name, description=(
        f"Forecast {spec.target!r} {spec.horizon} row(s) past windows of {spec.window} rows of "
        f"{', '.join(map(repr, names))}; {len(values)} rows {order}, split {how}.{scaled}{notes}"))


def _build_long(df: pd.DataFrame, spec: UploadSpec, test: pd.DataFrame | None, name: str) -> SequenceDataset:
    df, files, where = combine(df, test)
    check_columns(df, spec)
    split = row_split(df, spec, files, where)
    ids = df[spec.sequence]
    if ids.isna().any():
        raise ConfigError(f"sequence column {spec.sequence!r} is empty at {where(np.flatnonzero(ids.isna())[0])}; "
                          f"give every row its sequence id.")
    names = list(spec.inputs)
    values = np.stack([numbers(df, c, where) for c in names], axis=1)  # (rows, F)
    values = np.where(np.isfinite(values), values, np.nan)
    bad, no_label = np.isnan(values), label_cells(df, spec.target)
    if spec.missing == "error":
        refuse_missing(bad, names, where, "rows")
    if spec.missing != "drop":
        refuse_missing(no_label[:, None], [spec.target], where, "labels")
    keep, notes = ~no_label, ""
    if spec.missing == "drop":
        keep &= ~bad.any(axis=1)
        if (~keep).any():
            notes = f" {int((~keep).sum())} row(s) with empty, NaN or infinite cells were dropped."
    key = ids.astype(str) if files is None else files + "\x00" + ids.astype(str)  # one id in two files: two sequences
    code = pd.factorize(key.to_numpy(dtype=str), sort=False)[0]  # sequences in order of first appearance
    step = order_values(df, spec.time, where) if spec.time else np.arange(len(df), dtype=np.float64)
    rows = np.flatnonzero(keep)
    rows = rows[np.lexsort((step[rows], code[rows]))]  # by sequence, then step
    code, step, values = code[rows], step[rows], values[rows]
    start = np.r_[True, np.diff(code) != 0]  # each sequence's first row
    repeat = ~start[1:] & (np.diff(step) == 0)
    if repeat.any():
        a, b = sorted(rows[int(np.flatnonzero(repeat)[0]):][:2])
        raise ConfigError(f"sequence {show(ids.iloc[a])} repeats step {show(df[spec.time].iloc[a])} ({where(a)} and "
                          f"{where(b)}); give each step of a sequence its own {spec.time!r}.")
    first = rows[np.maximum.accumulate(np.where(start, np.arange(len(rows)), 0))]  # the sequence's first row
    for column, cells in ((spec.target, df[spec.target].astype(str).to_numpy()),
                          (spec.split, split)):
        if cells is None:
            continue
        differs = cells[rows] != cells[first]
        if differs.any():
            k = int(np.flatnonzero(differs)[0])
            what = f"label column {column!r}" if column == spec.target else "the split"
            raise ConfigError(f"{what} changes within sequence {show(ids.iloc[rows[k]])}: {show(cells[first[k]])} at "
                              f"{where(first[k])}, {show(cells[rows[k]])} at {where(rows[k])}; give each sequence one "
                              f"{'label' if column == spec.target else 'split'}.")
    if bad[rows].any():  # fill within each sequence, in step order
        values = _fill_groups(values, code, spec.missing)
        def gap() -> str:
            r = rows[int(np.flatnonzero(np.isnan(values).any(axis=1))[0])]
            return f"sequence {show(ids.iloc[r])} starts with empty cells ({where(r)})"
        notes = fill_note(values, spec.missing, int(bad[rows].sum()),
                           ("repeated from the previous step", "interpolated within sequences"), gap)
    seq_rows = rows[start]  # first row of each sequence, in sequence order
    lengths = np.diff(np.r_[np.flatnonzero(start), len(rows)])
    if (lengths == 1).any():
        r = seq_rows[int(np.flatnonzero(lengths == 1)[0])]
        raise ConfigError(f"sequence {show(ids.iloc[r])} has only 1 step ({where(r)}); every sequence needs at "
                          f"least 2 steps. Drop it from the file, or check that {spec.sequence!r} is the sequence "
                          f"column.")
    if spec.length is None and lengths.max() > MAX_STEPS:
        r = seq_rows[int(np.argmax(lengths))]
        raise ConfigError(f"sequence {show(ids.iloc[r])} has {lengths.max()} steps (limit {MAX_STEPS}); set length to "
                          f"keep the last steps of each sequence.")
    length = spec.length or int(lengths.max())
    seq = np.cumsum(start) - 1  # each kept row's sequence index
    from_end = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(rows))  # 1 at each sequence's last step
    inside = from_end <= length
    check_scale(values[inside], names, spec.standardize, lambda i: where(rows[np.flatnonzero(inside)[i]]))
    x = np.zeros((len(lengths), length, len(names)))
    x[seq[inside], length - from_end[inside]] = values[inside]  # left-padded with zeros, or cut to the last steps
    n_short, n_cut = int((lengths < length).sum()), int((lengths > length).sum())
    notes += (f" Rule: sequences shorter than {length} steps are left-padded with zeros ({n_short} of {len(lengths)}"
              f"), longer ones keep their last {length} steps ({n_cut} of {len(lengths)}).")
    order = f"steps ordered by {spec.time!r}" if spec.time else "steps in row order"
    return _labelled(x, np.minimum(lengths, length), label_values(df[spec.target])[seq_rows], spec.target,
                     lambda k: where(seq_rows[k]), split[seq_rows] if split is not None else None, spec, name,
                     f"Labelled sequences by {spec.sequence!r} ({order}), label {spec.target!r}", notes)


def _min_words(window: int, val_fraction: float, test_fraction: float) -> int:
    """The fewest words whose train / val / test parts hold MIN_TRAIN / MIN_EVAL / MIN_EVAL windows."""
    n = (MIN_TRAIN + 2 * MIN_EVAL) * window + 3
    while True:
        n_train, n_val, n_test = segment_sizes(n, val_fraction, test_fraction)
        if (n_train - 1) // window >= MIN_TRAIN and min(n_val - 1, n_test - 1) // window >= MIN_EVAL:
            return n
        n += 1


def _build_corpus(source: CorpusText, spec: UploadSpec, test: CorpusText | None, name: str) -> SequenceDataset:
    w = spec.window
    words = WORD.findall(source.text.lower())
    if test is None:
        need = _min_words(w, spec.val_fraction, spec.test_fraction)
        if len(words) < need:
            raise ConfigError(f"the corpus has {len(words)} words; next-word windows of {w} words with val_fraction "
                              f"{spec.val_fraction:g} and test_fraction {spec.test_fraction:g} need at least {need} "
                              f"words ({MIN_TRAIN} windows to train on, {MIN_EVAL} each to validate and test); use a "
                              f"longer text or a smaller window.")
        sizes = segment_sizes(len(words), spec.val_fraction, spec.test_fraction)
        bounds = np.cumsum((0, *sizes))
        parts = [words[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        how = (f"in text order: {1 - spec.val_fraction - spec.test_fraction:.0%} train, {spec.val_fraction:.0%} "
               f"val, {spec.test_fraction:.0%} test")
    else:
        n_val = round(len(words) * spec.val_fraction)
        parts = [words[:len(words) - n_val], words[len(words) - n_val:], WORD.findall(test.text.lower())]
        how = f"the test file; validation the last {spec.val_fraction:.0%} of the training text"
        for part, text, least in zip(("training", "validation", "test"), parts, (MIN_TRAIN, MIN_EVAL, MIN_EVAL),
                                     strict=True):
            if (len(text) - 1) // w < least:
                raise ConfigError(f"the {part} text has {len(text)} words, too few for {least} next-word windows of "
                                  f"{w} words; use longer texts or a smaller window.")
    counts = Counter(parts[0])
    if len(counts) == 1:
        raise ConfigError(f"the training part of the corpus is one word repeated ({parts[0][0]!r}), so the next word "
                          f"is always the same; there is nothing to learn. Use a text of varied words.")
    kept = sorted(counts, key=lambda word: (-counts[word], word))[:spec.vocab_size]
    vocab = (PAD, UNK, *kept)
    ids = {word: i for i, word in enumerate(vocab)}
    splits, n_unk, n_words = [], 0, 0
    for part in parts:
        tokens = np.array([ids.get(word, 1) for word in part], dtype=np.int64)
        n_unk, n_words = n_unk + int((tokens == 1).sum()), n_words + len(tokens)
        n = (len(tokens) - 1) // w
        x = tokens[:n * w].reshape(n, w)  # (N, window) word ids
        y = tokens[1:n * w + 1].reshape(n, w)  # (N, window) the next word at every position
        splits.append(Split(torch.from_numpy(x), torch.from_numpy(y)))
    return SequenceDataset(
        name=name,
        description=(f"Next word at every position of {w}-word windows from a corpus of {n_words} words, split "
                     f"{how}. Vocabulary: the {len(kept)} most frequent training words (of {len(counts)} "
                     f"distinct); {n_unk} word(s) ({n_unk / n_words:.1%}) outside it read as {UNK}."),
        kind=CLASSIFICATION,
        train=splits[0], val=splits[1], test=splits[2],
        seq_len=w,
        n_features=len(vocab),
        n_outputs=len(vocab),
        per_step=True,
        vocab=vocab,
        class_names=vocab,
        chance=majority_chance(splits[2].y, len(vocab)),
        distance_name="words",
    )


__all__ = ["PAD", "UNK", "WORD", "build_dataset"]
