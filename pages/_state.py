"""What this session keeps between script runs: the result each page shows, the prepared user data, the job.

Every st.session_state key that more than one module reads is named here, with a typed accessor; a page's own
scratch keys (e.g. "runs_confirm", "mem_probes", "yd_*") carry its prefix and stay in that page.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from lib.settings import Settings

if TYPE_CHECKING:
    from lib.tasks.user.prepared import UserDataConfig
    from pages._jobs import Job

RESULTS = "results"  # slot (a page, or a part of one: "costs", "scaling", "runs_rerun") -> Shown
USER_DATA = "user_data"  # the Prepared data of this session
JOB, JOB_PAGE = "job", "job_page"  # this session's job (one per visitor), and the page that started it
RUNS_LINKED = "runs_linked"  # the ?runs= links this session wrote for the results it showed
LINKS_CLEANED, LINK_NOTES = "_links_cleaned", "_link_notes"  # pages._form.clean_links' rerun with a cleaned link
VISITOR = "_visitor"  # an anonymous visitor's id on a shared host (pages._jobs.visitor)


@dataclass(frozen=True)
class Shown:
    """The result a page shows, kept for the whole session.

    task: the task it is of (None where it has none, e.g. a scaling measurement); result: what the job returned
    (a Comparison, a sweep's summary frame, a measured frame, a Study, a rerun table); settings: those that
    produced it (for its header and Restore); cancelled: its job stopped part-way; run_ids: the stored runs it
    names (for the page's link); planned: runs or measurements planned, where fewer may have finished;
    extra: what else the page compares with its form (the scaling measurement's choice, the study's file).
    """

    task: Any
    result: Any
    settings: Settings | None = None
    cancelled: bool = False
    run_ids: tuple[str, ...] = ()
    planned: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, task, result, settings: Settings | None = None, cancelled: bool = False, **more) -> Shown:
        """A Shown whose run ids are read off the result: a Comparison's runs, or a frame's run_id column."""
        if isinstance(result, pd.DataFrame):
            ids = tuple(result["run_id"].dropna()) if "run_id" in result else ()
        else:
            ids = tuple(r.run_id for r in getattr(result, "runs", ()))
        return cls(task, result, settings, cancelled, ids, **more)


def _results() -> dict[str, Shown]:
    return st.session_state.setdefault(RESULTS, {})


def shown_on(slot: str) -> Shown | None:
    """The result kept for `slot` in this session, if any."""
    return _results().get(slot)


def show_on(slot: str, shown: Shown) -> None:
    """Keep `shown` as the result of `slot` for the rest of the session."""
    _results()[slot] = shown


@dataclass(frozen=True)
class Prepared:
    """Data prepared as a task in this session: on the Your data page, or chosen on the Runs page.

    key: what it was prepared from ((file sha, test sha, spec), or ("run", data sha)); cfg: the task config;
    file: where it came from, in words; test: the test file's name; caption: how the form describes it.
    """

    key: tuple
    cfg: UserDataConfig
    file: str
    test: str | None = None
    caption: str | None = None


def prepared_data() -> Prepared | None:
    """The user data prepared in this session, if any."""
    return st.session_state.get(USER_DATA)


def keep_prepared(data: Prepared) -> None:
    st.session_state[USER_DATA] = data


def current_job() -> Job | None:
    """This session's latest job, until its page has collected its outcome."""
    return st.session_state.get(JOB)


def job_page() -> str | None:
    """The page whose job current_job() is."""
    return st.session_state.get(JOB_PAGE)


def set_job(job: Job | None, page: str | None = None) -> None:
    """Make `job` this session's job, started by `page` (None: the job's outcome was collected)."""
    st.session_state[JOB] = job
    if page is not None:
        st.session_state[JOB_PAGE] = page
