"""Configs to and from JSON-friendly dicts, every value cast by its field's type hint.

Config dataclasses inherit `Checked`, so their constructors cast each value (sequences to tuples, ints to
floats where a float is expected) and refuse, naming the field, what it cannot hold: 2.5 or "abc" or True
for a whole number, NaN or infinity for a number, integers beyond SQLite's 64 bits. Ranges stay in each
config's validate(). `from_dict` adds the refusal of unknown names and, for command-line text, parsing
by the field's type ("24,8" for a tuple of floats, "none" for an optional value).
"""
from __future__ import annotations

import math
import numbers
import types
import typing
from collections.abc import Mapping
from dataclasses import fields
from functools import cache

from lib.errors import ConfigError

INT64 = 2 ** 63  # SQLite stores integers in 64 signed bits


@cache
def _hints(cls) -> dict[str, object]:
    """Field name -> resolved type hint, for the fields the constructor takes."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls) if f.init}


def _optional(hint) -> tuple[object, bool]:
    """(X, True) for `X | None`, else (hint, False)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def cast(name: str, hint, value):
    """`value` as a field `name` of type `hint` holds it; ConfigError naming the field when it cannot."""
    hint, optional = _optional(hint)
    if value is None and optional:
        return None
    if isinstance(hint, type) and issubclass(hint, Checked) and isinstance(value, Mapping):
        return from_dict(hint, value)  # a nested config, from its to_dict form
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name} must be a list, got {value!r}.")
        return tuple(cast(f"{name}[{i}]", typing.get_args(hint)[0], v) for i, v in enumerate(value))
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"{name} must be a whole number, got {value!r}.")
        if not -INT64 <= value < INT64:
            raise ConfigError(f"{name} must fit in 64 bits (between {-INT64} and {INT64 - 1}), got {value}.")
        return int(value)
    if hint is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer beyond float's range
                number = math.inf
            if math.isfinite(number):
                return number
        raise ConfigError(f"{name} must be a finite number, got {value!r}.")
    kind = typing.get_origin(hint) or hint  # dict for dict[str, int]; Literal and the like stay unchecked
    if isinstance(kind, type) and not isinstance(value, kind):
        raise ConfigError(f"{name} must be {'text' if kind is str else kind.__name__}, got {value!r}.")
    return value


def _parse(hint, text: str):
    """Command-line text as the value a field of type `hint` wants; cast() then judges it."""
    hint, optional = _optional(hint)
    if optional and text.lower() == "none":
        return None
    if typing.get_origin(hint) is tuple:
        return [_parse(typing.get_args(hint)[0], part.strip()) for part in text.split(",")]
    if hint in (int, float):
        for number in (int, float):
            try:
                return number(text)
            except ValueError:
                pass
    return text


class Checked:
    """Base of the config dataclasses: construction casts every field by its type, as from_dict does."""

    def __post_init__(self) -> None:
        for name, hint in _hints(type(self)).items():
            object.__setattr__(self, name, cast(name, hint, getattr(self, name)))  # frozen dataclasses too


def to_dict(cfg) -> dict:
    """A config's fields as a JSON-friendly dict (tuples become lists, nested configs dicts); from_dict
    reverses it."""
    return {f.name: to_dict(v) if isinstance(v := getattr(cfg, f.name), Checked) else list(v)
            if isinstance(v, tuple) else v for f in fields(cfg)}


def from_dict(cls, data: Mapping, text: bool = False):
    """`cls` built from a dict like to_dict's, each value cast by its field's type.

    With `text`, values are command-line strings, parsed by the field's type first. Unknown names and
    values a field cannot hold raise ConfigError.
    """
    hints = _hints(cls)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        what = f"task {cls.name!r}" if isinstance(getattr(cls, "name", None), str) else cls.__name__
        raise ConfigError(f"unknown parameter(s) for {what}: {', '.join(unknown)}; "
                          f"valid: {', '.join(sorted(hints))}.")
    return cls(**{k: cast(k, hints[k], _parse(hints[k], v) if text else v) for k, v in data.items()})
