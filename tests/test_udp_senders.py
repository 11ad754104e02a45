"""UDP sequence state per sender: a second sender's datagrams are never dropped as duplicates of the first's.

Sans-I/O on the ``Ingest`` (real simulator datagrams), then over real UDP into a real
server: a short capture replayed into a station, then a vehicle starting right after.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request

from groundstation.ingest.core import Ingest
from groundstation.ingest.senders import SenderTable
from groundstation.simulator.vehicle import Vehicle
from telemetry_formats.ch10.packet import build_packet
from telemetry_formats.ch10.udp import build_transfer_header
from tests.live import Console, server

T0 = 1_763_000_000_000_000_000
A, B = ("127.0.0.1", 40001), ("127.0.0.1", 40002)


def stream(n: int, seed: int = 0) -> list[bytes]:
    """The first ``n`` datagrams (sequence 0 .. n-1) of a simulated vehicle."""
    v = Vehicle(start_ns=T0, seed=seed)
    out: list[bytes] = []
    t = T0
    while len(out) < n:
        t += 2_000_000
        out += v.advance(t)
    return out[:n]


def test_a_vehicle_after_a_short_capture_loses_nothing():
    capture, vehicle = stream(1021, seed=1), stream(1500, seed=2)
    ingest = Ingest()
    for dg in capture:
        ingest.receive(dg, T0, A)
    frames_before = ingest.stats.frames
    results = [ingest.receive(dg, T0, B) for dg in vehicle]
    assert ingest.udp.stats.duplicates == 0
    assert ingest.stats.frames > frames_before and all(r.frames or not r.samples for r in results)
    alone = Ingest()
    for dg in vehicle:
        alone.receive(dg, T0, B)
    assert ingest.stats.frames - frames_before == alone.stats.frames  # as if it were alone on the port
    assert [n.event for n in results[0].senders] == ["new"]
    st = ingest.udp.status()
    assert st["senders"] == 2 and st["new_senders"] == 2 and st["restarts"] == 0


def test_duplicates_only_of_the_same_sender_and_same_bytes():
    dgs = stream(50)
    table = SenderTable()
    for dg in dgs:
        table.receive(dg, A)
    notes, events = table.receive(dgs[10], A)  # a true repeat: dropped
    assert table.stats.duplicates == 1 and not events and not notes
    notes, events = table.receive(dgs[10], B)  # the same bytes from another sender: taken
    assert table.stats.duplicates == 1 and events and [n.event for n in notes] == ["new"]
    other = stream(50, seed=7)
    assert other[10][1:4] == dgs[10][1:4] and other[10] != dgs[10]
    notes, events = table.receive(other[10], A)  # same sequence number, other bytes: it started over
    assert [n.event for n in notes] == ["restart"] and "repeated with different data" in notes[0].reason
    assert table.stats.duplicates == 1 and any(hasattr(e, "data") for e in events)


def test_big_jumps_start_a_new_epoch_instead_of_counting_losses():
    ingest = Ingest()
    dgs = stream(40)
    for dg in dgs[:20]:
        ingest.receive(dg, T0, A)
    far = bytes([dgs[20][0]]) + (5_000_000).to_bytes(3, "little") + dgs[20][4:]  # junk-like jump ahead
    res = ingest.receive(far, T0, A)
    assert [n.event for n in res.senders] == ["restart"] and ingest.stats.datagrams_lost == 0
    res = ingest.receive(dgs[21], T0, A)  # the vehicle goes on where it was: back a long way, another epoch
    assert [n.event for n in res.senders] == ["restart"] and res.frames
    for dg in dgs[22:]:
        ingest.receive(dg, T0, A)
    assert ingest.stats.datagrams_lost == 0 and ingest.udp.restarts == 2
    # a plausible gap is still a loss
    ingest.receive(dgs[-1][:1] + (60).to_bytes(3, "little") + dgs[-1][4:], T0, A)
    assert ingest.stats.datagrams_lost == 60 - 40


def test_a_flood_from_many_ports_is_bounded():
    table = SenderTable(max_senders=16)
    junk = build_transfer_header(1, 0, channel_id=3, channel_sequence_number=1, segment_offset=8) + b"x" * 1000
    for port in range(5000):
        table.receive(junk, ("10.0.0.9", port))  # a middle segment from nowhere: no state kept
    assert len(table) == 0 and table.unknown_junk == 5000 and table.stats.datagrams == 5000
    big = build_packet(channel_id=3, data_type=0x09, body=b"\0" * 5000, sequence_number=1)
    first = build_transfer_header(1, 0, channel_id=3, channel_sequence_number=1, segment_offset=0) + big[:1000]
    for port in range(5000):
        table.receive(first, ("10.0.0.8", port))  # each holds a partial packet
    assert len(table) == 16 and table.evicted == 5000 - 16 and table.new_senders == 5000
    assert table.stats.datagrams == 10000  # every datagram still counted (forgotten epochs included)
    assert table.stats.dropped_partial == 5000 - 16  # the evicted senders' partial packets, reported
    assert len(table.status()["recent"]) == 8


def test_a_flood_from_many_ports_does_not_push_the_vehicle_out():
    table = SenderTable(max_senders=8)
    dgs = stream(30)
    vehicle = ("127.0.0.1", 7000)
    for i, dg in enumerate(dgs):
        table.receive(dg, vehicle)
        for port in range(20):  # junk from 20 ports between each of the vehicle's datagrams
            table.receive(b"\x01" + bytes([port, i, 0]) + b"junk", ("10.0.0.9", port))
    assert table.status()["recent"][0]["epoch"] == 0 and table.stats.lost_datagrams == 0
    assert any(r["sender"] == "127.0.0.1:7000" and r["datagrams"] == 30 for r in table.status(limit=8)["recent"])


def test_live_capture_then_vehicle_over_udp(sample_dir):
    """A replayed capture (sequence 0-1020) then a vehicle on another port: consoles see both senders,
    health counts them, the vehicle's datagrams are all taken."""
    capture, vehicle = stream(1021, seed=1), stream(1100, seed=2)

    def send(dgs: list[bytes], port: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, dg in enumerate(dgs):
                s.sendto(dg, ("127.0.0.1", port))
                if i % 5 == 4:
                    time.sleep(0.002)  # loopback receive buffer: keep the test about senders, not drops

    async def run(srv) -> list[dict]:
        console = await Console.connect(srv.ws_url)
        send(capture, srv.udp_port)
        first = await console.until(lambda m: m["type"] == "udp_sender", 5)
        send(vehicle, srv.udp_port)
        second = await console.until(lambda m: m["type"] == "udp_sender", 5)
        await console.close()
        return [first, second]

    with server() as srv:
        events = asyncio.run(run(srv))
        time.sleep(0.3)
        health = json.load(urllib.request.urlopen(srv.http_url + "/healthz", timeout=5))
    assert [e["senders"][0]["event"] for e in events] == ["new", "new"]
    assert events[0]["senders"][0]["sender"] != events[1]["senders"][0]["sender"]
    udp = health["udp"]
    assert udp["senders"] == 2 and udp["new_senders"] == 2 and udp["duplicates"] == 0
    assert health["ingest"]["datagrams"] == 2121 and udp["lost"] == 0
    assert sorted(r["datagrams"] for r in udp["recent"]) == [1021, 1100]


def test_sender_address_reaches_the_ingest():
    dg = stream(1)[0]
    ingest = Ingest()
    res = ingest.receive(dg, T0, ("::1", 5, 0, 0))
    assert res.senders[0].sender == "[::1]:5"


def test_junk_with_random_sequence_numbers_is_not_billions_lost():
    """After a junk flood from the vehicle's own address, datagrams_lost stayed near 12.6 billion
    (#15): jumps past a plausible window are new epochs, only plausible gaps count as losses."""
    import numpy as np

    from groundstation.ingest.senders import DEFAULT_MAX_GAP

    rng = np.random.default_rng(3)
    ingest = Ingest()
    for dg in stream(5):
        ingest.receive(dg, T0, A)
    for _ in range(5000):
        ingest.receive(b"\x01" + rng.bytes(3) + b"\x25\xeb" + rng.bytes(40), T0, A)
    assert ingest.stats.datagrams_lost < 100 * DEFAULT_MAX_GAP  # was about 4,000 x 8 million
    assert ingest.udp.restarts > 4000
    for dg in stream(5, seed=4):  # the vehicle again (a new epoch): decoded
        assert ingest.receive(dg, T0, A).packets


def test_console_notices_are_rate_bounded():
    """A flood of new senders and damaged packets: the first at once, then at most one event of each kind a second."""
    from groundstation.ingest.core import IngestResult
    from groundstation.ingest.notices import IngestNotices
    from groundstation.ingest.senders import SenderNote
    from telemetry_formats.ch10.packet import parse_packet

    raw = bytearray(build_packet(channel_id=5, data_type=0x09, body=b"\0" * 20, checksum_type=2))
    raw[-1] ^= 1
    damaged = parse_packet(bytes(raw), flag_checksum=True)
    notices = IngestNotices()
    sent = []
    for i in range(10_000):  # 10 s of 1,000 datagrams a second
        now = T0 + i * 1_000_000
        notices.observe(IngestResult(packets=[damaged], senders=[SenderNote("new", f"h:{i}")]), now)
        if i % 100 == 0:  # housekeeping every 100 ms
            sent += notices.due(now)
    kinds = [e["type"] for e in sent]
    assert kinds.count("integrity") == 10 and kinds.count("udp_sender") == 10
    first = sent[0] if sent[0]["type"] == "integrity" else sent[1]
    assert first["packets"] == 1 and first["channels"][0]["channel"] == 5 and first["used"]
    later = [e for e in sent if e["type"] == "udp_sender"][1]
    assert later["count"] == 1000 and len(later["senders"]) == 8 and later["counts"] == {"new": 1000}
    assert sum(e["packets"] for e in sent if e["type"] == "integrity") < 10_000  # the rest is still pending
