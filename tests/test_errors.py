from lib.bundles import BundleError
from lib.errors import ConfigError, LookbackError
from lib.jobs import JobRefused
from lib.store import StoreError


def test_bad_values_are_value_errors_and_every_refusal_a_lookback_error():
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, LookbackError)
    assert issubclass(BundleError, ConfigError)  # a bad bundle is a bad input


def test_store_faults_and_a_full_queue_are_not_bad_values():
    for cls in (StoreError, JobRefused):
        assert issubclass(cls, LookbackError) and not issubclass(cls, ValueError)
