"""Shared bits for the benchmark scripts: argument parsing and JSON output.

The scripts import `lib`, so the project must be installed (`pip install -e .`; requirements-dev.txt does it).
"""
import argparse
import json
from pathlib import Path


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
