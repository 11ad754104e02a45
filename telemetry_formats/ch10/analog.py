"""Analog format 1 (data type 0x21): one packet's samples as an array.

IRIG 106 Chapter 11, 11.2.5. CSDW (one, or one per subchannel when SAME is
clear): bits 28 SAME, 27-24 FACTOR (the subchannel's sample rate is the
channel's divided by 2**FACTOR), 23-16 TOTCHAN (subchannels, 0 = 256), 15-8
SUBCHAN, 7-2 LENGTH (bits per sample, 0 = 64), 1-0 MODE (0 packed, 1 unpacked
lsb padded, 3 unpacked msb padded). Samples follow in subchannel order, with no
time stamps: the first is at the packet time, the sample rate is in TMATS.

Decoded here: subchannels sharing one FACTOR, packed 8- or 16-bit samples and
unpacked samples of up to 16 bits (one 16-bit word each). Other layouts decode
to no samples with the reason in ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from construct import BitsInteger, BitStruct, ByteSwapped, Flag, Padding

from .packet import Packet

__all__ = ["DATA_TYPE_ANALOG_F1", "CsdwAnalog", "Analog", "decode_analog", "build_analog_body"]

DATA_TYPE_ANALOG_F1 = 0x21
PACKED, UNPACKED_LSB_PADDED, UNPACKED_MSB_PADDED = 0, 1, 3

CsdwAnalog = ByteSwapped(BitStruct(
    Padding(3),  # bits 31-29 reserved
    "same" / Flag,  # bit 28: this CSDW holds for every subchannel
    "factor" / BitsInteger(4),  # bits 27-24
    "total_subchannels" / BitsInteger(8),  # bits 23-16, 0 = 256
    "subchannel" / BitsInteger(8),  # bits 15-8
    "length" / BitsInteger(6),  # bits 7-2, 0 = 64
    "mode" / BitsInteger(2),  # bits 1-0
))


@dataclass
class Analog:
    """The samples of one analog F1 packet: ``samples[i, j]`` is sample i of subchannel j."""

    channel_id: int
    rtc: int  # the packet time: the first sample's
    subchannels: tuple[int, ...]
    length: int  # bits per sample
    factor: int  # sample rate divisor exponent
    samples: np.ndarray  # uint16 or uint8 (n, subchannels), raw A/D values
    errors: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)


def _fields(word: int) -> dict:
    return dict(same=bool(word >> 28 & 1), factor=word >> 24 & 15, total=(word >> 16 & 255) or 256,
                subchannel=word >> 8 & 255, length=(word >> 2 & 63) or 64, mode=word & 3)


def decode_analog(packet: Packet) -> Analog:
    """Decode one analog F1 packet; never raises on bad content."""
    body = packet.body
    first = _fields(int.from_bytes(body[:4], "little")) if len(body) >= 4 else None
    if first is None:
        return Analog(packet.channel_id, packet.header.rtc, (), 0, 0, np.zeros((0, 0), np.uint16),
                      [f"offset {packet.offset}: no channel-specific data word"])
    n_csdw = 1 if first["same"] else first["total"]
    csdws = [first] + [_fields(int.from_bytes(body[4 * i: 4 * i + 4], "little")) for i in range(1, n_csdw)
                       if 4 * i + 4 <= len(body)]
    subs = tuple(c["subchannel"] for c in csdws) if not first["same"] else tuple(range(first["total"]))
    out = Analog(packet.channel_id, packet.header.rtc, subs, first["length"], first["factor"], np.zeros((0, len(subs)), np.uint16))
    why = None
    if len(csdws) < n_csdw:
        why = f"{len(csdws)} of {n_csdw} channel-specific data words present"
    elif any((c["length"], c["mode"], c["factor"]) != (first["length"], first["mode"], first["factor"]) for c in csdws):
        why = "subchannels with different sample sizes, modes or rates are not decoded"
    elif first["mode"] == PACKED and first["length"] not in (8, 16):
        why = f"packed {first['length']}-bit samples are not decoded"
    elif first["mode"] != PACKED and first["length"] > 16:
        why = f"unpacked {first['length']}-bit samples are not decoded"
    elif first["mode"] == 2:
        why = "reserved packing mode 2"
    if why:
        out.errors.append(f"offset {packet.offset}: {why}")
        return out
    data = packet.body[4 * n_csdw:]
    if first["mode"] == PACKED and first["length"] == 8:
        flat = np.frombuffer(data, np.uint8)
    else:
        flat = np.frombuffer(data, "<u2", count=len(data) // 2)
        if first["mode"] == UNPACKED_LSB_PADDED:  # left-justified in its word
            flat = flat >> np.uint16(16 - first["length"])
        elif first["mode"] == UNPACKED_MSB_PADDED:
            flat = flat & np.uint16((1 << first["length"]) - 1)
    n = len(flat) // len(subs)
    out.samples = np.array(flat[: n * len(subs)].reshape(n, len(subs)))
    return out


def build_analog_body(samples: np.ndarray, *, length: int = 16, mode: int = PACKED, factor: int = 0) -> bytes:
    """Build an analog F1 body, one CSDW for all subchannels: ``samples`` (n, subchannels)."""
    samples = np.asarray(samples)
    n_sub = samples.shape[1]
    csdw = CsdwAnalog.build(dict(same=True, factor=factor, total_subchannels=n_sub & 255, subchannel=0,
                                 length=length & 63, mode=mode))
    flat = samples.reshape(-1)
    if mode == PACKED and length == 8:
        raw = flat.astype(np.uint8).tobytes()
    elif mode == UNPACKED_LSB_PADDED:
        raw = (flat.astype(np.uint16) << np.uint16(16 - length)).astype("<u2").tobytes()
    else:
        raw = flat.astype("<u2").tobytes()
    return csdw + raw
