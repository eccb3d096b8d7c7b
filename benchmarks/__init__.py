"""Benchmark scripts, run as `python benchmarks/NAME.py`; see each script's docstring."""
