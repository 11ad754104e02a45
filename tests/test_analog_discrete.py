"""Analog F1 and discrete F1: the real packets of pcm.c10 and discrete.c10 against pychapter10, round trips, bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest

from telemetry_formats.ch10.analog import (
    DATA_TYPE_ANALOG_F1,
    PACKED,
    UNPACKED_LSB_PADDED,
    UNPACKED_MSB_PADDED,
    CsdwAnalog,
    build_analog_body,
    decode_analog,
)
from telemetry_formats.ch10.discrete import DATA_TYPE_DISCRETE_F1, BodyDiscrete, build_discrete_body, decode_discrete
from telemetry_formats.ch10.packet import Packet, build_packet, parse_packet
from telemetry_formats.ch10.reader import iter_packets

chapter10 = pytest.importorskip("chapter10")


def packets(path, data_type):
    return [p for p in iter_packets(path.read_bytes()) if isinstance(p, Packet) and p.data_type == data_type]


def test_analog_packets_of_pcm_c10_equal_pychapter10(sample_dir):
    path = sample_dir / "pcm.c10"
    ours = {}
    for p in packets(path, DATA_TYPE_ANALOG_F1):
        a = decode_analog(p)
        assert a.errors == [] and a.length == 8 and a.subchannels == (0,)
        ours.setdefault(p.channel_id, []).append(a.samples[:, 0])
    theirs = {}
    for p in chapter10.C10(io.BytesIO(path.read_bytes())):
        if p.data_type == DATA_TYPE_ANALOG_F1:
            theirs.setdefault(p.channel_id, []).append(np.frombuffer(b"".join(m.data for m in p), np.uint8))
    assert sorted(ours) == sorted(theirs) == [59, 60, 61, 62]
    for ch in ours:
        for a, b in zip(ours[ch], theirs[ch], strict=True):
            assert np.array_equal(a, b)
    # channel 61 carries a sine wave: consecutive 8-bit samples move by small steps
    steps = np.diff(ours[61][0].astype(np.int8).astype(int))
    assert np.abs(steps).max() <= 8


def test_discrete_packets_of_discrete_c10_equal_pychapter10(sample_dir):
    path = sample_dir / "discrete.c10"
    ours = [(p.channel_id, decode_discrete(p)) for p in packets(path, DATA_TYPE_DISCRETE_F1)]
    assert [ch for ch, _ in ours] == [54, 55]
    theirs = [(p.channel_id, list(p)) for p in chapter10.C10(io.BytesIO(path.read_bytes()))
              if p.data_type == DATA_TYPE_DISCRETE_F1]
    for (ch, d), (ch2, msgs) in zip(ours, theirs, strict=True):
        assert ch == ch2 and len(d) == len(msgs) and d.errors == [] and d.length == 32
        for k, m in enumerate(msgs):
            assert d.rtc[k] == m.ipts & ((1 << 48) - 1)
            assert d.states[k] == int.from_bytes(m.data, "little")
        c = BodyDiscrete.parse(bytes(next(p for p in packets(path, DATA_TYPE_DISCRETE_F1) if p.channel_id == ch).body))
        assert [r.states for r in c.records] == list(d.states)


def test_discrete_round_trip_and_trailing_bytes():
    rtc = np.array([10, 20, 30], np.uint64)
    states = np.array([0, 0xFFFFFFFF, 0b1010], np.uint32)
    body = build_discrete_body(rtc, states, length=4, time_interval=True)
    d = decode_discrete(parse_packet(build_packet(channel_id=3, data_type=DATA_TYPE_DISCRETE_F1, body=body)))
    assert list(d.rtc) == [10, 20, 30] and list(d.states) == list(states) and d.length == 4 and d.time_interval
    assert d.bits()[2].tolist() == [False, True, False, True]
    d = decode_discrete(parse_packet(build_packet(channel_id=3, data_type=DATA_TYPE_DISCRETE_F1, body=body + b"\x01\x02")))
    assert len(d) == 3 and "2 bytes after" in d.errors[0]


@pytest.mark.parametrize("length,mode", [(8, PACKED), (16, PACKED), (12, UNPACKED_LSB_PADDED), (12, UNPACKED_MSB_PADDED)])
def test_analog_round_trip(length, mode):
    rng = np.random.default_rng(length + mode)
    samples = rng.integers(0, 1 << length, (50, 3))
    body = build_analog_body(samples, length=length, mode=mode, factor=2)
    a = decode_analog(parse_packet(build_packet(channel_id=4, data_type=DATA_TYPE_ANALOG_F1, body=body, rtc=77)))
    assert a.errors == [] and a.subchannels == (0, 1, 2) and a.factor == 2 and a.rtc == 77
    assert np.array_equal(a.samples, samples)
    c = CsdwAnalog.parse(body[:4])
    assert (c.same, c.length, c.mode, c.total_subchannels) == (True, length, mode, 3)


def test_analog_layouts_not_decoded_say_why():
    body = build_analog_body(np.zeros((4, 1), int), length=8, mode=PACKED)
    odd = (int.from_bytes(body[:4], "little") & ~(63 << 2) | 12 << 2).to_bytes(4, "little") + body[4:]  # packed 12-bit
    a = decode_analog(parse_packet(build_packet(channel_id=4, data_type=DATA_TYPE_ANALOG_F1, body=odd)))
    assert len(a) == 0 and "packed 12-bit samples are not decoded" in a.errors[0]
    many = (int.from_bytes(body[:4], "little") & ~(1 << 28) | 5 << 16).to_bytes(4, "little")  # 5 CSDWs announced, 1 given
    a = decode_analog(parse_packet(build_packet(channel_id=4, data_type=DATA_TYPE_ANALOG_F1, body=many)))
    assert len(a) == 0 and "1 of 5 channel-specific data words" in a.errors[0]
