"""The browser console in real Chromium (Playwright) against a real server process and the
real simulator: values update, a limit violation turns red and raises an alarm that can be
acknowledged, the console comes back after a server restart (and with `--record`, backfills
the interval it missed), a targeted alert reaches the console of its position only, a viewer
sees no command control, and a director commands the vehicle from the command panel (authority, a
non-hazardous command to COMPLETED with the data rate following it, arm then execute for a
hazardous one). Screenshots go to out/screenshots/.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import statistics
import time
from contextlib import contextmanager

import pytest

from groundstation.auth import TokenIssuer
from groundstation.simulator.flight import Spike
from tests.browser import SimThread, browser_missing, chromium, post_json, screenshot
from tests.live import SECRET, free_port, server

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


@contextmanager
def connected_console(pw, *serve: str):
    """A server (open mode) on a free port and a page whose console connected to it; yields (srv, page)."""
    with server(*http_args(free_port()), *serve) as srv, chromium(pw) as (ctx, page):
        page.goto(srv.http_url + "/")
        expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
        yield srv, page


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
        # pause freezes the charts and the table, resume brings them back to live
        page.click("#pause")
        expect(page.locator("#pause")).to_have_text("Resume")
        frozen = page.evaluate("gs.stats.draws")
        shown = value_of(page, "IAS")
        page.wait_for_timeout(500)
        assert page.evaluate("gs.stats.draws") == frozen
        assert value_of(page, "IAS") == shown
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


DECIMATE_JS = """async () => {
    const { decimate } = await import('/web/app/series.js');
    const n = 1200, t = new Float64Array(n), last = new Float64Array(n);
    for (let i = 0; i < n; i++) { t[i] = 1000 + i / 20; last[i] = Math.sin(i / 50); }
    const mn = last.slice(), mx = last.slice();
    mx[777] = 50;   // a one-interval spike up, and one down
    mn[300] = -50;
    const [dt, dmn, dmx, dlast] = decimate([t, mn, mx, last], 60 / 400, []);
    return { n: dt.length, max: Math.max(...dmx), min: Math.min(...dmn), lastT: dt[dt.length - 1],
             lastV: dlast[dlast.length - 1], increasing: dt.every((x, i) => i === 0 || x > dt[i - 1]) };
}"""


def test_a_long_window_is_drawn_one_point_per_pixel_column_and_keeps_its_spikes(pw):
    """60 s at 20 Hz is 1200 intervals for a chart 400 pixels wide: the console hands uPlot one
    point per column, and the min/max envelope still holds a spike one interval wide."""
    with server(*http_args(free_port())) as srv, chromium(pw) as (ctx, page):
        page.goto(srv.http_url + "/")
        out = page.evaluate(DECIMATE_JS)
        assert 399 <= out["n"] <= 401, out
        assert (out["max"], out["min"]) == (50, -50)
        assert out["lastT"] == 1000 + 1199 / 20 and out["increasing"], out
        assert out["lastV"] == pytest.approx(math.sin(1199 / 50))
        assert page.errors == []


def test_limit_violation_turns_red_and_raises_an_alarm_that_can_be_acknowledged(pw):
    # acknowledging needs the engineer role (a viewer sees alarms without the button)
    with connected_console(pw, "--open-role", "engineer") as (srv, page):
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
    # a director's console: the command panel's socket must come back too
    director = ("--open-role", "director")
    with chromium(pw) as (ctx, page):
        with server(*http_args(port), *director) as srv, SimThread(srv.udp_port):
            page.goto(srv.http_url + "/")
            wait_value_changes(page, "ALT")
            expect(page.locator("#cmd-link")).to_have_text("CONNECTED")
            page.evaluate("window.panelBefore = gs.commandPanel")
            url = srv.http_url
            srv.proc.kill()  # no goodbye: the socket just goes away
            srv.proc.wait(10)
            expect(page.locator("#conn-state")).to_have_text(re.compile("RETRY|RECONNECTING|CONNECTING"), timeout=10_000)
            expect(page.locator("#cmd-link")).to_have_text(re.compile("RETRY|RECONNECTING|CONNECTING"))
            expect(page.locator("#cmd-take")).to_be_disabled()
            page.wait_for_timeout(2500)  # down for a while: several attempts, growing delays
            screenshot(page, "server-down")
        down = page.evaluate("gs.stats.connection")
        delays = [s["delay"] for s in down if s["state"] == "waiting"]
        assert len(delays) >= 2 and delays[-1] > delays[0], delays  # exponential backoff
        assert page.evaluate("gs.commandPanel.channel.conn.attempt") >= 2  # the command socket backs off too
        t0 = time.monotonic()
        with server(*http_args(port), *director) as srv2, SimThread(srv2.udp_port):
            assert srv2.http_url == url
            expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=15_000)
            expect(page.locator("#cmd-link")).to_have_text("CONNECTED", timeout=15_000)
            expect(page.locator("#cmd-take")).to_be_enabled()
            assert page.evaluate("gs.commandPanel === window.panelBefore")  # the same panel, reconnected
            # resubscribed: values flow again (snapshot, then data)
            wait_value_changes(page, "ALT", timeout=15)
            expect(page.locator('#charts .chart[data-param="ALT"] canvas')).to_have_count(1)
            recovered = time.monotonic() - t0
            screenshot(page, "server-restarted")
        assert recovered < 15
        assert page.errors == []


SERIES_JS = """(name) => { const s = gs.store.series.get(name);
    return { t: Array.from(s.t.subarray(s.start, s.end)), breaks: s.breaks.slice() }; }"""


def test_console_resumes_after_a_restart_with_the_missed_interval_backfilled(pw, tmp_path):
    """A recording server restarts on the same port; the console is away a little longer than the
    server (a slow retry). Its resubscribe carries since_ns, and the chart gets what the new
    server recorded before the console was back: points all through that interval. The time no
    server ran stays a break in the line."""
    port = free_port()
    serve = (*http_args(port), "--record", str(tmp_path))
    with chromium(pw) as (ctx, page):
        with server(*serve) as srv, SimThread(srv.udp_port):
            page.goto(srv.http_url + "/")
            wait_value_changes(page, "ALT")
            page.evaluate("""async () => {
                const { BACKOFF } = await import('/web/app/connection.js');
                BACKOFF.first = BACKOFF.max = 3000;  // one retry about 3 s after the loss
                gs.store.onChange((kind) => { if (kind === 'hello') window.helloAt = Date.now() * 1e6; });
            }""")
            srv.proc.kill()
            srv.proc.wait(10)
        expect(page.locator("#conn-state")).to_have_text(re.compile("RETRY"), timeout=5_000)
        with server(*serve) as srv2, SimThread(srv2.udp_port):
            data_from = time.time_ns() + 300_000_000  # the new server's first samples
            expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=15_000)
            wait_value_changes(page, "ALT", timeout=15)
            back = page.evaluate("window.helloAt")
            assert back - data_from > 0.5e9, "the console came back before the server had recorded anything"
            # the backfill reaches the chart: 20 Hz all through the interval, the break gone
            inside = []
            for _ in range(50):
                series = page.evaluate(SERIES_JS, "ALT")
                inside = [t for t in series["t"] if data_from / 1e9 <= t <= back / 1e9 - 0.1]
                if len(inside) >= 0.8 * 20 * (back - data_from) / 1e9:
                    break
                page.wait_for_timeout(100)
            assert len(inside) >= 0.8 * 20 * (back - data_from) / 1e9, (len(inside), (back - data_from) / 1e9)
            assert max(b - a for a, b in zip(inside, inside[1:])) < 0.2  # no hole in there
            # one break is left: the time no server ran (nothing recorded), not drawn across
            page.wait_for_timeout(300)
            breaks = page.evaluate(SERIES_JS, "ALT")["breaks"]
            assert len(breaks) == 1 and breaks[0] < data_from / 1e9, (breaks, data_from / 1e9)
            page.select_option("#window", "10")
            page.wait_for_timeout(300)
            screenshot(page, "server-restarted-backfilled")
        assert page.errors == []


def test_a_targeted_alert_reaches_the_consoles_position_and_not_others(pw):
    # sending an alert needs the engineer role (the open mode's role is everyone's here)
    with connected_console(pw, "--open-role", "engineer") as (srv, page):
        page.locator("#position").fill("propulsion")
        page.locator("#position").press("Enter")  # saved for the user; the console reconnects with it
        api = srv.http_url + "/api/alert?user=eve"
        alert = {"text": "check fuel imbalance", "severity": "critical", "positions": ["propulsion"]}
        for _ in range(50):  # the registry is written a moment after the handshake
            status, reply = post_json(api, alert)
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200 and reply["delivered"] == 1, reply
        assert reply["consoles"][0]["position"] == "propulsion"
        item = page.locator("#alerts li.alert")
        expect(item).to_have_count(1)
        expect(item).to_have_attribute("data-severity", "critical")
        expect(item.locator(".alert-text")).to_have_text("check fuel imbalance")
        expect(item.locator(".alert-from")).to_have_text("from eve")
        expect(page.locator("#alarms")).to_be_hidden()  # not a limit alarm
        screenshot(page, "alert")
        # an alert to another position does not reach this console
        status, reply = post_json(api, {**alert, "text": "not for you", "positions": ["flight-controls"]})
        assert status == 404 and reply["delivered"] == 0
        page.wait_for_timeout(300)
        expect(page.locator("#alerts li.alert")).to_have_count(1)
        item.locator("button.alert-dismiss").click()
        expect(page.locator("#alerts")).to_be_hidden()
        # the position is kept for the user
        page.reload()
        expect(page.locator("#position")).to_have_value("propulsion", timeout=10_000)
        assert page.errors == []


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_an_edge_console_shows_the_lost_data_path_and_backfills_the_gap(pw, tmp_path):
    """The edge node loses Redis for a second: the console says DATA PATH LOST meanwhile; then the
    edge's `gap` breaks the chart lines, and the backfill the console asks for (read from the
    ingest node's recording, through the edge) fills the hole and the break goes."""
    from tests.cluster import redis_server

    with redis_server() as rs, \
            server("--role", "ingest", "--redis", rs.url, "--node", "ingest", "--record", str(tmp_path)) as ingest, \
            server("--role", "edge", "--redis", rs.url, "--node", "edge1", *http_args(free_port())) as edge, \
            SimThread(ingest.udp_port), chromium(pw) as (ctx, page):
        page.goto(edge.http_url + "/")
        wait_value_changes(page, "ALT")
        page.evaluate("""gs.store.onChange((kind) => {
            if (kind === 'gap') window.gapBreaks = gs.store.series.get('ALT').breaks.slice(); })""")
        bus = page.locator("#bus-state")
        expect(bus).to_be_hidden()
        page.wait_for_timeout(1000)  # steady data first
        lost_at = time.time()
        rs.kill()
        expect(bus).to_be_visible(timeout=5_000)
        expect(bus).to_have_text("DATA PATH LOST")
        screenshot(page, "edge-data-path-lost")
        page.wait_for_timeout(1000)
        rs.start()  # same port, empty
        expect(bus).to_be_hidden(timeout=10_000)
        # a gap (or two: frames lost, then the bus reconnected) breaks the lines
        page.wait_for_function("window.gapBreaks && window.gapBreaks.length >= 1", timeout=10_000)
        # the backfill fills the hole: the break goes, points all along
        page.wait_for_function("gs.store.series.get('ALT').breaks.length === 0", timeout=10_000)
        # (and frames the bus lost while it reconnected come with the catch-up backfill after it)
        for _ in range(60):
            t = [x for x in page.evaluate(SERIES_JS, "ALT")["t"] if x >= lost_at - 0.5]
            holes = [(round(a - lost_at, 3), round(b - a, 3)) for a, b in zip(t, t[1:]) if b - a >= 0.2]
            if t[-1] > lost_at + 1.5 and not holes:
                break
            page.wait_for_timeout(200)
        assert t[-1] > lost_at + 1.5 and not holes, holes
        screenshot(page, "edge-gap-backfilled")
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
        # the read-only command strip (authority, latest commands), but no command control anywhere
        expect(page.locator("#cmd-strip")).to_contain_text("authority: free")
        assert page.locator("#cmd-strip button, #cmd-strip input, #cmd-strip select").count() == 0
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


