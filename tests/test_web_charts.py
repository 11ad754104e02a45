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


AXIS_JS = """(name) => { const ax = gs.charts.charts.get(name).u.axes[0];
    return { splits: ax._splits.slice(), values: ax._values.slice() }; }"""


def test_time_axes_are_utc_24_hour_with_the_day_of_year(pw):
    # a browser far from UTC: the axes still read UTC
    with server("--http", f"127.0.0.1:{free_port()}") as srv, SimThread(srv.udp_port), \
            chromium(pw, timezone_id="America/Los_Angeles") as (ctx, page):
        assert page.evaluate("new Date().getTimezoneOffset()") != 0
        page.goto(srv.http_url + "/")
        wait_span(page, "ALT", 3.0)
        page.wait_for_timeout(500)
        ax = page.evaluate(AXIS_JS, "ALT")
        assert len(ax["values"]) >= 2, ax
        first, *rest = ax["values"]
        assert re.fullmatch(r"\d{3} \d{2}:\d{2}:\d{2}(\.\d)?", first), ax
        for t, label in zip(ax["splits"], ax["values"]):
            utc = time.strftime("%H:%M:%S", time.gmtime(t))
            assert label.endswith(utc) or label.endswith(utc + label[-2:]), (t, label, utc)
            assert "am" not in label.lower() and "pm" not in label.lower()
        doy = time.gmtime(ax["splits"][0]).tm_yday
        assert first.startswith(f"{doy:03d} ")
        assert page.errors == []


def test_values_turn_stale_within_2_s_of_the_server_dying_and_pause_freezes_them(pw):
    with chromium(pw) as (ctx, page):
        with server("--http", f"127.0.0.1:{free_port()}") as srv, SimThread(srv.udp_port):
            page.goto(srv.http_url + "/")
            expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
            wait_span(page, "ALT", 2.0)
            row = page.locator('#table tr[data-param="ALT"]')
            expect(row).not_to_have_class(re.compile("stale"), timeout=3000)
            # pause: table, chart header and chart all stop
            page.click("#pause")
            page.wait_for_timeout(300)
            frozen = (row.locator("td.value").inner_text(), row.locator("td.time").inner_text(),
                      page.locator('.chart[data-param="ALT"] .chart-value').inner_text(),
                      page.evaluate("gs.charts.charts.get('ALT').u.data[0].at(-1)"))
            page.wait_for_timeout(1500)
            assert (row.locator("td.value").inner_text(), row.locator("td.time").inner_text(),
                    page.locator('.chart[data-param="ALT"] .chart-value').inner_text(),
                    page.evaluate("gs.charts.charts.get('ALT').u.data[0].at(-1)")) == frozen
            page.click("#pause")
            expect(row.locator("td.value")).not_to_have_text(frozen[0], timeout=3000)
            srv.proc.kill()
            killed = time.monotonic()
            srv.proc.wait(10)
            expect(row).to_have_class(re.compile("stale"), timeout=2000)
            expect(page.locator('.chart[data-param="ALT"]')).to_have_class(re.compile("stale"), timeout=2000)
            assert time.monotonic() - killed < 2.5
            expect(page.locator('.chart[data-param="ALT"] .chart-stale')).to_have_text(re.compile(r"stale \d"))
            expect(row.locator("td.time")).to_have_text(re.compile(r"stale \d"))
            screenshot(page, "charts-stale-after-server-died")
        assert page.errors == []


def test_a_parameter_that_stops_updating_is_stale_and_a_silent_connection_turns_amber(pw):
    with server("--http", f"127.0.0.1:{free_port()}") as srv, chromium(pw) as (ctx, page):
        with SimThread(srv.udp_port):
            page.goto(srv.http_url + "/")
            wait_span(page, "ALT", 1.0)
            row = page.locator('#table tr[data-param="ALT"]')
            expect(row).not_to_have_class(re.compile("stale"), timeout=3000)
        # the simulator stops: the values stop updating (the link goes after its own timeout)
        expect(row).to_have_class(re.compile("stale"), timeout=3000)
        # a silent connection: nothing comes in (the socket's messages are swallowed), pings unanswered
        page.evaluate("gs.conn.ws.onmessage = () => {}")
        expect(page.locator("#conn-state")).to_have_text(re.compile("NO REPLY"), timeout=2500)
        assert "warn" in page.locator("#conn-state").get_attribute("class")
        assert page.errors == []
