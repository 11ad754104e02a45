"""Vectorized bit-stream helpers for PCM: storage order, field extraction, sync search.

A PCM bit stream is handled here as a numpy ``uint8`` array in transmission
order, most significant bit first ("big-endian bit stream"). Chapter 10 stores
that stream in little-endian 16-bit units (or 32-bit units in 32-bit alignment)
with the first-sent bit in the unit's most significant bit; ``to_bitstream`` and
``from_bitstream`` convert between the two.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_bitstream", "from_bitstream", "extract", "find_pattern", "pack_fields"]

_PAD = 8  # zero bytes appended so that gathers past the end stay in bounds


def to_bitstream(data: bytes | memoryview | np.ndarray, align32: bool = False) -> np.ndarray:
    """Chapter 10 PCM storage (LE 16- or 32-bit units) to a transmission-order byte array."""
    raw = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    unit = 4 if align32 else 2
    n = len(raw) - len(raw) % unit
    out = raw[:n].reshape(-1, unit)[:, ::-1].reshape(-1)
    return np.ascontiguousarray(out)


def from_bitstream(stream: np.ndarray, align32: bool = False) -> bytes:
    """Transmission-order bytes to Chapter 10 storage, zero-padded to whole units."""
    unit = 4 if align32 else 2
    pad = -len(stream) % unit
    if pad:
        stream = np.concatenate([stream, np.zeros(pad, np.uint8)])
    return stream.reshape(-1, unit)[:, ::-1].tobytes()


def extract(stream: np.ndarray, bitpos: np.ndarray, width: int) -> np.ndarray:
    """Read ``width``-bit (1..57) MSB-first fields at the given bit positions.

    ``bitpos`` may have any shape; the result has the same shape, dtype uint64.
    Positions past the end read as zero bits.
    """
    if not 1 <= width <= 57:
        raise ValueError(f"field width {width} out of range 1..57")
    padded = np.concatenate([stream, np.zeros(_PAD, np.uint8)])
    pos = np.asarray(bitpos, dtype=np.int64)
    byte = pos >> 3
    shift = (pos & 7).astype(np.uint64)
    nbytes = (width + 7 + 7) // 8  # bytes touched, worst case
    acc = np.zeros(pos.shape, np.uint64)
    for k in range(nbytes):
        acc = (acc << np.uint64(8)) | padded[byte + k].astype(np.uint64)
    total = np.uint64(8 * nbytes)
    acc = acc >> (total - shift - np.uint64(width))
    return acc & np.uint64((1 << width) - 1)


def _shifted_bytes(stream: np.ndarray, s: int) -> np.ndarray:
    """The stream read from bit offset ``s`` (0..7), one byte per input byte."""
    if s == 0:
        return stream
    nxt = np.concatenate([stream[1:], np.zeros(1, np.uint8)])
    return ((stream << s) | (nxt >> (8 - s))).astype(np.uint8)


def find_pattern(stream: np.ndarray, pattern: int, nbits: int, mask: int | None = None) -> np.ndarray:
    """All bit positions where the ``nbits``-bit ``pattern`` starts (ascending, int64).

    The whole-byte prefix of the pattern is searched in each of the 8 bit phases
    with vectorized comparisons; candidates are then verified on the full pattern.
    """
    if mask is None:
        mask = (1 << nbits) - 1
    total_bits = len(stream) * 8
    if total_bits < nbits or nbits <= 0:
        return np.zeros(0, np.int64)
    prefix_bytes = min(nbits // 8, 7)
    hits = []
    if prefix_bytes == 0:
        cand = np.arange(0, total_bits - nbits + 1, dtype=np.int64)
        hits.append(cand)
    else:
        top = (pattern >> (nbits - 8 * prefix_bytes)) & ((1 << (8 * prefix_bytes)) - 1)
        tmask = (mask >> (nbits - 8 * prefix_bytes)) & ((1 << (8 * prefix_bytes)) - 1)
        want = [(top >> (8 * (prefix_bytes - 1 - k))) & 0xFF for k in range(prefix_bytes)]
        wmask = [(tmask >> (8 * (prefix_bytes - 1 - k))) & 0xFF for k in range(prefix_bytes)]
        for s in range(8):
            sh = _shifted_bytes(stream, s)
            m = len(sh) - prefix_bytes + 1
            if m <= 0:
                continue
            ok = (sh[:m] & wmask[0]) == want[0]
            for k in range(1, prefix_bytes):
                ok &= (sh[k : k + m] & wmask[k]) == want[k]
            hits.append(np.flatnonzero(ok).astype(np.int64) * 8 + s)
    cand = np.sort(np.concatenate(hits)) if hits else np.zeros(0, np.int64)
    cand = cand[cand + nbits <= total_bits]
    if len(cand) == 0:
        return cand
    if nbits <= 57:
        vals = extract(stream, cand, nbits)
        keep = (vals & np.uint64(mask)) == np.uint64(pattern & mask)
    else:
        hi_bits = nbits - 32
        hi = extract(stream, cand, hi_bits)
        lo = extract(stream, cand + hi_bits, 32)
        keep = ((hi & np.uint64(mask >> 32)) == np.uint64((pattern & mask) >> 32)) & (
            (lo & np.uint64(mask & 0xFFFFFFFF)) == np.uint64(pattern & mask & 0xFFFFFFFF)
        )
    return cand[keep]


def pack_fields(values: np.ndarray, widths: np.ndarray | list[int]) -> np.ndarray:
    """Pack rows of fields MSB-first: ``values`` (n, k) with ``widths`` (k,) bits each.

    Returns (n, ceil(sum(widths) / 8)) uint8, each row zero-padded at the end.
    """
    values = np.asarray(values, dtype=np.uint64)
    widths = np.asarray(widths, dtype=np.int64)
    n, k = values.shape
    total = int(widths.sum())
    if np.all(widths == 16):
        return values.astype(">u2").view(np.uint8).reshape(n, 2 * k)
    if np.all(widths == 8):
        return values.astype(np.uint8).reshape(n, k)
    if np.all(widths % 8 == 0) and np.all(np.isin(widths, (8, 16, 32, 64))):
        # whole bytes: each field as big-endian bytes, one column at a time
        out = np.empty((n, total // 8), np.uint8)
        off = 0
        for j, w in enumerate(widths.tolist()):
            nb = w // 8
            out[:, off : off + nb] = values[:, j].astype(f">u{nb}").view(np.uint8).reshape(n, nb)
            off += nb
        return out
    # Bit planes: for each field, its bits from the most significant down.
    col = np.repeat(np.arange(k), widths)
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]])
    bit_in_field = np.arange(total) - np.repeat(starts, widths)
    shift = (np.repeat(widths, widths) - 1 - bit_in_field).astype(np.uint64)
    bits = ((values[:, col] >> shift) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits, axis=1)
