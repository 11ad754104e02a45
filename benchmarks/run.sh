#!/usr/bin/env bash
# Run the benchmarks (outside the test suite). Usage: bash benchmarks/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
exec .venv/bin/python -m pytest benchmarks -p no:cacheprovider --benchmark-only \
  --benchmark-columns=median,min,max,rounds --benchmark-sort=name -q "$@"
