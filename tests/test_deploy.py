"""Deployable as is: a fresh copy of the repository serves the app in hosted mode, and every distribution the
app's code imports is declared in requirements.txt."""
import json
import os
import re
import time
from pathlib import Path

from lib import hosting
from tests.support.browser import free_port, healthy

ROOT = Path(__file__).resolve().parents[1]
# Run in a fresh copy of the repository: every page in hosted mode, then, as JSON on the last line, the
# distributions providing the modules that the app's own code imports at module level and that got loaded.
# A page's error box in hosted mode hides the exception: its traceback, as Streamlit logs it, goes in the report.
_RENDER_ALL = """
import ast, importlib.metadata, json, logging, pathlib, sys
from streamlit.testing.v1 import AppTest
tracebacks = []
class Keep(logging.Handler):
    def emit(self, record):
        tracebacks.append(self.format(record))
logging.getLogger("streamlit.error_util").addHandler(Keep())
at = AppTest.from_file("app.py", default_timeout=120).run()
errors = [e.value for e in at.exception]
for page in ("compare", "window", "memory", "costs", "probe", "your_data", "runs"):
    at.switch_page(f"pages/{page}.py").run()
    errors += [f"{page}: {e.value}" for e in at.exception]
ours = set()
for path in [pathlib.Path("app.py"), *pathlib.Path("lib").rglob("*.py"), *pathlib.Path("pages").rglob("*.py")]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            ours |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            ours.add(node.module.split(".")[0])
loaded = {m.split(".")[0] for m in list(sys.modules)}
dists = importlib.metadata.packages_distributions()
used = sorted({d for m in ours & loaded - set(sys.stdlib_module_names) for d in dists.get(m, [])})
print(json.dumps({"errors": errors, "tracebacks": tracebacks, "used": used}))
"""


def _requirement_names(path: Path) -> set[str]:
    """Distribution names required by a requirements file (its -r includes followed), lower case."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            names |= _requirement_names(path.parent / line[2:].strip())
        elif line and not line.startswith("-"):
            names.add(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _closure(names: set[str]) -> set[str]:
    """The names with every distribution they require, transitively (as installed here)."""
    import importlib.metadata as md
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo += [re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requires
                 if "extra ==" not in r]
    return seen


def test_the_app_starts_in_hosted_mode_from_a_fresh_copy(tmp_path):
    """A fresh copy of the repository (the files git tracks or would, none of this checkout's data or caches)
    serves the app with LOOKBACK_HOSTED=1, every page renders, and every distribution the app's code imports
    is declared in requirements.txt (or required by one that is)."""
    import shutil
    import subprocess
    import sys

    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    copy = tmp_path / "lookback"
    for name in files:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    assert not (copy / "data" / "lookback.sqlite").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKBACK_", "STREAMLIT_"))}
    env |= {hosting.HOSTED_ENV: "1", "LOOKBACK_DB": str(tmp_path / "fresh.sqlite"), "PYTHONPATH": str(copy)}

    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port",
                               str(free_port()), "--server.address", "127.0.0.1"],
                              cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in server.stdout:
            if match := re.search(r"URL: (http://127\.0\.0\.1:\d+)", line):
                url = match.group(1)
                break
        assert url is not None, "the server exited before it served the app"
        deadline = time.monotonic() + 60
        while not healthy(url):
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(30)

    out = subprocess.run([sys.executable, "-c", _RENDER_ALL], cwd=copy, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = next((json.loads(line) for line in reversed(out.stdout.splitlines()) if line.startswith('{"errors"')),
                  None)
    assert report is not None, f"no report in the output:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    assert report["errors"] == [], "\n\n".join([*report["errors"], *report["tracebacks"]]) or out.stderr[-3000:]
    declared = _closure(_requirement_names(copy / "requirements.txt"))
    missing = [d for d in report["used"] if d.lower().replace("_", "-") not in declared
               and d.lower() != "lookback"]
    assert missing == [], f"loaded by the app but not declared in requirements.txt: {missing}"
