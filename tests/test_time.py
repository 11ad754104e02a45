"""Tests for Chapter 10 Time Data Format 1 and the RTC-to-UTC correlator."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry_formats.ch10.header import RTC_HZ
from telemetry_formats.ch10.packet import Packet, build_packet, parse_packet
from telemetry_formats.ch10.reader import iter_packets
from telemetry_formats.ch10.time import (
    DATE_DMY,
    DATE_DOY,
    RtcCorrelator,
    TimeDataError,
    TimeF1Body,
    TimeFormat,
    TimeSource,
    build_time_f1_body,
    parse_time_f1,
    parse_time_f1_body,
)

DATA = Path(__file__).resolve().parent / "data" / "ch10"
EPOCH = datetime(1970, 1, 1)
MOD = 1 << 48
SECOND = 1_000_000_000


def _ns(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1) * 1000


def _time_packets(name: str) -> list[Packet]:
    buf = (DATA / name).read_bytes()
    return [p for p in iter_packets(buf) if isinstance(p, Packet) and p.data_type == 0x11]


def _body(csdw: int, *words: int) -> bytes:
    return struct.pack(f"<I{len(words)}H", csdw, *words)


# --- build / parse round trip ---------------------------------------------------------

times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(3999, 12, 31, 23, 59, 59))


@given(
    dt=times,
    fmt=st.sampled_from(["doy", "dmy"]),
    source=st.sampled_from(list(TimeSource)),
    time_format=st.sampled_from(list(TimeFormat)),
    its=st.integers(0, 15),
    rtc=st.integers(0, MOD - 1),
)
def test_round_trip(dt, fmt, source, time_format, its, rtc):
    body = build_time_f1_body(dt, fmt, source=source, time_format=time_format, irig_time_source=its)
    raw = build_packet(channel_id=1, data_type=0x11, body=body, rtc=rtc)
    t = parse_time_f1(parse_packet(raw))
    expected = dt.replace(microsecond=dt.microsecond // 10_000 * 10_000)
    assert (t.time_source, t.time_format, t.irig_time_source) == (source, time_format, its)
    assert t.leap_year == (dt.year % 4 == 0 and (dt.year % 100 != 0 or dt.year % 400 == 0))
    assert t.rtc == rtc
    assert t.utc_ns(dt.year) == _ns(expected)
    assert t.to_datetime(dt.year) == expected
    if fmt == "dmy":
        assert t.date_format == DATE_DMY and (t.year, t.month, t.day) == (dt.year, dt.month, dt.day)
        assert t.utc_ns() == _ns(expected)  # the year travels in the packet
    else:
        assert t.date_format == DATE_DOY and t.day_of_year == dt.timetuple().tm_yday
        assert len(body) == 10


def test_golden_bytes_match_the_real_recording():
    """The first pcm.c10 time packet is exactly what we build for day 97, 09:03:06."""
    real = bytes(_time_packets("pcm.c10")[0].body)
    assert real == _body(0x00000001, 0x0600, 0x0903, 0x0097)
    assert build_time_f1_body(datetime(2023, 4, 7, 9, 3, 6)) == real


def test_aware_datetime_is_converted_to_utc():
    dt = datetime(2024, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    t = parse_time_f1_body(build_time_f1_body(dt, "dmy"))
    assert (t.year, t.month, t.day, t.hours, t.minutes) == (2024, 5, 31, 23, 30)


# --- real recordings --------------------------------------------------------------------


def test_pcm_time_packet():
    t = parse_time_f1(_time_packets("pcm.c10")[0])
    assert (t.time_source, t.time_format, t.date_format, t.leap_year) == (1, 0, DATE_DOY, False)
    assert (t.day_of_year, t.hours, t.minutes, t.seconds, t.milliseconds) == (97, 9, 3, 6, 0)
    assert t.to_datetime(2023) == datetime(2023, 4, 7, 9, 3, 6)


def test_discrete_time_packets_are_one_second_apart_and_correlate():
    times = [parse_time_f1(p) for p in _time_packets("discrete.c10")]
    assert len(times) == 61
    assert all(t.time_source == TimeSource.EXTERNAL and t.date_format == DATE_DOY for t in times)
    utc = np.array([t.utc_ns(2023) for t in times], dtype=np.int64)
    assert (np.diff(utc) == SECOND).all()
    rtc = np.array([t.rtc for t in times], dtype=np.int64)

    first = RtcCorrelator()
    first.observe(times[0].rtc, int(utc[0]))
    assert np.abs(first.to_utc_ns(rtc) - utc).max() < 1_000_000

    tracking = RtcCorrelator()
    for t, u in zip(times, utc):
        assert not tracking.observe(t.rtc, int(u))
    assert tracking.time_jumps == 0 and tracking.observations == 61


@pytest.mark.parametrize("name", ["pcm.c10", "discrete.c10"])
def test_agrees_with_pychapter10(name):
    """pychapter10 puts day-of-year time in the current year, so compare day of year."""
    c10 = pytest.importorskip("chapter10")
    theirs = [p for p in c10.C10(str(DATA / name)) if isinstance(p, c10.time.TimeF1)]
    ours = [parse_time_f1(p) for p in _time_packets(name)]
    assert len(theirs) == len(ours) > 0
    for a, b in zip(theirs, ours):
        assert (a.time_source, a.time_format, a.date_format, a.rtc) == (
            b.time_source, b.time_format, b.date_format, b.rtc,
        )
        assert a.time.timetuple().tm_yday == b.day_of_year
        assert a.time.time() == b.to_datetime(2023).time()


def test_dmy_agrees_with_pychapter10_both_ways():
    c10 = pytest.importorskip("chapter10")
    dt = datetime(2024, 2, 29, 13, 45, 7, 120000)
    ours = build_packet(channel_id=1, data_type=0x11, body=build_time_f1_body(dt, "dmy"))
    (theirs,) = list(c10.C10.from_string(ours))
    assert theirs.time == dt

    pkt = c10.time.TimeF1(data_type=0x11, channel_id=1, date_format=1, time_source=1)
    pkt.time = dt  # its constructor overwrites a time passed as an argument with now()
    assert parse_time_f1(parse_packet(bytes(pkt))).to_datetime() == dt


# --- invalid data -----------------------------------------------------------------------

DOY, DMY = 0x0000_0001, 0x0000_0201
OK_W0, OK_W1 = 0x0600, 0x0903


@pytest.mark.parametrize(
    "body",
    [
        _body(DOY, 0x060A, OK_W1, 0x0097),  # Tmn = A
        _body(DOY, 0x06F0, OK_W1, 0x0097),  # Hmn = F
        _body(DOY, 0x0C00, OK_W1, 0x0097),  # Sn = C
        _body(DOY, 0x6100, OK_W1, 0x0097),  # 61 s
        _body(DOY, OK_W0, 0x0960, 0x0097),  # 60 min
        _body(DOY, OK_W0, 0x2403, 0x0097),  # 24 h
        _body(DOY, OK_W0, OK_W1, 0x0000),  # day 0
        _body(DOY, OK_W0, OK_W1, 0x0367),  # day 367
        _body(DOY, OK_W0, OK_W1, 0x00B7),  # TDn = B
        _body(DMY, OK_W0, OK_W1, 0x1301, 0x2024),  # month 13
        _body(DMY, OK_W0, OK_W1, 0x0001, 0x2024),  # month 0
        _body(DMY, OK_W0, OK_W1, 0x0132, 0x2024),  # day 32
        _body(DMY, OK_W0, OK_W1, 0x0230, 0x2023),  # 30 February
        _body(DMY, OK_W0, OK_W1, 0x0229, 0x2023),  # 29 February, not a leap year
        _body(DMY, OK_W0, OK_W1, 0x0101, 0x0000),  # year 0
        _body(DMY, OK_W0, OK_W1, 0x0101, 0x20A4),  # TYn = A
        _body(DMY, OK_W0, OK_W1, 0x0101),  # year word missing
        _body(DOY, OK_W0, OK_W1),  # day word missing
        b"\x01\x00",  # not even a CSDW
    ],
)
def test_invalid_time_data_is_rejected(body):
    with pytest.raises(TimeDataError):
        parse_time_f1_body(body)


def test_reserved_bits_are_ignored_and_leap_second_is_accepted():
    t = parse_time_f1_body(_body(0xFFFF_F401, 0x8000 | 0x6000, 0xC080 | 0x2359, 0xFC00 | 0x0365))
    assert (t.hours, t.minutes, t.seconds, t.irig_time_source) == (23, 59, 60, 15)
    assert t.utc_ns(2023) == _ns(datetime(2024, 1, 1))  # POSIX: 23:59:60 reads as the next second


def test_day_366_needs_a_leap_year_and_doy_needs_a_year():
    t = parse_time_f1_body(_body(DOY, OK_W0, OK_W1, 0x0366))
    assert t.to_datetime(2024) == datetime(2024, 12, 31, 9, 3, 6)
    with pytest.raises(TimeDataError):
        t.utc_ns(2023)
    with pytest.raises(TypeError):
        t.utc_ns()


def test_build_rejects_out_of_range_fields():
    good = TimeF1Body.parse(_body(DOY, OK_W0, OK_W1, 0x0097))
    good.time.w1.hours = 24
    with pytest.raises(TimeDataError):
        TimeF1Body.build(good)


def test_wrong_data_type_is_rejected():
    raw = build_packet(channel_id=1, data_type=0x09, body=_body(DOY, OK_W0, OK_W1, 0x0097))
    with pytest.raises(TimeDataError):
        parse_time_f1(parse_packet(raw))


# --- RTC correlation --------------------------------------------------------------------

T0 = _ns(datetime(2024, 3, 1, 12))


def test_unlocked_correlator_returns_rtc_relative_ns():
    c = RtcCorrelator()
    assert not c.is_locked
    out = c.to_utc_ns(np.array([0, 12345, MOD - 1]))
    assert out.dtype == np.int64
    assert out.tolist() == [0, 1234500, (MOD - 1) * 100]


def test_correlator_handles_rtc_wrap():
    c = RtcCorrelator()
    c.observe(MOD - RTC_HZ, T0)  # one second before the counter wraps
    assert c.is_locked
    rtc = np.array([MOD - 2 * RTC_HZ, MOD - 1, 0, RTC_HZ // 2, RTC_HZ], dtype=np.int64)
    expected = [T0 - SECOND, T0 + SECOND - 100, T0 + SECOND, T0 + SECOND * 3 // 2, T0 + 2 * SECOND]
    assert c.to_utc_ns(rtc).tolist() == expected
    assert int(c.to_utc_ns(RTC_HZ // 2)) == T0 + SECOND * 3 // 2
    assert not c.observe(RTC_HZ, T0 + 2 * SECOND)  # consistent across the wrap
    assert c.time_jumps == 0 and c.last_error_ns == 0
    assert int(c.to_utc_ns(MOD - RTC_HZ)) == T0  # and backwards across it


def test_correlator_tracks_drift_and_counts_jumps():
    c = RtcCorrelator()
    c.observe(0, T0)
    assert not c.observe(RTC_HZ, T0 + SECOND + 500_000)  # 0.5 ms drift: re-anchor, no jump
    assert c.last_error_ns == 500_000
    assert int(c.to_utc_ns(2 * RTC_HZ)) == T0 + 2 * SECOND + 500_000
    assert c.observe(2 * RTC_HZ, T0 + 2 * SECOND + 5_500_000)  # 5 ms off: a jump
    assert c.time_jumps == 1
    assert int(c.to_utc_ns(3 * RTC_HZ)) == T0 + 3 * SECOND + 5_500_000
    assert c.observe(3 * RTC_HZ, T0 - 3600 * SECOND)  # backwards a whole hour
    assert c.time_jumps == 2 and c.observations == 4
    assert int(c.to_utc_ns(4 * RTC_HZ)) == T0 - 3599 * SECOND
