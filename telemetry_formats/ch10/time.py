"""IRIG 106 Chapter 10 Time Data Format 1 (data type 0x11) and RTC-to-UTC correlation.

A time packet carries BCD time (day-of-year or day/month/year format) sampled at
the instant marked by its header RTC. The construct definitions below are the
single source of truth for the CSDW and the time words (each a little-endian
16-bit word, fields listed from bit 15 down, as in the standard's figures).
``RtcCorrelator`` turns the (RTC, time) pairs into an RTC -> UTC mapping; it does
no I/O and reads no clock.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import IntEnum

import numpy as np
from construct import Adapter, BitsInteger, BitStruct, ByteSwapped, ConstructError, Flag, Padding, Struct, Switch, this

from .packet import Packet
from .rtc import NS_PER_TICK, RTC_MASK, rtc_delta

__all__ = [
    "DATA_TYPE_TIME_F1", "DATE_DOY", "DATE_DMY", "TimeSource", "TimeFormat", "TimeDataError",
    "TimeF1Csdw", "TimeF1Body", "TimeF1", "parse_time_f1", "parse_time_f1_body",
    "build_time_f1_body", "RtcCorrelator",
]  # fmt: skip

DATA_TYPE_TIME_F1 = 0x11
DATE_DOY, DATE_DMY = 0, 1  # CSDW bit 9
_EPOCH = datetime(1970, 1, 1)
_NS_PER_DAY = 86_400 * 1_000_000_000


class TimeSource(IntEnum):
    """CSDW SRC (bits 3-0): where the recorder's time came from."""

    INTERNAL = 0
    EXTERNAL = 1
    INTERNAL_RMM = 2
    NONE = 15


class TimeFormat(IntEnum):
    """CSDW FMT (bits 7-4): the kind of time signal."""

    IRIG_B = 0
    IRIG_A = 1
    IRIG_G = 2
    RTC = 3  # the recorder's real-time clock
    UTC = 4  # UTC from GPS
    GPS = 5  # native GPS time (no leap-second offset)
    NONE = 15


class TimeDataError(ValueError):
    """Time data that is truncated, not BCD, or out of range."""


