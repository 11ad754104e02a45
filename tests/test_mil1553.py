"""MIL-STD-1553 F1: decoder against pychapter10 on a real recording, the construct
definitions, builder round trips (hypothesis) and bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_formats.ch10.header import (
    TIME_CH4,
    TIME_ERTC,
    TIME_IEEE1588,
    build_secondary_header,
    parse_secondary_header,
)
from telemetry_formats.ch10.mil1553 import (
    BSW_ERRORS,
    DATA_TYPE_1553_F1,
    Body1553,
    CommandWord,
    command_word,
    decode_1553,
)
from telemetry_formats.ch10.mil1553_build import build_1553_body, bus_words
from telemetry_formats.ch10.packet import Packet, build_packet, parse_packet
from telemetry_formats.ch10.reader import iter_packets

chapter10 = pytest.importorskip("chapter10")


def packet_of(body: bytes, **kw) -> Packet:
    return parse_packet(build_packet(channel_id=kw.pop("channel_id", 7), data_type=DATA_TYPE_1553_F1, body=body, **kw))


@pytest.fixture(scope="module")
def pcm_c10(sample_dir) -> bytes:
    return (sample_dir / "pcm.c10").read_bytes()


# ----------------------------------------------------------------------------- the oracle


def test_every_message_of_pcm_c10_equals_pychapter10(pcm_c10):
    ours: dict[int, list] = {}
    for p in iter_packets(pcm_c10):
        if isinstance(p, Packet) and p.data_type == DATA_TYPE_1553_F1:
            m = decode_1553(p)
            assert m.errors == []
            assert len(m) == m.message_count
            ours.setdefault(p.channel_id, []).append(m)
    theirs: dict[int, list] = {}
    for p in chapter10.C10(io.BytesIO(pcm_c10)):
        if p.data_type == DATA_TYPE_1553_F1:
            for msg in p:
                theirs.setdefault(p.channel_id, []).append(msg)
    assert sorted(ours) == sorted(theirs) == list(range(87, 95))
    assert sum(len(v) for v in theirs.values()) == 411

    for ch in ours:
        rows = [(m, k) for m in ours[ch] for k in range(len(m))]
        assert len(rows) == len(theirs[ch]), f"channel {ch}"
        for (m, k), msg in zip(rows, theirs[ch]):
            words = np.frombuffer(msg.data, "<u2")
            assert m.command[k] == words[0]
            # Every message here is BC-to-RT: command, data..., status.
            assert m.tr[k] == 0 and not m.rt_to_rt[k]
            n = int(m.n_data[k])
            assert n == m.word_count[k] == len(words) - 2
            assert list(m.data[k, :n]) == list(words[1:-1])
            assert not m.data[k, n:].any()
            assert m.status[k] == words[-1]
            assert m.rtc[k] == msg.ipts & ((1 << 48) - 1)
            assert (m.bus_b[k], m.rt_to_rt[k]) == (bool(msg.bus), bool(msg.rt2rt))
            bits = {"message_error": msg.me, "format_error": msg.fe, "response_timeout": msg.timeout,
                    "word_count_error": msg.le, "sync_type_error": msg.se, "invalid_word_error": msg.we}
            assert {n for n, b in BSW_ERRORS.items() if m.block_status[k] & b} == {n for n, v in bits.items() if v}


# ----------------------------------------------------------------------------- layouts


def test_construct_definition_parses_what_the_decoder_reads(pcm_c10):
    p = next(p for p in iter_packets(pcm_c10) if isinstance(p, Packet) and p.data_type == DATA_TYPE_1553_F1)
    c = Body1553.parse(bytes(p.body))
    m = decode_1553(p)
    assert c.csdw.message_count == len(m)
    for k, msg in enumerate(c.messages):
        assert msg.header.time_stamp & ((1 << 48) - 1) == m.rtc[k]
        assert msg.header.length == 2 * (m.n_data[k] + 2)
        assert msg.words[0] == m.command[k]
        cw = CommandWord.parse(int(m.command[k]).to_bytes(2, "little"))
        assert (cw.rt, cw.tr, cw.subaddress) == (m.rt[k], m.tr[k], m.subaddress[k])
        assert msg.header.block_status.bus_b == m.bus_b[k]


def test_builder_is_importable_from_the_format_module_too():
    from telemetry_formats.ch10 import mil1553, mil1553_build

    assert mil1553.build_1553_body is mil1553_build.build_1553_body


def test_builder_output_parses_with_construct():
    msgs = [dict(rt=3, tr=1, subaddress=4, data=[1, 2, 3], rtc=99, gap1=4, bus_b=True),
            dict(rt=1, subaddress=2, rt2=5, subaddress2=6, data=[7] * 32, gap2=9)]
    c = Body1553.parse(build_1553_body(msgs, time_tag_bits=1))
    assert c.csdw.time_tag_bits == 1 and c.csdw.message_count == 2
    a, b = c.messages
    assert list(a.words) == [command_word(3, 1, 4, 3), 3 << 11, 1, 2, 3]
    assert a.header.block_status.bus_b and a.header.gap1 == 4 and a.header.time_stamp == 99
    assert b.header.block_status.rt_to_rt and b.header.gap2 == 9
    assert list(b.words) == [command_word(1, 0, 2, 0), command_word(5, 1, 6, 0), 5 << 11, *[7] * 32, 1 << 11]


# ----------------------------------------------------------------------------- round trips

rt = st.integers(0, 30)
sa = st.integers(1, 30)
word = st.integers(0, 0xFFFF)


@st.composite
def message(draw):
    kind = draw(st.sampled_from(["bc_rt", "rt_bc", "rt_rt", "mode", "broadcast"]))
    m: dict = dict(rtc=draw(st.integers(0, (1 << 48) - 1)), gap1=draw(st.integers(0, 255)),
                   gap2=draw(st.integers(0, 255)), bus_b=draw(st.booleans()), status=draw(word))
    data = draw(st.lists(word, min_size=1, max_size=32))
    if kind == "bc_rt":
        m.update(rt=draw(rt), tr=0, subaddress=draw(sa), data=data)
    elif kind == "rt_bc":
        m.update(rt=draw(rt), tr=1, subaddress=draw(sa), data=data)
    elif kind == "broadcast":
        m.update(rt=31, tr=0, subaddress=draw(sa), data=data)
    elif kind == "rt_rt":
        m.update(rt=draw(st.integers(0, 31)), tr=0, subaddress=draw(sa), data=data, rt2=draw(rt),
                 subaddress2=draw(sa), status2=draw(word))
    else:
        code = draw(st.integers(0, 31))
        m.update(rt=draw(st.integers(0, 31)), tr=draw(st.integers(0, 1)), subaddress=draw(st.sampled_from([0, 31])),
                 mode_code=code, data=[draw(word)] if code >= 16 else [])
    return m


@settings(max_examples=200, deadline=None)
@given(st.lists(message(), max_size=20), st.integers(0, 2))
def test_built_packets_decode_back(msgs, ttb):
    m = decode_1553(packet_of(build_1553_body(msgs, time_tag_bits=ttb)))
    assert m.errors == [] and len(m) == len(msgs) and m.time_tag_bits == ttb
    for k, spec in enumerate(msgs):
        words = bus_words(spec)
        data = spec["data"]
        assert m.command[k] == words[0]
        assert (m.rt[k], m.tr[k], m.subaddress[k]) == (spec["rt"], spec.get("tr", 0), spec["subaddress"])
        assert m.n_data[k] == m.word_count[k] == len(data)
        assert list(m.data[k, : len(data)]) == data and not m.data[k, len(data):].any()
        assert m.rtc[k] == spec["rtc"] and m.bus_b[k] == spec["bus_b"]
        assert (m.gap1[k], m.gap2[k]) == (spec["gap1"], spec["gap2"])
        assert m.rt_to_rt[k] == ("rt2" in spec) and not m.error[k]
        if "rt2" in spec:
            assert m.command2[k] == words[1] and m.status[k] == spec["status2"]
            assert m.status2[k] == (spec["status"] if spec["rt"] != 31 else 0)
        else:
            assert m.command2[k] == 0 and m.status2[k] == 0
            assert m.status[k] == (spec["status"] if spec["rt"] != 31 else 0)
    assert list(m.index) == list(range(len(msgs)))
    assert list(m.offset) == list(24 + 4 + np.cumsum([0] + [14 + 2 * len(bus_words(x)) for x in msgs])[:-1])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(0, (1 << 24) - 1))
def test_random_bodies_never_raise_and_account_for_every_message(junk, count):
    body = (count | 1 << 30).to_bytes(4, "little") + junk
    m = decode_1553(packet_of(body))
    undecoded = [e for e in m.errors if not e.decoded]
    assert len(m) <= count
    assert all(0 <= e.index <= count for e in m.errors)
    if not any("truncated" in e.reason or "trailing" in e.reason or "after" in e.reason for e in undecoded):
        assert len(m) + len(undecoded) == count


# ----------------------------------------------------------------------------- bad input


def good(rt_addr: int, n: int = 3) -> dict:
    return dict(rt=rt_addr, tr=0, subaddress=1, data=list(range(100, 100 + n)))


def test_length_disagreeing_with_command_is_reported_and_neighbours_decode():
    bad = dict(rt=9, tr=0, subaddress=1, word_count=5, data=[1, 2, 3])  # asks for 5, carries 3
    p = packet_of(build_1553_body([good(1), bad, good(2)]), rtc=5)
    p = Packet(p.header, p.body, p.raw, p.secondary, offset=4242)
    m = decode_1553(p)
    assert list(m.rt) == [1, 2] and list(m.index) == [0, 2]
    assert list(m.data[1, :3]) == [100, 101, 102]
    (e,) = m.errors
    assert (e.packet_offset, e.index, e.decoded, e.command) == (4242, 1, False, command_word(9, 0, 1, 5))
    assert "length disagrees with command word" in e.reason and "5 words" in e.reason and "7" in e.reason
    assert m.error_counts() == {"length disagrees with command word": 1}


def test_truncated_message_is_reported_and_earlier_ones_decode():
    body = build_1553_body([good(1), good(2), good(3)])
    m = decode_1553(packet_of(body[:-3]))
    assert list(m.rt) == [1, 2]
    (e,) = m.errors
    assert (e.index, e.decoded) == (2, False) and e.reason.startswith("truncated message")
    assert m.error_counts() == {"truncated message": 1}


def test_message_count_larger_than_the_data_stops_at_the_data():
    body = build_1553_body([good(1)], message_count=(1 << 24) - 1)
    m = decode_1553(packet_of(body))
    assert len(m) == 1 and m.errors[0].index == 1 and "truncated" in m.errors[0].reason


def test_bytes_after_the_counted_messages_are_reported():
    body = build_1553_body([good(1), good(2)], message_count=1)
    m = decode_1553(packet_of(body))
    assert len(m) == 1 and m.errors[0].index == 1 and "after" in m.errors[0].reason


@pytest.mark.parametrize("bit", sorted(BSW_ERRORS))
def test_block_status_error_bits_flag_the_row_and_are_counted(bit):
    m = decode_1553(packet_of(build_1553_body([good(1), {**good(2), bit: True}, good(3)])))
    assert list(m.error) == [False, True, False]
    (e,) = m.errors
    assert (e.index, e.decoded) == (1, True) and bit.replace("_", " ") in e.reason
    assert m.error_counts() == {bit: 1}


def test_response_timeout_without_status_word_keeps_the_data():
    # BC-to-RT whose RT did not answer: command and data, no status word.
    timeout = dict(words=[command_word(4, 0, 2, 3), 7, 8, 9], response_timeout=True)
    rt_bc_timeout = dict(words=[command_word(5, 1, 2, 4)], response_timeout=True)  # RT never transmitted
    m = decode_1553(packet_of(build_1553_body([timeout, rt_bc_timeout, good(1)])))
    assert len(m) == 3 and list(m.error) == [True, True, False]
    assert list(m.data[0, :3]) == [7, 8, 9] and m.n_data[0] == 3 and m.status[0] == 0
    assert m.n_data[1] == 0 and m.status[1] == 0 and m.word_count[1] == 4
    assert [e.index for e in m.errors] == [0, 1]


def test_empty_and_tiny_bodies():
    assert len(decode_1553(packet_of(b"\x00\x00\x00\x00"))) == 0
    p = packet_of(b"\x00\x00\x00\x00")
    m = decode_1553(Packet(p.header, memoryview(b"\x01"), p.raw))  # the reader never makes one, but
    assert len(m) == 0 and m.errors and m.errors[0].reason.startswith("truncated")
    m = decode_1553(packet_of(build_1553_body([dict(words=[])])))
    assert len(m) == 0 and m.errors[0].reason == "no command word"


@pytest.mark.parametrize("fmt,packet_time,stamp_time,ticks", [
    (TIME_IEEE1588, dict(nanoseconds=500, seconds=1_700_000_000), dict(nanoseconds=2_000, seconds=1_700_000_000), 15),
    (TIME_CH4, dict(high_time=1, low_time=7, microseconds=40), dict(high_time=1, low_time=7, microseconds=42), 20),
    (TIME_CH4, dict(high_time=1, low_time=7, microseconds=40), dict(high_time=1, low_time=8, microseconds=40), 100_000),
    (TIME_ERTC, dict(ertc=10_000), dict(ertc=10_150), None),  # ticks: as header.py's secondary time says
])
def test_secondary_header_time_stamps_are_placed_on_the_rtc_axis(fmt, packet_time, stamp_time, ticks):
    # The stamp's 8 bytes are laid out as the secondary header's time (header.py builds both).
    stamp = int.from_bytes(build_secondary_header(fmt, **stamp_time)[:8], "little")
    if ticks is None:
        ns = [parse_secondary_header(build_secondary_header(fmt, **t), fmt)["time_ns"] for t in (stamp_time, packet_time)]
        ticks = (ns[0] - ns[1]) // 100
        assert ticks > 0
    body = build_1553_body([{**good(1), "rtc": stamp}, {**good(2), "rtc": stamp}])
    raw = build_packet(channel_id=7, data_type=DATA_TYPE_1553_F1, body=body, rtc=1000,
                       secondary_time=packet_time, secondary_time_format=fmt, ipts_source=True)
    m = decode_1553(parse_packet(raw))
    assert list(m.rtc) == [1000 + ticks] * 2


def test_bad_c10_1553_packets_decode_without_raising(sample_dir):
    data = (sample_dir / "bad.c10").read_bytes()
    n = 0
    for p in iter_packets(data):
        if isinstance(p, Packet) and p.data_type == DATA_TYPE_1553_F1:
            m = decode_1553(p)
            n += len(m)
            assert all(e.packet_offset == p.offset for e in m.errors)
    assert n > 0


def test_rt_to_rt_without_its_block_status_bit_is_recognised_from_the_words():
    # bad.c10 channel 2 has these: receive command, transmit command, status, 4 data, status, bit 11 clear.
    words = [command_word(6, 0, 12, 4), command_word(2, 1, 12, 4), 2 << 11, 1, 2, 3, 4, 6 << 11]
    m = decode_1553(packet_of(build_1553_body([dict(words=words), good(1)])))
    assert m.errors == [] and list(m.rt_to_rt) == [True, False]
    assert m.block_status[0] == 0 and m.command2[0] == words[1]
    assert list(m.data[0, :4]) == [1, 2, 3, 4] and (m.status[0], m.status2[0]) == (2 << 11, 6 << 11)


def test_count_beyond_a_truncated_last_message():
    body = build_1553_body([good(1), good(2), good(3)], message_count=9)
    m = decode_1553(packet_of(body[:-3]))
    assert list(m.rt) == [1, 2] and [(e.index, e.decoded) for e in m.errors] == [(2, False)]


def reference_decode(body: bytes) -> tuple[list[tuple], list[int]]:
    """The construct definition plus the standard's word order, message by message:
    (rows of (command, command2, status, status2, data, error, rt_to_rt), indices of bad messages)."""
    c = Body1553.parse(body)
    rows, bad = [], []
    for k, msg in enumerate(c.messages):
        words, bs = list(msg.words), msg.header.block_status
        flagged = any(bs[name] for name in BSW_ERRORS)
        if not words:
            bad.append(k)
            continue
        cw = CommandWord.parse(words[0].to_bytes(2, "little"))
        mode = cw.subaddress in (0, 31)
        wc = int(cw.word_count >= 16) if mode else (cw.word_count or 32)
        has_status = cw.rt != 31
        padded = words + [0] * 40
        at = padded.__getitem__  # a word past the message's end reads as 0
        rr = bs.rt_to_rt or (not cw.tr and not mode and len(words) == 3 + wc + has_status
                             and (words[1] >> 10) & 1 == 1 and words[1] & 31 == cw.word_count)
        if rr:
            start, status, status2, cmd2 = 3, at(2), at(3 + wc) if has_status else 0, at(1)
        elif cw.tr:
            start, status, status2, cmd2 = 1 + has_status, at(1) if has_status else 0, 0, 0
        else:
            start, status, status2, cmd2 = 1, at(1 + wc) if has_status else 0, 0, 0
        if len(words) != (3 if rr else 1) + wc + has_status and not flagged:
            bad.append(k)
            continue
        rows.append((words[0], cmd2, status, status2, words[start:start + wc], flagged, bool(rr)))
    return rows, bad


@st.composite
def odd_message(draw):
    m = draw(message())
    if draw(st.booleans()):
        m = dict(words=bus_words(m)[: draw(st.integers(0, 40))], rtc=m["rtc"])
    for name in draw(st.lists(st.sampled_from(sorted(BSW_ERRORS) + ["rt_to_rt"]), max_size=2)):
        m[name] = True
    return m


@settings(max_examples=300, deadline=None)
@given(st.lists(odd_message(), max_size=12))
def test_decoder_equals_the_construct_definition_message_by_message(msgs):
    body = build_1553_body(msgs)
    rows, bad = reference_decode(body)
    m = decode_1553(packet_of(body))
    assert [e.index for e in m.errors if not e.decoded] == bad
    assert len(m) == len(rows)
    for k, (cmd, cmd2, status, status2, data, flagged, rr) in enumerate(rows):
        n = int(m.n_data[k])
        assert (m.command[k], m.command2[k], m.status[k], m.status2[k]) == (cmd, cmd2, status, status2)
        assert list(m.data[k, :n]) == data and (m.error[k], m.rt_to_rt[k]) == (flagged, rr)
    assert [e.index for e in m.errors if e.decoded] == [int(m.index[k]) for k in np.flatnonzero(m.error)]


@pytest.fixture(scope="module")
def real_body(pcm_c10) -> bytes:
    p = next(p for p in iter_packets(pcm_c10) if isinstance(p, Packet) and p.data_type == DATA_TYPE_1553_F1)
    return bytes(p.body)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_real_packets_never_raise_and_keep_the_untouched_messages(real_body, data):
    body = bytearray(real_body)
    spots = data.draw(st.lists(st.integers(4, len(body) - 1), min_size=1, max_size=6))
    for i in spots:
        body[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(4, len(body)))
    good = decode_1553(packet_of(real_body))
    m = decode_1553(packet_of(bytes(body[:cut])))
    assert len(m) <= m.message_count
    # A message before the first damaged byte decodes exactly as in the sound packet.
    first_damage = min([*spots, cut])
    for k in range(len(m)):
        end = m.offset[k] - 24 + 14 + 2 * (m.n_data[k] + 2)  # offset counts from the sync word, 24 before the body
        if end <= first_damage and m.index[k] < len(good):
            j = int(m.index[k])
            assert m.command[k] == good.command[j] and list(m.data[k]) == list(good.data[j])
