"""Shared bits for the benchmark scripts: argument parsing and JSON output.

The scripts import `lib`, so the project must be installed (`pip install -e .`; requirements-dev.txt does it).
Run as `python benchmarks/NAME.py`, a script finds its siblings (this module) first on sys.path; importing this
module puts the repository root after them, so that the scripts can import `tests.support` and `pages` too. Each
script imports `_common` before those.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    return p


def emit(result: dict, out: Path | None) -> None:
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
