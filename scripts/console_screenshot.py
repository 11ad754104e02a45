"""Take the README's screenshot of the browser console (docs/console.png).

A real server and the simulator with the uplink wired between them, a director's console
with eight strip charts, the whole table and the command panel (authority taken, a bit-rate
change and a test point completed, a hazardous SELECT_SYSTEM armed and counting down), and a
one-sample NZ spike so the alarm banner and a decimation envelope show. Needs what
``bash scripts/bootstrap.sh test`` installs (Playwright, Debian's chromium, web/vendor/).

    .venv/bin/python scripts/console_screenshot.py [--out docs/console.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from groundstation.simulator.flight import Spike, vehicle_parameters  # noqa: E402
from tests.browser import SimThread, browser_missing, chromium  # noqa: E402
from tests.live import free_port, server  # noqa: E402

CHARTS = ["ALT", "IAS", "AOA", "NZ", "PITCH_RATE", "EGT", "N1", "VIB"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "console.png"))
    ap.add_argument("--seconds", type=float, default=24.0, help="how long the charts fill before the shot")
    args = ap.parse_args()
    missing = browser_missing()
    if missing:
        print(f"console_screenshot: {missing}", file=sys.stderr)
        return 2
    from playwright.sync_api import expect, sync_playwright

    layout = {"table": [p.name for p in vehicle_parameters()], "charts": CHARTS, "rate": 20, "window": 30}
    port = free_port()
    with sync_playwright() as pw, SimThread(uplink=True, spikes=[Spike("NZ", args.seconds - 9, 6.8)]) as sim, \
            server("--http", f"127.0.0.1:{port}", "--uplink", f"127.0.0.1:{sim.uplink_port}",
                   "--open-role", "director") as srv, \
            chromium(pw, viewport=(1920, 1080)) as (ctx, page):
        sim.send_to(srv.udp_port)
        ctx.add_init_script(f"localStorage.setItem('gs.layout.v1.operator', {json.dumps(json.dumps(layout))});")
        t0 = time.monotonic()
        page.goto(srv.http_url + "/")
        expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
        expect(page.locator("#cmd-link")).to_have_text("CONNECTED", timeout=10_000)
        page.wait_for_timeout(1000)  # telemetry (the echo words) flowing
        page.click("#cmd-take")
        expect(page.locator("#cmd-holder")).to_contain_text("you")

        def command(name: str, reason: str, **values: str) -> None:
            page.select_option("#cmd-name", name)
            for arg, value in values.items():
                field = page.locator(f"#cmd-arg-{arg}")
                if field.evaluate("e => e.tagName") == "SELECT":
                    field.select_option(value)
                else:
                    field.fill(value)
            page.fill("#cmd-reason", reason)
            page.click("#cmd-arm" if page.locator("#cmd-arm").is_visible() else "#cmd-send")

        def completed(name: str) -> None:
            rec = page.locator("#cmd-history li.rec", has=page.locator(".rec-name", has_text=name)).first
            expect(rec).to_have_attribute("data-state", "COMPLETED", timeout=15_000)

        command("SET_BITRATE", "TP 4.2: double the frame rate", bitrate="2000000")
        completed("SET_BITRATE")
        time.sleep(max(0.0, args.seconds - 4 - (time.monotonic() - t0)))
        command("MARK_TEST_POINT", "TP 12 start", test_point="12")
        completed("MARK_TEST_POINT")
        command("SELECT_SYSTEM", "backup hydraulics check", system="backup")
        expect(page.locator("#cmd-arms .arm-item .execute")).to_be_visible()
        time.sleep(max(0.0, args.seconds - (time.monotonic() - t0)))
        expect(page.locator('#alarms li.alarm[data-param="NZ"]')).to_be_visible()
        page.screenshot(path=args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