# -- the director's command panel ---------------------------------------------------------

ALT_COUNTS_JS = """(ms) => new Promise((done) => {
  const counts = [];
  const fn = (kind, m) => {
    const p = gs.store.byName.get("ALT");
    if (kind !== "data" || !p) return;
    const i = Array.prototype.indexOf.call(m.ids, p.id);
    if (i >= 0) counts.push(m.count[i]);
  };
  gs.store.onChange(fn);
  setTimeout(() => { gs.store.listeners.delete(fn); done(counts); }, ms);
})"""


def alt_samples_per_update(page, ms: int = 1200) -> float:
    """The median number of ALT samples in each data update the console gets (20 Hz)."""
    counts = page.evaluate(ALT_COUNTS_JS, ms)
    assert len(counts) >= 10, counts
    return statistics.median(counts)


def commanding_server(sim: SimThread, port: int, *extra: str, **kw):
    """The server with its uplink going to the in-test simulator."""
    return server(*http_args(port), "--uplink", f"127.0.0.1:{sim.uplink_port}", *extra, **kw)


def history_item(page, name: str):
    """The newest history entry of command ``name`` in the panel."""
    return page.locator("#cmd-history li.rec", has=page.locator(".rec-name", has_text=name)).first


def test_director_takes_authority_and_sets_the_bit_rate_to_completed(pw):
    port = free_port()
    with SimThread(uplink=True) as sim, commanding_server(sim, port, "--open-role", "director") as srv, \
            chromium(pw) as (ctx, page):
        sim.send_to(srv.udp_port)
        page.goto(srv.http_url + "/")
        panel = page.locator("#command-panel")
        expect(panel).to_be_visible(timeout=10_000)
        expect(page.locator("#cmd-link")).to_have_text("CONNECTED", timeout=10_000)
        expect(page.locator("#who")).to_have_text("operator · director")
        expect(page.locator('#table tr[data-param="BITRATE_KBPS"] td.value')).to_have_text("1000", timeout=10_000)
        before = alt_samples_per_update(page)
        # without authority nothing can be sent
        expect(page.locator("#cmd-holder")).to_contain_text("free")
        expect(page.locator("#cmd-send")).to_be_disabled()
        expect(page.locator("#cmd-hint")).to_contain_text("Take command authority")
        page.click("#cmd-take")
        expect(page.locator("#cmd-holder")).to_contain_text("you (director)")
        expect(page.locator("#cmd-take")).to_be_disabled()
        expect(page.locator("#cmd-strip")).to_contain_text("authority: operator (director)")
        # the form comes from the definitions: a number input with the range and units as hints
        page.select_option("#cmd-name", "SET_BITRATE")
        bitrate = page.locator("#cmd-arg-bitrate")
        assert (bitrate.get_attribute("type"), bitrate.get_attribute("min"), bitrate.get_attribute("max")) == \
            ("number", "10000", "20000000")
        arg = page.locator('#cmd-form .arg[data-arg="bitrate"]')
        expect(arg.locator(".arg-units")).to_have_text("b/s")
        expect(arg.locator(".arg-hint")).to_contain_text("10000..20000000 b/s")
        expect(page.locator("#cmd-arm")).to_be_hidden()
        # a reason is required; an out-of-range value is refused by the server, next to the argument
        bitrate.fill("2000000")
        page.click("#cmd-send")
        expect(page.locator("#cmd-reason-error")).to_have_text("a reason is required")
        bitrate.fill("5")
        page.fill("#cmd-reason", "too slow on purpose")
        page.click("#cmd-send")
        expect(arg.locator(".arg-error")).to_contain_text("out of range: allowed 10000..20000000 b/s")
        expect(history_item(page, "SET_BITRATE")).to_have_attribute("data-state", "REJECTED")
        expect(history_item(page, "SET_BITRATE").locator(".rec-detail")).to_contain_text("out_of_range")
        # now the real thing
        bitrate.fill("2000000")
        expect(arg.locator(".arg-error")).to_be_hidden()
        page.fill("#cmd-reason", "TP 4.2: double the frame rate")
        page.click("#cmd-send")
        rec = history_item(page, "SET_BITRATE")
        expect(rec).to_have_attribute("data-state", "COMPLETED", timeout=15_000)
        expect(rec.locator(".rec-args")).to_have_text("bitrate=2000000")
        expect(rec.locator(".rec-user")).to_have_text("operator")
        expect(rec.locator(".rec-reason")).to_contain_text("TP 4.2: double the frame rate")
        times = rec.locator(".rec-times").inner_text()
        assert re.match(r"QUEUED \d\d:\d\d:\d\d\.\d{3} · RELEASED \+.* · SENT \+.* · ACKNOWLEDGED \+.* · COMPLETED \+", times), times
        # every console's strip follows (from the telemetry socket)
        expect(page.locator("#cmd-strip .strip-rec").first).to_contain_text("COMPLETED")
        # the vehicle switched: the table shows the new bit rate, each update carries twice the samples
        expect(page.locator('#table tr[data-param="BITRATE_KBPS"] td.value')).to_have_text("2000", timeout=5_000)
        page.wait_for_timeout(300)
        after = alt_samples_per_update(page)
        assert after == pytest.approx(2 * before, rel=0.2), (before, after)
        assert sim.vehicle.bit_rate == 2_000_000
        assert [outcome for _, outcome in sim.vehicle.uplinks] == ["applied"]  # the refused one never left
        screenshot(page, "command-completed")
        assert page.errors == []


