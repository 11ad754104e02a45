#!/usr/bin/env bash
# The live load benchmarks of issue 3 (outside the test suite; see docs/benchmarks.md).
# Usage: bash benchmarks/load/run.sh [OUTDIR]     (about 5 minutes on 2 cores; 127.0.0.1 only)
# Uses .venv/bin/python if present (bash scripts/bootstrap.sh test), else python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-/tmp/gs-load}"
mkdir -p "$out"
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
"$py" -m benchmarks.load.ingest --bitrates 10e6 20e6 --duration 10 --json "$out/ingest.json"
"$py" -m benchmarks.load.latency --consoles 100 --bitrate 10e6 --duration 10 --runs 3 --json "$out/latency.json"
"$py" -m benchmarks.load.capacity --servers ours naive --bitrate 1e6 --max 2000 --json "$out/capacity.json"
echo "figures in $out/*.json"
