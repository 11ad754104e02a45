"""Take the README's screenshot of the browser console (docs/console.png).

A real server and the simulator, a console with eight strip charts and the whole table,
and a one-sample NZ spike so the alarm banner and a decimation envelope show. Needs what
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
from tests.browser import SimThread, browser_missing, chromium, free_port  # noqa: E402
from tests.live import server  # noqa: E402

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
    with sync_playwright() as pw, server("--http", f"127.0.0.1:{port}", "--open-role", "engineer") as srv, \
            SimThread(srv.udp_port, spikes=[Spike("NZ", args.seconds - 9, 6.8)]), \
            chromium(pw, viewport=(1600, 900)) as (ctx, page):
        ctx.add_init_script(f"localStorage.setItem('gs.layout.v1.operator', {json.dumps(json.dumps(layout))});")
        page.goto(srv.http_url + "/")
        expect(page.locator("#conn-state")).to_have_text("CONNECTED", timeout=10_000)
        time.sleep(args.seconds)
        expect(page.locator('#alarms li.alarm[data-param="NZ"]')).to_be_visible()
        page.screenshot(path=args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