def test_hazardous_command_needs_arm_then_execute(pw):
    port = free_port()
    token = TokenIssuer(SECRET).issue("dana", "director", 600)
    with SimThread(uplink=True) as sim, commanding_server(sim, port, open_mode=False) as srv, \
            chromium(pw) as (ctx, page):
        sim.send_to(srv.udp_port)
        ctx.add_init_script(f"localStorage.setItem('gs.token', {json.dumps(token)});")
        page.goto(srv.http_url + "/")
        expect(page.locator("#cmd-link")).to_have_text("CONNECTED", timeout=10_000)  # /ws/command?token=
        expect(page.locator("#who")).to_have_text("dana · director")
        expect(page.locator('#table tr[data-param="SYSTEM"] td.value')).to_have_text("primary", timeout=10_000)
        page.click("#cmd-take")
        expect(page.locator("#cmd-holder")).to_contain_text("you (director)")
        page.select_option("#cmd-name", "SELECT_SYSTEM")
        # hazardous: no Send, only Arm; no Execute control exists before an arm
        expect(page.locator("#cmd-send")).to_be_hidden()
        expect(page.locator("#cmd-arm")).to_be_visible()
        expect(page.locator("#cmd-arms .execute")).to_have_count(0)
        assert page.locator("#cmd-arg-system option").all_inner_texts() == ["— choose —", "primary", "backup"]  # none chosen
        page.select_option("#cmd-arg-system", "backup")
        page.fill("#cmd-reason", "primary hydraulics degraded")
        page.click("#cmd-arm")
        arm = page.locator("#cmd-arms .arm-item")
        expect(arm).to_have_count(1)
        expect(arm).to_contain_text("SELECT_SYSTEM system=backup")
        countdown = arm.locator(".arm-countdown")
        expect(countdown).to_have_text(re.compile(r"expires in \d+\.\d s"))
        first = float(re.search(r"[\d.]+", countdown.inner_text()).group())
        page.wait_for_timeout(600)
        assert float(re.search(r"[\d.]+", countdown.inner_text()).group()) < first <= 10.0
        expect(page.locator("#cmd-strip .strip-armed")).to_contain_text("ARMED SELECT_SYSTEM")
        screenshot(page, "command-armed")
        # disarm: the Execute control goes with the arm, nothing was sent, no record
        arm.locator(".disarm").click()
        expect(page.locator("#cmd-arms .execute")).to_have_count(0)
        expect(page.locator("#cmd-history li.rec")).to_have_count(0)
        # arm again, then execute: the vehicle switches to the backup system (the arm cleared the
        # hazardous choice: it is chosen again)
        expect(page.locator("#cmd-arg-system")).to_have_value("")
        page.select_option("#cmd-arg-system", "backup")
        page.fill("#cmd-reason", "primary hydraulics degraded")
        page.click("#cmd-arm")
        expect(arm).to_have_count(1)
        arm.locator(".execute").click()
        rec = history_item(page, "SELECT_SYSTEM")
        expect(rec).to_have_attribute("data-state", "COMPLETED", timeout=15_000)
        expect(rec.locator(".rec-hazard")).to_be_visible()
        expect(rec.locator(".rec-user")).to_have_text("dana")
        expect(rec.locator(".rec-arm")).to_have_text(re.compile(r"arm \d+"))
        expect(page.locator("#cmd-arms .execute")).to_have_count(0)  # the arm is used up
        expect(page.locator('#table tr[data-param="SYSTEM"] td.value')).to_have_text("backup", timeout=5_000)
        assert sim.vehicle.state.system == 1
        assert [outcome for _, outcome in sim.vehicle.uplinks] == ["applied"]  # the disarmed one never left
        screenshot(page, "command-hazardous-completed")
        assert page.errors == []


