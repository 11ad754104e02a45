"""The 16-bit unit fast path: frames whose data words are all 16 bits on 16-bit boundaries.

Such frames (packed or unpacked, 16- or 32-bit alignment) are read straight
from their stored little-endian units: the sync pattern is checked unit by
unit, the SFID counter goes through a lookup table, and the words are never
copied — later stages gather parameter samples from the units directly.
``tests/test_pcm_decom.py`` checks this path against the bit-stream reader
(``read_words``/``sync_ok``), which follows the format definitions.
"""

from __future__ import annotations

import numpy as np

from ..ch10.pcm import PcmLayout
from ..paramdb.model import FrameFormat

__all__ = ["UnitReader", "SfidDecoder"]

_MAX_LUT_BITS = 20  # SFID counters up to this many bits use a lookup table


class SfidDecoder:
    """1-based minor frame numbers from SFID counter values (0 where invalid)."""

    def __init__(self, frame: FrameFormat) -> None:
        self.z = frame.minor_frames
        self.sfid = s = frame.sfid
        self.lut: np.ndarray | None = None
        if self.z <= 1 or s is None:
            return
        width = int(frame.widths()[s.word])
        self.length = s.length or width
        self.shift = max(width - (s.msb_bit - 1) - self.length, 0)
        self.mask = (1 << self.length) - 1
        if width <= _MAX_LUT_BITS:  # indexed by the whole SFID word: counter numbers, spread
            by_count = self._numbers(np.arange(1 << self.length, dtype=np.int64))
            high = max(width - self.shift - self.length, 0)
            self.lut = np.tile(np.repeat(by_count, 1 << self.shift), 1 << high)

    def _numbers(self, counter: np.ndarray) -> np.ndarray:
        s = self.sfid
        idx = counter - s.first_count if s.increasing else s.first_count - counter
        ok = (idx >= 0) & (idx < self.z)
        return np.where(ok, idx + 1, 0).astype(np.int32)

    def decode(self, values: np.ndarray, n: int) -> np.ndarray:
        """Frame numbers of ``n`` frames whose SFID word holds ``values`` (unused when Z <= 1)."""
        if self.z <= 1:
            return np.ones(n, np.int32)
        if self.sfid is None:
            return np.zeros(n, np.int32)
        if self.lut is not None:
            return self.lut.take(values, mode="clip")  # values never exceed the word width
        return self._numbers((values.astype(np.int64) >> self.shift) & self.mask)


class UnitReader:
    """Sync check and SFID of frames given as (n, units) 16-bit units in transmission order."""

    def __init__(self, layout: PcmLayout) -> None:
        idx = layout.unit_word_index
        if idx is None:
            raise ValueError("layout has data words that are not whole 16-bit units")
        self.layout = layout
        self.word_columns = idx
        frame = layout.frame
        slot = layout.sync_slot_bits
        first = int(layout.offsets[0]) // 16
        mask = frame.effective_sync_mask
        pattern = frame.sync_pattern & mask
        # (unit column, mask, expected value) of every stored unit the sync pattern touches
        self.sync_units: list[tuple[int, int, int]] = []
        for k in range(first, slot // 16):
            shift = slot - 16 * (k + 1)
            m = (mask >> shift) & 0xFFFF if shift >= 0 else (mask << -shift) & 0xFFFF
            p = (pattern >> shift) & 0xFFFF if shift >= 0 else (pattern << -shift) & 0xFFFF
            if m:
                self.sync_units.append((k, m, p))
        self.sfid = SfidDecoder(frame)
        self.sfid_column = int(idx[frame.sfid.word]) if frame.sfid is not None else None

    def sync_ok(self, units: np.ndarray) -> np.ndarray:
        """(n,) bool: whether each frame's stored sync units match the pattern."""
        ok = None
        for col, m, p in self.sync_units:
            u = units[:, col]
            hit = (u == p) if m == 0xFFFF else ((u & m) == p)
            ok = hit if ok is None else np.logical_and(ok, hit, out=ok)
        return np.ones(len(units), bool) if ok is None else ok

    def frame_numbers(self, units: np.ndarray) -> np.ndarray:
        col = self.sfid_column
        return self.sfid.decode(units[:, col] if col is not None else None, len(units))
