"""Configs to and from JSON-friendly dicts, every value cast by its field's type hint.

Config dataclasses inherit `Checked`, so their constructors cast each value (sequences to tuples, ints to
floats where a float is expected) and refuse, naming the field, what it cannot hold: 2.5 or "abc" or True
for a whole number, NaN or infinity for a number, integers beyond SQLite's 64 bits. Ranges stay in each
config's validate(). `from_dict` adds the refusal of unknown names and, for command-line text, parsing
by the field's type ("24,8" for a tuple of floats, "none" for an optional value).

Each user-facing field is declared once with `knob(...)`: its range or choices, its words in the app (label,
unit, help) and the cap a shared host puts on it. `check_knobs` validates against those declarations, and
the widgets, result headers, link cleaning and host caps are all read from them; rules that tie several
fields together stay in each config's validate().
"""
from __future__ import annotations

import math
import numbers
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache

from lib.errors import ConfigError

INT64 = 2 ** 63  # SQLite stores integers in 64 signed bits


@dataclass(frozen=True)
class Knob:
    """One setting as the app knows it: what it may hold, and its words."""

    label: str  # the widget's label; lowercased (with the unit) in result headers
    low: float | None = None  # inclusive bounds a value must lie in (None: unbounded)
    high: float | None = None
    choices: tuple = ()  # the values it may hold, in the order the form offers them
    titles: tuple[str, ...] = ()  # how the form and headers name each choice
    unit: str = ""  # "steps", "frames": said in messages and headers
    help: str = ""  # the widget's help text
    cap: str | None = None  # the lib.hosting.Limits field that lowers `high` on a shared host
    form: tuple[float, float] | None = None  # (low, high) the form offers, where narrower than the library's
    offers: tuple = ()  # the values the form offers, where the library allows a whole range
    parts: tuple[str, ...] = ()  # a tuple setting: the form's label of each value (those after the first: 0 = none)
    step: float | None = None  # the form's step
    excludes: str = ""  # "low" or "high": that bound itself is not allowed (a learning rate in (0, 1])
    note: str = ""  # added to the range in messages: "(0 turns it off)"
    key: str = ""  # the short name of its widget in page links (default: the field's name)
    header: str = ""  # its words in result headers (default: the label lowercased, with the unit)

    def span(self) -> str:
        """The allowed values in words: "between 1 and 4096", "in (0, 1]", "at least 0", "'a' or 'b'"."""
        if self.choices:
            shown = [repr(c) for c in self.choices]
            return " or ".join(shown) if len(shown) == 2 else f"one of {', '.join(shown)}"
        lo, hi = _number(self.low), _number(self.high)
        if self.excludes:
            left, right = "(" if self.excludes == "low" else "[", ")" if self.excludes == "high" else "]"
            return f"in {left}{lo}, {hi}{right}"
        if self.high is None:
            return f"at least {lo}"
        if self.low is None:
            return f"at most {hi}"
        return f"between {lo} and {hi}"

    def allows(self, value) -> bool:
        if self.choices:
            return value in self.choices
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            return True  # not a number: the type check in cast() judges it
        if self.low is not None and (value < self.low or (self.excludes == "low" and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.excludes == "high" and value == self.high))

    def title(self, value) -> str:
        """A choice as the app names it."""
        return dict(zip(self.choices, self.titles, strict=False)).get(value, str(value))

    @property
    def widget_label(self) -> str:
        """The label with its unit and note: "Gap (frames)", "Gradient clip (0 turns it off)"."""
        return " ".join(filter(None, (self.label, f"({self.unit})" if self.unit else "", self.note)))

    @property
    def words(self) -> str:
        """Its words in result headers: "gap (frames)"."""
        return self.header or (f"{self.label} ({self.unit})" if self.unit else self.label).lower()

    def named(self, name: str) -> str:
        """How messages name field `name`: "distance", or "learning rate (lr)" where the words differ."""
        term = re.sub(r"\s*\(.*\)", "", self.label).lower()  # "Noise (std)" -> "noise"
        return name if term == name.replace("_", " ") else f"{term} ({name})"


def _number(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def knob(default, label: str, **declared):
    """A dataclass field with its Knob declaration (see Knob), e.g. `hidden: int = knob(64, "Hidden units",
    low=1, high=4096, cap="hidden")`."""
    return field(default=default, metadata={"knob": Knob(label, **declared)})


def knobs(cls) -> dict[str, Knob]:
    """Field name -> Knob of every declared setting of a config class (or instance), in field order."""
    return {f.name: f.metadata["knob"] for f in fields(cls) if "knob" in f.metadata}


def check_knobs(cfg) -> None:
    """Raise ConfigError naming the first field whose value its Knob does not allow, with the allowed values:
    "distance must be between 0 and 200, got 201.". Each value of a tuple field is checked on its own."""
    for name, k in knobs(cfg).items():
        value = getattr(cfg, name)
        for v in value if isinstance(value, tuple) else (value,):
            if v is not None and not k.allows(v):
                unit = f" {k.unit}" if k.unit and not k.choices else ""
                note = f" {k.note}" if k.note else ""
                shown = repr(v) if k.choices else _number(float(v) if isinstance(v, float) else v)
                each = "each " if isinstance(value, tuple) else ""
                raise ConfigError(f"{each}{k.named(name)} must be {k.span()}{unit}{note}, got {shown}.")


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
