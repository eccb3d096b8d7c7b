"""AppTest of the Literature page: every claim is a row with published and our numbers and a computed verdict,
and a row's Rerun button runs it again as a job whose result is judged the same way."""
from streamlit.testing.v1 import AppTest

from lib import literature
from tests.test_pages import APP, _store, click_and_wait  # noqa: F401 (the fixture gives each test its store)


def _literature() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("pages/literature.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_literature_lists_every_claim_with_a_verdict_and_hides_none():
    at = _literature()
    assert [t.value for t in at.title] == ["Literature"]
    table = at.dataframe[0].value
    assert len(table) == len(literature.CLAIMS)
    assert table["ours"].ne("—").all()
    assert table["verdict"].str.match(r"^(reproduced|not reproduced — )").all()
    counts = literature.counts(literature.table(literature.load()))
    assert f"**{counts['not reproduced']}** not reproduced" in " ".join(m.value for m in at.markdown)
    assert len([b for b in at.button if b.key and b.key.startswith("lit_rerun_")]) == len(literature.CLAIMS)


def test_a_row_reruns_as_a_job_and_is_judged_again():
    at = _literature()
    click_and_wait(at, "lit_rerun_copy_nothing")
    assert "Rerun here" in [s.value for s in at.subheader]
    rerun = at.dataframe[-1].value
    assert list(rerun["claim"]) == [literature.CLAIM_KEYS["copy_nothing"].claim]
    assert rerun["verdict"].iloc[0] == "reproduced"
