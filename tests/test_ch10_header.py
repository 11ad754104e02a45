"""Chapter 10 checksums, primary/secondary headers and whole packets: build/parse symmetry.

Independent oracles are hand-packed bytes (``struct``) and plain-Python sums, so
that a construct definition cannot agree with itself while both are wrong.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry_formats.ch10.header import (
    HEADER_SIZE,
    SECONDARY_HEADER_SIZE,
    SYNC,
    TIME_CH4,
    TIME_ERTC,
    TIME_IEEE1588,
    Header,
    HeaderError,
    PacketHeader,
    build_header,
    build_secondary_header,
    parse_header,
    parse_secondary_header,
)
from telemetry_formats.ch10.packet import (
    MAX_PACKET_LENGTH,
    PacketError,
    build_packet,
    packet_layout,
    parse_packet,
    rebuild_packet,
)
from telemetry_formats.checksum import (
    crc16_ccitt,
    data_checksum,
    data_checksum_size,
    sum8,
    sum16,
    sum32,
)

# --------------------------------------------------------------------------- oracles


def ref_sum(data: bytes, width: int) -> int:
    """Plain-Python little-endian word sum; a trailing partial word is ignored."""
    n = len(data) // width
    return sum(int.from_bytes(data[i * width : (i + 1) * width], "little") for i in range(n)) & (
        (1 << (8 * width)) - 1
    )


def ref_header(
    *,
    channel_id,
    packet_length,
    data_length,
    data_type,
    sequence_number=0,
    rtc=0,
    data_type_version=0x06,
    secondary_header=False,
    ipts_source=False,
    rtc_sync_error=False,
    data_overflow=False,
    secondary_time_format=0,
    checksum_type=0,
) -> bytes:
    """The 24 header bytes packed by hand from the standard's layout."""
    flags = (
        secondary_header << 7
        | ipts_source << 6
        | rtc_sync_error << 5
        | data_overflow << 4
        | secondary_time_format << 2
        | checksum_type
    )
    first = struct.pack(
        "<HHIIBBBB",
        0xEB25,
        channel_id,
        packet_length,
        data_length,
        data_type_version,
        sequence_number & 0xFF,
        flags,
        data_type,
    ) + (rtc & (2**48 - 1)).to_bytes(6, "little")
    assert len(first) == 22
    return first + struct.pack("<H", ref_sum(first, 2))


# --------------------------------------------------------------------------- strategies

header_fields = st.fixed_dictionaries(
    {
        "channel_id": st.integers(0, 0xFFFF),
        "packet_length": st.integers(0, 2**32 - 1),
        "data_length": st.integers(0, 2**32 - 1),
        "data_type": st.integers(0, 0xFF),
        "sequence_number": st.integers(0, 0xFF),
        "rtc": st.integers(0, 2**48 - 1),
        "data_type_version": st.integers(0, 0xFF),
        "secondary_header": st.booleans(),
        "ipts_source": st.booleans(),
        "rtc_sync_error": st.booleans(),
        "data_overflow": st.booleans(),
        "secondary_time_format": st.integers(0, 3),
        "checksum_type": st.integers(0, 3),
    }
)

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 2**32 - 1)
secondary_times = st.one_of(
    st.tuples(
        st.just(TIME_CH4),
        st.fixed_dictionaries({"high_time": u16, "low_time": u16, "microseconds": u16}),
    ),
    st.tuples(st.just(TIME_IEEE1588), st.fixed_dictionaries({"nanoseconds": u32, "seconds": u32})),
    st.tuples(st.just(TIME_ERTC), st.fixed_dictionaries({"ertc": st.integers(0, 2**64 - 1)})),
)


# --------------------------------------------------------------------------- checksums


@given(st.binary(max_size=200))
def test_word_sums_match_plain_python(data):
    assert sum8(data) == ref_sum(data, 1)
    assert sum16(data) == ref_sum(data, 2)
    assert sum32(data) == ref_sum(data, 4)
    # memoryviews (how the reader passes packet slices) give the same answer
    mv = memoryview(b"\xaa" + data)[1:]
    assert (sum8(mv), sum16(mv), sum32(mv)) == (sum8(data), sum16(data), sum32(data))


