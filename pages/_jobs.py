"""This server's training engine and the visitor of this session, for the pages.

Jobs train in worker processes (lib.jobs): a page submits one, then polls its progress while the script
runs that draw the page stay free. One engine serves every session of the server; its limits and thread
plan come from lib.hosting (hosted mode when LOOKBACK_HOSTED=1).
"""
from __future__ import annotations

import secrets
import threading
import time

import streamlit as st

from lib import hosting
from lib.jobs import Engine, Job, JobRefused
from lib.store import RunStore
from lib.tasks.user import prepared
from pages._state import VISITOR

__all__ = ["Job", "JobRefused", "engine", "forget_gone_visitors", "visitor"]

SESSION_TTL_S = 6 * 3600  # an anonymous visitor's runs are kept this long after their last visit
SWEEP_EVERY_S = 600
SEEN: dict[str, float] = {}  # anonymous visitors of this server process -> when last seen; "" -> last sweep


_engines: dict[tuple[bool, int], Engine] = {}  # one per process, not a cache a "Clear cache" could drop
_engines_lock = threading.Lock()


def engine() -> Engine:
    """The engine of this server, for the mode and jobs at once that the environment sets (lib.hosting)."""
    lim = hosting.limits()
    key = (hosting.hosted(), lim.jobs)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = Engine(lim, hosting.plan(lim.jobs))
        return _engines[key]


def visitor() -> str | None:
    """Whom this session's runs belong to: None locally (everyone sees every run); on a shared host the
    signed-in user (Streamlit's viewer login), else this browser session."""
    if not hosting.hosted():
        return None
    if st.user.get("is_logged_in"):
        who = st.user.get("email") or st.user.get("sub")
        if who:
            return f"user:{who}"
    who = st.session_state.setdefault(VISITOR, f"session:{secrets.token_hex(8)}")
    SEEN[who] = time.time()
    return who


def forget_gone_visitors(store: RunStore) -> list[str]:
    """Delete the runs of anonymous visitors whose session has ended, at most every SWEEP_EVERY_S: nobody can
    reach them again. A session ends with the server process, so this process forgets every session it has
    not seen, and those not seen for SESSION_TTL_S; then the prepared user data that no stored run names and
    nobody used for as long. Returns the visitors whose runs were deleted."""
    seen, now = SEEN, time.time()
    if now - seen.get("", 0.0) < SWEEP_EVERY_S:
        return []
    seen[""] = now
    gone = [owner for owner in store.owners()
            if owner.startswith("session:") and now - seen.get(owner, 0.0) > SESSION_TTL_S]
    for owner in gone:
        mine = store.scoped(owner)
        mine.delete(mine.runs()["id"])
    runs_on_data = store.runs(task=prepared.UserDataConfig.name)["id"]
    prepared.prune(map(prepared.named_by, store.configs(runs_on_data).values()),
                   SESSION_TTL_S)  # uploads that no run kept and nobody used since
    for owner in [o for o, t in seen.items() if o and now - t > SESSION_TTL_S]:
        del seen[owner]
    return gone
