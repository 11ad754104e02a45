#!/usr/bin/env bash
# The load benchmarks' own setup (not the project's bootstrap): the node `ws` peer's
# dependencies, exactly as locked (npm ci), and matplotlib for the curves (the `bench` extra).
# Usage: bash benchmarks/load/setup.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
(cd benchmarks/load/naive_ws_node && npm ci --no-audit --no-fund --loglevel=error)
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
"$py" -c "import matplotlib" 2>/dev/null || "$py" -m pip install --quiet -e '.[bench]'
