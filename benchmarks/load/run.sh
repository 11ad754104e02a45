#!/usr/bin/env bash
# The live load benchmarks of issues 3 and 8 (outside the test suite; see docs/benchmarks.md).
# Usage: bash benchmarks/load/run.sh [OUTDIR]   (about 90 min on 2 cores; 127.0.0.1 only)
# Servers run from a snapshot of the last commit (--server-tree HEAD), so uncommitted edits
# in the tree do not move the figures. Each step takes /tmp/gs-bench.lock, so runs of other
# people's benchmarks on the same machine never overlap with one of ours.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-/tmp/gs-load}"
mkdir -p "$out"
bash benchmarks/load/setup.sh            # npm ci for the node ws peer; matplotlib (the bench extra)
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
run() { flock /tmp/gs-bench.lock "$py" -m "$@" --server-tree HEAD; }
run benchmarks.load.ingest --bitrates 10e6 20e6 --duration 10 --json "$out/ingest.json"
run benchmarks.load.latency --consoles 100 --bitrate 10e6 --duration 10 --runs 3 --loadgen-procs 2 --json "$out/latency.json"
steps="400 800 1200 1600 2000 2400 2800 3200"
for i in 1 2 3; do
  run benchmarks.load.capacity --servers ours naive naive-node ours-record --steps $steps --bitrate 1e6 \
    --loadgen-procs 2 --quiet-below 40 --json "$out/capacity$i.json"
done
if command -v redis-server >/dev/null; then  # the scale-out: one process vs 1 ingest + 2 edges, recording
  for i in 1 2 3; do
    run benchmarks.load.capacity --servers ours-record cluster-record --steps 1400 1600 1800 2000 2200 2400 2600 2800 \
      --bitrate 20e6 --loadgen-procs 2 --quiet-below 40 --json "$out/scaleout$i.json"
  done
fi
for br in 1e6 5e6 10e6 20e6; do
  run benchmarks.load.curves bitrate --servers ours naive naive-node --consoles 100 --bitrates "$br" --runs 3 \
    --json "$out/bitrate-$br.json"
done
for k in 1 4 9 27; do
  run benchmarks.load.curves params --consoles 200 --bitrate 10e6 --params "$k" --runs 3 --json "$out/params-$k.json"
done
"$py" -m benchmarks.load.plots --capacity "$out"/capacity?.json --bitrate "$out"/bitrate-*.json \
  --params "$out"/params-*.json --out docs/bench
echo "figures in $out/*.json, plots in docs/bench/"
