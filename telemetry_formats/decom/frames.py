"""Minor frames out of PCM packets: word extraction and throughput-mode frame sync.

``MinorFrames`` is the batch every later stage works on: one row per minor
frame, one column per word position (column 0 holds the sync pattern as read).
``FrameSynchronizer`` is a sans-I/O frame synchronizer for throughput mode: it
searches for the sync pattern at any bit offset, locks after the pattern repeats
one frame later, verifies every frame while locked, and carries partial frames
from one packet to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..bits import extract, find_pattern
from ..ch10.pcm import PcmLayout

__all__ = ["MinorFrames", "read_words", "sync_ok", "FrameSynchronizer"]


class MinorFrames:
    """A batch of decoded minor frames.

    ``words`` is (n, words_per_minor) uint32; column 0 = sync as read (low 32
    bits). Frames read by the 16-bit unit fast path keep their stored ``units``
    (n, units per frame) instead, and ``words`` is built from them on first use.
    """

    __slots__ = ("t_ns", "frame_number", "units", "layout", "_words")

    def __init__(self, t_ns: np.ndarray, words: np.ndarray | None, frame_number: np.ndarray, *,
                 units: np.ndarray | None = None, layout: PcmLayout | None = None) -> None:
        if words is None and (units is None or layout is None or layout.unit_word_index is None):
            raise ValueError("MinorFrames needs words, or units with a 16-bit unit layout")
        self.t_ns = t_ns  # (n,) int64: time of the first sync bit
        self.frame_number = frame_number  # (n,) int32: 1-based minor frame number from the SFID, 0 = unknown
        self.units = units if words is None else None
        self.layout = layout
        self._words = words

    @property
    def words(self) -> np.ndarray:
        if self._words is None:
            self._words = read_words_units(self.units, self.layout)
        return self._words

    def columns(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The array parameter samples are gathered from, and the column of each word
        position in it (None: the column is the word position)."""
        if self.units is not None:
            return self.units, self.layout.unit_word_index
        return self._words, None

    def __len__(self) -> int:
        return len(self.t_ns)

    def select(self, mask: np.ndarray) -> "MinorFrames":
        if self.units is not None:
            return MinorFrames(self.t_ns[mask], None, self.frame_number[mask], units=self.units[mask],
                               layout=self.layout)
        return MinorFrames(self.t_ns[mask], self._words[mask], self.frame_number[mask])

    @classmethod
    def empty(cls, words_per_minor: int) -> "MinorFrames":
        return cls(
            np.zeros(0, np.int64), np.zeros((0, words_per_minor), np.uint32), np.zeros(0, np.int32)
        )

    @classmethod
    def concat(cls, parts: list["MinorFrames"]) -> "MinorFrames":
        """Frames of ``parts`` back to back (kept as 16-bit units when they all are, in one layout)."""
        full = [p for p in parts if len(p)] or parts[:1]
        if len(full) == 1:
            return full[0]
        layout = full[0].layout
        if all(p.units is not None and p.layout == layout for p in full):
            return cls(np.concatenate([p.t_ns for p in full]), None,
                       np.concatenate([p.frame_number for p in full]),
                       units=np.concatenate([p.units for p in full]), layout=layout)
        parts = full
        return cls(
            np.concatenate([p.t_ns for p in parts]),
            np.concatenate([p.words for p in parts]),
            np.concatenate([p.frame_number for p in parts]),
        )


