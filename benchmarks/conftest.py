"""Benchmarks run outside the test suite: `bash benchmarks/run.sh` (see docs/benchmarks.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

_RESULTS: dict[str, dict] = {}


def record(name: str, **figures) -> None:
    _RESULTS[name] = figures


def pytest_terminal_summary(terminalreporter):
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("throughput (median of rounds)")
    for name, f in _RESULTS.items():
        tr.write_line(f"{name:55s} " + "  ".join(f"{k}={v}" for k, v in f.items()))