def test_word_sums_known_values():
    assert sum8(b"") == sum16(b"") == sum32(b"") == 0
    assert sum8(b"\xff\x02") == 0x01  # wraps at 8 bits
    assert sum16(b"\xff\xff\x02\x00") == 0x0001  # wraps at 16 bits
    assert sum16(b"\x01\x02\x03") == 0x0201  # odd trailing byte ignored
    assert sum32(b"\x01\x00\x00\x00\x02\x00\x00\x00\x05") == 3  # partial word ignored
    assert sum32(b"\xff\xff\xff\xff\x02\x00\x00\x00") == 1


@pytest.mark.parametrize("kind, size, func", [(1, 1, sum8), (2, 2, sum16), (3, 4, sum32)])
def test_data_checksum_kinds(kind, size, func):
    data = bytes(range(256)) * 3
    assert data_checksum(kind, data) == func(data)
    assert data_checksum_size(kind) == size


def test_data_checksum_size_none():
    assert data_checksum_size(0) == 0


def test_crc16_ccitt_false_check_value():
    # The catalogued check value of CRC-16/CCITT-FALSE ("123456789").
    assert crc16_ccitt(b"123456789") == 0x29B1
    assert crc16_ccitt(b"") == 0xFFFF


# --------------------------------------------------------------------------- primary header


@given(header_fields)
def test_build_header_matches_hand_packed_bytes(fields):
    raw = build_header(**fields)
    assert len(raw) == HEADER_SIZE
    assert raw == ref_header(**fields)


@given(header_fields)
def test_header_build_parse_symmetry(fields):
    raw = build_header(**fields)
    h = parse_header(raw)
    assert isinstance(h, Header)
    for name, value in fields.items():
        assert getattr(h, name) == value, name
    assert h.header_checksum == sum16(raw[:22])
    assert h.body_offset == HEADER_SIZE + (SECONDARY_HEADER_SIZE if fields["secondary_header"] else 0)
    # Rebuilding from the parsed header gives the same bytes (a fixed point).
    again = {name: getattr(h, name) for name in fields}
    assert build_header(**again) == raw
    # The checksum-verifying construct definition agrees with the fast path.
    c = PacketHeader.parse(raw)
    assert c.header_checksum == h.header_checksum
    assert c.fields.value.rtc == h.rtc
    assert c.fields.value.flags.checksum_type == h.checksum_type


@given(header_fields, st.binary(max_size=40), st.binary(max_size=40))
def test_parse_header_at_offset(fields, before, after):
    raw = build_header(**fields)
    assert parse_header(before + raw + after, len(before)) == parse_header(raw)
    assert parse_header(memoryview(before + raw + after), len(before)) == parse_header(raw)


def test_header_wraps_sequence_and_rtc():
    h = parse_header(
        build_header(channel_id=1, packet_length=28, data_length=4, data_type=0, sequence_number=0x1FF, rtc=2**48 + 5)
    )
    assert h.sequence_number == 0xFF
    assert h.rtc == 5


def test_header_known_bytes():
    raw = build_header(
        channel_id=0x0203,
        packet_length=0x40,
        data_length=0x1C,
        data_type=0x09,
        sequence_number=7,
        rtc=0x0102_0304_0506,
        data_type_version=0x06,
        secondary_header=True,
        secondary_time_format=1,
        checksum_type=3,
    )
    assert raw[:2] == b"\x25\xeb"  # 0xEB25 little-endian
    assert raw[2:4] == b"\x03\x02"
    assert raw[4:8] == b"\x40\x00\x00\x00"
    assert raw[8:12] == b"\x1c\x00\x00\x00"
    assert raw[12] == 0x06 and raw[13] == 7
    assert raw[14] == 0b1000_0111  # secondary header, IEEE-1588, 32-bit checksum
    assert raw[15] == 0x09
    assert raw[16:22] == bytes([6, 5, 4, 3, 2, 1])
    assert int.from_bytes(raw[22:24], "little") == ref_sum(raw[:22], 2)
    assert SYNC == 0xEB25


