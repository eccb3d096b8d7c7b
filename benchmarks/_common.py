"""Shared bits for the benchmark scripts: argument parsing and JSON output."""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    return p


def emit(result: dict, out: Path | None) -> None:
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
