"""Parameters out of minor frames: raw bits, engineering units and limit state, batched.

The plan turns the parameter database into a *slot table*: for each minor
frame number (1..Z, and 0 for frames whose SFID is unknown) the list of samples
that frame carries — parameter id, the word position of each fragment, the
sample's bit offset in the frame. Decommutating a batch of minor frames is then
a fixed number of numpy operations whatever the number of parameters: expand
the slots of every frame, gather all fragment words at once, combine fragments,
convert encodings, calibrate with per-sample coefficient rows, and compare
against per-sample limits. The result is one long-format ``SampleBatch`` per
call, in time order within each parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..paramdb.model import FrameFormat, Parameter, ParameterDatabase
from .frames import MinorFrames

__all__ = ["SampleBatch", "ExtractionPlan", "LIMIT_OK", "frame_numbers"]

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


def frame_numbers(frame: FrameFormat, words: np.ndarray) -> np.ndarray:
    """1-based minor frame numbers from the SFID counter (0 where it is invalid)."""
    n = len(words)
    if frame.minor_frames <= 1:
        return np.ones(n, np.int32)
    if frame.sfid is None:
        return np.zeros(n, np.int32)
    s = frame.sfid
    width = int(frame.widths()[s.word])
    length = s.length or width
    shift = width - (s.msb_bit - 1) - length
    counter = (words[:, s.word].astype(np.int64) >> max(shift, 0)) & ((1 << length) - 1)
    idx = counter - s.first_count if s.increasing else s.first_count - counter
    ok = (idx >= 0) & (idx < frame.minor_frames)
    return np.where(ok, idx + 1, 0).astype(np.int32)


def _present(p: Parameter, frame: FrameFormat, number: int) -> bool:
    """Whether parameter ``p`` has samples in minor frame ``number`` (0 = unknown)."""
    if p.frame_position is None or frame.minor_frames <= 1:
        return True
    if number == 0:
        return False
    interval = p.frame_interval or frame.minor_frames
    return number >= p.frame_position and (number - p.frame_position) % interval == 0


def _mask_shift(mask: int | None, width: int) -> tuple[int, int, int]:
    """(mask, right shift, bits) of a fragment."""
    if mask is None:
        return (1 << width) - 1, 0, width
    low = (mask & -mask).bit_length() - 1
    return mask, low, bin(mask).count("1")


def _class_key(p: Parameter, frame: FrameFormat) -> tuple:
    enc = {"unsigned": 0, "signed": 1, "float": 2}[p.encoding]
    return (p.limits.any, enc, p.bit_width(frame) if enc else 0, bool(p.calibration.pairs))


def _ranges(flags: list) -> list[tuple[int, int, object]]:
    """Contiguous runs of equal truthy values as (start, stop, value)."""
    out, start = [], 0
    for j in range(1, len(flags) + 1):
        if j == len(flags) or flags[j] != flags[start]:
            if flags[start]:
                out.append((start, j, flags[start]))
            start = j
    return out


class _SlotSet:
    """Per-slot constants of a set of sample slots (one slot = one sample of a parameter
    in a minor frame): fragment words, masks and shifts, encoding, calibration, limits."""

    def __init__(self, slots: list[tuple[int, int, np.ndarray]], params: list[Parameter], frame: FrameFormat,
                 ids: np.ndarray, K: int) -> None:
        widths = frame.widths()
        ns_bit = frame.ns_per_bit()
        S = len(slots)
        self.pid = np.array([ids[i] for _, i, _ in slots], np.int32)
        self.off_ns = np.array([round(off * ns_bit) for off, _, _ in slots], np.int64)
        self.words = np.zeros((S, K), np.int64)
        self.mask = np.zeros((S, K), np.uint64)
        self.shift = np.zeros((S, K), np.uint64)
        self.bits = np.zeros((S, K), np.uint64)
        index = [i for _, i, _ in slots]
        for j, (_, i, pos) in enumerate(slots):
            for k, f in enumerate(params[i].fragments):
                m, sh, b = _mask_shift(f.mask, int(widths[f.word]))
                self.words[j, k] = pos[k]
                self.mask[j, k], self.shift[j, k], self.bits[j, k] = m, sh, b
        self.used_k = [k for k in range(K) if self.mask[:, k].any()] or [0]
        self.full_word = bool(len(self.used_k) == 1 and all(
            params[i].fragments[0].mask is None for i in index))
        self.total_bits = self.bits.sum(axis=1)
        enc = [params[i].encoding for i in index]
        self.signed_cols = np.flatnonzero([e == "signed" for e in enc])
        self.float_cols = {b: np.flatnonzero([e == "float" and tb == b for e, tb in zip(enc, self.total_bits)])
                           for b in (16, 32, 64)}
        deg = max((len(params[i].calibration.polynomial) for i in index), default=2)
        coef = np.zeros((S, max(deg, 2)))
        coef[:, 1] = 1.0
        pairs: dict[int, list[int]] = {}
        for j, i in enumerate(index):
            cal = params[i].calibration
            if cal.polynomial:
                coef[j, :] = 0.0
                coef[j, : len(cal.polynomial)] = cal.polynomial
            elif cal.pairs:
                pairs.setdefault(i, []).append(j)
        self.pairs = [(np.array(cols), params[i].calibration) for i, cols in pairs.items()]
        self.coef = coef
        self.identity = bool((coef[:, 1] == 1.0).all() and not np.delete(coef, 1, axis=1).any()) and not self.pairs
        lim = np.stack([params[i].limits.as_array() for i in index]) if S else np.zeros((0, 4))
        crit_lo, warn_lo, warn_hi, crit_hi = lim.T
        self.bounds = []  # (per-slot threshold, +1 above / -1 below); inf where none
        for arr, sign in (
            (np.where(np.isnan(warn_hi), crit_hi, warn_hi), 1),
            (crit_hi, 1),
            (np.where(np.isnan(warn_lo), crit_lo, warn_lo), -1),
            (crit_lo, -1),
        ):
            if (~np.isnan(arr)).any():
                self.bounds.append((np.where(np.isnan(arr), np.inf * sign, arr), sign))

        # Contiguous column ranges, valid when the slots were sorted by ``_class_key``.
        self.signed_ranges = _ranges([int(tb) if e == "signed" else 0 for e, tb in zip(enc, self.total_bits)])
        self.float_ranges = _ranges([int(tb) if e == "float" else 0 for e, tb in zip(enc, self.total_bits)])
        self.pair_ranges = _ranges([params[i].calibration if params[i].calibration.pairs else None for i in index])
        has_lim = [params[i].limits.any for i in index]
        self.limit_start = has_lim.index(True) if any(has_lim) else S
        self.sorted_limits = all(has_lim[self.limit_start:])
        self.narrow = bool(self.full_word and len(self.used_k) == 1)

    def __len__(self) -> int:
        return len(self.pid)

    def evaluate_grid(self, words: np.ndarray, raw_out: np.ndarray, eu: np.ndarray, state: np.ndarray) -> None:
        """Fill (frames, slots) grids of raw, engineering value and limit state for
        every slot of every frame."""
        if self.narrow and raw_out.dtype == words.dtype:
            np.take(words, self.words[:, self.used_k[0]], axis=1, out=raw_out)
        elif self.narrow:
            raw_out[...] = words[:, self.words[:, self.used_k[0]]]
        else:
            raw_out[...] = self._raw(words, slice(None), slice(None))[0]
        raw = raw_out
        x = raw.astype(np.float64)
        for a, b, width in self.signed_ranges:
            native = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}.get(width)
            if native is not None:  # a wrapping cast is the two's complement reading
                x[:, a:b] = raw[:, a:b].astype(native)
            else:
                r = raw[:, a:b].astype(np.int64)
                x[:, a:b] = (r ^ (1 << (width - 1))) - (1 << (width - 1))
        for a, b, bits in self.float_ranges:
            ut, ft = {16: (np.uint16, np.float16), 32: (np.uint32, np.float32), 64: (np.uint64, np.float64)}[bits]
            x[:, a:b] = raw[:, a:b].astype(ut).view(ft)
        if self.identity:
            eu[...] = x
        else:
            c = self.coef
            np.multiply(x, c[:, -1], out=eu)
            for d in range(c.shape[1] - 2, 0, -1):
                eu += c[:, d]
                eu *= x
            eu += c[:, 0]
        for a, b, cal in self.pair_ranges:
            eu[:, a:b] = cal.apply(x[:, a:b])
        state[...] = 0
        if self.bounds and self.sorted_limits:
            a = self.limit_start
            sub, st = eu[:, a:], state[:, a:]
            for threshold, sign in self.bounds:
                if sign > 0:
                    st += (sub > threshold[a:]).view(np.int8)
                else:
                    st -= (sub < threshold[a:]).view(np.int8)
        elif self.bounds:
            state[...] = self._limits(eu, slice(None))

    def _raw(self, words, rows, idx):
        raw = None
        for k in self.used_k:
            w = words[rows, self.words[idx, k]].astype(np.uint64)
            if not self.full_word:
                w = (w & self.mask[idx, k]) >> self.shift[idx, k]
            raw = w if raw is None else (raw << self.bits[idx, k]) | w
        return raw, None, None, None

    def evaluate(self, words: np.ndarray, rows, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(raw, eu, limit, pid) for samples at frame ``rows`` and slots ``idx``.

        ``rows``/``idx`` are either both ``slice(None)`` (every slot of every frame,
        a (frames, slots) grid) or matching 1-D arrays (selected samples).
        """
        raw, _, _, _ = self._raw(words, rows, idx)
        x = raw.astype(np.float64)
        grid = isinstance(idx, slice)
        for cols_all, fix in ((self.signed_cols, "signed"),) + tuple((c, b) for b, c in self.float_cols.items()):
            if not len(cols_all):
                continue
            if grid:
                sel = (slice(None), cols_all)
            else:
                sel = np.flatnonzero(np.isin(idx, cols_all))
            r = raw[sel]
            if fix == "signed":
                w = self.total_bits[idx][sel] if not grid else self.total_bits[cols_all]
                neg = (r >> (w - np.uint64(1))) & np.uint64(1)
                x[sel] = r.astype(np.float64) - neg * np.exp2(w.astype(np.float64))
            else:
                ut, ft = {16: (np.uint16, np.float16), 32: (np.uint32, np.float32), 64: (np.uint64, np.float64)}[fix]
                x[sel] = r.astype(ut).view(ft).astype(np.float64)
        eu = self._calibrate(x, idx, grid)
        return raw, eu, self._limits(eu, idx), self.pid[idx]

    def _calibrate(self, x: np.ndarray, idx, grid: bool) -> np.ndarray:
        if self.identity:
            eu = x.copy()
        else:
            c = self.coef[idx]
            eu = c[..., -1] * x
            for d in range(c.shape[-1] - 2, 0, -1):
                eu += c[..., d]
                eu *= x
            eu += c[..., 0]
        for cols, cal in self.pairs:
            if grid:
                eu[:, cols] = cal.apply(x[:, cols])
            else:
                sel = np.flatnonzero(np.isin(idx, cols))
                eu[sel] = cal.apply(x[sel])
        return eu

    def _limits(self, eu: np.ndarray, idx) -> np.ndarray:
        state = np.zeros(eu.shape, np.int8)
        with np.errstate(invalid="ignore"):
            for threshold, sign in self.bounds:
                t = threshold[idx]
                if sign > 0:
                    state += (eu > t).view(np.int8)
                else:
                    state -= (eu < t).view(np.int8)
        return state


