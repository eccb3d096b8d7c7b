"""Where Lookback's files live: the run store, the prepared user data beside it, and the committed data.

Nothing else in lib/ or pages/ builds a path into data/. LOOKBACK_DB moves the run store, and the prepared user
data with it (a `userdata` folder beside the store file).
"""
from __future__ import annotations

import os
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"  # the checkout's data folder
STORE_ENV = "LOOKBACK_DB"
DEFAULT_STORE = DATA / "lookback.sqlite"
REFERENCE = DATA / "reference"  # the committed reference results (lib.reference)
EXAMPLES = DATA / "examples"  # the example uploads of the Your data page
WORD_LISTS = DATA / "text_recall.json"  # the text task's word lists


def store_path() -> Path:
    """The run store file: LOOKBACK_DB when set, else data/lookback.sqlite in the checkout."""
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


def userdata_dir() -> Path:
    """Where prepared user data are kept: a `userdata` folder beside the run store."""
    return store_path().parent / "userdata"


__all__ = ["DATA", "DEFAULT_STORE", "EXAMPLES", "REFERENCE", "STORE_ENV", "WORD_LISTS", "store_path",
           "userdata_dir"]
