import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lib_never_imports_streamlit():
    offenders = []
    for path in (ROOT / "lib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert offenders == []


def test_lib_is_checked_at_all():
    assert len(list((ROOT / "lib").rglob("*.py"))) >= 8
