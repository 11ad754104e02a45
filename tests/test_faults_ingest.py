"""Hostile bytes at the ingest: 100k malformed, truncated, mutated and random datagrams, the damaged
real recording bad.c10, and a bounded UDP flood on loopback.

Properties: nothing raises or hangs; every bad datagram is counted with a reason;
the good datagrams around them decode exactly as in a clean run.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import socket
import time
import urllib.request

import numpy as np
import pytest

from groundstation.ingest.core import Ingest
from groundstation.simulator.vehicle import Vehicle
from telemetry_formats.ch10.packet import Packet
from telemetry_formats.ch10.reader import iter_packets
from tests.live import Console, Sim, server

T0 = 1_763_000_000_000_000_000
HOSTILE = 100_000
FLOOD_MAX = 1_000_000


def vehicle_stream(seconds: float, step_s: float = 0.01) -> list[bytes]:
    v = Vehicle(start_ns=T0)
    out: list[bytes] = []
    for i in range(1, int(seconds / step_s) + 1):
        out += v.advance(T0 + int(i * step_s * 1e9))
    return out


def has_tmats(datagram: bytes) -> bool:
    return b"TMATS" in datagram or b"P-1\\" in datagram or b"G\\" in datagram


class Hostile:
    """Seeded hostile datagrams: each ``kind`` a different way of being wrong. Copies are made of
    the good datagrams already sent (``upto``): see test_a_damaged_copy_of_the_next_datagram_...."""

    KINDS = ("random", "truncated", "empty", "bad_version", "bad_type", "sync_garbage", "huge_length",
             "oversize", "mutated", "replayed", "segment_garbage", "header_only")
    WEIGHTS = (14, 12, 4, 6, 6, 12, 8, 1, 10, 5, 12, 10)

    def __init__(self, good: list[bytes], seed: int = 9) -> None:
        self.rng = np.random.default_rng(seed)
        self.good = good
        self.tmats = [has_tmats(g) for g in good]  # see test_mutated_tmats_is_trusted_then_restored
        self.upto = len(good)
        self._copyable: tuple[int, list[int]] = (-1, [])
        p = np.array(self.WEIGHTS, float)
        self.p = p / p.sum()

    def __call__(self) -> tuple[str, bytes]:
        rng = self.rng
        kind = self.KINDS[rng.choice(len(self.KINDS), p=self.p)]
        if self._copyable[0] != self.upto:
            self._copyable = (self.upto, [i for i in range(self.upto) if not self.tmats[i]])
        copyable = self._copyable[1]
        if not copyable:
            return "random", rng.bytes(int(rng.integers(0, 1500)))
        g = self.good[copyable[rng.integers(len(copyable))]]
        n = lambda hi: int(rng.integers(0, hi))  # noqa: E731
        if kind == "random":
            data = rng.bytes(n(1500))
        elif kind == "truncated":
            data = g[:n(len(g))]
        elif kind == "empty":
            data = b""
        elif kind == "bad_version":
            data = bytes([(g[0] & 0xF0) | (2 + n(14))]) + g[1:]
        elif kind == "bad_type":
            data = bytes([(2 + n(14)) << 4 | 1]) + g[1:]
        elif kind == "sync_garbage":
            data = g[:4] + b"\x25\xeb" + rng.bytes(n(400))
        elif kind == "huge_length":
            data = g[:4] + g[4:8] + (0xFFFFFFF0).to_bytes(4, "little") + g[12:200]
        elif kind == "oversize":
            data = g[:4] + rng.bytes(65_000)
        elif kind == "mutated":
            b = bytearray(g)
            for _ in range(1 + n(8)):
                b[rng.integers(len(b))] = rng.integers(256)
            data = bytes(b)
        elif kind == "replayed":
            data = g
        elif kind == "segment_garbage":
            data = bytes([0x11]) + rng.bytes(3 + n(600))
        else:
            data = g[:4 + 24]
        return kind, data


def reason_class(error: str) -> str:
    """An error message with its numbers taken out: the reason, for counting."""
    return re.sub(r"0x[0-9A-Fa-f]+|\d+", "N", error.split(": at payload offset")[0] if "payload" not in error
                  else error.split(": ", 2)[-1])[:60]


def test_100k_hostile_datagrams_between_good_ones_are_counted_and_change_nothing():
    good = vehicle_stream(2.0)
    clean, ingest = Ingest(), Ingest()
    hostile = Hostile(good)
    per_good = HOSTILE // len(good) + 1
    kinds, reasons, outcome = collections.Counter(), collections.Counter(), collections.Counter()
    sent = mismatched = 0
    for n, g in enumerate(good):
        hostile.upto = n
        for _ in range(per_good if sent < HOSTILE else 0):
            kind, data = hostile()
            dups = ingest.udp.stats.duplicates
            res = ingest.receive(data, T0)  # never raises
            kinds[kind] += 1
            sent += 1
            for e in res.errors:
                assert e.strip(), "an error without a reason"
                reasons[reason_class(e)] += 1
            # every hostile datagram is accounted for: an error with its reason, a counted
            # duplicate, packets that are valid on their own (a replay, a harmless mutation), or a
            # sequence number so far off that the sender is taken to have started over
            outcome["error" if res.errors else "duplicate" if ingest.udp.stats.duplicates > dups
                    else "valid packets" if res.packets else "sender restart" if res.senders
                    else "unaccounted"] += 1
        a, b = ingest.receive(g, T0), clean.receive(g, T0)
        same = a.frames == b.frames and len(a.samples) == len(b.samples) and all(
            np.array_equal(x.pid, y.pid) and np.array_equal(x.eu, y.eu, equal_nan=True)
            for x, y in zip(a.samples, b.samples))
        mismatched += not same
    st = ingest.stats
    print(f"\nfuzz: {sent} hostile datagrams ({dict(kinds)}) between {len(good)} good ones: {dict(outcome)}; "
          f"decode_errors {st.decode_errors}, UDP gaps {st.datagram_gaps}, duplicates {ingest.udp.stats.duplicates}; "
          f"good frames decoded {clean.stats.frames} of {clean.stats.frames}" if not mismatched else "")
    for r, c in reasons.most_common(15):
        print(f"  {c:7d}  {r}")
    assert sent >= HOSTILE and outcome["unaccounted"] == 0
    assert mismatched == 0  # every good datagram decoded exactly as without the storm
    assert ingest.config.version == 1  # no hostile datagram reconfigured the decommutator


def test_a_damaged_copy_of_the_next_datagram_does_not_hide_the_good_one():
    good = vehicle_stream(0.2)
    ingest = Ingest()
    for g in good[:5]:
        ingest.receive(g, T0)
    ingest.receive(good[5][:30], T0)  # truncated copy, arriving first
    assert ingest.receive(good[5], T0).frames > 0
    assert ingest.udp.stats.duplicates == 0 and ingest.udp.stats.lost_datagrams == 0
    assert ingest.receive(good[5], T0).frames == 0 and ingest.udp.stats.duplicates == 1  # a third copy is one


def test_mutated_tmats_is_trusted_then_restored_by_the_next_good_one():
    """The stream is trusted (docs/security.md): a damaged TMATS that still parses reconfigures,
    one that does not parse is counted and ignored, and the next good TMATS restores the setup
    without a needless second reconfiguration."""
    good = vehicle_stream(0.5)
    tmats = next(bytes(p.raw) for p in iter_packets(good[0][4:]) if isinstance(p, Packet) and p.data_type == 1)
    ingest, clean = Ingest(), Ingest()
    for g in good:
        ingest.receive(g, T0)
        clean.receive(g, T0)
    names = [p.name for p in clean.config.db.parameters]
    rng = np.random.default_rng(3)
    outcome = collections.Counter()
    for _ in range(200):
        b = bytearray(tmats)
        for _ in range(1 + int(rng.integers(4))):
            b[rng.integers(28, len(b))] = rng.integers(32, 127)
        errors = ingest.stats.decode_errors
        bad = ingest.receive_packets(bytes(b), T0)
        outcome["reconfigured" if bad.configured else "error counted" if ingest.stats.decode_errors > errors
                else "no change"] += 1
        good_again = ingest.receive_packets(tmats, T0)  # the vehicle's next good copy
        assert [p.name for p in ingest.config.db.parameters] == names
        # the good copy reconfigures only to undo a damaged one that was applied
        assert (good_again.configured is not None) == (bad.configured is not None)
    print(f"\nmutated TMATS: 200 sent: {dict(outcome)}; configuration versions {ingest.config.version}")
    assert outcome["reconfigured"] + outcome["error counted"] + outcome["no change"] == 200


def c10_datagrams(data: bytes, chunk: int = 60_000) -> tuple[list[bytes], int, int]:
    """A .c10 file as UDP transfer format 1 datagrams: each packet in one, and each damaged
    region (as the reader delimits it) in chunks; also the counts of packets and damaged regions."""
    out, packets, bad = [], 0, 0
    for ev in iter_packets(data):
        if isinstance(ev, Packet):
            packets += 1
            pieces = [bytes(ev.raw)]
        else:
            bad += 1
            region = data[ev.offset:ev.offset + ev.length]
            pieces = [region[i:i + chunk] for i in range(0, len(region), chunk)]
        for p in pieces:
            seq = len(out)
            out.append(bytes([0x01]) + seq.to_bytes(3, "little") + p)
    return out, packets, bad


def test_bad_c10_through_the_ingest_counts_errors_and_decodes_every_good_packet(sample_dir):
    datagrams, packets, bad = c10_datagrams((sample_dir / "bad.c10").read_bytes())
    ingest = Ingest()
    seen = errors = 0
    for d in datagrams:
        res = ingest.receive(d, T0)
        seen += len(res.packets)
        errors += len(res.errors)
    print(f"\nbad.c10: {len(datagrams)} datagrams, {packets} packets, {bad} damaged regions; "
          f"ingest: {seen} packets, {errors} errors")
    assert seen == packets == ingest.stats.packets and errors >= bad > 0


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def udp_socket(port: int) -> tuple[int, int]:
    """(bytes queued, datagrams dropped) by the kernel for the UDP socket bound to ``port`` (/proc/net/udp)."""
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if int(cols[1].split(":")[1], 16) == port:
                return int(cols[4].split(":")[1], 16), int(cols[-1])
    return 0, 0


def test_udp_flood_on_loopback_with_the_vehicle_streaming(sample_dir):
    """A bounded flood (hostile datagrams and bad.c10, 2 s) beside the real vehicle: the server stays
    up, every datagram offered is either received or counted as dropped by the kernel, errors are
    counted with reasons, and a console still gets the vehicle's data afterwards."""
    good = vehicle_stream(0.5)
    hostile = Hostile(good, seed=5)
    bad_c10, _, _ = c10_datagrams((sample_dir / "bad.c10").read_bytes())
    flood = [bad_c10[i % len(bad_c10)] if i % 50 == 0 else hostile()[1] for i in range(20_000)]

    async def main():
        with server() as srv:
            sim = Sim(srv.udp_port).start()
            try:
                c = await Console.connect(srv.ws_url)
                await c.until(lambda m: m["type"] == "link" and m["state"] == "OK", 10)
                before = _get(srv.http_url + "/healthz")["ingest"]["datagrams"]
                vehicle0, drops0 = sim.runner.datagrams, udp_socket(srv.udp_port)[1]
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                offered, t0 = 0, time.monotonic()
                while time.monotonic() - t0 < 2.0 and offered < FLOOD_MAX:  # bounded in time and count
                    for i in range(offered, offered + 1000):
                        try:
                            sock.sendto(flood[i % len(flood)], ("127.0.0.1", srv.udp_port))
                            offered += 1
                        except OSError:  # ENOBUFS: not offered
                            pass
                    await asyncio.sleep(0)  # the console and the vehicle go on meanwhile
                elapsed = time.monotonic() - t0
                sock.close()
                deadline = time.monotonic() + 20
                while udp_socket(srv.udp_port)[0] and time.monotonic() < deadline:  # the server drains its queue
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.2)
                health = _get(srv.http_url + "/healthz")
                dropped = udp_socket(srv.udp_port)[1] - drops0
                received = health["ingest"]["datagrams"] - before
                vehicle = sim.runner.datagrams - vehicle0
                print(f"\nUDP flood: {offered} datagrams in {elapsed:.1f} s ({offered / elapsed:,.0f}/s offered), "
                      f"server received {received} ({vehicle} of them the vehicle's), kernel dropped {dropped}, "
                      f"decode errors {health['ingest']['decode_errors']}, UDP gaps {health['udp']['gaps']}")
                assert health["status"] == "ok"
                assert received + dropped >= offered  # every datagram offered: decoded or counted by the kernel
                assert received <= offered + vehicle
                assert health["ingest"]["decode_errors"] > 0
                # still decoding the vehicle: fresh data reaches a new console
                c2 = await Console.connect(srv.ws_url)
                ids = await c2.catalog()
                await c2.subscribe(10, names=["ALT"])
                await c2.until(lambda m: m["type"] == "data" and ids["ALT"] in m["ids"].tolist(), 10)
                assert _get(srv.http_url + "/healthz")["link"]["state"] == "OK"
                with urllib.request.urlopen(srv.http_url + "/metrics", timeout=5) as r:
                    assert re.search(r"^gs_decode_errors_total [1-9]", r.read().decode(), re.M)
            finally:
                await sim.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


if __name__ == "__main__":
    pytest.main([__file__, "-q", "-s"])
