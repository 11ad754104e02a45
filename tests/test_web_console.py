"""The browser console in real Chromium (Playwright) against a real server process and the
real simulator: values update, a limit violation turns red and raises an alarm that can be
acknowledged, the console comes back after a server restart, a viewer sees no command
control. Screenshots go to out/screenshots/.
"""

from __future__ import annotations

import re
import time

import pytest

from groundstation.auth import TokenIssuer
from groundstation.simulator.flight import Spike
from tests.browser import SimThread, browser_missing, chromium, free_port, screenshot
from tests.live import SECRET, server

_missing = browser_missing()
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"browser tests skipped: {_missing}")

if _missing is None:
    from playwright.sync_api import expect, sync_playwright


@pytest.fixture(scope="module")
def pw():
    with sync_playwright() as p:
        yield p


def value_of(page, name: str) -> str:
    return page.locator(f'#table tr[data-param="{name}"] td.value').inner_text()


def wait_value_changes(page, name: str, timeout: float = 10.0) -> tuple[str, str]:
    """Wait until the table shows a value for ``name`` and then a different one."""
    cell = page.locator(f'#table tr[data-param="{name}"] td.value')
    expect(cell).not_to_have_text("—", timeout=timeout * 1000)
    first = cell.inner_text()
    expect(cell).not_to_have_text(first, timeout=timeout * 1000)
    return first, cell.inner_text()


def http_args(port: int) -> tuple[str, ...]:
    # A fixed port (not 0): the server's default Origin allowlist is built from --http, and the
    # restart test needs the same port again.
    return ("--http", f"127.0.0.1:{port}")


def test_values_update_charts_draw_and_the_layout_is_kept(pw):
    port = free_port()
    with server(*http_args(port)) as srv, SimThread(srv.udp_port), chromium(pw) as (ctx, page):
        page.goto(srv.http_url + "/")
        expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
        expect(page.locator("#link-state")).to_have_text("LINK OK", timeout=10_000)
        before, after = wait_value_changes(page, "ALT")
        assert re.fullmatch(r"-?\d+(\.\d+)?", after), after
        wait_value_changes(page, "IAS")
        assert page.locator('#table tr[data-param="ALT"] td.units').inner_text() == "ft"
        # the default charts draw (uPlot canvases) and keep drawing
        for name in ("ALT", "IAS", "NZ", "EGT"):
            expect(page.locator(f'#charts .chart[data-param="{name}"] canvas')).to_have_count(1)
        draws = page.evaluate("gs.stats.draws")
        page.wait_for_timeout(1000)
        assert page.evaluate("gs.stats.draws") - draws >= 20, "charts redraw at the data rate"
        assert page.evaluate("gs.store.gaps") == 0
        # live data: no REPLAY indicator (hello.source.replay is false); the indicator itself shows
        # as soon as the source says replay
        expect(page.locator("#replay")).to_be_hidden()
        page.evaluate("gs.store.source = {replay: true}; gs.store.dirty.status = true")
        expect(page.locator("#replay")).to_have_text("REPLAY")
        expect(page.locator("#replay")).to_be_visible()
        page.evaluate("gs.store.source = {replay: false}; gs.store.dirty.status = true")
        # pause freezes the charts (the table goes on), resume brings them back to live
        page.click("#pause")
        expect(page.locator("#pause")).to_have_text("Resume")
        frozen = page.evaluate("gs.stats.draws")
        page.wait_for_timeout(500)
        assert page.evaluate("gs.stats.draws") == frozen
        wait_value_changes(page, "ALT")
        page.click("#pause")
        page.wait_for_timeout(500)
        assert page.evaluate("gs.stats.draws") > frozen
        # the parameter browser: search, then chart MACH; window 30 s; the layout survives a reload
        page.fill("#browser input.search", "mach")
        expect(page.locator('#browser .param[data-param="ALT"]')).to_be_hidden()
        page.click('#browser .param[data-param="MACH"] button.to-chart')
        expect(page.locator('#charts .chart[data-param="MACH"] canvas')).to_have_count(1)
        page.select_option("#window", "30")
        page.click('#table tr[data-param="FAULT"] button.row-remove')
        expect(page.locator('#table tr[data-param="FAULT"]')).to_have_count(0)
        screenshot(page, "values")
        page.reload()
        expect(page.locator('#charts .chart[data-param="MACH"] canvas')).to_have_count(1, timeout=10_000)
        expect(page.locator("#window")).to_have_value("30")
        expect(page.locator('#table tr[data-param="FAULT"]')).to_have_count(0)
        wait_value_changes(page, "MACH")
        assert page.errors == []


