"""Resume with backfill, end to end: a recording server, a console that drops out for ~2 s and comes back."""

from __future__ import annotations

import asyncio

import numpy as np

from tests.live import Console, Sim, server

RATE = 10
PERIOD = 1_000_000_000 // RATE


def test_reconnecting_console_gets_the_missed_interval_then_live_without_a_gap(tmp_path):
    async def main():
        with server("--record", str(tmp_path)) as srv:
            sim = Sim(srv.udp_port).start()
            try:
                c = await Console.connect(srv.ws_url)
                ids = await c.catalog()
                alt = ids["ALT"]
                await c.subscribe(RATE, names=["ALT", "EGT"])
                await c.until(lambda m: m["type"] == "data" and alt in m["ids"])
                seen = [m for m in await c.collect(1.0) if m["type"] == "data" and alt in m["ids"]]
                since = max(int(m["last_t"][list(m["ids"]).index(alt)]) for m in seen)
                await c.close()
                await asyncio.sleep(2.0)  # the console is away; the vehicle flies on

                c = await Console.connect(srv.ws_url)
                cat = c.hello["catalog"]["params"]
                alt_rate = next(p["rate"] for p in cat if p["name"] == "ALT")
                await c.send({"type": "subscribe", "id": 1, "rate": RATE, "names": ["ALT", "EGT"],
                              "since_ns": since})
                parts, live = [], []
                done = None
                while done is None or len(live) < 5:
                    m = await c.recv(10)
                    if m["type"] == "backfill":
                        assert done is None  # all parts come before backfill_done
                        parts.append(m)
                    elif m["type"] == "backfill_done":
                        done = m
                    elif m["type"] == "data" and alt in m["ids"]:
                        live.append(m)
                    assert m["type"] != "error", m
                await c.close()
            finally:
                await sim.stop()
            return sim, since, alt, alt_rate, parts, done, live

    sim, since, alt, alt_rate, parts, done, live = asyncio.run(asyncio.wait_for(main(), 60))
    assert done["id"] == 1 and done["since_ns"] == since and done["from_ns"] == since and not done["clipped"]
    assert done["parts"] == len(parts) >= 1
    rows = {k: np.concatenate([p[k] for p in parts]) for k in ("t", "ids", "min", "max", "last", "count", "last_t")}
    a = rows["ids"] == alt
    t, last, last_t, count = rows["t"][a], rows["last"][a], rows["last_t"][a], rows["count"][a]
    # the whole missed interval, bucket after bucket, at the subscription's rate
    assert len(t) >= 20 and np.all(np.diff(t) == PERIOD)
    assert since < t[0] and t[0] - PERIOD <= since + 1.5e9 / alt_rate  # from the first sample after since_ns on
    assert np.all(last_t > since) and np.all(last_t <= t)
    # values are the vehicle's own (decoded, recorded, read back)
    assert np.max(np.abs(last - sim.vehicle.truth("ALT", last_t))) <= 0.51
    assert np.all(rows["min"][a] <= last) and np.all(last <= rows["max"][a])
    assert np.all(np.abs(count[1:-1] - alt_rate / RATE) <= 1)  # every sample of each whole 100 ms bucket
    # then live, with no gap: the first live frame's samples start at or before the backfill's end
    first = live[0]
    j = list(first["ids"]).index(alt)
    first_sample = int(first["last_t"][j]) - (int(first["count"][j]) - 1) * 1e9 / alt_rate
    assert first_sample <= done["to_ns"] + 1.5e9 / alt_rate
    assert int(first["last_t"][j]) > done["to_ns"] - PERIOD
