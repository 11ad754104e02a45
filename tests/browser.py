"""Helpers for the browser tests and the web benchmark: the system Chromium under Playwright,
the real simulator on a thread (Playwright's sync API owns the test's thread), free ports.

No browser is ever downloaded: Playwright launches Debian's ``/usr/bin/chromium``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.live import Sim

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "out" / "screenshots"
VENDOR = ROOT / "web" / "vendor"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (bash scripts/bootstrap.sh test installs Debian's chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -e '.[test]')"
    if not (VENDOR / "uPlot.esm.js").is_file():
        return "web/vendor/ is not built (node/npm missing? bash scripts/bootstrap.sh runs npm ci && npm run build)"
    return None


@contextmanager
def chromium(playwright, viewport=(1600, 1000), **context_kw):
    """A fresh Chromium (its own user-data-dir) and one page; yields (context, page). ``context_kw``
    go to Playwright's context (``timezone_id="America/Los_Angeles"``, ...)."""
    profile = tempfile.mkdtemp(prefix="gs-chromium-")
    ctx = playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        viewport={"width": viewport[0], "height": viewport[1]}, **context_kw)
    ctx.profile_dir = profile
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        yield ctx, page
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)


class SimThread:
    """``tests.live.Sim`` (the real simulator, real UDP) on its own event loop thread.

    ``SimThread(port)`` sends to ``port`` at once. ``SimThread(uplink=True)`` first listens
    for uplink commands on a free port (``uplink_port``, for the server's ``--uplink``) and
    starts sending when ``send_to(port)`` is called, once the server is up.
    """

    def __init__(self, port: int | None = None, *, uplink: bool = False, **vehicle_kw) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="simulator", daemon=True)
        self.thread.start()
        self.uplink_port = None

        async def start():
            sim = Sim(port if port is not None else 0, **vehicle_kw)
            if uplink:
                self.uplink_port = await sim.runner.listen_uplink("127.0.0.1", 0)
            return sim.start() if port is not None else sim

        self.sim = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def send_to(self, port: int) -> None:
        """Start sending telemetry to ``port`` (for ``SimThread(uplink=True)``)."""

        async def start():
            self.sim.runner.target = ("127.0.0.1", port)
            self.sim.start()

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    @property
    def vehicle(self):
        return self.sim.vehicle

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(30)  # (a loaded machine)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def __enter__(self) -> "SimThread":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def post_json(url: str, body: dict) -> tuple[int, dict]:
    """POST ``body`` as JSON; returns (status, the JSON reply), error statuses included."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
