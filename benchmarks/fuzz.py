"""Generated bad inputs against every surface a user or a file reaches: how many give a clear error, how
many crash, how many are silently accepted with a wrong result.

Surfaces: bundle import (JSON edits, generated histories, damaged bytes, edited user data), link parameters
(the value sanitiser, and real page renders in AppTest), command-line values, config construction, user data
(arrays, series, tables), and uploads: CSV, TSV, Parquet, .npz and .txt files, valid and damaged at their
structure (zip and .npy headers, deflate streams, huge cells, encodings, NUL bytes, decimal commas), each taken
through load_table -> guess_spec -> build_dataset; for those the stages reached are counted too. Each input ends
as one of:
  accepted     valid, and the result is sound (finite data, a listable and never-reused import, ...)
  clear error  refused with the project's own error (ConfigError and its kinds) and a message
  crash        any other exception, or a traceback / unexpected exit status from the CLI
  silent wrong accepted, but the result is not sound (for uploads: the dataset's sizes, shapes or classes do not
               match the file, or a class name holds control characters)
Goal: 0 crashes and 0 silent wrong results. The strategies and checks live in tests/support/fuzz.py;
tests/test_fuzz.py runs them as property tests, and this script draws more, from a given seed, and counts.

  python benchmarks/fuzz.py --n 200 --out fuzz.json
  python benchmarks/fuzz.py --only uploads --n 400 --pages 0 --out fuzz_uploads.json   # 2,000 upload files
"""
from __future__ import annotations

import time

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

from _common import emit, parser
from lib.runtime import environment
from tests.support.fuzz import (
    ACCEPTED,
    BUILD,
    CLEAR,
    CRASH,
    PAGE_SURFACE,
    READ,
    SILENT,
    SPEC,
    SURFACES,
    check_upload,
    outcome,
)


def run_surface(strategy, check, n: int, seed: int) -> dict:
    """Counts of each outcome over n generated inputs, with up to 3 examples of each failure kind; for uploads,
    how many reached each stage (read, spec, build)."""
    counts = {ACCEPTED: 0, CLEAR: 0, CRASH: 0, SILENT: 0}
    stages = {READ: 0, SPEC: 0, BUILD: 0}
    examples: dict[str, list[str]] = {CRASH: [], SILENT: []}

    @hypothesis_seed(seed)
    @settings(max_examples=n, deadline=None, database=None, phases=["generate"],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def probe(args):
        reached: list[str] = []
        kind, detail = outcome(check, *args, *([reached] if check is check_upload else []))
        counts[kind] += 1
        for stage in reached:
            stages[stage] += 1
        if kind in examples and len(examples[kind]) < 3:
            examples[kind].append(f"{detail} <- {repr(args)[:200]}")

    start = time.perf_counter()
    probe()
    return {"inputs": sum(counts.values()), **counts, **({"reached": stages} if check is check_upload else {}),
            "seconds": round(time.perf_counter() - start, 1), "examples": {k: v for k, v in examples.items() if v}}


def table(surfaces: dict) -> str:
    """The per-surface counts as text: inputs, the share reaching each stage (uploads), clear errors, crashes."""
    lines = [f"{'surface':32} {'inputs':>6} {'read':>6} {'spec':>6} {'build':>6} {'clear':>6} {'crash':>6} "
             f"{'silent':>6}"]
    for name, s in surfaces.items():
        shares = [f"{s['reached'][k] / max(s['inputs'], 1):6.0%}" if "reached" in s else f"{'-':>6}"
                  for k in (READ, SPEC, BUILD)]
        lines.append(f"{name:32} {s['inputs']:6} {' '.join(shares)} {s[CLEAR]:6} {s[CRASH]:6} {s[SILENT]:6}")
    return "\n".join(lines)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=200, help="generated inputs per surface")
    p.add_argument("--pages", type=int, default=20, help="link values rendered on real pages (AppTest, ~1 s each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="", help="run only the surfaces whose name holds this text, e.g. uploads")
    args = p.parse_args()
    torch.set_num_threads(1)
    surfaces = {name: run_surface(strategy, check, args.n, args.seed) for name, (strategy, check) in SURFACES.items()
                if args.only in name}
    if args.pages:
        surfaces["links rendered on pages"] = run_surface(*PAGE_SURFACE, args.pages, args.seed)
    totals = {k: sum(s[k] for s in surfaces.values()) for k in ("inputs", ACCEPTED, CLEAR, CRASH, SILENT)}
    emit({"seed": args.seed, "per_surface": args.n, "totals": totals, "surfaces": surfaces,
          "env": environment()}, args.out)
    print(table(surfaces))


if __name__ == "__main__":
    main()
