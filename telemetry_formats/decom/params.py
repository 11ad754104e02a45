"""Parameters out of minor frames: raw bits, engineering units and limit state, batched.

The plan turns the parameter database into sample slots (``slots.SlotSet``):
the slots every minor frame carries form a (frames, slots) grid, and the
slots of subcommutated parameters sit in a table by minor frame number (1..Z,
and 0 for frames whose SFID is unknown). Decommutating a batch of minor frames
is then a fixed number of numpy operations whatever the number of parameters:
gather all slot words at once (straight from the stored 16-bit units when the
frame allows), convert encodings, calibrate and compare against limits with
per-slot constants. The result is one long-format ``SampleBatch`` per call, in
time order within each parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..paramdb.model import FrameFormat, Parameter, ParameterDatabase
from .frames import MinorFrames
from .slots import SlotSet

__all__ = ["SampleBatch", "ExtractionPlan", "LIMIT_OK"]

LIMIT_OK = 0  # limit states: -2 critical low, -1 warning low, 0 ok, 1 warning high, 2 critical high
_MAX_FRAGMENTS = 4


@dataclass
class SampleBatch:
    """Samples of many parameters in long format: one row per sample."""

    pid: np.ndarray  # (m,) int32 parameter id
    t_ns: np.ndarray  # (m,) int64 sample time
    raw: np.ndarray  # (m,) uint32 (uint64 if a parameter has > 32 bits): the bits as unsigned
    eu: np.ndarray  # (m,) float64 engineering value
    limit: np.ndarray  # (m,) int8 limit state
    ids: dict[str, int] | None = None  # parameter id by name

    def __len__(self) -> int:
        return len(self.pid)

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(t_ns, raw, eu, limit) of one parameter, in time order."""
        sel = self.pid == (self.ids or {})[name]
        return self.t_ns[sel], self.raw[sel], self.eu[sel], self.limit[sel]

    @classmethod
    def empty(cls, ids: dict[str, int] | None = None) -> "SampleBatch":
        return cls(
            np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.uint64),
            np.zeros(0, np.float64), np.zeros(0, np.int8), ids,
        )


def _present(p: Parameter, frame: FrameFormat, number: int) -> bool:
    """Whether parameter ``p`` has samples in minor frame ``number`` (0 = unknown)."""
    if p.frame_position is None or frame.minor_frames <= 1:
        return True
    if number == 0:
        return False
    interval = p.frame_interval or frame.minor_frames
    return number >= p.frame_position and (number - p.frame_position) % interval == 0


def _class_key(p: Parameter, frame: FrameFormat) -> tuple:
    """Grid column order: float slots and equal pair tables (per encoding and width)
    side by side, so that each needs one operation on a contiguous column range."""
    enc = {"unsigned": 0, "signed": 1, "float": 2}[p.encoding]
    width = p.bit_width(frame)
    return (width if enc == 2 else 0, p.calibration.pairs, enc, width if p.calibration.pairs else 0)


class ExtractionPlan:
    """How to pull every parameter of a database out of ``MinorFrames``.

    Slots of parameters present in every minor frame are evaluated as one
    (frames, slots) grid with tiled per-slot constants; slots of subcommutated
    parameters are looked up per frame number in a padded table and evaluated
    as a flat list. Both are a fixed number of numpy operations per call.
    """

    def __init__(self, db: ParameterDatabase, ids: dict[str, int] | None = None) -> None:
        self.db = db
        frame = db.frame
        params = db.parameters
        ids_arr = np.array([(ids or {}).get(p.name, i) for i, p in enumerate(params)], np.int32)
        self.id_by_name = {p.name: int(i) for p, i in zip(params, ids_arr)}
        K = max((len(p.fragments) for p in params), default=1)
        if K > _MAX_FRAGMENTS:
            raise ValueError(f"at most {_MAX_FRAGMENTS} fragments per parameter")
        bit_off = frame.bit_offsets()
        Z = max(frame.minor_frames, 1)
        every = [i for i, p in enumerate(params) if p.frame_position is None or Z == 1]
        sub = [i for i, p in enumerate(params) if i not in set(every)]

        def slots_of(indices: list[int], number: int | None) -> list[tuple[int, int, np.ndarray]]:
            rows = []
            for i in indices:
                if number is not None and not _present(params[i], frame, number):
                    continue
                for pos in params[i].positions(frame):
                    rows.append((int(bit_off[pos[0]]), i, pos))
            rows.sort(key=lambda r: (r[0], r[1]))
            return rows

        grid_slots = slots_of(every, None)
        # Grid columns are ordered so that every conversion class is a contiguous
        # range (views instead of fancy indexing); each parameter's own slots keep
        # their time order.
        grid_slots.sort(key=lambda r: (_class_key(params[r[1]], frame), r[1], r[0]))
        self.grid = SlotSet(grid_slots, params, frame, ids_arr, K)
        # Subcommutated slots by frame number 0..Z (0 = SFID unknown: none), padded to
        # the most slots any frame number has; -1 = no slot.
        per_number = [list(range(0))]
        sub_slots: list = []
        for number in range(1, Z + 1):
            rows = slots_of(sub, number)
            per_number.append(list(range(len(sub_slots), len(sub_slots) + len(rows))))
            sub_slots += rows
        self.sub = SlotSet(sub_slots, params, frame, ids_arr, K)
        width = max(len(r) for r in per_number)
        self.sub_table = np.full((Z + 1, max(width, 1)), -1, np.int64)
        for number, r in enumerate(per_number):
            self.sub_table[number, : len(r)] = r
        # Raw values fit 32 bits unless a parameter spans more.
        self.raw_dtype = np.uint32 if all(p.bit_width(frame) <= 32 for p in params) else np.uint64

    def extract(self, frames: MinorFrames) -> SampleBatch:
        """Every parameter's samples in ``frames`` (long format)."""
        n = len(frames)
        S = len(self.grid) if n else 0
        src, colmap = frames.columns() if n else (None, None)
        sub = None
        if n and len(self.sub):
            table = self.sub_table[frames.frame_number]  # (n, width) slot or -1
            flat = np.flatnonzero(table >= 0)
            if len(flat):
                width = table.shape[1]
                rows = flat // width if width > 1 else flat
                idx = table.ravel()[flat]
                raw, eu, lim, pid = self.sub.evaluate(src, colmap, rows, idx)
                sub = (pid, frames.t_ns[rows] + self.sub.off_ns[idx], raw, eu, lim)
        if S == 0 and sub is None:
            return SampleBatch.empty(self.id_by_name)
        g = n * S
        m = g + (len(sub[0]) if sub else 0)
        out = (np.empty(m, np.int32), np.empty(m, np.int64), np.empty(m, self.raw_dtype),
               np.empty(m, np.float64), np.empty(m, np.int8))
        if S:
            self.grid.evaluate_grid(src, colmap, frames.t_ns, tuple(o[:g].reshape(n, S) for o in out))
        if sub:
            for o, v in zip(out, sub):
                o[g:] = v
        return SampleBatch(*out, ids=self.id_by_name)