class BCD(Adapter):
    """A run of BCD digits, units in the low nibble, as one integer (times ``scale``).

    Parse and build both reject digits above 9 and values outside ``lo..hi``.
    """

    def __init__(self, bits: int, lo: int = 0, hi: int | None = None, scale: int = 1) -> None:
        super().__init__(BitsInteger(bits))
        self.bits, self.lo, self.scale = bits, lo, scale
        self.hi = hi if hi is not None else 10 ** ((bits + 3) // 4) - 1

    def _decode(self, obj: int, context, path) -> int:
        value, weight, raw = 0, 1, obj
        while raw:
            digit = raw & 0xF
            if digit > 9:
                raise TimeDataError(f"{_field(path)}: invalid BCD digit {digit:X} in 0x{obj:X}")
            value += digit * weight
            raw >>= 4
            weight *= 10
        self._check(value, path)
        return value * self.scale

    def _encode(self, obj: int, context, path) -> int:
        value, rest = divmod(int(obj), self.scale)
        if rest:
            raise TimeDataError(f"{_field(path)}: {obj} is not a multiple of {self.scale}")
        self._check(value, path)
        return int(str(value), 16)  # decimal digits as nibbles

    def _check(self, value: int, path) -> None:
        if not self.lo <= value <= self.hi:
            raise TimeDataError(f"{_field(path)}: {value} outside {self.lo}..{self.hi}")


def _field(path) -> str:
    return str(path).rsplit(" -> ", 1)[-1]


def _word(*fields) -> ByteSwapped:
    """A little-endian 16-bit word whose fields are listed from bit 15 down."""
    return ByteSwapped(BitStruct(*fields))


# Channel-specific data word (IRIG 106-07 figure 10-16a; ITS from 106-17 chapter 11).
TimeF1Csdw = ByteSwapped(
    BitStruct(
        Padding(16),  # bits 31-16 reserved
        "irig_time_source" / BitsInteger(4),  # ITS, bits 15-12 (106-17 and later)
        Padding(2),  # bits 11-10 reserved
        "date_format" / BitsInteger(1),  # bit 9: 0 day of year, 1 day/month/year
        "leap_year" / Flag,  # bit 8
        "time_format" / BitsInteger(4),  # FMT, bits 7-4
        "time_source" / BitsInteger(4),  # SRC, bits 3-0
    )
)

# Words 0 and 1, common to both date formats.
TimeOfDay = Struct(
    "w0" / _word(
        Padding(1),
        "seconds" / BCD(7, hi=60),  # TSn Sn (60 during a leap second)
        "milliseconds" / BCD(8, scale=10),  # Hmn Tmn
    ),
    "w1" / _word(
        Padding(2),
        "hours" / BCD(6, hi=23),  # THn Hn
        Padding(1),
        "minutes" / BCD(7, hi=59),  # TMn Mn
    ),
)

DayOfYearDate = Struct(
    "w2" / _word(Padding(6), "day_of_year" / BCD(10, lo=1, hi=366)),  # HDn TDn Dn
)

DayMonthYearDate = Struct(
    "w2" / _word(
        Padding(3),
        "month" / BCD(5, lo=1, hi=12),  # TOn On
        "day" / BCD(8, lo=1, hi=31),  # TDn Dn
    ),
    "w3" / _word(Padding(2), "year" / BCD(14, lo=1, hi=3999)),  # OYn HYn TYn Yn
)

TimeF1Body = Struct(
    "csdw" / TimeF1Csdw,
    "time" / TimeOfDay,
    "date" / Switch(this.csdw.date_format, {DATE_DOY: DayOfYearDate, DATE_DMY: DayMonthYearDate}),
)


def _flat(words: dict) -> dict:
    """Merge the per-word containers into one dict of fields."""
    fields = (w.items() for w in words.values() if isinstance(w, dict))
    return {k: v for items in fields for k, v in items if not k.startswith("_")}


@dataclass(frozen=True, slots=True)
class TimeF1:
    """A decoded time packet: CSDW fields, the date, the time of day and the packet RTC."""

    time_source: int
    time_format: int
    leap_year: bool
    date_format: int
    irig_time_source: int
    hours: int
    minutes: int
    seconds: int
    milliseconds: int
    day_of_year: int | None = None  # day-of-year format
    year: int | None = None  # day/month/year format
    month: int | None = None
    day: int | None = None
    rtc: int | None = None  # header RTC of the packet: the instant this time applies to

    @property
    def ns_of_day(self) -> int:
        """Nanoseconds since midnight (a leap second 60 counts as the next second)."""
        s = (self.hours * 60 + self.minutes) * 60 + self.seconds
        return s * 1_000_000_000 + self.milliseconds * 1_000_000

    def utc_ns(self, year: int | None = None) -> int:
        """Nanoseconds since 1970-01-01 (POSIX, no leap seconds).

        Day-of-year time needs ``year`` from the caller; day/month/year time uses
        its own year. Native GPS time (format 5) is returned without a UTC offset.
        """
        if self.date_format == DATE_DMY:
            d = date(self.year, self.month, self.day)
        else:
            if year is None:
                raise TypeError("day-of-year time needs the year")
            if self.day_of_year > 365 + calendar.isleap(year):
                raise TimeDataError(f"day {self.day_of_year} does not exist in {year}")
            d = date(year, 1, 1) + timedelta(days=self.day_of_year - 1)
        return (d.toordinal() - _EPOCH.toordinal()) * _NS_PER_DAY + self.ns_of_day

    def to_datetime(self, year: int | None = None) -> datetime:
        """The time as a naive UTC datetime (see ``utc_ns``)."""
        return _EPOCH + timedelta(microseconds=self.utc_ns(year) // 1000)


def parse_time_f1_body(body: bytes | memoryview, rtc: int | None = None) -> TimeF1:
    """Decode a time packet body (CSDW + time data); raise ``TimeDataError`` if invalid."""
    try:
        c = TimeF1Body.parse(bytes(body))
    except ConstructError as exc:
        msg = f"truncated or malformed time data ({len(body)} bytes): {exc}"
        raise TimeDataError(msg) from None
    f = dict(_flat(c.time), **_flat(c.date))
    if c.csdw.date_format == DATE_DMY:
        try:
            date(f["year"], f["month"], f["day"])
        except ValueError as exc:
            ymd = f"{f['year']}-{f['month']}-{f['day']}"
            raise TimeDataError(f"invalid date {ymd}: {exc}") from None
    csdw = {k: v for k, v in c.csdw.items() if not k.startswith("_")}
    return TimeF1(**csdw, **f, rtc=rtc)


def parse_time_f1(packet: Packet) -> TimeF1:
    """Decode a type 0x11 packet; its header RTC is kept as ``TimeF1.rtc``."""
    if packet.data_type != DATA_TYPE_TIME_F1:
        raise TimeDataError(f"data type 0x{packet.data_type:02X} is not time format 1")
    return parse_time_f1_body(packet.body, rtc=packet.header.rtc)


def build_time_f1_body(
    dt: datetime,
    fmt: str = "doy",
    source: int = TimeSource.EXTERNAL,
    time_format: int = TimeFormat.IRIG_B,
    irig_time_source: int = 0,
) -> bytes:
    """Encode ``dt`` (naive = UTC; truncated to 10 ms) as CSDW + time data.

    The result is ready for ``build_packet(data_type=0x11, body=...)``.
    """
    if fmt not in ("doy", "dmy"):
        raise ValueError(f"fmt must be 'doy' or 'dmy', not {fmt!r}")
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    date_format = DATE_DMY if fmt == "dmy" else DATE_DOY
    time = dict(
        w0=dict(seconds=dt.second, milliseconds=dt.microsecond // 10_000 * 10),
        w1=dict(hours=dt.hour, minutes=dt.minute),
    )
    if date_format == DATE_DMY:
        day = dict(w2=dict(month=dt.month, day=dt.day), w3=dict(year=dt.year))
    else:
        day = dict(w2=dict(day_of_year=dt.timetuple().tm_yday))
    csdw = dict(
        irig_time_source=irig_time_source,
        date_format=date_format,
        leap_year=calendar.isleap(dt.year),
        time_format=int(time_format),
        time_source=int(source),
    )
    return TimeF1Body.build(dict(csdw=csdw, time=time, date=day))


@dataclass(frozen=True, slots=True)
class _Line:
    """One piece of the RTC -> UTC mapping, valid from ``rtc0`` on.

    Output = ``utc0`` + elapsed + what is left of ``offset_ns``: the offset (output minus
    the time source's line at ``rtc0``) shrinks by ``rate`` ns per ns elapsed until it is
    gone, so a correction is slewed in, never stepped (slope 1 - rate > 0: times keep going
    forward). ``offset_ns`` 0 is a plain line.
    """

    rtc0: int
    utc0: int
    offset_ns: int = 0
    rate: float = 0.0

    def map(self, delta_ns: np.ndarray) -> np.ndarray:
        out = delta_ns + np.int64(self.utc0)
        if self.offset_ns and np.min(delta_ns, initial=0) * self.rate < abs(self.offset_ns):  # (slewing)
            left = np.maximum(abs(self.offset_ns) - (np.maximum(delta_ns, 0) * self.rate).astype(np.int64), 0)
            out = out + (left if self.offset_ns > 0 else -left)
        return out


class RtcCorrelator:
    """Maps the 48-bit, 10 MHz relative time counter to UTC from time packets.

    Each ``observe`` re-anchors on the latest (RTC, UTC) pair, so slow drift never
    accumulates; an observation that misses the prediction by more than ``tolerance_ns``
    counts as a time jump (``time_jumps``). Before any observation ``to_utc_ns`` maps from
    the ``provisional`` anchor (the first packet's arrival time) if one was given, else
    returns RTC-relative nanoseconds.

    Times never step back for a correction up to ``max_slew_ns``: the mapping is
    continuous, and the correction is slewed in at ``slew_rate`` (5 %: RTC drift of a few
    us at each time packet, or 100 ms over 2 s; sample spacing is 5 % short or long
    meanwhile). The first time packet replaces arrival-time stamps, late by the network
    and start-up latency (2.7 ms on a quiet LAN, over 100 ms for a server that starts while
    datagrams queue): up to ``max_first_slew_ns`` (10 s) it is slewed at
    ``first_slew_rate`` (20 %: 2.7 ms in 14 ms, 100 ms in 0.5 s). A larger
    error is a real jump of the vehicle's time source and is stepped: forward it leaves a
    gap, backward the times that follow are earlier than those before (docs/recording.md).
    RTCs older than the latest observation map with the mapping in force before it.
    """

    def __init__(self, tolerance_ns: int = 1_000_000, *, max_slew_ns: int = 100_000_000,
                 slew_rate: float = 0.05, max_first_slew_ns: int = 10_000_000_000,
                 first_slew_rate: float = 0.2) -> None:
        self.tolerance_ns = tolerance_ns
        self.max_slew_ns = max_slew_ns
        self.slew_rate = slew_rate
        self.max_first_slew_ns = max_first_slew_ns
        self.first_slew_rate = first_slew_rate
        self.time_jumps = 0  # observations off the prediction by more than tolerance_ns
        self.steps = 0  # corrections larger than max_slew_ns, applied as a step
        self.observations = 0
        self.last_error_ns: int | None = None  # observed minus predicted, at the last observation
        self._line: _Line | None = None
        self._before: _Line | None = None  # the mapping for RTCs before self._line.rtc0
        self._locked = False

    @property
    def is_locked(self) -> bool:
        """True once a time packet has been observed."""
        return self._locked

    def provisional(self, rtc: int, arrival_ns: int) -> None:
        """Until the first time packet, map RTC ``rtc`` to ``arrival_ns`` (the first call counts)."""
        if self._line is None:
            self._line = _Line(int(rtc) & RTC_MASK, int(arrival_ns))

    def observe(self, rtc: int, utc_ns: int) -> bool:
        """Take one time packet's (header RTC, UTC ns); return True if it was a jump."""
        rtc, utc_ns = int(rtc) & RTC_MASK, int(utc_ns)
        jumped = False
        line = _Line(rtc, utc_ns)
        if self._line is not None:
            error = utc_ns - int(self.to_utc_ns(rtc))
            if self._locked:
                self.last_error_ns = error
                jumped = abs(error) > self.tolerance_ns
                self.time_jumps += jumped
            limit, rate = ((self.max_slew_ns, self.slew_rate) if self._locked
                           else (self.max_first_slew_ns, self.first_slew_rate))
            if abs(error) <= limit:
                line = _Line(rtc, utc_ns, -error, rate)
            else:
                self.steps += 1
            self._before = self._line
        self._line = line
        self._locked = True
        self.observations += 1
        return jumped

    def to_utc_ns(self, rtc: int | np.ndarray) -> np.ndarray:
        """UTC ns (int64) for RTC values, using the 48-bit wrap nearest the anchor."""
        r = np.asarray(rtc, dtype=np.int64)
        if self._line is None:
            return (r & np.int64(RTC_MASK)) * np.int64(NS_PER_TICK)
        delta = self._delta_ns(r, self._line)
        out = self._line.map(delta)
        if self._before is not None and (delta < 0).any():
            out = np.where(delta < 0, self._before.map(self._delta_ns(r, self._before)), out)
        return out

    def _delta_ns(self, r: np.ndarray, line: _Line) -> np.ndarray:
        return rtc_delta(r, line.rtc0) * np.int64(NS_PER_TICK)