@given(header_fields, st.integers(0, HEADER_SIZE - 1), st.integers(1, 255))
def test_corrupted_header_byte_is_detected(fields, index, xor):
    raw = bytearray(build_header(**fields))
    raw[index] ^= xor
    with pytest.raises(HeaderError):
        parse_header(bytes(raw))


@given(header_fields, st.integers(0, HEADER_SIZE - 1))
def test_truncated_header_raises(fields, keep):
    with pytest.raises(HeaderError, match="truncated"):
        parse_header(build_header(**fields)[:keep])


def test_bad_sync_reason():
    raw = bytearray(build_header(channel_id=1, packet_length=28, data_length=4, data_type=0))
    raw[0] = 0x24
    with pytest.raises(HeaderError, match="sync"):
        parse_header(bytes(raw))
    raw = bytearray(build_header(channel_id=1, packet_length=28, data_length=4, data_type=0))
    raw[22] ^= 1
    with pytest.raises(HeaderError, match="checksum"):
        parse_header(bytes(raw))


# --------------------------------------------------------------------------- secondary header


@given(secondary_times)
def test_secondary_header_round_trip(fmt_time):
    fmt, t = fmt_time
    raw = build_secondary_header(fmt, **t)
    assert len(raw) == SECONDARY_HEADER_SIZE
    assert int.from_bytes(raw[10:12], "little") == ref_sum(raw[:10], 2)
    parsed = parse_secondary_header(raw, fmt)
    assert {k: v for k, v in parsed.items() if k != "time_ns"} == t
    assert parse_secondary_header(b"\0" * 5 + raw, fmt, offset=5) == parsed


def test_secondary_header_layouts():
    # Ch4 binary time (Figure 11-4): zero word, microseconds, low time, high time (u16 LE each).
    raw = build_secondary_header(TIME_CH4, high_time=0x0102, low_time=0x0304, microseconds=0x0506)
    assert raw[:8] == b"\0\0\x06\x05\x04\x03\x02\x01"
    t = parse_secondary_header(raw, TIME_CH4)
    assert t["time_ns"] == ((0x0102 << 16) | 0x0304) * 10_000_000 + 0x0506 * 1000
    # IEEE-1588: nanoseconds word first, then seconds.
    raw = build_secondary_header(TIME_IEEE1588, nanoseconds=123, seconds=1_700_000_000)
    assert raw[:8] == struct.pack("<II", 123, 1_700_000_000)
    assert parse_secondary_header(raw, TIME_IEEE1588)["time_ns"] == 1_700_000_000 * 10**9 + 123
    # ERTC: 64-bit count of a 1 GHz clock (1 ns per count).
    raw = build_secondary_header(TIME_ERTC, ertc=2**40 + 7)
    assert raw[:8] == struct.pack("<Q", 2**40 + 7)
    assert parse_secondary_header(raw, TIME_ERTC)["time_ns"] == 2**40 + 7


@given(secondary_times, st.integers(0, SECONDARY_HEADER_SIZE - 1), st.integers(1, 255))
def test_secondary_header_corruption_detected(fmt_time, index, xor):
    fmt, t = fmt_time
    raw = bytearray(build_secondary_header(fmt, **t))
    raw[index] ^= xor
    with pytest.raises(HeaderError):
        parse_secondary_header(bytes(raw), fmt)


def test_secondary_header_reserved_format_and_truncation():
    with pytest.raises(HeaderError):
        parse_secondary_header(b"\0" * 12, 3)
    with pytest.raises(HeaderError, match="truncated"):
        parse_secondary_header(b"\0" * 11, TIME_IEEE1588)


# --------------------------------------------------------------------------- packets

