"""`serve --record`: the live server records what it decodes; analysts read it back."""

from __future__ import annotations

import asyncio

import numpy as np

import recorder
from tests.live import Console, Sim, server


def test_serve_records_what_consoles_see(tmp_path):
    async def main():
        with server("--record", str(tmp_path)) as srv:
            sim = Sim(srv.udp_port).start()
            c = await Console.connect(srv.ws_url)
            await c.catalog()
            await asyncio.sleep(2.5)
            await sim.stop()
            await c.close()
            return sim

    sim = asyncio.run(asyncio.wait_for(main(), 60))
    rec = recorder.open(tmp_path)
    assert "ALT" in rec.names and "EGT" in rec.names
    s = rec.read("ALT")
    assert len(s.t_ns) > 1500  # ~961 per second
    lock = (sim.vehicle.t0_ns // 1_000_000_000 + 1) * 1_000_000_000 + 100_000_000
    sel = s.t_ns > lock
    assert np.max(np.abs(s.values[sel] - sim.vehicle.truth("ALT", s.t_ns[sel]))) <= 0.51
    assert sum(1 for _ in rec.iter_packets()) > 200  # the raw packets are kept too
