"""The settings form, drawn from each setting's declaration (lib.configs.Knob): widgets with their bounds on
this server, the words of messages, page links made safe, and a result's settings put back."""
from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from functools import cache

import streamlit as st

from lib import hosting
from lib.configs import Knob, knobs
from lib.errors import ConfigError, LookbackError
from lib.models import MODEL_KINDS, ModelConfig, ModelIO, match_params
from lib.runs import dataset
from lib.settings import TASK_TITLES, Settings
from lib.tasks import TASKS
from lib.train import TrainConfig
from pages._state import LINK_NOTES, LINKS_CLEANED, prepared_data

# Page settings that are no config field: (low, high) and the lib.hosting.Limits field that caps them.
PAGE_BOUNDS = {"seeds": (1, 5), "budget": (0, 2_000_000), "lo": (1, 400), "hi": (1, 400), "count": (2, 16)}
PAGE_CAPS = {"seeds": "seeds"}
FORM_CONFIGS = (*(cls for cls, _ in TASKS.values()), ModelConfig, TrainConfig)  # whose settings the form draws
RECURRENT = [k for k, kind in MODEL_KINDS.items() if kind.recurrent]
WINDOWED = next(k for k, kind in MODEL_KINDS.items() if kind.windowed)  # the kind whose window the pages sweep
# The kind pickers' link keys by how they end (the most specific first), and the kinds each offers
KIND_LINKS = {"scale_kinds": RECURRENT, "refs": RECURRENT,
              "window_kinds": [k for k, kind in MODEL_KINDS.items() if kind.windowed],
              "study_kinds": [k for k, kind in MODEL_KINDS.items() if not kind.windowed], "kinds": list(MODEL_KINDS)}


def _keys(name: str, k: Knob) -> list[str]:
    """The widget keys of a setting: its key, and for a tuple setting one more per part ("period", "period2")."""
    key = k.key or name
    return [key] + [f"{key}{i + 1}" for i in range(1, len(k.parts))]


@cache
def _declared() -> dict[str, tuple[Knob, int]]:
    """Widget key -> (its setting's Knob, which part of a tuple setting) for every declared setting."""
    return {key: (k, i) for cls in FORM_CONFIGS for name, k in knobs(cls).items()
            for i, key in enumerate(_keys(name, k))}


def _bounds(k: Knob, part: int) -> tuple | None:
    """A numeric setting's (low, high) in the form, None for choices or an unbounded one."""
    lo, hi = k.form or (k.low, k.high)
    if k.choices or k.offers or lo is None or hi is None:
        return None
    return (0, hi) if part else (lo, hi)  # a tuple setting's later parts may be 0 (none)


class _Limits(Mapping):
    """Widget key -> its (low, high), each high lowered to this server's cap; read when a widget is drawn."""

    def __getitem__(self, key: str) -> tuple:
        if key in PAGE_BOUNDS:
            (lo, hi), cap = PAGE_BOUNDS[key], PAGE_CAPS.get(key)
        else:
            k, part = _declared()[key]
            if (bounds := _bounds(k, part)) is None:
                raise KeyError(key)
            (lo, hi), cap = bounds, k.cap
        limit = getattr(hosting.limits(), cap) if cap else None
        return (lo, hi if limit is None else min(hi, limit))

    def __iter__(self) -> Iterator[str]:
        return iter([*PAGE_BOUNDS, *(key for key, (k, part) in _declared().items() if _bounds(k, part))])

    def __len__(self) -> int:
        return sum(1 for _ in self)


LIMITS = _Limits()


def setting(key: str) -> dict:
    """Widget arguments for a setting: kept across page switches and mirrored in the page's URL, so a
    copied link reproduces the setup (`clean_links` makes the link's values safe first)."""
    return {"key": key, "persist_state": "session", "bind": "query-params"}


def widget(where, k: Knob, key: str, default, slider: bool = False, help: str | None = None):
    """The widget of one declared setting: a radio or select box for choices, a select slider for offered values,
    a slider for floats (and `slider`), else a number input; bounds from LIMITS, words from the Knob."""
    args = {**setting(key), "help": help or k.help or None}
    if k.choices:
        fmt = k.title if k.titles else None
        if len(k.choices) <= 2:
            return where.radio(k.widget_label, list(k.choices), horizontal=True, format_func=fmt or str, **args)
        return where.selectbox(k.widget_label, list(k.choices), format_func=fmt or str, **args)
    if k.offers:
        return where.select_slider(k.widget_label, k.offers, default, **args)
    lo, hi = LIMITS[key.rsplit("_", 1)[-1]]
    if isinstance(default, float) or slider:
        return where.slider(k.widget_label, lo, hi, min(default, hi), k.step, **args)
    return where.number_input(k.widget_label, lo, hi, min(default, hi), k.step, **args)