class ExtractionPlan:
    """How to pull every parameter of a database out of ``MinorFrames``.

    Slots of parameters present in every minor frame are evaluated as one
    (frames, slots) grid with per-slot constants broadcast; slots of
    subcommutated parameters are expanded per frame number (CSR) and evaluated
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
        self.grid = _SlotSet(grid_slots, params, frame, ids_arr, K)
        # Subcommutated slots: CSR by frame number 0..Z (0 = SFID unknown: none).
        sub_slots, starts = [], [0]
        for number in range(Z + 1):
            sub_slots += slots_of(sub, number) if number else []
            starts.append(len(sub_slots))
        self.sub = _SlotSet(sub_slots, params, frame, ids_arr, K)
        self.sub_start = np.array(starts, np.int64)
        # Raw values fit the 32-bit word array unless a parameter spans more bits.
        self.narrow_raw = all(p.bit_width(frame) <= 32 for p in params)
        self.sub_count = np.diff(self.sub_start)

    def extract(self, frames: MinorFrames) -> SampleBatch:
        """Every parameter's samples in ``frames`` (long format)."""
        n = len(frames)
        S = len(self.grid) if n else 0
        sub = None
        if n and len(self.sub):
            fn = frames.frame_number
            counts = self.sub_count[fn]
            total = int(counts.sum())
            if total:
                rows = np.repeat(np.arange(n), counts)
                out_start = np.cumsum(counts) - counts
                idx = np.arange(total) + np.repeat(self.sub_start[fn] - out_start, counts)
                raw, eu, lim, pid = self.sub.evaluate(frames.words, rows, idx)
                sub = (pid, frames.t_ns[rows] + self.sub.off_ns[idx], raw, eu, lim)
        if S == 0 and sub is None:
            return SampleBatch.empty(self.id_by_name)
        g = n * S
        m = g + (len(sub[0]) if sub else 0)
        raw_dtype = frames.words.dtype if self.narrow_raw else np.uint64
        pid = np.empty(m, np.int32)
        t = np.empty(m, np.int64)
        raw = np.empty(m, raw_dtype)
        eu = np.empty(m, np.float64)
        lim = np.empty(m, np.int8)
        if S:
            self.grid.evaluate_grid(frames.words, raw[:g].reshape(n, S), eu[:g].reshape(n, S), lim[:g].reshape(n, S))
            np.add(frames.t_ns[:, None], self.grid.off_ns[None, :], out=t[:g].reshape(n, S))
            pid[:g].reshape(n, S)[...] = self.grid.pid
        if sub:
            pid[g:], t[g:], raw[g:], eu[g:], lim[g:] = sub
        return SampleBatch(pid=pid, t_ns=t, raw=raw, eu=eu, limit=lim, ids=self.id_by_name)