def read_words(stream: np.ndarray, starts: np.ndarray, layout: PcmLayout) -> np.ndarray:
    """Read every word position of the frames starting at ``starts`` (bit offsets).

    Returns (n, words_per_minor) uint32; a sync pattern longer than 32 bits keeps
    its low 32 bits.
    """
    widths = layout.widths
    offsets = layout.offsets
    n = len(starts)
    out = np.empty((n, len(widths)), np.uint32)
    if n == 0:
        return out
    data_w = widths[1:]
    # Fast path: every data word is 16 bits on a 16-bit boundary.
    if layout.unit_word_index is not None and np.all(starts % 16 == 0) and len(stream) % 2 == 0:
        u16 = stream.view(">u2")
        idx = (starts[:, None] // 16) + layout.unit_word_index[None, 1:]
        out[:, 1:] = u16[idx]
    else:
        for w in np.unique(data_w):
            cols = np.flatnonzero(widths == w)
            cols = cols[cols > 0]
            pos = starts[:, None] + offsets[cols][None, :]
            out[:, cols] = extract(stream, pos, int(w))
    sync_w = int(widths[0])
    if sync_w > 32:
        out[:, 0] = extract(stream, starts + offsets[0] + (sync_w - 32), 32)
    else:
        out[:, 0] = extract(stream, starts + offsets[0], sync_w)
    return out


def read_words_units(units16: np.ndarray, layout: PcmLayout, sync: np.ndarray | None = None) -> np.ndarray:
    """Fast path of ``read_words`` for frames given as (n, units) 16-bit words in
    transmission order; requires ``layout.unit_word_index``."""
    idx = layout.unit_word_index
    out = np.empty((len(units16), len(idx)), np.uint32)
    first = int(idx[1]) if len(idx) > 1 else 0
    if len(idx) > 1 and np.array_equal(idx[1:], np.arange(first, first + len(idx) - 1)):
        out[:, 1:] = units16[:, first : first + len(idx) - 1]  # contiguous: a slice, no gather
    else:
        out[:, 1:] = units16[:, idx[1:]]
    out[:, 0] = _sync_from_units(units16, layout) if sync is None else sync
    return out


def _sync_from_units(units16: np.ndarray, layout: PcmLayout) -> np.ndarray:
    """The sync pattern (low 32 bits) read from 16-bit units, right-justified as stored."""
    L = layout.frame.sync_length
    first = int(layout.offsets[0]) // 16
    last = layout.sync_slot_bits // 16
    v = np.zeros(len(units16), np.uint64)
    for k in range(max(first, last - 4), last):
        v = (v << np.uint64(16)) | units16[:, k].astype(np.uint64)
    # bits above the pattern are padding (unpacked) or absent
    return (v & np.uint64((1 << min(L, 64)) - 1 if L < 64 else 0xFFFFFFFFFFFFFFFF)).astype(np.uint64)


def sync_ok(stream: np.ndarray, starts: np.ndarray, layout: PcmLayout) -> np.ndarray:
    """(n,) bool: whether the full sync pattern (with its don't-care mask) is at each start."""
    frame = layout.frame
    pos = starts + layout.offsets[0]
    mask = frame.effective_sync_mask
    L = frame.sync_length
    if L <= 57:
        v = extract(stream, pos, L)
        return (v & np.uint64(mask)) == np.uint64(frame.sync_pattern & mask)
    hi = extract(stream, pos, L - 32)
    lo = extract(stream, pos + (L - 32), 32)
    return ((hi & np.uint64(mask >> 32)) == np.uint64((frame.sync_pattern & mask) >> 32)) & (
        (lo & np.uint64(mask & 0xFFFFFFFF)) == np.uint64(frame.sync_pattern & mask & 0xFFFFFFFF)
    )


@dataclass
class SyncResult:
    """Frames found in one ``FrameSynchronizer.feed`` call."""

    stream: np.ndarray
    starts: np.ndarray  # (n,) int64 bit offsets into ``stream``
    t_ns: np.ndarray  # (n,) int64
    sync_losses: int = 0
    skipped_bits: int = 0  # bits searched through without a lock
    events: list[str] = field(default_factory=list)


class FrameSynchronizer:
    """Throughput-mode frame sync for one channel (search, check, lock, verify)."""

    def __init__(self, layout: PcmLayout, *, max_carry_bytes: int = 1 << 20) -> None:
        self.layout = layout
        self.frame_bits = layout.frame_bits
        self.locked = False
        self._carry = np.zeros(0, np.uint8)
        self._carry_bit = 0  # bit offset in carry where unread data begins
        self._carry_t0 = 0.0  # time of carry bit 0
        self._max_carry = max(max_carry_bytes, 4 * (self.frame_bits // 8 + 8))
        self.total_frames = 0
        self.total_sync_losses = 0

    def reset(self) -> None:
        self.locked = False
        self._carry = np.zeros(0, np.uint8)
        self._carry_bit = 0

    def feed(self, stream: np.ndarray, t0_ns: float, ns_per_bit: float) -> SyncResult:
        """Add transmission-order bytes whose first bit is at ``t0_ns``; return whole frames."""
        if len(self._carry):
            t_base = t0_ns - len(self._carry) * 8 * ns_per_bit
            data = np.concatenate([self._carry, stream])
        else:
            t_base = t0_ns
            data = stream
        pos = self._carry_bit
        total = len(data) * 8
        F = self.frame_bits
        starts_out: list[np.ndarray] = []
        losses = skipped = 0
        events: list[str] = []
        while True:
            if not self.locked:
                cand = self._candidates(data, pos)
                found = None
                for c in cand.tolist():
                    nxt = c + F
                    if nxt + self.layout.frame.sync_length > total:
                        found = ("wait", c)
                        break
                    if sync_ok(data, np.array([nxt]), self.layout)[0]:
                        found = ("lock", c)
                        break
                if found is None:
                    keep_from = max(pos, total - F - self.layout.frame.sync_length)
                    skipped += keep_from - pos
                    pos = keep_from
                    break
                skipped += found[1] - pos
                pos = found[1]
                if found[0] == "wait":
                    break
                self.locked = True
                events.append(f"lock at bit {pos}")
            n_avail = (total - pos) // F
            if n_avail == 0:
                break
            starts = pos + F * np.arange(n_avail, dtype=np.int64)
            ok = sync_ok(data, starts, self.layout)
            bad = np.flatnonzero(~ok)
            good_n = int(bad[0]) if len(bad) else n_avail
            starts_out.append(starts[:good_n])
            pos = int(pos + good_n * F)
            if len(bad):
                self.locked = False
                losses += 1
                events.append(f"sync lost at bit {pos}")
                pos += 1
                continue
            break
        starts = np.concatenate(starts_out) if starts_out else np.zeros(0, np.int64)
        # Carry the unread tail (from the byte holding ``pos``) to the next packet.
        byte = min(pos // 8, len(data))
        tail = data[byte:]
        if len(tail) > self._max_carry:
            skipped += (len(tail) - self._max_carry) * 8
            byte = len(data) - self._max_carry
            tail = data[byte:]
            self.locked = False
        self._carry = tail.copy()
        self._carry_bit = pos - byte * 8 if pos >= byte * 8 else 0
        skipped = int(skipped)
        self.total_frames += len(starts)
        self.total_sync_losses += losses
        t_ns = (t_base + starts * ns_per_bit).astype(np.int64)
        return SyncResult(data, starts, t_ns, losses, skipped, events)

    def _candidates(self, data: np.ndarray, pos: int) -> np.ndarray:
        frame = self.layout.frame
        first_byte = pos // 8
        cand = find_pattern(data[first_byte:], frame.sync_pattern, frame.sync_length, frame.effective_sync_mask)
        cand = cand + first_byte * 8
        return cand[cand >= pos]