def task_form(cls, prefix: str):
    """The widgets of a task's form settings (its `shown` fields), two to a row; returns its config."""
    declared, values, cols = knobs(cls), {}, st.columns(2)
    for i, name in enumerate(cls.shown):
        k, default, where = declared[name], getattr(cls, name), cols[i % 2]
        if k.parts:  # one input per value; a later one left at 0 is dropped
            parts = [widget(where, replace(k, label=label, parts=(), note="(0 = none)" if j else ""),
                            f"{prefix}_{key}", int(default[j]) if j < len(default) else 0)
                     for j, (label, key) in enumerate(zip(k.parts, _keys(name, k), strict=True))]
            values[name] = tuple(float(p) for j, p in enumerate(parts) if j == 0 or p)
        else:
            value = widget(where, k, f"{prefix}_{k.key or name}", default, slider=name == cls.distance_field)
            values[name] = type(default)(value) if isinstance(default, int | float) else value
    return cls.from_form(values) if hasattr(cls, "from_form") else cls(**values)


def user_task():
    """The dataset prepared on the Your data page in this session (a UserDataConfig), or None."""
    prepared = prepared_data()
    return None if prepared is None else prepared.cfg


def task_picker(prefix: str):
    """Task selector and its settings; returns a task config (not yet validated). Your data is offered once the
    Your data page has prepared a dataset in this session."""
    user = user_task()
    names = [name for name in TASK_TITLES if name != "userdata" or user is not None]
    name = st.selectbox("Task", names, format_func=TASK_TITLES.get, **setting(f"{prefix}_task"))
    if name == "userdata":
        prepared = prepared_data()
        st.caption(prepared.caption or f"Prepared on the Your data page from {prepared.file}.")
        return user
    return task_form(TASKS[name][0], prefix)


def task_values(prefix: str, task) -> dict:
    """The widget values of task_picker(prefix) that give `task` (for Restore buttons)."""
    values = {f"{prefix}_task": task.name}
    declared = knobs(task)
    for name in getattr(task, "shown", ()):
        k, value = declared[name], getattr(task, name)
        if k.parts:
            values |= {f"{prefix}_{key}": int(value[j]) if j < len(value) else 0
                       for j, key in enumerate(_keys(name, k))}
        else:
            values[f"{prefix}_{k.key or name}"] = value
    return values


TRAIN_FIELDS = ("hidden", "layers", "dropout", "init", "lr", "batch", "epochs", "patience", "seeds", "budget")
_MODEL, _TRAIN = knobs(ModelConfig), knobs(TrainConfig)
_TRAIN_KEYS = {k.key or name: name for name, k in _TRAIN.items()}  # "batch" -> "batch_size"


def train_settings(prefix: str, epochs: int = 60, fields: tuple[str, ...] = TRAIN_FIELDS,
                   metric: str = "metric") -> tuple[TrainConfig, list[int], dict]:
    """The advanced expander: training settings, seeds and per-model options; only `fields` are shown (the
    others keep their defaults), so a page offers no setting that does nothing there."""
    v = {name: getattr(ModelConfig, name) for name in ("hidden", "layers", "dropout", "init")}
    v |= {key: getattr(TrainConfig, name) for key, name in _TRAIN_KEYS.items()} | {"epochs": epochs}
    v |= {"seeds": 1, "budget": 0}
    helps = {
        "init": "Best practice: orthogonal for the RNN, chrono for LSTM and GRU (Tallec & Ollivier 2018). Not every "
                "scheme applies to every model.",
        "patience": f"Training stops after this many epochs without a better validation {metric}; 0 trains every "
                    f"epoch. Either way the epoch with the best validation {metric} (ties: the lower validation "
                    "loss) is kept, and its weights are the ones tested.",
    }
    with st.expander("Advanced settings"):
        cols = st.columns(3)
        for i, key in enumerate(f for f in TRAIN_FIELDS if f in fields):
            where, default = cols[i % 3], v[key]
            if key == "seeds":
                v[key] = where.number_input("Seeds", *LIMITS["seeds"], 1, **setting(f"{prefix}_seeds"))
            elif key == "budget":
                v[key] = where.number_input("Parameter budget (0 = off)", *LIMITS["budget"], 0, 1000,
                                            **setting(f"{prefix}_budget"),
                                            help="Size every model's hidden layer to about this many parameters.")
            else:
                name = _TRAIN_KEYS.get(key, key)
                v[key] = widget(where, _MODEL.get(name) or _TRAIN[name], f"{prefix}_{key}", default,
                                help=helps.get(key))
    cfg = TrainConfig(lr=float(v["lr"]), batch_size=int(v["batch"]), epochs=int(v["epochs"]),
                      patience=int(v["patience"]))
    model = {"hidden": int(v["hidden"]), "layers": int(v["layers"]), "dropout": float(v["dropout"]),
             "init": v["init"], "budget": int(v["budget"])}
    return cfg, list(range(int(v["seeds"]))), model


