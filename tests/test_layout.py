import ast
import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lib_modules_imports():
    """(path, module or module.name named by an import) for every import in lib/, lazy ones too."""
    for path in (ROOT / "lib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):  # `from lib import store` names lib.store too
                names = [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                names = []
            yield from ((path, n) for n in names)


def test_lib_never_imports_streamlit():
    offenders = [f"{p.relative_to(ROOT)}: {n}" for p, n in _lib_modules_imports() if n.split(".")[0] == "streamlit"]
    assert offenders == []


def test_lib_is_checked_at_all():
    assert len(list((ROOT / "lib").rglob("*.py"))) >= 8


def _streamlit_imports(path: Path) -> list[str]:
    return [n for node in ast.walk(ast.parse(path.read_text())) for n in (
        [a.name for a in node.names] if isinstance(node, ast.Import)
        else [node.module or ""] if isinstance(node, ast.ImportFrom) else []) if n.startswith("streamlit.")]


def test_pages_and_app_use_only_public_streamlit():
    """Streamlit's internals are touched in one place: pages/__init__.py."""
    scripts = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
    offenders = {str(p.relative_to(ROOT)): _streamlit_imports(p) for p in scripts if p.name != "__init__.py"}
    assert {p: names for p, names in offenders.items() if names} == {}
    assert len(offenders) >= 8


def test_streamlit_still_runs_a_pages_folder_script_alone(tmp_path):
    """Why pages/__init__.py switches Streamlit's legacy pages/ handling off. When this fails, a Streamlit
    upgrade no longer runs a pages/ script without the entrypoint (or renamed the flag): delete that file."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
    from streamlit.testing.v1 import AppTest

    (tmp_path / "pages").mkdir()
    (tmp_path / "app.py").write_text('import streamlit as st\nst.title("entrypoint")\n')
    (tmp_path / "pages" / "other.py").write_text('import streamlit as st\nst.title("other")\n')
    at = AppTest.from_file(str(tmp_path / "app.py")).run()
    at.switch_page("pages/other.py").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["other"]  # the page ran alone: no entrypoint title
    assert PagesManager.uses_pages_directory is True  # the flag pages/__init__.py turns off
    assert "PagesManager.uses_pages_directory" in inspect.getsource(ScriptRunner)  # still read per run


def test_pages_charts_and_stats_take_model_kinds_from_the_registry():
    from lib.models import MODEL_KINDS

    files = [ROOT / "app.py", ROOT / "lib" / "charts.py", ROOT / "lib" / "stats.py", *(ROOT / "pages").glob("*.py")]
    spelled = [f"{p.relative_to(ROOT)}:{node.lineno}: {node.value!r}" for p in files
               for node in ast.walk(ast.parse(p.read_text()))
               if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in MODEL_KINDS]
    assert spelled == []


def _lib_imports() -> dict[str, set[str]]:
    """lib module -> the modules it imports (at any depth of its code, lazy imports too), by dotted name."""
    graph = {}
    for path in (ROOT / "lib").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = found
    return {name: {m for m in found if m in graph and m != name} for name, found in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each once, as the list of modules along it (a depth-first search)."""
    cycles, done = [], set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name):]
            if frozenset(cycle) not in done:
                done.add(frozenset(cycle))
                cycles.append(cycle + [name])
            return
        for nxt in sorted(graph[name]):
            visit(nxt, [*path, name])

    for name in sorted(graph):
        visit(name, [])
    return cycles


def test_lib_has_no_import_circle():
    """A package above a module (lib, lib.tasks) is left out: importing it from below is no circle of code."""
    graph = {name: {m for m in deps if not name.startswith(f"{m}.")} for name, deps in _lib_imports().items()}
    assert _cycles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert _cycles({"lib.a": {"lib.b"}, "lib.b": {"lib.c"}, "lib.c": {"lib.a"}}) == [["lib.a", "lib.b", "lib.c",
                                                                                     "lib.a"]]


def test_lib_never_imports_upward():
    """lib is the bottom layer: it imports neither pages, app nor benchmarks; and its tasks never the run store."""
    offenders = [f"{p.relative_to(ROOT)}: {n}" for p, n in _lib_modules_imports()
                 if n.split(".")[0] in ("pages", "app", "benchmarks", "tests")
                 or n == "lib.store" and p.is_relative_to(ROOT / "lib" / "tasks")]
    assert offenders == []
