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
            expect(row.locator("td.min")).to_have_text("stale")
            expect(row.locator("td.max")).to_have_text(re.compile(r"^\d+(\.\d)? (ms|s|min)$"))
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


READOUT_CHECK_JS = """(name) => { const c = gs.charts.charts.get(name); const u = c.u; const i = u.cursor.idx;
    const s = gs.store.series.get(name); const t = u.data[0][i];
    const k = s.indexAt(t);  // the point of the series (live or recorded) at that time
    return { readout: c.readoutEl.textContent, t, seriesT: s.t[k], seriesLast: s.last[k], shown: u.data[3][i] }; }"""


def test_a_shared_cursor_reads_every_chart_and_a_zoom_applies_to_all(pw, tmp_path):
    with server("--http", f"127.0.0.1:{free_port()}", "--record", str(tmp_path)) as srv, SimThread(srv.udp_port), \
            chromium(pw) as (ctx, page):
        page.goto(srv.http_url + "/")
        wait_span(page, "ALT", 4.0)
        page.click("#pause")  # a still picture to read
        box = page.locator('.chart[data-param="ALT"] .u-over').bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
        page.wait_for_timeout(200)
        times = set()
        for name in ("ALT", "IAS", "NZ"):
            r = page.evaluate(READOUT_CHECK_JS, name)
            assert r["readout"], r
            hhmmss, value = r["readout"].split()
            assert r["seriesT"] == r["t"] and r["shown"] == r["seriesLast"], r
            assert hhmmss == time.strftime("%H:%M:%S", time.gmtime(r["t"])) + f"{r['t'] % 1:.2f}"[1:] or \
                hhmmss[:8] == time.strftime("%H:%M:%S", time.gmtime(r["t"])), (hhmmss, r)
            assert float(value) == pytest.approx(r["seriesLast"], rel=1e-3, abs=1e-3), (value, r)
            times.add(round(r["t"], 1))
        assert len(times) == 1, times  # one time under the cursor on every chart
        # a drag on one chart zooms every chart to the same range; "back to live" undoes it
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 20)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 20, steps=5)
        page.mouse.up()
        page.wait_for_timeout(300)
        ranges = page.evaluate("[...gs.charts.charts.values()].map((c) => [c.u.scales.x.min, c.u.scales.x.max])")
        assert all(r == ranges[0] for r in ranges) and gs_view(page) is not None, ranges
        assert ranges[0][1] - ranges[0][0] < 0.5 * 60
        expect(page.locator("#live")).to_be_visible()
        screenshot(page, "charts-cursor-zoomed")
        page.click("#live")
        assert gs_view(page) is None
        expect(page.locator("#live")).to_be_hidden()
        assert page.errors == []


def gs_view(page):
    return page.evaluate("gs.charts.view")


def test_counters_show_as_integers_and_enumerations_by_name(pw):
    with server("--http", f"127.0.0.1:{free_port()}") as srv, SimThread(srv.udp_port), chromium(pw) as (ctx, page):
        page.goto(srv.http_url + "/")
        cell = page.locator('#table tr[data-param="SYSTEM"] td.value')
        expect(cell).to_have_text("primary", timeout=10_000)
        expect(page.locator('#table tr[data-param="CMD_COUNT"] td.value')).to_have_text(re.compile(r"^\d+$"))
        expect(page.locator('#table tr[data-param="BITRATE_KBPS"] td.value')).to_have_text("1000")
        assert re.fullmatch(r"-?\d+\.\d+", page.locator('#table tr[data-param="NZ"] td.value').inner_text())
        # the Min/Max headings say over what interval (20 Hz: 50 ms)
        expect(page.locator("#table th.c-min")).to_have_text(re.compile(r"^Min\s*50 ms$"))
        # an enumeration charted: its header shows the name
        page.locator('#browser .param[data-param="SYSTEM"] button.to-chart').click()
        expect(page.locator('.chart[data-param="SYSTEM"] .chart-value')).to_have_text("primary", timeout=5000)
        assert page.errors == []


def test_a_large_change_asks_for_confirmation_with_old_and_new_in_readable_units(pw):
    from tests.test_web_console import commanding_server

    with SimThread(uplink=True) as sim, commanding_server(sim, free_port(), "--open-role", "director") as srv, \
            chromium(pw) as (ctx, page):
        sim.send_to(srv.udp_port)
        page.goto(srv.http_url + "/")
        expect(page.locator('#table tr[data-param="BITRATE_KBPS"] td.value')).to_have_text("1000", timeout=10_000)
        page.click("#cmd-take")
        expect(page.locator("#cmd-holder")).to_contain_text("you (director)")
        page.select_option("#cmd-name", "SET_BITRATE")
        page.fill("#cmd-arg-bitrate", "20000000")  # 1 Mb/s -> 20 Mb/s: a factor of 20
        page.fill("#cmd-reason", "TP 5.1")
        page.click("#cmd-send")
        box = page.locator("#cmd-confirm")
        expect(box).to_be_visible()
        expect(box.locator(".from")).to_have_text("1,000,000 b/s (1 Mb/s)")
        expect(box.locator(".to")).to_have_text("20,000,000 b/s (20 Mb/s)")
        expect(box).to_contain_text("×20")
        screenshot(page, "command-large-change-confirm")
        page.click("#cmd-confirm-no")  # cancelled: nothing sent
        expect(box).to_have_count(0)
        assert page.locator("#cmd-history li.rec").count() == 0
        # a small change goes without asking
        page.fill("#cmd-arg-bitrate", "2000000")
        page.fill("#cmd-reason", "TP 5.1")
        page.click("#cmd-send")
        expect(page.locator("#cmd-history li.rec")).to_have_count(1, timeout=5000)
        expect(page.locator("#cmd-confirm")).to_have_count(0)
        assert page.errors == []
