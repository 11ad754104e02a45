"""Discrete format 1 (data type 0x29): one packet's events as arrays.

IRIG 106 Chapter 11, 11.2.6. CSDW bits 7-3 LENGTH (bits of discrete data, 0
means 32), bits 2-0 MODE (bit 0: 0 recorded when a state changes, 1 at a time
interval; bit 1: alignment, 0 lsb, 1 msb). Then fixed 12-byte records: an
8-byte intra-packet time stamp and a 32-bit word whose bit i is discrete i.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from construct import BitsInteger, BitStruct, ByteSwapped, Flag, GreedyRange, Int32ul, Int64ul, Padding, Struct

from .ipts_rtc import stamps_to_rtc
from .packet import Packet

__all__ = ["DATA_TYPE_DISCRETE_F1", "CsdwDiscrete", "DiscreteRecord", "BodyDiscrete", "Discretes", "decode_discrete", "build_discrete_body"]

DATA_TYPE_DISCRETE_F1 = 0x29

CsdwDiscrete = ByteSwapped(BitStruct(
    Padding(24),  # bits 31-8 reserved
    "length" / BitsInteger(5),  # bits 7-3
    Padding(1),  # bit 2 reserved
    "msb_aligned" / Flag,  # bit 1
    "time_interval" / Flag,  # bit 0: 0 recorded on a state change, 1 at a time interval
))

DiscreteRecord = Struct("time_stamp" / Int64ul, "states" / Int32ul)
BodyDiscrete = Struct("csdw" / CsdwDiscrete, "records" / GreedyRange(DiscreteRecord))
_RECORD = 12


@dataclass
class Discretes:
    """The events of one discrete F1 packet, one row per event."""

    channel_id: int
    rtc: np.ndarray  # int64: time stamp in RTC counts
    states: np.ndarray  # uint32: bit i = discrete i
    length: int  # discrete bits recorded (1..32)
    time_interval: bool  # recorded at a time interval (else on a state change)
    errors: list[str] = field(default_factory=list)  # "offset N: reason"

    def __len__(self) -> int:
        return len(self.rtc)

    def bits(self) -> np.ndarray:
        """(n, length) bool: discrete i of each event."""
        return ((self.states[:, None] >> np.arange(self.length, dtype=np.uint32)) & 1).astype(bool)


def decode_discrete(packet: Packet) -> Discretes:
    """Decode one discrete F1 packet; never raises on bad content."""
    body = packet.body
    errors = []
    csdw = int.from_bytes(body[:4], "little") if len(body) >= 4 else 0
    n, extra = divmod(max(len(body) - 4, 0), _RECORD)
    if extra:
        errors.append(f"offset {packet.offset}: {extra} bytes after the last of {n} discrete records")
    rec = np.frombuffer(body, np.uint32, count=3 * n, offset=4 if len(body) >= 4 else 0).reshape(n, 3)
    stamps = rec[:, 0].astype(np.uint64) | rec[:, 1].astype(np.uint64) << np.uint64(32)
    return Discretes(packet.channel_id, stamps_to_rtc(packet, stamps), rec[:, 2].copy(),
                     ((csdw >> 3) & 31) or 32, bool(csdw & 1), errors)


def build_discrete_body(rtc: np.ndarray, states: np.ndarray, *, length: int = 32, time_interval: bool = False) -> bytes:
    """Build a discrete F1 body from (n,) time stamps and (n,) 32-bit states."""
    csdw = CsdwDiscrete.build(dict(length=length & 31, msb_aligned=False, time_interval=time_interval))
    rec = np.zeros((len(rtc), 3), "<u4")
    rec[:, :2] = np.asarray(rtc, "<u8").view("<u4").reshape(-1, 2)
    rec[:, 2] = states
    return csdw + rec.tobytes()
