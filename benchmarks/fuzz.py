"""Generated bad inputs against every surface a user or a file reaches: how many give a clear error, how
many crash, how many are silently accepted with a wrong result.

Surfaces: bundle import (JSON edits, generated histories, damaged bytes, edited user data), link parameters
(the value sanitiser, and real page renders in AppTest), command-line values, config construction, user data
(arrays, series, tables). Each input ends as one of:
  accepted     valid, and the result is sound (finite data, a listable and never-reused import, ...)
  clear error  refused with the project's own error (ConfigError and its kinds) and a message
  crash        any other exception, or a traceback / unexpected exit status from the CLI
  silent wrong accepted, but the result is not sound
Goal: 0 crashes and 0 silent wrong results. The strategies and checks live in tests/support/fuzz.py;
tests/test_fuzz.py runs them as property tests, and this script draws more, from a given seed, and counts.

  python benchmarks/fuzz.py --n 200 --out fuzz.json
"""
from __future__ import annotations

import time

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

from _common import emit, parser
from lib.runtime import environment
from tests.support.fuzz import ACCEPTED, CLEAR, CRASH, PAGE_SURFACE, SILENT, SURFACES, outcome


def run_surface(strategy, check, n: int, seed: int) -> dict:
    """Counts of each outcome over n generated inputs, with up to 3 examples of each failure kind."""
    counts = {ACCEPTED: 0, CLEAR: 0, CRASH: 0, SILENT: 0}
    examples: dict[str, list[str]] = {CRASH: [], SILENT: []}

    @hypothesis_seed(seed)
    @settings(max_examples=n, deadline=None, database=None, phases=["generate"],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def probe(args):
        kind, detail = outcome(check, *args)
        counts[kind] += 1
        if kind in examples and len(examples[kind]) < 3:
            examples[kind].append(f"{detail} <- {repr(args)[:200]}")

    start = time.perf_counter()
    probe()
    return {"inputs": sum(counts.values()), **counts, "seconds": round(time.perf_counter() - start, 1),
            "examples": {k: v for k, v in examples.items() if v}}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=200, help="generated inputs per surface")
    p.add_argument("--pages", type=int, default=20, help="link values rendered on real pages (AppTest, ~1 s each)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    surfaces = {name: run_surface(strategy, check, args.n, args.seed) for name, (strategy, check) in SURFACES.items()}
    if args.pages:
        surfaces["links rendered on pages"] = run_surface(*PAGE_SURFACE, args.pages, args.seed)
    totals = {k: sum(s[k] for s in surfaces.values()) for k in ("inputs", ACCEPTED, CLEAR, CRASH, SILENT)}
    emit({"seed": args.seed, "per_surface": args.n, "totals": totals, "surfaces": surfaces,
          "env": environment()}, args.out)


if __name__ == "__main__":
    main()