packet_args = st.fixed_dictionaries(
    {
        "channel_id": st.integers(0, 0xFFFF),
        "data_type": st.integers(0, 0xFF),
        "body": st.binary(min_size=4, max_size=300),
        "sequence_number": st.integers(0, 0xFF),
        "rtc": st.integers(0, 2**48 - 1),
        "data_type_version": st.integers(0, 0xFF),
        "checksum_type": st.integers(0, 3),
        "ipts_source": st.booleans(),
        "rtc_sync_error": st.booleans(),
        "data_overflow": st.booleans(),
    }
)


rebuild = rebuild_packet


@given(packet_args, st.none() | secondary_times)
def test_packet_round_trip_byte_identical(args, sec):
    kwargs = dict(args)
    if sec is not None:
        kwargs.update(secondary_time_format=sec[0], secondary_time=sec[1])
    raw = build_packet(**kwargs)
    body = args["body"]
    cks = data_checksum_size(args["checksum_type"])
    body_off = HEADER_SIZE + (SECONDARY_HEADER_SIZE if sec else 0)

    # Layout: lengths, 32-bit alignment, zero filler, trailing data checksum.
    assert len(raw) % 4 == 0
    filler = len(raw) - body_off - len(body) - cks
    assert 0 <= filler <= 3
    assert raw[body_off : body_off + len(body)] == body
    assert raw[body_off + len(body) : body_off + len(body) + filler] == b"\0" * filler
    if cks:
        stored = int.from_bytes(raw[-cks:], "little")
        assert stored == ref_sum(raw[body_off:-cks], cks)  # covers CSDW, data and filler

    p = parse_packet(raw)
    assert bytes(p.raw) == raw
    assert bytes(p.body) == body
    assert p.csdw == int.from_bytes(body[:4], "little")
    assert bytes(p.data) == body[4:]
    assert p.channel_id == args["channel_id"] and p.data_type == args["data_type"]
    h = p.header
    assert (h.packet_length, h.data_length) == (len(raw), len(body))
    assert h.checksum_type == args["checksum_type"]
    assert h.secondary_header == (sec is not None)
    assert packet_layout(h) == (body_off, filler, cks)
    if sec is None:
        assert p.secondary is None
    else:
        assert h.secondary_time_format == sec[0]
        assert {k: v for k, v in p.secondary.items() if k != "time_ns"} == sec[1]
    assert rebuild(p) == raw


@given(packet_args, st.none() | secondary_times, st.binary(max_size=9), st.data())
def test_packet_parse_at_offset(args, sec, before, data):
    kwargs = dict(args)
    if sec is not None:
        kwargs.update(secondary_time_format=sec[0], secondary_time=sec[1])
    raw = build_packet(**kwargs)
    after = data.draw(st.binary(max_size=9))
    p = parse_packet(before + raw + after, len(before))
    assert bytes(p.raw) == raw
    assert p.offset == len(before)


