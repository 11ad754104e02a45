"""Checksums used by IRIG 106 Chapter 10 and by the uplink packet.

All sums are plain little-endian word sums truncated to the field width, as the
standard defines them; CRC-16/CCITT-FALSE is used by our uplink packet.
"""

from __future__ import annotations

import binascii

import numpy as np

__all__ = ["sum8", "sum16", "sum32", "data_checksum", "crc16_ccitt"]


def sum8(data: bytes) -> int:
    """8-bit sum of all bytes."""
    return int(np.frombuffer(data, dtype=np.uint8).sum(dtype=np.uint64)) & 0xFF


def sum16(data: bytes) -> int:
    """16-bit sum of little-endian 16-bit words (an odd trailing byte is ignored)."""
    n = len(data) // 2
    return int(np.frombuffer(data, dtype="<u2", count=n).sum(dtype=np.uint64)) & 0xFFFF


def sum32(data: bytes) -> int:
    """32-bit sum of little-endian 32-bit words (a trailing partial word is ignored)."""
    n = len(data) // 4
    return int(np.frombuffer(data, dtype="<u4", count=n).sum(dtype=np.uint64)) & 0xFFFFFFFF


_DATA_SUMS = {1: (sum8, 1), 2: (sum16, 2), 3: (sum32, 4)}


def data_checksum(kind: int, data: bytes) -> int:
    """Chapter 10 data checksum of ``kind`` (packet flags bits 1-0: 1=8, 2=16, 3=32-bit)."""
    func, _ = _DATA_SUMS[kind]
    return func(data)


def data_checksum_size(kind: int) -> int:
    """Size in bytes of the data checksum field for flags bits 1-0 (0 = none)."""
    return 0 if kind == 0 else _DATA_SUMS[kind][1]


def crc16_ccitt(data: bytes, init: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR): ``binascii.crc_hqx``."""
    return binascii.crc_hqx(data, init)
