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


class RtcCorrelator:
    """Maps the 48-bit, 10 MHz relative time counter to UTC from time packets.

    Each ``observe`` re-anchors on the latest (RTC, UTC) pair, so slow drift
    never accumulates; an observation that misses the prediction by more than
    ``tolerance_ns`` also counts as a time jump. Before any observation
    ``to_utc_ns`` returns RTC-relative nanoseconds.
    """

    def __init__(self, tolerance_ns: int = 1_000_000) -> None:
        self.tolerance_ns = tolerance_ns
        self.time_jumps = 0
        self.observations = 0
        self.last_error_ns: int | None = None  # observed minus predicted, at the last observation
        self._rtc0 = 0
        self._utc0 = 0
        self._locked = False

    @property
    def is_locked(self) -> bool:
        """True once a time packet has been observed."""
        return self._locked

    def observe(self, rtc: int, utc_ns: int) -> bool:
        """Take one time packet's (header RTC, UTC ns); return True if it was a jump."""
        jumped = False
        if self._locked:
            self.last_error_ns = int(utc_ns) - int(self.to_utc_ns(rtc))
            jumped = abs(self.last_error_ns) > self.tolerance_ns
            self.time_jumps += jumped
        self._rtc0, self._utc0 = int(rtc) & RTC_MASK, int(utc_ns)
        self._locked = True
        self.observations += 1
        return jumped

    def to_utc_ns(self, rtc: int | np.ndarray) -> np.ndarray:
        """UTC ns (int64) for RTC values, using the 48-bit wrap nearest the anchor."""
        r = np.asarray(rtc, dtype=np.int64)
        if not self._locked:
            return (r & np.int64(RTC_MASK)) * np.int64(NS_PER_TICK)
        return rtc_delta(r, self._rtc0) * np.int64(NS_PER_TICK) + np.int64(self._utc0)
