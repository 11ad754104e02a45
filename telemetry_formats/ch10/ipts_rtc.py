"""Intra-packet time stamps of bus and discrete packets as RTC counts, for a whole packet at once.

A packet's 8-byte intra-packet time stamps are 48-bit RTC counts (10 MHz) unless
the packet flags say otherwise (secondary header present and IPTS source bit 6
set): then each stamp is in the secondary header's time format. ``stamps_to_rtc``
returns RTC counts either way, placing secondary-format stamps on the RTC axis
through the packet header, whose RTC and secondary header time mark the same
instant.

The secondary formats are not decoded here a second time: every one of them is a
weighted sum of the stamp's four 16-bit words, and the weights are read from
``header.parse_secondary_header`` itself (its time of a stamp with one word set
to 1), so these times always agree with the packet's own secondary header time.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..checksum import sum16
from .header import RTC_HZ, parse_secondary_header
from .packet import Packet

__all__ = ["RTC_MASK", "stamps_are_rtc", "stamps_to_rtc"]

RTC_MASK = (1 << 48) - 1
_NS_PER_TICK = 1_000_000_000 // RTC_HZ


def stamps_are_rtc(packet: Packet) -> bool:
    """True when the packet's intra-packet time stamps are RTC counts."""
    h = packet.header
    return not (h.secondary_header and h.ipts_source and packet.secondary is not None)


@cache
def _word_weights(time_format: int) -> np.ndarray:
    """Nanoseconds per unit of each 16-bit word of a stamp in ``time_format`` (as header.py decodes it)."""
    weights = []
    for k in range(4):
        fields = (1 << 16 * k).to_bytes(8, "little") + b"\0\0"
        raw = fields + sum16(fields).to_bytes(2, "little")
        weights.append(parse_secondary_header(raw, time_format)["time_ns"])
    return np.array(weights, np.int64)


def stamps_to_rtc(packet: Packet, stamps: np.ndarray) -> np.ndarray:
    """(n,) uint64 raw 8-byte stamps of ``packet`` -> (n,) int64 RTC counts."""
    stamps = np.ascontiguousarray(stamps, dtype=np.uint64)
    if stamps_are_rtc(packet):
        return (stamps & np.uint64(RTC_MASK)).view(np.int64)
    words = stamps.view(np.uint16).reshape(-1, 4).astype(np.int64)  # little-endian words 0..3
    ns = words @ _word_weights(packet.header.secondary_time_format)
    assert packet.secondary is not None
    return packet.header.rtc + (ns - int(packet.secondary["time_ns"])) // _NS_PER_TICK