def train_values(prefix: str, settings: Settings) -> dict:
    """The widget values of train_settings(prefix) that give these settings' models, training and seeds."""
    model = settings.models[0] if settings.models else ModelConfig()
    t = settings.train
    return {f"{prefix}_hidden": model.hidden, f"{prefix}_layers": model.layers, f"{prefix}_dropout": model.dropout,
            f"{prefix}_init": next((m.init for m in settings.models if m.init != "auto"), "auto"),
            f"{prefix}_lr": t.lr, f"{prefix}_batch": t.batch_size, f"{prefix}_epochs": t.epochs,
            f"{prefix}_patience": t.patience, f"{prefix}_seeds": max(len(settings.seeds), 1),
            f"{prefix}_budget": settings.budget}


def build_models(task, kinds: list[str], windows: list[int], opts: dict) -> list[ModelConfig]:
    """Model configs for the chosen kinds; an init that does not apply to a kind falls back to best practice."""
    models = []
    for kind in kinds:
        init = opts["init"] if opts["init"] in MODEL_KINDS[kind].inits else "auto"
        base = ModelConfig(kind=kind, hidden=opts["hidden"], layers=opts["layers"], dropout=opts["dropout"],
                           init=init)
        models += [replace(base, window=w) for w in windows] if MODEL_KINDS[kind].windowed else [base]
    if opts.get("budget"):
        io = ModelIO.from_dataset(dataset(task))
        models = [match_params(m, io, opts["budget"]) for m in models]
    return models


def kinds_of(models) -> list[str]:
    """The model kinds among `models`, in order: the default choice of a page whose reference used them."""
    return list(dict.fromkeys(m.kind for m in models))


def kind_picker(where, label: str, key: str, default: list[str], options=tuple(MODEL_KINDS)) -> list[str]:
    """A multiselect of model kinds, named by their titles; the chosen ones wrap onto more rows when the column is
    narrow, instead of scrolling out of sight."""
    return where.multiselect(label, list(options), default=default, format_func=lambda k: MODEL_KINDS[k].title,
                             wrap=True, **setting(key))


def checked_dataset(task, fail: str = "Cannot train"):
    """The task's dataset (lib.runs.dataset, the server's one cache), or None after showing what to change
    ("{fail}: ...", in the widgets' words)."""
    try:
        return dataset(task)
    except LookbackError as err:
        st.error(f"{fail}: {hosting.shown(in_widget_words(task, str(err)))}")
        return None


def in_widget_words(task, message: str) -> str:
    """A ConfigError message about a task's form with its field names ("n_train", or "training sentences
    (n_train)") replaced by the labels of the widgets that set them."""
    for name, k in knobs(task).items():
        if name in getattr(task, "shown", ()):
            message = re.sub(rf"(?<![\w“])(?:{re.escape(k.named(name))}|{name})(?![\w”])", f"“{k.widget_label}”",
                             message)
    return message


# -- page links and restored values ------------------------------------------------------------------------

