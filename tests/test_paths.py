"""Where Lookback's files live (lib/paths.py)."""
from lib import paths


def test_the_prepared_user_data_move_with_the_run_store(tmp_path, monkeypatch):
    monkeypatch.delenv("LOOKBACK_DB", raising=False)
    assert paths.store_path() == paths.DATA / "lookback.sqlite"
    assert paths.userdata_dir() == paths.DATA / "userdata"
    monkeypatch.setenv("LOOKBACK_DB", str(tmp_path / "elsewhere" / "runs.sqlite"))
    assert paths.store_path() == tmp_path / "elsewhere" / "runs.sqlite"
    assert paths.userdata_dir() == tmp_path / "elsewhere" / "userdata"


def test_the_committed_data_are_where_paths_say():
    assert (paths.REFERENCE / "meta.json").is_file() and paths.WORD_LISTS.is_file()
    assert any(paths.EXAMPLES.glob("*.csv"))
