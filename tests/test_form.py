"""pages._form: the settings form's helpers that need no running page."""
import pytest

from lib.errors import ConfigError
from pages._form import parse_numbers


def test_distances_are_parsed_or_refused_in_words():
    assert parse_numbers("0, 10,20, 10", "distances") == (0, 10, 20)
    with pytest.raises(ConfigError) as err:
        parse_numbers("0, ten", "distances")
    assert str(err.value) == "distances must be whole numbers separated by commas, e.g. 0, 10, 20; “ten” is not one."
    with pytest.raises(ConfigError, match="give at least one of the distances"):
        parse_numbers(" , ", "distances")