def link_value(key: str, text: str) -> tuple[str | None, str | None]:
    """A link's value for setting `key` as the page may use it (None: drop it), and a note when it changed.

    Text that reads as NaN or infinity ("inf", "1e400") is dropped for every setting: Streamlit's number
    widgets crash on it. A numeric setting (LIMITS names them; a key ends in its setting's name) also drops
    text and fractions of whole numbers, and clamps numbers to its bounds. A model-kind picker's value must name
    a kind it offers (`kind_link`). Other values pass: Streamlit ignores those its widgets would reject.
    """
    try:
        number = float(text)
    except (TypeError, ValueError):
        number = None
    if number is not None and not math.isfinite(number):
        return None, f"{key}={text} dropped (not a finite number)"
    if (kinds := next((k for end, k in KIND_LINKS.items() if key.endswith(f"_{end}")), None)) is not None:
        return kind_link(key, text, kinds)
    name = key.rsplit("_", 1)[-1]
    if name not in LIMITS:
        return text, None
    lo, hi = LIMITS[name]
    if number is None:
        return None, f"{key}={text} dropped (not a number)"
    if isinstance(lo, int) and isinstance(hi, int) and not number.is_integer():
        return None, f"{key}={text} dropped (not a whole number)"
    if not lo <= number <= hi:
        clamped = type(lo)(min(max(number, lo), hi))
        return str(clamped), f"{key}={text} set to {clamped} (the setting allows {lo} to {hi})"
    return text, None


def kind_link(key: str, text: str, kinds: list[str]) -> tuple[str | None, str | None]:
    """A kind picker's link value: the title of one of `kinds` (as the picker writes links) passes, a kind's name
    (as the CLI and bundles write kinds) becomes its title, anything else is dropped; each change with a note."""
    kind = next((k for k in kinds if text in (k, MODEL_KINDS[k].title)), None)
    if kind is not None:
        title = MODEL_KINDS[kind].title
        return title, None if text == title else f"{key}={text} read as {title}"
    offered = "the recurrent models" if kinds == RECURRENT else "the models"
    return None, (f"{key}={text} dropped (not one of {offered} here: "
                  f"{', '.join(MODEL_KINDS[k].title for k in kinds)})")


def clean_links() -> None:
    """Make this page's link parameters safe (see `link_value`) before any widget reads them, and say what
    changed, so that no link can crash a page."""
    notes = []
    for key in list(st.query_params):
        values = st.query_params.get_all(key)
        kept = []
        for text in values:
            value, note = link_value(key, text)
            notes += [note] if note else []
            kept += [value] if value is not None else []
        if kept != values:
            if kept:
                st.query_params[key] = kept if len(kept) > 1 else kept[0]
            else:
                del st.query_params[key]
    if notes and not st.session_state.pop(LINKS_CLEANED, False):
        # widgets bound to the URL take their first value from the request's query string, not from the
        # edited st.query_params: run again from the cleaned link, and say what changed there
        st.session_state[LINKS_CLEANED], st.session_state[LINK_NOTES] = True, notes
        st.rerun()
    st.session_state.pop(LINKS_CLEANED, None)
    if notes := notes or st.session_state.pop(LINK_NOTES, None):
        st.warning(f"This link's settings were adjusted: {'; '.join(notes)}.", icon=":material/link:")


def _accepts(key: str, value) -> bool:
    """Whether the widget behind `key` can show `value` (a result from the CLI may use other values)."""
    name = key.rsplit("_", 1)[-1]
    k, _ = _declared().get(name, (None, 0))
    if k is not None and k.offers:
        return value in k.offers
    if name in LIMITS and isinstance(value, int | float):
        lo, hi = LIMITS[name]
        return lo <= value <= hi
    return True


def restore(values: dict) -> None:
    """Put values into their widgets (a button callback: it runs before the widgets are drawn again)."""
    for key, value in values.items():
        if _accepts(key, value):
            st.session_state[key] = value


def parse_numbers(text: str, what: str) -> tuple[int, ...]:
    """Comma-separated whole numbers ("0, 10, 20") as a sorted tuple without repeats; ConfigError naming
    `what` (e.g. "distances") and the first part that is not a whole number, or when there is none."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"give at least one of the {what}, e.g. 0, 10, 20.")
    bad = next((p for p in parts if not re.fullmatch(r"[+-]?\d+", p)), None)
    if bad is not None:
        raise ConfigError(f"{what} must be whole numbers separated by commas, e.g. 0, 10, 20; “{bad}” is not one.")
    return tuple(sorted({int(p) for p in parts}))
