"""The strip charts in real Chromium against a real recording server and the real simulator:
history from the recording after a reload and after a rate change, UTC axis labels, the shared
cursor's readout against the recorded values, pause freezing every value shown, stale marking
when the server dies. Screenshots go to out/screenshots/.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.browser import SimThread, browser_missing, chromium, screenshot
from tests.live import free_port, server

_missing = browser_missing()
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"browser tests skipped: {_missing}")

if _missing is None:
    from playwright.sync_api import expect, sync_playwright

SPAN_JS = """(name) => { const s = gs.store.series.get(name);
    if (!s || !s.length) return null;
    return { first: s.t[s.start], last: s.t[s.end - 1], n: s.length }; }"""


@pytest.fixture(scope="module")
def pw():
    with sync_playwright() as p:
        yield p


def wait_span(page, name: str, seconds: float, timeout: float = 10.0) -> dict:
    """Wait until the chart series of ``name`` spans ``seconds``; returns the span."""
    deadline = time.monotonic() + timeout
    span = None
    while time.monotonic() < deadline:
        span = page.evaluate(SPAN_JS, name)
        if span and span["last"] - span["first"] >= seconds:
            return span
        page.wait_for_timeout(100)
    raise AssertionError(f"{name} spans {span} after {timeout} s, wanted {seconds} s")


def test_charts_are_filled_from_the_recording_after_a_reload_and_a_rate_change(pw, tmp_path):
    port = free_port()
    with server("--http", f"127.0.0.1:{port}", "--record", str(tmp_path)) as srv, SimThread(srv.udp_port), \
            chromium(pw) as (ctx, page):
        page.goto(srv.http_url + "/")
        expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
        wait_span(page, "ALT", 1.0)
        page.wait_for_timeout(8000)  # 8 s recorded
        page.reload()
        expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
        t0 = time.monotonic()
        span = wait_span(page, "ALT", 7.0, timeout=5)
        assert time.monotonic() - t0 < 5
        for name in ("IAS", "NZ", "EGT"):
            wait_span(page, name, 7.0, timeout=5)
        # no hole in the history: about 20 points a second through it
        assert span["n"] >= 0.7 * 20 * (span["last"] - span["first"]), span
        # a rate change keeps (and refills) the history, at the new rate from then on
        page.select_option("#rate", "10")
        page.wait_for_timeout(1500)
        after = wait_span(page, "ALT", 8.0, timeout=5)
        assert after["first"] <= span["first"] + 0.5, (span, after)
        assert page.evaluate("gs.history.stats.done") >= 2
        # a longer window than held: asked from the recording again
        page.select_option("#window", "300")
        page.wait_for_function("gs.history.stats.done >= 3", timeout=10_000)
        screenshot(page, "charts-history-after-reload")
        assert page.errors == []
