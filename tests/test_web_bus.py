"""One console, PCM and bus parameters side by side, and the bus monitor panel (real Chromium)."""

from __future__ import annotations

import pytest

from groundstation.simulator.buses import VEHICLE_ICD_FILE
from tests.browser import SimThread, browser_missing, chromium, screenshot
from tests.live import free_port, server

_missing = browser_missing()
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"browser tests skipped: {_missing}")

if _missing is None:
    from playwright.sync_api import expect, sync_playwright



def test_pcm_and_bus_parameters_side_by_side_and_the_bus_monitor():
    port = free_port()
    with sync_playwright() as pw, server("--http", f"127.0.0.1:{port}", "--params", str(VEHICLE_ICD_FILE)) as srv, \
            SimThread(srv.udp_port, bit_rate=250_000), chromium(pw, viewport=(1600, 1100)) as (ctx, page):
        page.goto(srv.http_url + "/")
        expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
        page.wait_for_timeout(500)
        shown = page.locator("#table tr[data-param]").evaluate_all("rs => rs.map(r => r.dataset.param)")
        for name in ("NAV_LAT", "NAV_GS"):
            if name not in shown:
                page.fill("#browser input.search", name)
                page.click(f'#browser .param[data-param="{name}"] button.to-table')
        for name in ("ADC_CAS", "NAV_HDG"):
            page.fill("#browser input.search", name)
            page.click(f'#browser .param[data-param="{name}"] button.to-chart')
        page.fill("#browser input.search", "")
        page.wait_for_timeout(1000)
        shown = page.locator("#table tr[data-param]").evaluate_all("rs => rs.map(r => r.dataset.param)")
        assert {"ADC_PALT", "NAV_LAT", "ALT"} <= set(shown), shown
        for name in ("ADC_PALT", "NAV_LAT", "ALT"):  # PCM, 1553 and ARINC-429 values in one table
            expect(page.locator(f'#table tr[data-param="{name}"] td.value')).not_to_have_text("—", timeout=10_000)
        for name in ("ADC_CAS", "NAV_HDG"):  # and in strip charts beside the PCM ones
            expect(page.locator(f'#charts .chart[data-param="{name}"] canvas')).to_have_count(1)
        for name in ("NZ", "EGT"):  # room for the bus charts beside ALT and IAS in the picture
            page.locator(f'#charts .chart[data-param="{name}"] button').last.click()
        page.locator('#table tr[data-param="ADC_PALT"]').scroll_into_view_if_needed()
        page.click("#busmon summary")
        expect(page.locator("#busmon tbody tr").first).to_be_visible(timeout=5_000)
        rows = page.locator("#busmon tbody tr").all_inner_texts()
        assert any("1553 RT1 T SA1" in r for r in rows) and any("429 bus 0 label 310" in r for r in rows), rows
        page.wait_for_timeout(1500)
        screenshot(page, "console-bus")  # beside the test's artifacts; docs/console-bus.png is kept by hand
        assert not page.errors, page.errors
