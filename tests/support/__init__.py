"""Helpers shared by the tests and the benchmark scripts: never collected as tests themselves.

browser.py     Chromium, the app's server and page helpers (the browser tests and benchmarks)
fuzz.py        the fuzzing strategies and checks (tests/test_fuzz.py and benchmarks/fuzz.py)
user_files.py  small files in each upload layout (the tests of lib/tasks/user/)
"""
