"""Major frames assembled from minor frames by their SFID-derived frame numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .frames import MinorFrames

__all__ = ["MajorFrames", "MajorFrameAssembler"]


@dataclass
class MajorFrames:
    """Complete major frames: (m, minor_frames, words_per_minor) words and start times."""

    t_ns: np.ndarray  # (m,) int64: time of minor frame 1
    words: np.ndarray  # (m, Z, N) uint32

    def __len__(self) -> int:
        return len(self.t_ns)


class MajorFrameAssembler:
    """Group consecutive minor frames numbered 1..Z into major frames.

    Minor frames that do not complete a major frame (a gap, a bad SFID, a start
    in the middle) are counted in ``incomplete_minor_frames``; the unfinished
    tail is carried to the next ``feed``.
    """

    def __init__(self, minor_frames_per_major: int, words_per_minor: int) -> None:
        self.z = minor_frames_per_major
        self.n_words = words_per_minor
        self._carry = MinorFrames.empty(words_per_minor)
        self.complete = 0
        self.incomplete_minor_frames = 0

    def feed(self, frames: MinorFrames) -> MajorFrames:
        data = MinorFrames.concat([self._carry, frames]) if len(self._carry) else frames
        z, n = self.z, len(data)
        fn = data.frame_number
        starts = np.flatnonzero(fn == 1)
        full = starts[starts + z <= n]
        if len(full):
            idx = full[:, None] + np.arange(z)[None, :]
            ok = np.all(fn[idx] == np.arange(1, z + 1)[None, :], axis=1)
            good = full[ok]
        else:
            good = np.zeros(0, np.int64)
        # The tail from the last start that cannot complete yet is carried forward.
        pending = starts[starts + z > n]
        cut = int(pending[0]) if len(pending) else n
        used = len(good) * z
        consumed = cut if len(pending) else n
        self.incomplete_minor_frames += max(consumed - used, 0) if z > 1 else 0
        self._carry = data.select(np.arange(n) >= cut)
        self.complete += len(good)
        if len(good) == 0:
            return MajorFrames(np.zeros(0, np.int64), np.zeros((0, z, self.n_words), np.uint32))
        idx = good[:, None] + np.arange(z)[None, :]
        return MajorFrames(data.t_ns[good], data.words[idx])
