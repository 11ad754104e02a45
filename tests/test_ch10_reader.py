"""The sans-I/O Chapter 10 stream reader, on synthetic streams and on real recordings."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry_formats.ch10.header import HEADER_SIZE, build_header, parse_header
from telemetry_formats.ch10.packet import MAX_PACKET_LENGTH, Packet, build_packet, rebuild_packet
from telemetry_formats.ch10.reader import DecodeError, PacketReader, checksum_error_of, iter_packets

# --------------------------------------------------------------------------- helpers


def pkt(channel_id: int = 1, size: int = 16, seq: int = 0, checksum_type: int = 3, **kw) -> bytes:
    body = bytes((channel_id + seq + i) & 0xFF for i in range(4 + size))
    return build_packet(
        channel_id=channel_id, data_type=0x09, body=body, sequence_number=seq, checksum_type=checksum_type, **kw
    )


def norm(events) -> list[tuple]:
    """Comparable form of reader output."""
    out = []
    for e in events:
        if isinstance(e, DecodeError):
            out.append(("E", e.offset, e.length, e.channel_id, e.reason, e.data))
        else:
            out.append(("P", e.offset, bytes(e.raw)))
    return out


def split(events):
    packets = [e for e in events if isinstance(e, Packet)]
    errors = [e for e in events if isinstance(e, DecodeError)]
    return packets, errors


def feed_chunked(data: bytes, cuts, *, final: bool = True) -> list:
    """Feed ``data`` split at the sorted offsets ``cuts``."""
    reader = PacketReader()
    events = []
    prev = 0
    for cut in sorted(set(cuts)):
        events += reader.feed(data[prev:cut])
        prev = cut
    events += reader.feed(data[prev:], final=final)
    return events


def assert_accounted(data: bytes, events) -> None:
    """Events tile the input: in order, no gaps, no overlaps."""
    pos = 0
    for e in events:
        assert e.offset == pos, (e, pos)
        pos += e.length if isinstance(e, DecodeError) else len(e.raw)
    assert pos == len(data)


def corrupt_data_checksum(raw: bytes) -> bytes:
    b = bytearray(raw)
    b[-1] ^= 0x5A
    return bytes(b)


# --------------------------------------------------------------------------- synthetic streams


def test_clean_stream_yields_every_packet_with_offsets():
    packets = [pkt(ch, size=ch * 3, seq=ch, checksum_type=ch % 4) for ch in range(1, 9)]
    data = b"".join(packets)
    events = list(iter_packets(data))
    assert all(isinstance(e, Packet) for e in events)
    assert [bytes(e.raw) for e in events] == packets
    offsets = [sum(map(len, packets[:i])) for i in range(len(packets))]
    assert [e.offset for e in events] == offsets
    assert_accounted(data, events)


def test_base_offset_shifts_offsets():
    a, b = pkt(1), pkt(2)
    events = list(iter_packets(a + b"junk" * 3 + b, base_offset=1000))
    assert [e.offset for e in events] == [1000, 1000 + len(a), 1000 + len(a) + 12]
    assert isinstance(events[1], DecodeError)


def test_garbage_before_between_and_after():
    a, b, c = pkt(1), pkt(2, size=30), pkt(3, size=7)
    g1, g2, g3 = b"\x00\x11" * 5, bytes(range(37)), b"\xde\xad\xbe\xef" * 2
    data = g1 + a + g2 + b + c + g3
    events = list(iter_packets(data))
    assert_accounted(data, events)
    kinds = ["E" if isinstance(e, DecodeError) else e.channel_id for e in events]
    assert kinds == ["E", 1, "E", 2, 3, "E"]
    e1, e2, e3 = (e for e in events if isinstance(e, DecodeError))
    assert (e1.offset, e1.length, e1.data) == (0, len(g1), g1)
    assert (e2.offset, e2.length, e2.data) == (len(g1) + len(a), len(g2), g2)
    assert e3.length == len(g3) and e3.data == g3
    assert e1.channel_id is None
    assert "sync" in e1.reason
    assert str(e1) == f"offset 0: {e1.reason} ({len(g1)} bytes)"


def test_false_sync_in_garbage_is_skipped():
    # 0xEB25 in the garbage, even a full header-shaped run, but with a wrong checksum.
    fake = bytearray(build_header(channel_id=9, packet_length=64, data_length=40, data_type=9))
    fake[22] ^= 0xFF
    garbage = b"\x25\xeb\x25\xeb" + bytes(fake) + b"\x25"
    a, b = pkt(1), pkt(2)
    data = a + garbage + b
    events = list(iter_packets(data))
    assert norm(events) == [
        ("P", 0, a),
        ("E", len(a), len(garbage), None, events[1].reason, garbage),
        ("P", len(a) + len(garbage), b),
    ]


def test_data_checksum_error_flagged_and_packet_kept():
    a, bad, c = pkt(1), corrupt_data_checksum(pkt(7, size=40)), pkt(3)
    data = a + bad + c
    events = list(iter_packets(data))
    assert_accounted(data, events)
    assert all(isinstance(e, Packet) for e in events)
    damaged = events[1]
    assert bytes(damaged.raw) == bad and damaged.offset == len(a) and damaged.channel_id == 7
    assert "data checksum mismatch" in damaged.checksum_error and damaged.status == 1
    assert events[0].checksum_error is None and events[0].status == 0
    report = checksum_error_of(damaged)
    assert (report.offset, report.length, report.channel_id, report.kind) == (len(a), len(bad), 7, "data_checksum")
    assert checksum_error_of(events[0]) is None


def test_data_checksum_error_refused_when_strict():
    a, bad, c = pkt(1), corrupt_data_checksum(pkt(7, size=40)), pkt(3)
    data = a + bad + c
    events = list(iter_packets(data, strict_checksums=True))
    assert_accounted(data, events)
    assert isinstance(events[0], Packet) and isinstance(events[2], Packet)
    err = events[1]
    assert isinstance(err, DecodeError)
    assert (err.offset, err.length, err.channel_id) == (len(a), len(bad), 7)
    assert "data checksum mismatch" in err.reason
    assert err.data == bad and err.kind == "data_checksum" and err.is_packet and err.status == 1
    assert "channel 7" in str(err)


def test_inconsistent_lengths_error_skips_declared_length():
    bad = build_header(channel_id=4, packet_length=32, data_length=40, data_type=9) + b"\0" * 8
    a, c = pkt(1), pkt(2)
    events = list(iter_packets(a + bad + c))
    assert norm(events)[1][:4] == ("E", len(a), 32, 4)
    assert "inconsistent" in events[1].reason
    assert bytes(events[2].raw) == c


@pytest.mark.parametrize("length", [0, 8, HEADER_SIZE - 1, MAX_PACKET_LENGTH + 1, 2**32 - 1])
def test_implausible_length_resyncs_at_next_packet(length):
    bad = build_header(channel_id=6, packet_length=length, data_length=4, data_type=9)
    a, c = pkt(1), pkt(2)
    data = a + bad + b"\x77" * 13 + c
    events = list(iter_packets(data))
    assert_accounted(data, events)
    assert isinstance(events[0], Packet) and isinstance(events[2], Packet)
    err = events[1]
    assert (err.offset, err.length, err.channel_id) == (len(a), len(bad) + 13, 6)
    assert "implausible packet length" in err.reason
    # and split in every possible place it gives the same answer
    for cut in range(1, len(data)):
        assert norm(feed_chunked(data, [cut])) == norm(events), cut


@pytest.mark.parametrize("cut", [1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 5, -1])
def test_truncated_last_packet(cut):
    a, b = pkt(1), pkt(5, size=40)
    tail = b[:cut]
    data = a + tail
    events = list(iter_packets(data))
    assert_accounted(data, events)
    assert bytes(events[0].raw) == a
    err = events[1]
    assert isinstance(err, DecodeError) and len(events) == 2
    assert err.offset == len(a) and err.length == len(tail) and err.data == tail
    if len(tail) >= HEADER_SIZE:
        assert err.channel_id == 5 and "truncated packet" in err.reason
    else:
        assert "truncated header" in err.reason

    # Not final: the partial packet is held back, not reported.
    reader = PacketReader()
    events = reader.feed(data)
    assert norm(events) == [("P", 0, a)]
    assert reader.consumed == len(a)
    # ...and completes when the rest arrives.
    events = reader.feed(b[len(tail) :], final=True)
    assert norm(events) == [("P", len(a), b)]
    assert reader.consumed == len(a) + len(b)


def test_iter_packets_not_final_withholds_partial_packet():
    a, b = pkt(1), pkt(2)
    events = list(iter_packets(a + b[:-3], final=False))
    assert norm(events) == [("P", 0, a)]


def test_empty_and_tiny_inputs():
    assert list(iter_packets(b"")) == []
    events = list(iter_packets(b"\x25"))
    assert len(events) == 1 and events[0].length == 1 and events[0].offset == 0
    reader = PacketReader()
    assert reader.feed(b"") == [] and reader.feed(b"\x25\xeb") == []
    assert reader.consumed == 0
    events = reader.feed(b"", final=True)
    assert [(e.offset, e.length) for e in events] == [(0, 2)]


def test_garbage_spanning_many_feeds_is_one_error():
    a = pkt(1)
    garbage = bytes((i * 7 + 3) & 0xFF for i in range(5000)).replace(b"\x25", b"\x26")
    reader = PacketReader()
    events = []
    for i in range(0, len(garbage), 100):
        events += reader.feed(garbage[i : i + 100])
    assert events == []  # not reported until the next valid header or the end
    assert reader.consumed <= len(garbage)
    events += reader.feed(a, final=True)
    assert norm(events) == [("E", 0, len(garbage), None, events[0].reason, garbage), ("P", len(garbage), a)]


def test_error_data_is_capped():
    garbage = b"\x00" * (PacketReader.MAX_ERROR_BYTES + 1000)
    (err,) = iter_packets(garbage)
    assert err.length == len(garbage)
    assert len(err.data) == PacketReader.MAX_ERROR_BYTES


# --------------------------------------------------------------------------- chunked == one-shot

segment = st.one_of(
    st.builds(
        pkt,
        channel_id=st.integers(0, 0xFFFF),
        size=st.integers(0, 60),
        seq=st.integers(0, 255),
        checksum_type=st.integers(0, 3),
    ),
    st.builds(lambda ch, size: corrupt_data_checksum(pkt(ch, size, checksum_type=3)), st.integers(0, 9), st.integers(0, 30)),
    st.binary(min_size=1, max_size=50),
    st.sampled_from([b"\x25\xeb", b"\x25", b"\xeb"]),
    st.builds(
        lambda ch, n: build_header(channel_id=ch, packet_length=n, data_length=4, data_type=1),
        st.integers(0, 9),
        st.sampled_from([0, 4, 23, MAX_PACKET_LENGTH + 1]),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(segment, max_size=12), st.data())
def test_incremental_feeding_matches_one_shot(segments, data):
    stream = b"".join(segments)
    one_shot = list(iter_packets(stream))
    assert_accounted(stream, one_shot)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20)) if stream else []
    chunked = feed_chunked(stream, cuts)
    assert norm(chunked) == norm(one_shot)
    # byte-at-a-time is the extreme case
    if len(stream) < 400:
        assert norm(feed_chunked(stream, range(len(stream)))) == norm(one_shot)


@settings(max_examples=150, deadline=None)
@given(st.lists(segment, max_size=12), st.data())
def test_consumed_tracks_reported_bytes(segments, data):
    stream = b"".join(segments)
    reader = PacketReader()
    reported = 0
    pos = 0
    while pos < len(stream):
        n = data.draw(st.integers(1, max(1, len(stream) - pos)))
        for e in reader.feed(stream[pos : pos + n]):
            reported += e.length if isinstance(e, DecodeError) else len(e.raw)
        pos += n
        # consumed covers what was reported plus any still-unreported garbage run
        assert reported <= reader.consumed <= pos
    for e in reader.feed(b"", final=True):
        reported += e.length if isinstance(e, DecodeError) else len(e.raw)
    assert reported == reader.consumed == len(stream)


# --------------------------------------------------------------------------- real recordings


def _read(sample_dir, name: str) -> bytes:
    return (sample_dir / name).read_bytes()


@pytest.mark.parametrize("name", ["pcm.c10", "discrete.c10"])
def test_real_file_decodes_without_errors(sample_dir, name):
    data = _read(sample_dir, name)
    events = list(iter_packets(data))
    packets, errors = split(events)
    assert errors == []
    assert_accounted(data, events)
    assert packets[0].data_type == 0x01 and packets[0].channel_id == 0  # TMATS first
    assert {p.data_type for p in packets} >= {0x01, 0x11}


def test_real_file_counts(sample_dir):
    packets, _ = split(iter_packets(_read(sample_dir, "pcm.c10")))
    assert len(packets) == 53
    assert {p.channel_id for p in packets if p.data_type == 0x09} == {51, 52, 53, 54, 55, 56}
    packets, _ = split(iter_packets(_read(sample_dir, "discrete.c10")))
    assert len(packets) == 83
    assert sum(p.data_type == 0x11 for p in packets) == 61


def _error_free_runs(events) -> list[list[Packet]]:
    """Maximal runs of consecutive packets with no decode error between them."""
    runs: list[list[Packet]] = [[]]
    for e in events:
        if isinstance(e, DecodeError):
            runs.append([])
        else:
            runs[-1].append(e)
    return [r for r in runs if r]


@pytest.mark.parametrize("name", ["pcm.c10", "discrete.c10", "bad.c10"])
def test_real_headers_agree_with_pychapter10(sample_dir, name):
    """Header fields agree with pychapter10, an independent implementation.

    pychapter10 is only right on part of this, so the comparison is limited to
    where it is: it drops packets that have a secondary header (it reads those 12
    bytes twice; none of these files has one, which is asserted), it does not
    verify data checksums (it returns bad.c10's corrupt packet at 6716, as our
    reader now does, flagged) and it stops with NotImplementedError at garbage. So it is run on each
    error-free run of packets separately, and must return exactly those packets.
    """
    chapter10 = pytest.importorskip("chapter10")
    data = _read(sample_dir, name)
    runs = _error_free_runs(iter_packets(data))
    assert len(runs) == (2 if name == "bad.c10" else 1)
    compared = 0
    for run in runs:
        start = run[0].offset
        stop = run[-1].offset + len(run[-1].raw)
        theirs = list(chapter10.C10.from_string(data[start:stop]))
        assert len(theirs) == len(run)
        for a, b in zip(run, theirs):
            h = a.header
            assert not h.secondary_header  # else pychapter10 would have skipped it
            assert (h.channel_id, h.data_type, h.packet_length, h.data_length, h.sequence_number, h.rtc) == (
                b.channel_id,
                b.data_type,
                b.packet_length,
                b.data_length,
                b.sequence_number,
                b.rtc,
            )
            assert (h.checksum_type, h.data_type_version, h.header_checksum) == (
                b.data_checksum,
                b.header_version,
                b.header_checksum,
            )
            compared += 1
    assert compared == {"pcm.c10": 53, "discrete.c10": 83, "bad.c10": 93}[name]


@pytest.mark.parametrize("name", ["pcm.c10", "discrete.c10", "bad.c10"])
def test_real_headers_rebuild_identically(sample_dir, name):
    data = _read(sample_dir, name)
    packets, _ = split(iter_packets(data))
    assert packets
    fields = (
        "channel_id packet_length data_length data_type sequence_number rtc data_type_version "
        "secondary_header ipts_source rtc_sync_error data_overflow secondary_time_format checksum_type"
    ).split()
    for p in packets:
        h = p.header
        assert build_header(**{f: getattr(h, f) for f in fields}) == bytes(p.raw[:HEADER_SIZE]), p.offset


@pytest.mark.parametrize("name", ["pcm.c10", "discrete.c10", "bad.c10"])
def test_real_packets_rebuild_identically(sample_dir, name):
    """Whole packets rebuild byte for byte, except where the recorder used more
    filler than the 0-3 bytes build_packet emits (two packets of discrete.c10). A packet
    with a bad data checksum rebuilds with a correct one, so it is left out (strict)."""
    data = _read(sample_dir, name)
    packets, _ = split(iter_packets(data, strict_checksums=True))
    mismatched = []
    for p in packets:
        h = p.header
        rebuilt = rebuild_packet(p)
        if rebuilt != bytes(p.raw):
            mismatched.append(p.offset)
            # then it differs only by the recorder's extra filler
            assert len(rebuilt) < len(p.raw)
            assert bytes(p.raw[HEADER_SIZE : HEADER_SIZE + h.data_length]) == bytes(p.body)
    assert mismatched == ([0, 28196] if name == "discrete.c10" else [])


def test_bad_file_damaged_packet_kept(sample_dir):
    data = _read(sample_dir, "bad.c10")
    events = list(iter_packets(data))
    assert_accounted(data, events)
    packets, errors = split(events)
    assert len(packets) == 93 and len(errors) == 1 and errors[0].kind == "header" and not errors[0].is_packet
    (damaged,) = [p for p in packets if p.checksum_error]
    assert (damaged.offset, damaged.channel_id, len(damaged.raw)) == (6716, 3, 3168)


def test_bad_file_errors_and_resync(sample_dir):
    data = _read(sample_dir, "bad.c10")
    events = list(iter_packets(data, strict_checksums=True))
    assert_accounted(data, events)
    packets, errors = split(events)
    assert len(errors) == 2
    crc, garbage = errors

    # A whole packet (channel 3, 1553) whose 32-bit data checksum is wrong.
    assert (crc.offset, crc.channel_id, crc.length) == (6716, 3, 3168)
    assert "data checksum mismatch" in crc.reason
    hdr = parse_header(data, 6716)  # its header itself is fine
    assert (hdr.channel_id, hdr.packet_length, hdr.checksum_type) == (3, 3168, 3)
    assert crc.data == data[6716 : 6716 + 3168]

    # Then garbage, up to the next packet with a valid header.
    assert garbage.offset == 9884 == crc.offset + crc.length
    assert garbage.channel_id is None
    assert "sync" in garbage.reason
    resume = garbage.offset + garbage.length
    assert data[resume : resume + 2] == b"\x25\xeb"

    # Good packets before, and decoding resumes right after the garbage.
    before = [p for p in packets if p.offset < crc.offset]
    after = [p for p in packets if p.offset > garbage.offset]
    assert [p.offset for p in before] == [0, 6680]
    assert after[0].offset == resume
    assert len(after) == 90
    assert len(packets) == 92
    assert packets[-1].offset + len(packets[-1].raw) == len(data)


@pytest.mark.parametrize("name", ["bad.c10", "pcm.c10"])
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_real_file_chunked_matches_one_shot(sample_dir, name, data):
    raw = _read(sample_dir, name)[:120_000]  # enough for bad.c10's two errors and several packets
    one_shot = list(iter_packets(raw))
    size = data.draw(st.sampled_from([1, 7, 24, 25, 4096, 65537]), label="chunk")
    if size == 1:
        raw = raw[:12_000]  # byte-at-a-time is slow; still covers the checksum error
        one_shot = list(iter_packets(raw))
    reader = PacketReader()
    events = []
    for i in range(0, len(raw), size):
        events += reader.feed(raw[i : i + size])
    events += reader.feed(b"", final=True)
    assert norm(events) == norm(one_shot)


def test_overlong_final_packet_does_not_hide_a_following_packet():
    from telemetry_formats.ch10.header import build_header
    from telemetry_formats.ch10.packet import build_packet
    from telemetry_formats.ch10.reader import DecodeError, iter_packets

    good = build_packet(channel_id=5, data_type=0x09, body=b"\x00" * 40)
    liar = build_header(channel_id=4, packet_length=10_000, data_length=9_976, data_type=0x09) + b"\x11" * 16
    events = list(iter_packets(liar + good))
    assert isinstance(events[0], DecodeError) and "truncated packet: 40 of 10000" in events[0].reason
    assert events[0].channel_id == 4 and events[0].length == len(liar)
    assert not isinstance(events[1], DecodeError) and events[1].channel_id == 5