@given(packet_args.filter(lambda a: a["checksum_type"] != 0), st.data())
def test_data_checksum_corruption_detected(args, data):
    raw = bytearray(build_packet(**args))
    # any byte of CSDW, data, filler or the checksum itself
    index = data.draw(st.integers(HEADER_SIZE, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(PacketError, match="checksum"):
        parse_packet(bytes(raw))
    # verify_data=False skips the check
    assert parse_packet(bytes(raw), verify_data=False).header.packet_length == len(raw)


@given(packet_args.filter(lambda a: a["checksum_type"] == 0), st.data())
def test_no_data_checksum_means_body_changes_pass(args, data):
    raw = bytearray(build_packet(**args))
    index = data.draw(st.integers(HEADER_SIZE, len(raw) - 1))
    raw[index] ^= 0xFF
    assert bytes(parse_packet(bytes(raw)).raw) == bytes(raw)


@given(packet_args, secondary_times, st.integers(0, SECONDARY_HEADER_SIZE - 1), st.integers(1, 255))
def test_secondary_header_corruption_in_packet_detected(args, sec, index, xor):
    raw = bytearray(build_packet(**args, secondary_time_format=sec[0], secondary_time=sec[1]))
    raw[HEADER_SIZE + index] ^= xor
    with pytest.raises(HeaderError):
        parse_packet(bytes(raw))


@pytest.mark.parametrize(
    "checksum_type, trailer",
    [
        (0, b"\0\0\0"),  # 24 + 5 = 29 -> 3 filler bytes
        (1, b"\0\0" + bytes([15])),  # 24 + 5 + 1 = 30 -> 2 filler, 8-bit sum
        (2, b"\0" + struct.pack("<H", 0x0201 + 0x0403 + 0x0005)),  # 16-bit sum incl. filler
        (3, b"\0\0\0" + struct.pack("<I", 0x04030201 + 0x00000005)),  # 32-bit sum incl. filler
    ],
)
def test_packet_known_bytes(checksum_type, trailer):
    body = b"\x01\x02\x03\x04\x05"
    raw = build_packet(channel_id=3, data_type=0x09, body=body, checksum_type=checksum_type)
    header = ref_header(
        channel_id=3,
        packet_length=HEADER_SIZE + len(body) + len(trailer),
        data_length=len(body),
        data_type=0x09,
        checksum_type=checksum_type,
    )
    assert raw == header + body + trailer
    assert len(raw) % 4 == 0


def _header_only(**kw) -> bytes:
    return build_header(channel_id=1, data_type=0, **kw)


def test_parse_packet_rejects_inconsistent_lengths():
    # data_length larger than the packet can hold
    raw = _header_only(packet_length=32, data_length=12) + b"\0" * 8
    with pytest.raises(PacketError, match="inconsistent"):
        parse_packet(raw)
    # data_length below the 4-byte CSDW
    raw = _header_only(packet_length=28, data_length=2) + b"\0" * 4
    with pytest.raises(PacketError, match="inconsistent"):
        parse_packet(raw)
    # room for the body but not for the 32-bit data checksum
    raw = _header_only(packet_length=28, data_length=4, checksum_type=3) + b"\0" * 4
    with pytest.raises(PacketError, match="inconsistent"):
        parse_packet(raw)
    # secondary header flagged but no room for it
    raw = _header_only(packet_length=28, data_length=4, secondary_header=True) + b"\0" * 4
    with pytest.raises(PacketError, match="inconsistent"):
        parse_packet(raw)


def test_parse_packet_rejects_huge_and_truncated():
    raw = _header_only(packet_length=MAX_PACKET_LENGTH + 4, data_length=4) + b"\0" * 4
    with pytest.raises(PacketError, match="exceeds"):
        parse_packet(raw)
    good = build_packet(channel_id=1, data_type=0, body=b"\0" * 10, checksum_type=2)
    for cut in (HEADER_SIZE, len(good) - 1):
        with pytest.raises(PacketError, match="truncated"):
            parse_packet(good[:cut])
    with pytest.raises(HeaderError):
        parse_packet(good[: HEADER_SIZE - 1])


def test_packet_with_large_filler_is_accepted():
    # Real recorders pad TMATS packets far beyond 3 bytes (discrete.c10 has 10,800).
    body = b"\0\0\0\0hello"
    raw = _header_only(packet_length=HEADER_SIZE + 100, data_length=len(body)) + body
    raw += b"\0" * (HEADER_SIZE + 100 - len(raw))
    p = parse_packet(raw)
    assert bytes(p.body) == body
    assert packet_layout(p.header) == (HEADER_SIZE, 100 - len(body), 0)


def test_packet_with_reserved_secondary_time_format():
    from telemetry_formats.ch10.reader import DecodeError, iter_packets

    header = build_header(
        channel_id=1,
        packet_length=HEADER_SIZE + SECONDARY_HEADER_SIZE + 8,
        data_length=8,
        data_type=9,
        secondary_header=True,
        secondary_time_format=3,
    )
    raw = header + b"\0" * SECONDARY_HEADER_SIZE + b"\0" * 8
    with pytest.raises(HeaderError):
        parse_packet(raw)
    (err,) = iter_packets(raw)  # the reader reports it instead of raising
    assert isinstance(err, DecodeError)
    assert (err.offset, err.length, err.channel_id) == (0, len(raw), 1)
