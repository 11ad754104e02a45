#!/usr/bin/env bash
# Install the project and run the demo: the vehicle simulator and the ground station in one
# process on this machine (no broker, no tokens). Extra arguments go to `groundstation demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/groundstation demo "$@"
