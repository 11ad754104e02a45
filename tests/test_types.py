"""mypy in the suite: the packages type-check (pyproject.toml's [tool.mypy]: default mode everywhere, strict on
``telemetry_formats``, ``groundstation.console`` and ``groundstation.commanding``).

Not every module is clean yet: ``tests/mypy_baseline.json`` holds the error count each such file had when the
check came in. The test fails when a file has more errors than its baseline (a new file: more than none), so the
count only goes down. After fixing errors, lower the baseline with ``python -m tests.test_types --update``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = Path(__file__).with_name("mypy_baseline.json")
PACKAGES = ["telemetry_formats", "groundstation", "recorder"]
_ERROR = re.compile(r"^(?P<path>[^:\s]+\.py):\d+: error:", re.M)


def mypy_errors() -> tuple[Counter[str], str]:
    """Errors per file (posix paths relative to the repo) and mypy's whole output."""
    out = subprocess.run([sys.executable, "-m", "mypy", *PACKAGES], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    text = out.stdout + out.stderr
    if out.returncode not in (0, 1) or ("error:" not in text and out.returncode == 1):
        raise RuntimeError(f"mypy did not run: {text[-2000:]}")
    return Counter(m["path"] for m in _ERROR.finditer(text)), text


def test_mypy_no_new_errors() -> None:
    errors, text = mypy_errors()
    baseline: dict[str, int] = json.loads(BASELINE.read_text())
    worse = {f: (n, baseline.get(f, 0)) for f, n in errors.items() if n > baseline.get(f, 0)}
    if worse:
        lines = [ln for ln in text.splitlines() if any(ln.startswith(f + ":") for f in worse)]
        detail = "\n".join(f"  {f}: {n} errors (baseline {b})" for f, (n, b) in sorted(worse.items()))
        raise AssertionError(f"mypy: more errors than the baseline\n{detail}\n" + "\n".join(lines[:60]))


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        found, _ = mypy_errors()
        BASELINE.write_text(json.dumps(dict(sorted(found.items())), indent=1) + "\n")
        print(f"{sum(found.values())} errors in {len(found)} files written to {BASELINE}")
    else:
        sys.exit("usage: python -m tests.test_types --update")
