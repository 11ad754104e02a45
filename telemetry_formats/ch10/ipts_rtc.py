"""Intra-packet time stamps of bus and discrete packets as RTC counts, for a whole packet at once.

A packet's 8-byte intra-packet time stamps are 48-bit RTC counts (10 MHz) unless
the packet flags say otherwise (secondary header present and IPTS source bit 6
set): then each stamp is in the secondary header's time format. ``stamps_to_rtc``
returns RTC counts either way, placing secondary-format stamps on the RTC axis
through the packet header, whose RTC and secondary header time mark the same
instant.

The stamps are decoded by ``ipts.time_stamps_ns``, the one decoder the secondary
header uses too, so these times always agree with the packet's own header time.
"""

from __future__ import annotations

import numpy as np

from .ipts import time_stamps_ns
from .packet import Packet
from .rtc import NS_PER_TICK, RTC_MASK

__all__ = ["RTC_MASK", "stamps_are_rtc", "stamps_to_rtc"]


def stamps_are_rtc(packet: Packet) -> bool:
    """True when the packet's intra-packet time stamps are RTC counts."""
    h = packet.header
    return not (h.secondary_header and h.ipts_source and packet.secondary is not None)


def stamps_to_rtc(packet: Packet, stamps: np.ndarray) -> np.ndarray:
    """(n,) uint64 raw 8-byte stamps of ``packet`` -> (n,) int64 RTC counts."""
    stamps = np.ascontiguousarray(stamps, dtype=np.uint64)
    if stamps_are_rtc(packet):
        return (stamps & np.uint64(RTC_MASK)).view(np.int64)
    ns = time_stamps_ns(stamps, packet.header.secondary_time_format)
    assert packet.secondary is not None
    return packet.header.rtc + (ns - int(packet.secondary["time_ns"])) // NS_PER_TICK
