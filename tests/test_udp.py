"""Chapter 10 UDP transfer format 1: headers, sender -> receiver, reassembly, sequence gaps."""

from __future__ import annotations

import pathlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_formats.ch10.packet import Packet, build_packet
from telemetry_formats.ch10.reader import iter_packets
from telemetry_formats.ch10.udp import (
    TYPE_FULL,
    TYPE_SEGMENTED,
    DatagramError,
    PacketReceived,
    PartialDropped,
    SequenceGap,
    UdpReceiver,
    UdpSender,
    UdpTransferF1,
    build_datagrams,
    build_transfer_header,
)

PCM_C10 = pathlib.Path(__file__).resolve().parent / "data/ch10/pcm.c10"


def pcm_packet(size: int, channel_id: int = 3, seq: int = 0) -> bytes:
    body = random.Random(size).randbytes(size)
    return build_packet(channel_id=channel_id, data_type=0x09, body=body, sequence_number=seq)


def packets_of(events: list) -> list[bytes]:
    return [e.data for e in events if isinstance(e, PacketReceived)]


def feed(rx: UdpReceiver, datagrams: list[bytes]) -> list:
    return [e for d in datagrams for e in rx.receive(d)]


# -- headers -------------------------------------------------------------------


def test_full_header_bytes_and_round_trip() -> None:
    raw = build_transfer_header(TYPE_FULL, 0x123456)
    assert raw == bytes([0x01, 0x56, 0x34, 0x12])
    c = UdpTransferF1.parse(raw)
    assert (c.format.message_type, c.format.version, c.udp_sequence_number) == (0, 1, 0x123456)
    assert c.segment is None


def test_segmented_header_bytes_and_round_trip() -> None:
    raw = build_transfer_header(
        TYPE_SEGMENTED, 0xFFFFFF, channel_id=0x0203, channel_sequence_number=0x7F, segment_offset=0x01020304
    )
    assert raw == bytes([0x11, 0xFF, 0xFF, 0xFF, 0x03, 0x02, 0x7F, 0x00, 0x04, 0x03, 0x02, 0x01])
    c = UdpTransferF1.parse(raw)
    assert c.format.message_type == 1 and c.udp_sequence_number == 0xFFFFFF
    assert (c.segment.channel_id, c.segment.channel_sequence_number, c.segment.segment_offset) == (
        0x0203,
        0x7F,
        0x01020304,
    )


def test_headers_match_irig106lib_bitfield_layout() -> None:
    """Independent oracle: the irig106lib C bitfields (uFormat:4, uMsgType:4, uUdpSeqNum:24
    in one LE u32; then uChID:16, uChanSeqNum:8, uReserved:8 and a u32 offset), packed by hand."""
    seq, ch, cseq, off = 0xABCDEF, 0x1234, 0x56, 0x89ABCDEF
    word0 = 1 | (TYPE_SEGMENTED << 4) | (seq << 8)
    word1 = ch | (cseq << 16)
    expected = word0.to_bytes(4, "little") + word1.to_bytes(4, "little") + off.to_bytes(4, "little")
    got = build_transfer_header(TYPE_SEGMENTED, seq, channel_id=ch, channel_sequence_number=cseq, segment_offset=off)
    assert got == expected


# -- sender and receiver -------------------------------------------------------


def test_several_packets_in_one_full_datagram() -> None:
    pkts = [pcm_packet(n, seq=i) for i, n in enumerate((8, 100, 1000))]
    datagrams = build_datagrams(pkts, seq_start=7)
    assert len(datagrams) == 1 and datagrams[0][:4] == build_transfer_header(TYPE_FULL, 7)
    rx = UdpReceiver()
    assert packets_of(rx.receive(datagrams[0])) == pkts
    assert rx.stats.packets == 3 and rx.stats.datagrams == 1 and rx.stats.malformed == 0


def test_batching_respects_max_datagram() -> None:
    pkts = [pcm_packet(200, seq=i) for i in range(20)]
    sender = UdpSender(seq_start=0, max_datagram=1000)
    datagrams = sender.pack(pkts)
    assert all(len(d) <= 1000 for d in datagrams) and len(datagrams) > 1
    assert sender.next_seq == len(datagrams)
    assert packets_of(feed(UdpReceiver(), datagrams)) == pkts


