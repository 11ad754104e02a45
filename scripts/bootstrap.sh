#!/usr/bin/env bash
# Install everything the project needs into ./.venv (idempotent, safe to re-run).
# Usage: bash scripts/bootstrap.sh [test]
#   always: the Python package; the browser console's npm dependencies, built into web/vendor/
#   test:   also the test extras (pytest, Playwright for Python) and Debian's chromium for the
#           browser tests (Playwright drives the system Chromium; no browser is downloaded)
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

# The web console: uPlot and @msgpack/msgpack from npm, copied into web/vendor/ (nothing is
# fetched from the internet when the console runs).
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  (
    cd web
    if [ -f package-lock.json ]; then
      npm ci --no-audit --no-fund --loglevel=error
    else
      npm install --no-audit --no-fund --loglevel=error
    fi
    npm run --silent build
  )
else
  echo "bootstrap: node/npm not found: the web console's libraries are not built (web/vendor/)" >&2
fi

# The browser tests drive Debian's chromium through Playwright (executable_path=/usr/bin/chromium);
# the recorder tests read files with h5dump (Debian's hdf5-tools); the scale-out tests start their
# own redis-server (Debian's redis-server) on a free port.
if [ "$extra" = "test" ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/h5dump ] || ! command -v redis-server >/dev/null; }; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium fonts-dejavu-core hdf5-tools redis-server >/dev/null
  else
    echo "bootstrap: chromium, h5dump or redis-server is missing and cannot be installed here (needs root and apt-get);" \
         "the tests that need them will be skipped" >&2
  fi
fi
