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
            await asyncio.sleep(4.0)
            await sim.stop()
            await c.close()
            return sim

    sim = asyncio.run(asyncio.wait_for(main(), 60))
    rec = recorder.open(tmp_path)
    assert "ALT" in rec.names and "EGT" in rec.names
    s = rec.read("ALT")
    assert len(s.t_ns) > 1500  # ~961 per second
    # the first time packet at the next whole second; the arrival-time stamps before it were late by the
    # loopback latency (ms, tens of ms on a loaded machine), a correction slewed in at 20 % (RtcCorrelator)
    lock = (sim.vehicle.t0_ns // 1_000_000_000 + 1) * 1_000_000_000 + 2_000_000_000  # (100 ms in 2 s at most)
    sel = s.t_ns > lock
    assert np.max(np.abs(s.values[sel] - sim.vehicle.truth("ALT", s.t_ns[sel]))) <= 0.51
    assert sum(1 for _ in rec.iter_packets()) > 200  # the raw packets are kept too


def test_sigkill_then_restart_resumes_into_a_new_file_of_the_same_session(tmp_path):
    """SIGKILL of `serve --record DIR` mid-recording; a restarted server goes on with the same session."""
    import json
    import signal
    import time

    async def main():
        sim = Sim(0)
        try:
            with server("--record", str(tmp_path)) as srv:
                sim.runner.target = ("127.0.0.1", srv.udp_port)
                sim.start()
                await asyncio.sleep(2.5)
                killed_ns = time.time_ns()
                srv.proc.send_signal(signal.SIGKILL)
                srv.proc.wait(10)
                assert srv.proc.returncode == -signal.SIGKILL
            with server("--record", str(tmp_path)) as srv:
                sim.runner.target = ("127.0.0.1", srv.udp_port)
                c = await Console.connect(srv.ws_url)
                await c.catalog()  # the restarted server configured itself from the stream again
                await asyncio.sleep(3.5)
                await c.close()
                restarted_ns = time.time_ns()
        finally:
            await sim.stop()
        return sim, killed_ns, restarted_ns

    sim, killed_ns, restarted_ns = asyncio.run(asyncio.wait_for(main(), 60))
    indexes = list(tmp_path.glob("*.index.json"))
    assert len(indexes) == 1  # one session
    index = json.loads(indexes[0].read_text())
    segs = index["segments"]
    # (each process first records the packets that come before the stream's TMATS under configuration 0)
    assert [s["segment"] for s in segs] == list(range(len(segs))) and len(index["resumed"]) == 1
    ends = [s["end"] for s in segs]
    assert ends.count("interrupted") == 1 and ends[-1] == "closed" and index["state"] == "closed"
    cut = ends.index("interrupted")
    assert segs[cut]["last_ns"] is not None and segs[cut]["last_ns"] < killed_ns  # recovered from the file
    assert all(s["opened_ns"] > killed_ns for s in segs[cut + 1:])
    rec = recorder.open(tmp_path)
    s = rec.read("ALT")
    before, after = s.t_ns[s.t_ns < killed_ns], s.t_ns[s.t_ns > killed_ns]
    assert len(before) > 900 and len(after) > 900  # both processes' data, read as one recording
    assert after.max() < restarted_ns
    # each process stamps from arrival times until its first time packet, then slews that correction
    # (the latency of its first datagram: 100 ms and more for a server just started) in within 2 s
    settled = (s.t_ns > before.min() + 2e9) & ((s.t_ns < after.min()) | (s.t_ns > after.min() + 2e9))
    assert settled[s.t_ns > after.min()].any()
    assert np.max(np.abs(s.values - sim.vehicle.truth("ALT", s.t_ns))[settled]) <= 0.51
    assert not [p for p in rec.report()["problems"] if "not closed" in p]