def test_large_packet_reassembled_from_out_of_order_segments() -> None:
    big = pcm_packet(200_000, channel_id=5, seq=42)
    small = pcm_packet(16, channel_id=6)
    datagrams = build_datagrams([small, big, small], max_datagram=9000)
    segs = datagrams[1:-1]
    assert len(segs) > 20 and all(d[0] == 0x11 for d in segs) and all(len(d) <= 9000 for d in datagrams)
    random.Random(1).shuffle(segs)
    rx = UdpReceiver()
    events = feed(rx, [datagrams[0], *segs, datagrams[-1]])
    assert packets_of(events) == [small, big, small]
    assert [e.reassembled for e in events if isinstance(e, PacketReceived)] == [False, True, False]
    assert rx.stats.reassembled == 1 and rx.stats.dropped_partial == 0 and rx.stats.malformed == 0
    assert rx.stats.reordered > 0 and rx.stats.lost_datagrams == 0


def test_missing_segment_is_dropped_as_stale_and_memory_is_bounded() -> None:
    rx = UdpReceiver(max_partials=2, max_partial_age=50)
    sender = UdpSender(max_datagram=500)
    for i in range(3):  # three incomplete packets: the oldest is evicted
        rx.receive(sender.pack([pcm_packet(2000, channel_id=i)])[0])
    assert rx.stats.dropped_partial == 1
    events = feed(rx, [sender.pack([pcm_packet(8)])[0] for _ in range(60)])
    dropped = [e for e in events if isinstance(e, PartialDropped)]
    assert len(dropped) == 2 and all(e.reason.startswith("stale") for e in dropped)
    assert rx.stats.dropped_partial == 3 and rx.flush() == []


def test_reused_channel_sequence_supersedes_and_byte_limit_evicts() -> None:
    old, new = pcm_packet(2000, channel_id=4, seq=9), pcm_packet(3000, channel_id=4, seq=9)
    rx = UdpReceiver(max_partial_bytes=3000)
    rx.receive(build_datagrams([old], seq_start=0, max_datagram=1000)[0])
    events = rx.receive(build_datagrams([new], seq_start=1, max_datagram=1000)[0])
    assert [e.reason for e in events] == ["superseded by a new packet with the same channel sequence number"]
    rest = build_datagrams([pcm_packet(5000, channel_id=5)], seq_start=2, max_datagram=1000)
    events = feed(rx, rest[:3])
    assert [e.channel_id for e in events if isinstance(e, PartialDropped)] == [4]
    assert "memory limit" in events[0].reason and rx._held <= 3000


def test_overlapping_segments_are_not_spliced() -> None:
    pkt = pcm_packet(1000, channel_id=2)
    segs = build_datagrams([pkt], max_datagram=500)
    overlap = build_transfer_header(TYPE_SEGMENTED, 100, channel_id=2, segment_offset=4) + pkt[4:600]
    events = feed(UdpReceiver(), [segs[0], overlap, *segs[1:]])
    assert not packets_of(events) and any(getattr(e, "reason", "") == "overlapping segments" for e in events)


def test_duplicate_datagram_is_dropped() -> None:
    d = build_datagrams([pcm_packet(8)])[0]
    rx = UdpReceiver()
    assert len(packets_of(rx.receive(d))) == 1
    assert rx.receive(d) == [] and rx.stats.duplicates == 1


def test_sequence_gap_counted_across_24_bit_wrap() -> None:
    pkt = pcm_packet(8)
    sender = UdpSender(seq_start=2**24 - 3)
    datagrams = [sender.pack([pkt])[0] for _ in range(8)]  # seq FFFFFD .. 000004
    rx = UdpReceiver()
    events = feed(rx, datagrams[:2] + datagrams[5:])  # lose FFFFFF, 0, 1
    gaps = [e for e in events if isinstance(e, SequenceGap)]
    assert gaps == [SequenceGap(expected=0xFFFFFF, received=2, missing=3)]
    assert rx.stats.gaps == 1 and rx.stats.lost_datagrams == 3
    rx.receive(datagrams[3])  # seq 0 arrives late
    assert rx.stats.reordered == 1 and rx.stats.lost_datagrams == 2


def test_in_order_wrap_is_not_a_gap() -> None:
    rx = UdpReceiver()
    feed(rx, build_datagrams([pcm_packet(8)] * 1, seq_start=2**24 - 1) + build_datagrams([pcm_packet(8)], 0))
    assert rx.stats.gaps == 0 and rx.stats.reordered == 0


