"""UDP transfer formats 2 and 3 (and format 1 beside them): known header bytes, round trips through
UdpReceiver with segmented reassembly in any order, format 3 streams across datagrams and after a loss."""

from __future__ import annotations

import pathlib
import random
import struct

import pytest

from telemetry_formats.ch10.packet import build_packet
from telemetry_formats.ch10.reader import DecodeError, iter_packets
from telemetry_formats.ch10.transfer import (
    FORMAT_1,
    FORMAT_2,
    FORMAT_3,
    TYPE_FULL,
    TYPE_SEGMENTED,
    UdpTransferF2,
    UdpTransferF3,
    build_f2_header,
    build_f3_header,
    detect_format,
    parse_transfer_header,
)
from telemetry_formats.ch10.udp import (
    DatagramError,
    PacketReceived,
    PartialDropped,
    SequenceGap,
    UdpReceiver,
    UdpSender,
)

PCM_C10 = pathlib.Path(__file__).resolve().parent / "data/ch10/pcm.c10"


def real_packets() -> list[bytes]:
    return [bytes(p.raw) for p in iter_packets(PCM_C10.read_bytes()) if not isinstance(p, DecodeError)]


def pkt(size: int, channel_id: int = 3, seq: int = 0) -> bytes:
    return build_packet(channel_id=channel_id, data_type=0x09, body=random.Random(size + seq).randbytes(size),
                        sequence_number=seq)


def packets_of(events: list) -> list[bytes]:
    return [e.data for e in events if isinstance(e, PacketReceived)]


def feed(rx: UdpReceiver, datagrams: list[bytes]) -> list:
    return [e for d in datagrams for e in rx.receive(d)]


# -- headers --------------------------------------------------------------------------------------------


def test_format_2_header_known_bytes():
    # word 0: sequence 0x123456, type 1 (segmented), format 2; word 1: offset high 0x01, size 0x000010 words;
    # word 2: offset low 0x0203, channel 0x0405 -- each word most significant byte first.
    raw = build_f2_header(TYPE_SEGMENTED, 0x123456, data_bytes=0x40, channel_id=0x0405, segment_offset=0x010203 * 4)
    assert raw == bytes.fromhex("12345612" "01000010" "02030405")
    c = UdpTransferF2.parse(raw)
    assert (c.udp_sequence_number, c.message_type, c.version, c.packet_size, c.channel_id) == (
        0x123456, 1, 2, 0x10, 0x0405)
    h = parse_transfer_header(raw + b"\0" * 0x40, FORMAT_2)
    assert (h.segment_offset, h.channel_id, h.packet_size, h.size) == (0x010203 * 4, 0x0405, 0x10, 12)


