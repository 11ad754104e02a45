"""Intra-packet and secondary-header time stamps: one decoder for the four Chapter 10 time formats.

An intra-packet time stamp (IPTS) is 8 bytes, read as one little-endian 64-bit
value. Packet flags bit 6 says what it holds: 0, the 48-bit relative time
counter (10 MHz, upper 16 bits zero); 1, the time format of the secondary
header, packet flags bits 3-2. The secondary header's 8 time bytes use the same
layouts (``header.SecondaryHeader``). Each layout below is given as bits of that
64-bit value (bit 0 = the least significant bit of the first byte):

==========  ===========================================================  ===================================
format      bits                                                         value
==========  ===========================================================  ===================================
RTC         47-0 count (63-48 zero)                                      counts of 100 ns (caller correlates)
Ch4 binary  63-48 high order time, 47-32 low order time,                 ns since the start of the year:
            31-16 microseconds, 15-0 zero                                (high:low) x 10 ms + us x 1 us
IEEE-1588   63-32 seconds (MSLW), 31-0 nanoseconds (LSLW)                ns since the 1588 epoch
ERTC        63-0 count of a 1 GHz counter (LSLW first)                   ns of the counter (RTC = ERTC / 100)
==========  ===========================================================  ===================================

Settled against the IRIG 106 text as quoted (106-24R1, Chapter 11 §11.2.1.1 g and
Figures 11-4 to 11-6) in the irig106-time crate's requirements and standard
review: "00 = Chapter 4 binary weighted 48-bit time format. The two lsbs of the
64-bit packet secondary header time and IPTS shall be zero-filled"; Figure 11-4
"places 'Micro-Seconds Word' and 'Reserved' in the first long word and 'High
Order Time Word' and 'Low Order Time Word' in the second" (the figures put bit 31
on the left: reserved in bits 15-0, microseconds in 31-16, low order in 47-32,
high order in 63-48); "The 32 bits indicating seconds shall be placed into the
MSLW ... and the 32 bits indicating nanoseconds ... into the LSLW"; "64-bit binary
extended relative time counter (ERTC) with 1-nanosecond resolution ... derived
from a free-running 1-gigahertz (GHz) clock ... (RTC = ERTC/100)"; Chapter 4 §4.7:
the low order time word has a resolution of 10 ms, the high order word 655.36 s.

irig106lib (``i106_time.h``: ``SuI106Ch4_Binary_Time`` = high, low, microseconds
from byte 0; ``SuERTC_Time`` = LSLW, MSLW; ``i106_time.c`` decodes Ch4 binary
and IEEE-1588 but leaves ERTC "reserved") and pychapter10 (``packet.py`` reads
the secondary time as one ``u64`` and never interprets it) were read too:
irig106lib's Ch4 order contradicts the zero-filled two lsbs and Figure 11-4, so
this module follows the standard, as does a C++ Chapter 10 parser found in the
code corpus (``ch10_time.h``: ``Ch10BinWtTimeStampFmt`` = reserved, microsec,
low_order, high_order; IEEE-1588 ns word then seconds word; ERTC LSLW, MSLW). Before it, ``decom/decommutator.py`` used this
Ch4 order with ERTC at 1 ns, and ``header.py`` the irig106lib-like order with
ERTC at 10 ns: the same 8 bytes gave two times.
"""

from __future__ import annotations

import numpy as np

from .rtc import RTC_MASK

__all__ = ["TIME_CH4", "TIME_IEEE1588", "TIME_ERTC", "TIME_RESERVED", "IPTS_RTC", "RTC_MASK",
           "ipts_format", "time_stamp_ns", "time_stamps_ns", "build_time_stamp", "TimeStampError"]

# Packet flags bits 3-2 (the secondary header time format).
TIME_CH4, TIME_IEEE1588, TIME_ERTC, TIME_RESERVED = 0, 1, 2, 3
IPTS_RTC = -1  # packet flags bit 6 clear: the stamps hold the 48-bit RTC
_CH4_TICK_NS, _US_NS, _S_NS = 10_000_000, 1_000, 1_000_000_000


class TimeStampError(ValueError):
    """A time stamp format that cannot be decoded (reserved)."""


def ipts_format(ipts_source: bool, secondary_time_format: int) -> int:
    """What a packet's intra-packet time stamps hold: ``IPTS_RTC`` or a ``TIME_*`` format."""
    return secondary_time_format if ipts_source else IPTS_RTC


def _ns(t, fmt: int):
    """The value of 64-bit stamps ``t`` (a Python int or a uint64 array) in format ``fmt`` (see the table)."""
    if fmt == IPTS_RTC:
        return t & RTC_MASK
    if fmt == TIME_IEEE1588:
        return (t >> 32) * _S_NS + (t & 0xFFFF_FFFF)
    if fmt == TIME_ERTC:
        return t
    if fmt == TIME_CH4:
        return (t >> 32) * _CH4_TICK_NS + ((t >> 16) & 0xFFFF) * _US_NS
    raise TimeStampError(f"reserved time format {fmt}")


def time_stamp_ns(raw: bytes | memoryview, fmt: int) -> int:
    """Decode one 8-byte time stamp (RTC: counts; other formats: ns, see the table)."""
    if len(raw) < 8:
        raise TimeStampError(f"time stamp needs 8 bytes, got {len(raw)}")
    return _ns(int.from_bytes(raw[:8], "little"), fmt)


def time_stamps_ns(stamps: np.ndarray, fmt: int) -> np.ndarray:
    """Decode an array of 64-bit stamps (as ``uint64``) at once; returns ``int64``."""
    return _ns(stamps.astype(np.uint64, copy=False), fmt).astype(np.int64)


def build_time_stamp(fmt: int, *, rtc: int = 0, seconds: int = 0, nanoseconds: int = 0, high_time: int = 0,
                     low_time: int = 0, microseconds: int = 0, ertc: int = 0) -> bytes:
    """The 8 bytes of a time stamp in ``fmt`` (the inverse of ``time_stamp_ns``' layouts)."""
    if fmt == IPTS_RTC:
        value = rtc & RTC_MASK
    elif fmt == TIME_IEEE1588:
        value = (seconds << 32) | nanoseconds
    elif fmt == TIME_ERTC:
        value = ertc
    elif fmt == TIME_CH4:
        value = (high_time << 48) | (low_time << 32) | (microseconds << 16)
    else:
        raise TimeStampError(f"reserved time format {fmt}")
    return value.to_bytes(8, "little")