def test_sender_restart_is_a_resync() -> None:
    rx = UdpReceiver()
    feed(rx, build_datagrams([pcm_packet(8)], seq_start=50_000))
    events = feed(rx, build_datagrams([pcm_packet(8)], seq_start=0))
    assert SequenceGap(expected=50_001, received=0, missing=0, resync=True) in events
    assert len(packets_of(events)) == 1 and rx.stats.resyncs == 1


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"\x01\x00", "too short"),
        (b"\x02\x00\x00\x00" + pcm_packet(8), "version"),
        (b"\x21\x00\x00\x00" + pcm_packet(8), "message type"),
        (b"\x01\x00\x00\x00", "no packet"),
        (b"\x01\x00\x00\x00" + pcm_packet(8)[:-4], "does not fit"),
        (b"\x01\x00\x00\x00" + b"\x00" * 40, "sync"),
        (b"\x11\x00\x00\x00\x03\x00", "too short"),
        (build_transfer_header(TYPE_SEGMENTED, 0, segment_offset=2**32 - 4) + b"\x00" * 8, "segment offset"),
        (build_transfer_header(TYPE_SEGMENTED, 0, channel_id=9) + pcm_packet(100, channel_id=3), "!="),
        (build_transfer_header(TYPE_SEGMENTED, 0) + b"\x25\xeb" + b"\x00" * 30, "first segment"),
    ],
)
def test_malformed_datagrams_give_error_events(datagram: bytes, reason: str) -> None:
    rx = UdpReceiver()
    events = rx.receive(datagram)
    assert len(events) == 1 and isinstance(events[0], DatagramError), events
    assert reason in events[0].reason and rx.stats.malformed == 1


def test_segment_beyond_packet_length_drops_the_partial() -> None:
    pkt = pcm_packet(1000, channel_id=3)
    segs = build_datagrams([pkt], max_datagram=300)
    bogus = build_transfer_header(TYPE_SEGMENTED, 99, channel_id=3, segment_offset=len(pkt)) + b"\x00" * 8
    rx = UdpReceiver()
    events = feed(rx, [segs[1], bogus, segs[0]])
    assert [type(e) for e in events] == [SequenceGap, PartialDropped]
    assert "beyond packet length" in events[-1].reason


_SEGMENT_PIECE = pcm_packet(100, channel_id=1, seq=1)
segmented = st.builds(
    lambda seq, ch, cseq, off, n, junk: build_transfer_header(
        TYPE_SEGMENTED, seq, channel_id=ch, channel_sequence_number=cseq, segment_offset=off
    )
    + (_SEGMENT_PIECE[off : off + n] or junk),
    st.integers(0, 40), st.integers(0, 2), st.integers(0, 2), st.sampled_from([0, 4, 24, 64, 96, 124, 200]),
    st.integers(1, 130), st.binary(min_size=1, max_size=30),
)
datagrams_st = st.binary(max_size=80) | st.binary(min_size=4, max_size=40).map(lambda b: b"\x11" + b[1:]) | segmented


@settings(max_examples=500, deadline=None)
@given(st.lists(datagrams_st, max_size=40))
def test_random_datagrams_never_raise(datagrams: list[bytes]) -> None:
    rx = UdpReceiver(max_partials=4)
    events = feed(rx, datagrams)
    events += rx.flush()
    assert rx.stats.datagrams == len(datagrams)
    assert len(rx._partials) == 0 and rx._held == 0


@settings(max_examples=100, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(40, 3000), st.integers(0, 5))
def test_shuffled_and_repeated_segments_reassemble(rnd: random.Random, max_datagram: int, dups: int) -> None:
    pkt = pcm_packet(5000, channel_id=7, seq=200)
    datagrams = build_datagrams([pkt], seq_start=rnd.randrange(2**24), max_datagram=max_datagram)
    datagrams += [rnd.choice(datagrams) for _ in range(dups)]
    rnd.shuffle(datagrams)
    rx = UdpReceiver()
    events = feed(rx, datagrams)
    assert packets_of(events) == [pkt] and rx.stats.duplicates == dups
    assert not any(isinstance(e, (DatagramError, PartialDropped)) for e in events)


# -- real data -----------------------------------------------------------------


@pytest.mark.parametrize("max_datagram", [1500, 9000, 65000])
def test_real_recording_round_trips_byte_identical(max_datagram: int) -> None:
    pkts = [bytes(p.raw) for p in iter_packets(PCM_C10.read_bytes()) if isinstance(p, Packet)]
    assert len(pkts) > 10 and max(map(len, pkts)) > 1500
    datagrams = build_datagrams(pkts, seq_start=2**24 - 10, max_datagram=max_datagram)
    assert all(len(d) <= max_datagram for d in datagrams)
    rx = UdpReceiver()
    assert packets_of(feed(rx, datagrams)) == pkts
    assert rx.stats.gaps == 0 and rx.stats.malformed == 0 and rx.stats.dropped_partial == 0
