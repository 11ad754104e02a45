"""ARINC-429 F0: decoder against pychapter10 on a real recording, the construct
definitions, builder round trips (hypothesis) and bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry_formats.ch10.arinc429 import (
    DATA_TYPE_ARINC429_F0,
    Body429,
    build_429_body,
    decode_429,
    label_from_stored,
    make_word,
    odd_parity,
)
from telemetry_formats.ch10.packet import Packet, build_packet, parse_packet
from telemetry_formats.ch10.reader import iter_packets

chapter10 = pytest.importorskip("chapter10")


def packet_of(body: bytes, rtc: int = 0) -> Packet:
    return parse_packet(build_packet(channel_id=9, data_type=DATA_TYPE_ARINC429_F0, body=body, rtc=rtc))


def test_every_word_of_pcm_c10_equals_pychapter10(sample_dir):
    raw = (sample_dir / "pcm.c10").read_bytes()
    ours: dict[int, list] = {}
    for p in iter_packets(raw):
        if isinstance(p, Packet) and p.data_type == DATA_TYPE_ARINC429_F0:
            w = decode_429(p)
            assert w.errors == [] and len(w) == w.word_count
            ours.setdefault(p.channel_id, []).extend(
                zip(w.word, w.gap, w.bus, w.bus_speed, w.parity_error, w.format_error, w.label, w.sdi, w.data, w.ssm,
                    w.parity_ok, w.rtc))
    theirs: dict[int, list] = {}
    for p in chapter10.C10(io.BytesIO(raw)):
        if p.data_type == DATA_TYPE_ARINC429_F0:
            t = p.rtc
            for m in p:
                t += m.gap_time  # packet time plus the running sum of gap times
                theirs.setdefault(p.channel_id, []).append((m, t))
    assert sorted(ours) == sorted(theirs) == list(range(73, 87))
    assert sum(map(len, ours.values())) == 1303
    for ch, rows in ours.items():
        assert len(rows) == len(theirs[ch]), f"channel {ch}"
        for (word, gap, bus, speed, pe, fe, label, sdi, data, ssm, ok, rtc), (m, t) in zip(rows, theirs[ch]):
            stored = int.from_bytes(m.data, "little")
            assert word == stored and rtc == t
            assert (gap, bus, speed, pe, fe) == (m.gap_time, m.bus, bool(m.bus_speed), bool(m.parity_error),
                                                 bool(m.format_error))
            # The word's fields, by ARINC bit numbers from the stored LSB (bit 1).
            bits = [(stored >> i) & 1 for i in range(32)]
            assert label == int("".join(map(str, bits[0:8])), 2)  # bit 1 is the label's MSB
            assert sdi == bits[8] | bits[9] << 1
            assert data == sum(b << i for i, b in enumerate(bits[10:29]))
            assert ssm == bits[29] | bits[30] << 1
            assert ok == (sum(bits) % 2 == 1)


def test_construct_definition_parses_what_the_decoder_reads():
    spec = [dict(label=0o203, data=0x12345, sdi=1, ssm=3, bus=4, gap=1234, bus_speed=True),
            dict(label=0o001, data=7, sdi=2, ssm=0, bus=255, gap=0xFFFFF, parity_error=True, format_error=True)]
    body = build_429_body(spec)
    c = Body429.parse(body)
    w = decode_429(packet_of(body))
    assert c.csdw.word_count == len(w) == 2
    for k, rec in enumerate(c.words):
        h, word = rec.header, rec.word
        assert (h.bus, h.gap_time, h.bus_speed, h.parity_error, h.format_error) == (
            w.bus[k], w.gap[k], w.bus_speed[k], w.parity_error[k], w.format_error[k])
        assert (label_from_stored(word.label_stored), word.sdi, word.data, word.ssm) == (
            w.label[k], w.sdi[k], w.data[k], w.ssm[k])
        assert (spec[k]["label"], spec[k]["sdi"], spec[k]["data"], spec[k]["ssm"]) == (
            w.label[k], w.sdi[k], w.data[k], w.ssm[k])


def test_label_is_bit_reversed_against_the_octal_label():
    # Label 0o310 = 11 001 000: ARINC bits 1..8 = 1,1,0,0,1,0,0,0 -> stored byte 0b00010011.
    assert make_word(0o310) & 0xFF == 0b00010011
    assert label_from_stored(0b00010011) == 0o310


record = st.fixed_dictionaries({
    "label": st.integers(0, 255), "data": st.integers(0, (1 << 19) - 1), "sdi": st.integers(0, 3),
    "ssm": st.integers(0, 3), "bus": st.integers(0, 255), "gap": st.integers(0, (1 << 20) - 1),
    "bus_speed": st.booleans(), "parity_error": st.booleans(), "format_error": st.booleans(),
    "parity": st.none() | st.booleans(),
})


@settings(max_examples=200, deadline=None)
@given(st.lists(record, max_size=64), st.integers(0, (1 << 47)))
def test_built_packets_decode_back(spec, rtc):
    w = decode_429(packet_of(build_429_body(spec), rtc=rtc))
    assert len(w) == len(spec)
    for k, s in enumerate(spec):
        assert (w.label[k], w.data[k], w.sdi[k], w.ssm[k], w.bus[k], w.gap[k]) == (
            s["label"], s["data"], s["sdi"], s["ssm"], s["bus"], s["gap"])
        assert (w.bus_speed[k], w.parity_error[k], w.format_error[k]) == (
            s["bus_speed"], s["parity_error"], s["format_error"])
        fields = make_word(s["label"], s["data"], sdi=s["sdi"], ssm=s["ssm"], parity=False)
        assert w.parity_ok[k] == (s["parity"] is None or (bin(fields).count("1") + s["parity"]) % 2 == 1)
    assert list(w.rtc) == list(rtc + np.cumsum([s["gap"] for s in spec], dtype=np.int64))
    flagged = [k for k in range(len(spec)) if w.format_error[k] or w.parity_error[k] or not w.parity_ok[k]]
    assert [e.index for e in w.errors] == flagged and all(e.decoded for e in w.errors)


def test_parity_is_odd_over_32_bits():
    words = np.array([make_word(lab, d) for lab in (0, 1, 0o377) for d in (0, 1, 0x7FFFF)], np.uint32)
    assert odd_parity(words).all()
    assert not odd_parity(words ^ np.uint32(1 << 5)).any()


def test_flagged_and_failed_parity_words_are_reported_with_their_index():
    spec = [dict(label=1), dict(label=2, parity=False if make_word(2) >> 31 else True), dict(label=3, parity_error=True),
            dict(label=4, format_error=True), dict(label=5)]
    p = packet_of(build_429_body(spec))
    p = Packet(p.header, p.body, p.raw, p.secondary, offset=777)
    w = decode_429(p)
    assert list(w.label) == [1, 2, 3, 4, 5]
    assert [(e.packet_offset, e.index, e.reason, e.decoded) for e in w.errors] == [
        (777, 1, "parity check failed", True), (777, 2, "parity error", True), (777, 3, "format error", True)]
    assert w.error_counts() == {"format_error": 1, "parity_error": 1, "parity_check": 1}


def test_truncated_packet_keeps_the_whole_words():
    body = build_429_body([dict(label=k) for k in range(5)])
    w = decode_429(packet_of(body[:-5]))
    assert list(w.label) == [0, 1, 2, 3]
    (e,) = w.errors
    assert (e.index, e.decoded) == (4, False) and "4 of 5 words" in e.reason
    assert w.error_counts() == {"missing": 1}


def test_count_beyond_the_data_and_bytes_after_it():
    w = decode_429(packet_of(build_429_body([dict(label=1)], word_count=0xFFFF)))
    assert len(w) == 1 and "1 of 65535" in w.errors[0].reason
    w = decode_429(packet_of(build_429_body([dict(label=1), dict(label=2)], word_count=1)))
    assert len(w) == 1 and w.errors[0].index == 1 and "after" in w.errors[0].reason


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bodies_never_raise(junk):
    w = decode_429(packet_of(junk.ljust(4, b"\0")))
    assert len(w) <= (max(len(junk), 4) - 4) // 8


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1)), max_size=40))
def test_decoder_equals_the_construct_definition_on_random_records(records):
    body = len(records).to_bytes(4, "little") + b"".join(h.to_bytes(4, "little") + w.to_bytes(4, "little")
                                                         for h, w in records)
    c = Body429.parse(body)
    w = decode_429(packet_of(body))
    assert len(w) == len(c.words) == len(records)
    for k, rec in enumerate(c.words):
        h, word = rec.header, rec.word
        assert (w.bus[k], w.format_error[k], w.parity_error[k], w.bus_speed[k], w.gap[k]) == (
            h.bus, h.format_error, h.parity_error, h.bus_speed, h.gap_time)
        assert (w.label[k], w.sdi[k], w.data[k], w.ssm[k]) == (
            label_from_stored(word.label_stored), word.sdi, word.data, word.ssm)
        assert w.parity_ok[k] == (bin(records[k][1]).count("1") % 2 == 1)
