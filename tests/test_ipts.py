"""One decoder for intra-packet and secondary-header time stamps: known bytes of each format, both callers.

None of the real recordings the project carries (tests/data/ch10) or that the code
corpora held (pychapter10's pcm.c10, ethernet.c10) has a secondary header: every
packet there has packet flags bits 7 and 6 clear. The bytes below are built as
IRIG 106 Chapter 11 §11.2.1.1 g and Figures 11-4 to 11-6 lay them out.
"""

from __future__ import annotations

import numpy as np
import pytest

from telemetry_formats.ch10.header import build_secondary_header, parse_secondary_header
from telemetry_formats.ch10.ipts import (
    IPTS_RTC,
    TIME_CH4,
    TIME_ERTC,
    TIME_IEEE1588,
    TIME_RESERVED,
    TimeStampError,
    build_time_stamp,
    ipts_format,
    time_stamp_ns,
    time_stamps_ns,
)
from telemetry_formats.ch10.packet import build_packet, parse_packet
from telemetry_formats.ch10.pcm import DATA_TYPE_PCM_F1, PcmLayout, PcmMode, build_pcm_body
from telemetry_formats.decom import Decommutator
from telemetry_formats.paramdb import FrameFormat, ParameterDatabase

# (format, the 8 bytes as sent, the value): written out by hand from the standard's figures.
KNOWN = [
    # RTC: 48-bit count, 16 high-order zero bits.
    (IPTS_RTC, bytes.fromhex("0605040302010000"), 0x010203040506),
    # Ch4 binary: zero word, microseconds 0x0506, low order 0x0304, high order 0x0102.
    (TIME_CH4, bytes.fromhex("0000060504030201"), ((0x0102 << 16) | 0x0304) * 10_000_000 + 0x0506 * 1_000),
    # Ch4: day 100 12:00:00.250 + 125 us = 8,683,200.25 s -> 868,320,025 tens of ms.
    (TIME_CH4, b"\0\0" + (125).to_bytes(2, "little") + (868_320_025 & 0xFFFF).to_bytes(2, "little")
     + (868_320_025 >> 16).to_bytes(2, "little"), 8_683_200_250_125_000),
    # IEEE-1588: nanoseconds (LSLW) 123, then seconds (MSLW) 1,700,000,000.
    (TIME_IEEE1588, (123).to_bytes(4, "little") + (1_700_000_000).to_bytes(4, "little"),
     1_700_000_000 * 10**9 + 123),
    # ERTC: a 64-bit count of 1 ns, least significant long word first.
    (TIME_ERTC, bytes.fromhex("0700000000010000"), 2**40 + 7),
]


@pytest.mark.parametrize(("fmt", "raw", "value"), KNOWN)
def test_known_bytes_decode_the_same_one_at_a_time_and_in_arrays(fmt, raw, value):
    assert time_stamp_ns(raw, fmt) == value
    stamps = np.frombuffer(raw * 3, "<u8")
    assert time_stamps_ns(stamps, fmt).tolist() == [value] * 3


def test_builder_writes_the_known_bytes():
    assert build_time_stamp(TIME_CH4, high_time=0x0102, low_time=0x0304, microseconds=0x0506) == KNOWN[1][1]
    assert build_time_stamp(TIME_IEEE1588, seconds=1_700_000_000, nanoseconds=123) == KNOWN[3][1]
    assert build_time_stamp(TIME_ERTC, ertc=2**40 + 7) == KNOWN[4][1]
    assert build_time_stamp(IPTS_RTC, rtc=0x010203040506) == KNOWN[0][1]


@pytest.mark.parametrize(("fmt", "raw", "value"), [k for k in KNOWN if k[0] != IPTS_RTC])
def test_secondary_header_reads_the_same_bytes_to_the_same_time(fmt, raw, value):
    fields = {TIME_CH4: ("high_time", "low_time", "microseconds"), TIME_IEEE1588: ("seconds", "nanoseconds"),
              TIME_ERTC: ("ertc",)}[fmt]
    # Build through the construct definition from the decoded fields, check the bytes, then parse back.
    parsed = parse_secondary_header(raw + b"\0\0" + _sum16(raw).to_bytes(2, "little"), fmt)
    assert parsed["time_ns"] == value
    again = build_secondary_header(fmt, **{k: parsed[k] for k in fields})
    assert again[:8] == raw


def _sum16(raw: bytes) -> int:
    return sum(int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2)) & 0xFFFF


def test_reserved_format_is_an_error():
    with pytest.raises(TimeStampError):
        time_stamp_ns(b"\0" * 8, TIME_RESERVED)
    with pytest.raises(TimeStampError):
        time_stamp_ns(b"\0" * 7, TIME_ERTC)
    assert ipts_format(False, TIME_ERTC) == IPTS_RTC and ipts_format(True, TIME_ERTC) == TIME_ERTC


FRAME = FrameFormat(name="t", words_per_minor=8, word_length=16, sync_pattern=0xFE6B2840, sync_length=32,
                    bit_rate=1_000_000)


@pytest.mark.parametrize(("fmt", "raw", "value"), [k for k in KNOWN if k[0] != IPTS_RTC])
def test_decommutator_times_minor_frames_with_the_same_decoder(fmt, raw, value):
    """A PCM packet whose intra-packet stamps are secondary-header time (packet flags bit 6)."""
    layout = PcmLayout(frame=FRAME, mode=PcmMode.UNPACKED)
    words = np.zeros((4, FRAME.words_per_minor), np.uint64)
    stamp = int.from_bytes(raw, "little")
    step = 1 << 16 if fmt == TIME_CH4 else 1_000  # one microsecond (Ch4) or 1000 counts later each frame
    times = np.array([stamp + i * step for i in range(4)], np.uint64)
    secondary = {TIME_CH4: dict(high_time=0, low_time=0, microseconds=0), TIME_IEEE1588: dict(seconds=0, nanoseconds=0),
                 TIME_ERTC: dict(ertc=0)}[fmt]
    raw_pkt = build_packet(channel_id=5, data_type=DATA_TYPE_PCM_F1, body=build_pcm_body(layout, words, times),
                           secondary_time=secondary, secondary_time_format=fmt, ipts_source=True)
    res = Decommutator(ParameterDatabase(frame=FRAME)).feed(parse_packet(raw_pkt))
    assert not res.errors
    assert res.frames.t_ns.tolist() == [value + i * 1_000 for i in range(4)]  # 1 us apart in every format
