"""Intra-packet time stamps (IRIG 106 Chapter 11): 8 bytes per message, as RTC counts.

A packet's intra-packet time stamps are 48-bit RTC counts (10 MHz) in the low
bits of a little-endian 64-bit word, unless the packet flags say otherwise:
secondary header present and IPTS source bit set, in which case each stamp is
in the secondary header's time format (Chapter 4 binary, IEEE-1588 or ERTC).
``stamps_to_rtc`` returns RTC counts either way: secondary-format stamps are
placed on the RTC axis through the packet header, whose RTC and secondary
header time mark the same instant. This is the one place bus decoders read
time stamps, so a unified time decoding can replace it in one spot.
"""

from __future__ import annotations

import numpy as np

from .header import RTC_HZ, TIME_CH4, TIME_ERTC, TIME_IEEE1588
from .packet import Packet

__all__ = ["RTC_MASK", "stamps_to_rtc", "stamps_are_rtc"]

RTC_MASK = (1 << 48) - 1
_NS_PER_TICK = 1_000_000_000 // RTC_HZ


def stamps_are_rtc(packet: Packet) -> bool:
    """True when the packet's intra-packet time stamps are RTC counts."""
    h = packet.header
    return not (h.secondary_header and h.ipts_source and packet.secondary is not None)


def stamps_to_rtc(packet: Packet, stamps: np.ndarray) -> np.ndarray:
    """(n,) uint64 raw 8-byte stamps of ``packet`` -> (n,) int64 RTC counts."""
    stamps = np.asarray(stamps, dtype=np.uint64)
    if stamps_are_rtc(packet):
        return (stamps & np.uint64(RTC_MASK)).view(np.int64)
    fmt = packet.header.secondary_time_format
    lo = (stamps & np.uint64(0xFFFF_FFFF)).astype(np.int64)
    hi = (stamps >> np.uint64(32)).astype(np.int64)
    if fmt == TIME_IEEE1588:  # nanoseconds word first, then seconds
        ns = hi * 1_000_000_000 + lo
    elif fmt == TIME_CH4:  # reserved, high time, low time, microseconds (16-bit words)
        high, low, us = (lo >> 16) & 0xFFFF, hi & 0xFFFF, (hi >> 16) & 0xFFFF
        ns = ((high << 16) | low) * 10_000_000 + us * 1_000
    elif fmt == TIME_ERTC:  # 100 MHz counter
        ns = stamps.astype(np.int64) * 10
    else:
        return (stamps & np.uint64(RTC_MASK)).astype(np.int64)
    assert packet.secondary is not None
    return packet.header.rtc + (ns - int(packet.secondary["time_ns"])) // _NS_PER_TICK