def test_limit_violation_turns_red_and_raises_an_alarm_that_can_be_acknowledged(pw):
    port = free_port()
    # acknowledging needs the engineer role (a viewer sees alarms without the button)
    with server(*http_args(port), "--open-role", "engineer") as srv, chromium(pw) as (ctx, page):
        page.goto(srv.http_url + "/")
        expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
        # NZ: critical above 6 g. One sample of 9 g, 2.5 s into the flight.
        with SimThread(srv.udp_port, spikes=[Spike("NZ", 2.5, 9.0)]):
            wait_value_changes(page, "NZ")
            nz = page.locator('#table tr[data-param="NZ"] td.value')
            expect(nz).to_have_class(re.compile(r"\blim-crit\b"), timeout=10_000)
            alarm = page.locator('#alarms li.alarm[data-param="NZ"]')
            expect(alarm).to_be_visible()
            expect(alarm.locator(".sev")).to_have_text("CRITICAL")
            expect(alarm).to_contain_text("9.0")
            screenshot(page, "alarm-raised")
            # back in limits at once, but the alarm stays until acknowledged
            expect(alarm).to_contain_text("back in limits, not acknowledged", timeout=5_000)
            expect(nz).not_to_have_class(re.compile(r"\blim-crit\b"), timeout=5_000)
            page.wait_for_timeout(1500)
            expect(alarm).to_be_visible()
            alarm.locator("button.ack").click()
            expect(alarm).to_have_count(0, timeout=5_000)
            expect(page.locator("#alarms")).to_be_hidden()
            screenshot(page, "alarm-acknowledged")
        assert page.errors == []


def test_console_recovers_after_a_server_restart(pw):
    port = free_port()
    with chromium(pw) as (ctx, page):
        with server(*http_args(port)) as srv, SimThread(srv.udp_port):
            page.goto(srv.http_url + "/")
            wait_value_changes(page, "ALT")
            url = srv.http_url
            srv.proc.kill()  # no goodbye: the socket just goes away
            srv.proc.wait(10)
            expect(page.locator("#conn-state")).to_have_text(re.compile("RETRY|RECONNECTING|CONNECTING"), timeout=10_000)
            page.wait_for_timeout(2500)  # down for a while: several attempts, growing delays
            screenshot(page, "server-down")
        down = page.evaluate("gs.stats.connection")
        delays = [s["delay"] for s in down if s["state"] == "waiting"]
        assert len(delays) >= 2 and delays[-1] > delays[0], delays  # exponential backoff
        t0 = time.monotonic()
        with server(*http_args(port)) as srv2, SimThread(srv2.udp_port):
            assert srv2.http_url == url
            expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=15_000)
            # resubscribed: values flow again (snapshot, then data)
            wait_value_changes(page, "ALT", timeout=15)
            expect(page.locator('#charts .chart[data-param="ALT"] canvas')).to_have_count(1)
            recovered = time.monotonic() - t0
            screenshot(page, "server-restarted")
        assert recovered < 15
        assert page.errors == []


def test_viewer_signs_in_with_a_token_and_sees_no_command_controls(pw):
    port = free_port()
    viewer = TokenIssuer(SECRET).issue("vera", "viewer", 600)
    sim = {"spikes": [Spike("NZ", 1.0, 9.0)]}
    with server(*http_args(port), open_mode=False) as srv, SimThread(srv.udp_port, **sim), chromium(pw) as (ctx, page):
        page.goto(srv.http_url + "/")
        # no token: the server refuses the console, the sign-in dialog says so
        expect(page.locator("#signin")).to_be_visible(timeout=10_000)
        expect(page.locator("#signin .signin-reason")).to_contain_text("refused")
        page.fill("#token", "not-a-token")
        page.click("#signin button[type=submit]")
        expect(page.locator("#signin")).to_be_visible(timeout=10_000)
        page.fill("#token", viewer)
        page.click("#signin button[type=submit]")
        expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
        expect(page.locator("#who")).to_have_text("vera · viewer")
        wait_value_changes(page, "ALT")
        # the viewer sees the alarm, but may not acknowledge it
        expect(page.locator('#alarms li.alarm[data-param="NZ"]')).to_be_visible(timeout=10_000)
        expect(page.locator("#alarms button.ack")).to_have_count(0)
        # no command control anywhere on the page
        for sel in ("#command-panel", "[data-command]", ".command", ".command-panel", "form.command"):
            assert page.locator(sel).count() == 0, sel
        labels = " ".join(page.locator("button, [role=button], input[type=submit]").all_inner_texts())
        assert not re.search(r"authority|execute|\barm\b|uplink|command|send", labels, re.I), labels
        screenshot(page, "viewer")
        # the token was kept: a reload connects without the dialog
        page.reload()
        expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
        expect(page.locator("#signin")).to_be_hidden()
        assert page.errors == []
