"""Property tests: whatever a user or a file can hand Lookback either works or raises the project's own error
(ConfigError and its kinds: BundleError, StoreError), never another exception and never a non-finite dataset.

Surfaces and checks live in tests/support/fuzz.py (benchmarks/fuzz.py draws more inputs and counts the
outcomes): bundle import (JSON edits, generated histories, damaged bytes, edited user data), link parameters,
command-line values, config construction, user data, and uploads (CSV, TSV, Parquet, .npz and .txt files damaged
at their structure, through load_table -> guess_spec -> build_dataset, checked against the file). Here
Hypothesis runs derandomized (the same examples every run) and keeps no database.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from lib.bundles import METRICS_SCHEMA, import_bundle
from lib.runtime import Status
from lib.store import RunStore
from tests.support.fuzz import ACCEPTED, CLEAR, SURFACES, outcome, valid_bundle

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("surface", list(SURFACES))
def test_any_input_works_or_gets_a_clear_error(surface):
    strategy, check = SURFACES[surface]

    @FUZZ
    @given(strategy)
    def probe(args):
        kind, detail = outcome(check, *args)
        assert kind in (ACCEPTED, CLEAR), f"{kind}: {detail}"

    probe()


def test_the_bundle_fuzzing_starts_from_a_bundle_that_imports(tmp_path):
    with RunStore(tmp_path / "runs.sqlite") as store:
        assert len(import_bundle(store, valid_bundle()).imported) == 1


def test_the_fuzzed_statuses_are_the_finished_ones():
    assert METRICS_SCHEMA["properties"]["status"]["enum"] == [str(s) for s in Status.finished()]
