#!/usr/bin/env bash
# Install the project and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
sample="${1:-../shared/data/ch10/pcm.c10}"
exec .venv/bin/groundstation inspect "$sample"
