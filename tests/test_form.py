"""pages._form: the settings form's helpers that need no running page."""
import pytest

from lib.errors import ConfigError
from lib.models import MODEL_KINDS
from pages._form import RECURRENT, link_value, parse_numbers


def test_distances_are_parsed_or_refused_in_words():
    assert parse_numbers("0, 10,20, 10", "distances") == (0, 10, 20)
    with pytest.raises(ConfigError) as err:
        parse_numbers("0, ten", "distances")
    assert str(err.value) == "distances must be whole numbers separated by commas, e.g. 0, 10, 20; “ten” is not one."
    with pytest.raises(ConfigError, match="give at least one of the distances"):
        parse_numbers(" , ", "distances")


def test_a_model_kind_in_a_link_must_be_one_the_picker_offers():
    assert link_value("w_cmp_kinds", "LSTM") == ("LSTM", None)  # a title, as the picker writes links
    assert link_value("w_cmp_kinds", "gru") == ("GRU", "w_cmp_kinds=gru read as GRU")  # a name, as the CLI writes
    kinds = ", ".join(kind.title for kind in MODEL_KINDS.values())
    assert link_value("w_mem_kinds", "bogus") == (None, f"w_mem_kinds=bogus dropped (not one of the models here: "
                                                        f"{kinds})")
    recurrent = ", ".join(MODEL_KINDS[k].title for k in RECURRENT)
    for key in ("w_cost_scale_kinds", "w_win_refs"):  # pickers of recurrent models only
        assert link_value(key, "ffnn") == (None, f"{key}=ffnn dropped (not one of the recurrent models here: "
                                                 f"{recurrent})")
