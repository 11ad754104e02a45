#!/usr/bin/env bash
# Install everything the project needs into ./.venv (idempotent, safe to re-run).
# Usage: bash scripts/bootstrap.sh [test]
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "$extra" = "test" ]; then
  .venv/bin/python -m pip install --quiet -e '.[test]'
else
  .venv/bin/python -m pip install --quiet -e .
fi
