"""Crashed-file recovery: open what a dead writer left (HDF5 lookup3 checksum, padded view, superblock EOA)."""

from __future__ import annotations

import io
import os
import struct

__all__ = ["lookup3"]


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum of HDF5 metadata (``H5_checksum_lookup3``)."""
    m = 0xFFFFFFFF
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & m
    k = 0
    while length > 12:
        a = (a + int.from_bytes(data[k:k + 4], "little")) & m
        b = (b + int.from_bytes(data[k + 4:k + 8], "little")) & m
        c = (c + int.from_bytes(data[k + 8:k + 12], "little")) & m
        a = ((a - c) & m) ^ _rot(c, 4); c = (c + b) & m  # noqa: E702
        b = ((b - a) & m) ^ _rot(a, 6); a = (a + c) & m  # noqa: E702
        c = ((c - b) & m) ^ _rot(b, 8); b = (b + a) & m  # noqa: E702
        a = ((a - c) & m) ^ _rot(c, 16); c = (c + b) & m  # noqa: E702
        b = ((b - a) & m) ^ _rot(a, 19); a = (a + c) & m  # noqa: E702
        c = ((c - b) & m) ^ _rot(b, 4); b = (b + a) & m  # noqa: E702
        length -= 12
        k += 12
    if length == 0:
        return c
    tail = data[k:k + length] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - _rot(b, 14)) & m  # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & m  # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & m  # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & m  # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & m  # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & m  # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & m  # noqa: E702
    return c


class _PaddedFile(io.RawIOBase):
    """A read-only view of a damaged file: ``size`` bytes long, zeros past the real end, and
    the superblock's "open for writing" flags cleared (what ``h5clear -s`` does, in memory only)."""

    def __init__(self, path: str, size: int) -> None:
        self._f = open(path, "rb")
        self.real = os.fstat(self._f.fileno()).st_size
        self.size = max(size, self.real)
        self._pos = 0
        head = bytearray(self._f.read(48))
        if len(head) == 48 and head[8] in (2, 3) and head[11]:
            head[11] = 0
            head[44:48] = lookup3(bytes(head[:44])).to_bytes(4, "little")
        self._head = bytes(head)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else (self._pos + offset if whence == 1 else self.size + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b) -> int:
        n = min(len(b), max(self.size - self._pos, 0))
        self._f.seek(self._pos)
        got = self._f.readinto(memoryview(b)[:n]) or 0
        if got < n:
            memoryview(b)[got:n] = bytes(n - got)
        if self._pos < len(self._head):
            k = min(n, len(self._head) - self._pos)
            memoryview(b)[:k] = self._head[self._pos:self._pos + k]
        self._pos += n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def _superblock_eoa(path: str) -> int | None:
    """End-of-file address a version 2/3 superblock records (None if not one)."""
    with open(path, "rb") as fh:
        head = fh.read(48)
    if head[:8] != b"\x89HDF\r\n\x1a\n" or len(head) < 36 or head[8] not in (2, 3) or head[9] != 8:
        return None
    return struct.unpack_from("<Q", head, 28)[0]
