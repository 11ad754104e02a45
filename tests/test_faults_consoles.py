"""Slow, dead and half-open consoles: the server conflates and closes them, stays bounded, and a
fast console beside them keeps every message (the timing figures: benchmarks/slow_consoles.py)."""

from __future__ import annotations

import asyncio
import time

from benchmarks.slow_consoles import health, run, stalled_console
from tests.live import Console, server


def test_fifty_stalled_consoles_are_conflated_then_closed_and_the_fast_one_loses_nothing():
    r = asyncio.run(asyncio.wait_for(run(stalled=50, baseline_s=1.0, stalled_s=5.0), 90))
    print(f"\n{r}")
    assert r["slow_closes"] == 50 and r["frames_conflated"] > 0  # conflated, then closed with 4008
    assert r["consoles_open_end"] == 1  # only the fast console is left
    assert r["baseline_seq_gaps"] == 0 and r["stalled_seq_gaps"] == 0  # the fast console lost nothing
    assert r["stalled_p50_ms"] == r["stalled_p50_ms"]  # it got data while the others were stalled (not NaN)
    assert r["rss_peak_mb"] - r["rss_before_mb"] < 300  # bounded: ~1 MB per stalled console at most


def test_half_open_connections_are_found_by_the_ping_timeout():
    """A peer that vanished (never answers a WebSocket ping) is closed and detached within the ping
    interval plus timeout; a live client beside it, which answers pings, stays."""
    async def main():
        with server("--ping-interval", "0.5", "--ping-timeout", "0.5") as srv:
            live = await Console.connect(srv.ws_url)
            dead = [stalled_console(srv.http_port) for _ in range(3)]
            t0 = time.monotonic()
            assert health(srv)["consoles"] == 4
            while health(srv)["consoles"] > 1 and time.monotonic() - t0 < 10:
                await asyncio.sleep(0.1)
            found = time.monotonic() - t0
            print(f"\nhalf-open consoles detached after {found:.2f} s (ping every 0.5 s, timeout 0.5 s)")
            assert health(srv)["consoles"] == 1
            await live.send({"type": "ping", "id": 7})
            assert (await live.until(lambda m: m["type"] == "pong"))["id"] == 7  # the live one is still served
            for s in dead:
                s.close()
            await live.close()

    asyncio.run(asyncio.wait_for(main(), 60))