def test_every_panel_shows_the_authority_holder_and_an_admin_overrides(pw):
    port = free_port()
    issuer = TokenIssuer(SECRET)
    # authority needs no telemetry: no simulator, and nothing is sent to the default uplink
    with server(*http_args(port), open_mode=False) as srv, chromium(pw) as (ctx_a, ann), chromium(pw) as (ctx_b, root):
        for ctx, page, user, role in ((ctx_a, ann, "ann", "director"), (ctx_b, root, "root", "admin")):
            ctx.add_init_script(f"localStorage.setItem('gs.token', {json.dumps(issuer.issue(user, role, 600))});")
            page.goto(srv.http_url + "/")
            expect(page.locator("#cmd-link")).to_have_text("CONNECTED", timeout=10_000)
        expect(ann.locator("#cmd-override")).to_have_count(0)  # a director has no Override
        ann.click("#cmd-take")
        expect(ann.locator("#cmd-holder")).to_contain_text("you (director)")
        # the admin's panel follows: held by ann, Take refused in advance, Override offered
        expect(root.locator("#cmd-holder")).to_contain_text("ann (director)")
        expect(root.locator("#cmd-take")).to_be_disabled()
        expect(root.locator("#cmd-send")).to_be_disabled()
        root.click("#cmd-override")
        expect(root.locator("#cmd-holder")).to_contain_text("you (admin)")
        expect(root.locator("#cmd-send")).to_be_enabled()
        expect(ann.locator("#cmd-holder")).to_contain_text("root (admin)")
        expect(ann.locator("#cmd-send")).to_be_disabled()
        expect(ann.locator("#cmd-hint")).to_contain_text("Take command authority")
        expect(ann.locator("#cmd-strip")).to_contain_text("authority: root (admin)")
        screenshot(root, "command-override")
        root.click("#cmd-release")
        expect(ann.locator("#cmd-holder")).to_contain_text("free")
        expect(ann.locator("#cmd-take")).to_be_enabled()
        assert ann.errors == [] and root.errors == []
