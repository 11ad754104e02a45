"""EXPERIMENTS ONLY: ``groundstation serve`` with a patch applied from the outside.

    GS_BENCH_PATCH=nodelay,gcfreeze python -m benchmarks.load.serve_patched serve --open ...

The server's code is not touched; the load benchmarks use this to test a
hypothesis about a hot spot (``--server ours-nodelay`` / ``ours-gcfreeze``):

- ``nodelay``: TCP_NODELAY on every console socket. Tornado leaves Nagle's
  algorithm on for WebSocket streams unless the handler calls
  ``set_nodelay(True)``; our writer sends a tick's frames back to back.
- ``gcfreeze``: ``gc.freeze()`` once the server has started and a higher
  generation-0 threshold, so full collections do not walk the long-lived
  objects (modules, catalog, numpy arrays) and run less often under load.
"""

from __future__ import annotations

import gc
import os
import sys

from groundstation.cli import main
from groundstation.server import app

PATCHES = {p for p in os.environ.get("GS_BENCH_PATCH", "").split(",") if p}

if "nodelay" in PATCHES:
    _open = app.TelemetrySocket.open

    def _open_nodelay(self):
        self.set_nodelay(True)
        return _open(self)

    app.TelemetrySocket.open = _open_nodelay

if "gcfreeze" in PATCHES:
    _start = app.start_station

    async def _start_frozen(*a, **kw):
        running = await _start(*a, **kw)
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        return running

    app.start_station = _start_frozen
    import groundstation.run as _run

    _run.start_station = _start_frozen

if __name__ == "__main__":
    sys.exit(main())