def test_format_2_packet_size_in_bytes_is_read_too():
    """irig106lib's header comment says the packet size counts bytes; AcraNetwork writes 32-bit words."""
    body = pkt(40)
    words = struct.pack(">III", (7 << 8) | 2, len(body), 0)
    assert packets_of(UdpReceiver().receive(words + body)) == [body]
    bad = struct.pack(">III", (8 << 8) | 2, len(body) // 4 + 1, 0)
    assert detect_format(bad + body) is None  # neither reading fits: not taken for format 2


def test_format_3_header_known_bytes():
    # source ID length 2 (8 bits), format 3; reserved; packet start 0x0010; source 0xA5, sequence 0x010203.
    raw = build_f3_header(0x010203, packet_start_offset=0x10, source_id=0xA5)
    assert raw == bytes.fromhex("23" "00" "1000" "030201a5")
    c = UdpTransferF3.parse(raw)
    assert (c.format.version, c.format.source_id_length, c.packet_start_offset) == (3, 2, 0x10)
    h = parse_transfer_header(raw, FORMAT_3)
    assert (h.udp_sequence_number, h.source_id, h.packet_start_offset, h.sequence_modulus) == (
        0x010203, 0xA5, 0x10, 1 << 24)
    h0 = parse_transfer_header(build_f3_header(0xFFFFFFFF, packet_start_offset=None, source_id_length=0), FORMAT_3)
    assert (h0.udp_sequence_number, h0.source_id, h0.packet_start_offset, h0.sequence_modulus) == (
        0xFFFFFFFF, 0, None, 1 << 32)


def test_detection_tells_formats_apart_when_their_nibbles_collide():
    body = pkt(64)
    # Format 1 whose sequence number's top byte has low nibble 2 (where format 2 keeps its format).
    f1 = UdpSender(seq_start=0x020000, transfer_format=FORMAT_1).pack([body])[0]
    assert f1[3] & 0x0F == 2 and detect_format(f1) == FORMAT_1
    # Format 2 whose sequence number's top byte has low nibble 1 or 3 (where formats 1 and 3 keep theirs).
    for start in (0x010000, 0x030000):
        f2 = UdpSender(seq_start=start, transfer_format=FORMAT_2).pack([body])[0]
        assert f2[0] & 0x0F in (1, 3) and detect_format(f2) == FORMAT_2
        assert packets_of(UdpReceiver().receive(f2)) == [body]


def test_formats_not_accepted_are_malformed():
    rx = UdpReceiver(formats=(FORMAT_1,))
    events = rx.receive(UdpSender(transfer_format=FORMAT_3).pack([pkt(8)])[0])
    assert isinstance(events[0], DatagramError) and "not accepted" in events[0].reason and rx.stats.malformed == 1


# -- round trips ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [FORMAT_1, FORMAT_2, FORMAT_3])
@pytest.mark.parametrize("max_datagram", [65000, 1472, 200])
def test_real_recording_round_trips_in_every_format(fmt, max_datagram):
    packets = real_packets()
    datagrams = UdpSender(transfer_format=fmt, max_datagram=max_datagram).pack(packets)
    assert all(len(d) <= max_datagram for d in datagrams)
    rx = UdpReceiver(max_partial_age=100_000)
    assert packets_of(feed(rx, datagrams)) == packets
    st = rx.stats
    assert st.malformed == 0 and st.gaps == 0 and st.dropped_partial == 0 and st.formats == {fmt: len(datagrams)}
    if fmt != FORMAT_3 and max_datagram < 65000:
        assert st.reassembled > 0


@pytest.mark.parametrize("fmt", [FORMAT_1, FORMAT_2])
def test_segments_reassemble_in_any_order(fmt):
    packets = [pkt(5000, channel_id=c, seq=s) for c, s in ((3, 0), (4, 0), (3, 1))]
    per_packet = [UdpSender(seq_start=i * 100, transfer_format=fmt, max_datagram=1000).pack([p])
                  for i, p in enumerate(packets)]
    rng = random.Random(5)
    datagrams = []
    for segs in per_packet:
        assert len(segs) > 5
        shuffled = segs[:]
        rng.shuffle(shuffled)
        datagrams += shuffled if shuffled != segs else shuffled[::-1]
    rx = UdpReceiver()
    assert packets_of(feed(rx, datagrams)) == packets
    assert rx.stats.reassembled == 3 and rx.stats.dropped_partial == 0 and rx.stats.malformed == 0


def test_format_2_last_segment_first_and_duplicates():
    p = pkt(3000, channel_id=9)
    segs = UdpSender(transfer_format=FORMAT_2, max_datagram=600).pack([p])
    rx = UdpReceiver()
    out = packets_of(feed(rx, [segs[-1], *segs, segs[2]]))
    assert out == [p] and rx.stats.duplicates >= 1


def test_format_3_packets_run_across_datagrams_and_the_stream_resyncs_after_a_loss():
    packets = [pkt(700, channel_id=5, seq=i) for i in range(12)]
    datagrams = UdpSender(transfer_format=FORMAT_3, max_datagram=1000).pack(packets)
    starts = [parse_transfer_header(d, FORMAT_3).packet_start_offset for d in datagrams]
    assert None in starts or len(datagrams) > len(packets) // 2  # packets run on across datagrams
    lost = 4
    rx = UdpReceiver()
    events = feed(rx, datagrams[:lost] + datagrams[lost + 1:])
    got = packets_of(events)
    assert any(isinstance(e, SequenceGap) and e.missing == 1 for e in events)
    dropped = [e for e in events if isinstance(e, PartialDropped)]
    assert len(dropped) == 1 and "missing" in dropped[0].reason
    # every packet not touched by the lost datagram arrives, in order, byte for byte
    assert got == [p for p in packets if p in got] and len(got) >= len(packets) - 2
    assert got[-1] == packets[-1] and rx.stats.malformed == 0


def test_format_3_sources_are_separate_streams():
    a = [pkt(300, channel_id=1, seq=i) for i in range(6)]
    b = [pkt(500, channel_id=2, seq=i) for i in range(6)]
    da = UdpSender(transfer_format=FORMAT_3, max_datagram=400, source_id=1).pack(a)
    db = UdpSender(transfer_format=FORMAT_3, max_datagram=400, source_id=2).pack(b)
    mixed = [d for pair in zip(da, db) for d in pair] + da[len(db):] + db[len(da):]
    rx = UdpReceiver()
    got = packets_of(feed(rx, mixed))
    assert [p for p in got if p in a] == a and [p for p in got if p in b] == b
    assert rx.stats.gaps == 0 and rx.stats.dropped_partial == 0


def test_format_3_bad_packet_start_is_an_error_not_an_exception():
    rx = UdpReceiver()
    events = rx.receive(build_f3_header(0, packet_start_offset=500) + b"\0" * 40)
    assert isinstance(events[-1], DatagramError) and "beyond" in events[-1].reason
    events = rx.receive(build_f3_header(1, packet_start_offset=0) + b"\x25\xeb" + b"\0" * 40)
    assert isinstance(events[-1], DatagramError) and "format 3 stream" in events[-1].reason


def test_full_messages_batch_packets_in_formats_1_and_2():
    packets = [pkt(100, seq=i) for i in range(20)]
    for fmt in (FORMAT_1, FORMAT_2):
        datagrams = UdpSender(transfer_format=fmt).pack(packets)
        assert len(datagrams) == 1
        h = parse_transfer_header(datagrams[0], fmt)
        assert h.message_type == TYPE_FULL
        assert packets_of(UdpReceiver().receive(datagrams[0])) == packets


def test_format_3_late_datagram_gives_its_whole_packets_and_leaves_the_stream_alone():
    packets = [pkt(150, channel_id=6, seq=i) for i in range(40)]
    datagrams = UdpSender(transfer_format=FORMAT_3, max_datagram=1000).pack(packets)
    assert len(datagrams) > 6
    order = datagrams[:3] + datagrams[4:6] + [datagrams[3]] + datagrams[6:]  # datagram 3 comes late
    rx = UdpReceiver()
    got = packets_of(feed(rx, order))
    assert sorted(got) == sorted(set(got)), "no packet twice"
    lost = [p for p in packets if p not in got]
    assert len(lost) <= 2  # only packets cut by the late datagram's edges
    assert got[-1] == packets[-1] and rx.stats.reordered == 1 and rx.stats.malformed == 0
