"""AppTests of the newer kinds on the pages: Compare's modern-baselines preset, Memory's attention maps, and the
Costs page's scaling with sequence length over every kind."""
from lib import costs, reference
from lib.models import MODEL_KINDS
from tests.test_pages import _compared, _store, app, figures, one  # noqa: F401 (the fixture gives each test its store)


def test_compare_presets_pick_the_modern_baselines_and_back():
    at = app("compare")
    essay = [m.kind for m in reference.STORY_MODELS]
    assert at.multiselect(key="w_cmp_kinds").value == list(dict.fromkeys(essay))  # the default stays the essay's
    at.button(key="cmp_preset_baselines").click().run()
    assert at.multiselect(key="w_cmp_kinds").value == [m.kind for m in reference.MODERN_MODELS]
    at.button(key="cmp_preset_four").click().run()
    assert at.multiselect(key="w_cmp_kinds").value == list(dict.fromkeys(essay))
    assert not at.exception and not at.error


def test_memory_draws_attention_per_head_for_an_attention_model():
    attention = [k for k, kind in MODEL_KINDS.items() if kind.memory == "attention"]
    at = _compared(kinds=[*attention, reference.STORY_MODELS[-1].kind])
    at.switch_page("pages/memory.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Attention along the probe input" in [s.value for s in at.subheader]
    spec = one(figures(at), next(m for m in at.selectbox if m.key == "w_mem_attn_model").value)
    assert [t["type"] for t in spec["data"]] == ["heatmap"] * 2  # 1 layer x 2 heads by default
    assert "dashed: the decisive input" in spec["layout"]["title"]["text"]


def test_costs_scaling_with_sequence_length_offers_every_kind():
    at = app("costs")
    at.radio(key="w_cost_what").set_value("seq_len").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="w_cost_seq_kinds").value == list(MODEL_KINDS)
    assert "1000, 2000" in " ".join(c.value for c in at.caption)
    assert max(costs.LENGTH_VALUES) == 2000  # where attention's T² has parted from the linear kinds
