"""Parameters out of minor frames: raw bits, engineering units and limit state, batched.

The plan is built once per parameter database. Simple parameters (one word, one
sample per minor frame) that share a frame filter are read together with one
fancy-index gather into a (frames, parameters) matrix; calibration and limit
checks are whole-matrix numpy operations. Parameters with several fragments or
several samples per minor frame (supercommutation) get a block each, with an
exact time per sample. No Python loop runs per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..paramdb.model import FrameFormat, Parameter, ParameterDatabase
from .frames import MinorFrames

__all__ = ["SampleBlock", "ExtractionPlan", "LIMIT_OK", "frame_numbers"]

LIMIT_OK = 0  # limit states: -2 critical low, -1 warning low, 0 ok, 1 warning high, 2 critical high


@dataclass
class SampleBlock:
    """Samples of one or more parameters that share sample times.

    Sample ``i`` of column ``j`` was taken at ``t_ns[i] + offset_ns[j]``.
    """

    names: tuple[str, ...]
    ids: np.ndarray  # (P,) int32 catalog ids
    t_ns: np.ndarray  # (rows,) int64
    offset_ns: np.ndarray  # (P,) int64
    raw: np.ndarray  # (rows, P) uint64: the parameter's bits as an unsigned integer
    eu: np.ndarray  # (rows, P) float64: engineering value
    limit: np.ndarray  # (rows, P) int8: limit state

    def __len__(self) -> int:
        return len(self.t_ns)

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(t_ns, raw, eu, limit) of one parameter in this block."""
        j = self.names.index(name)
        return self.t_ns + self.offset_ns[j], self.raw[:, j], self.eu[:, j], self.limit[:, j]


def frame_numbers(frame: FrameFormat, words: np.ndarray) -> np.ndarray:
    """1-based minor frame numbers from the SFID counter (0 where it is invalid)."""
    n = len(words)
    if frame.sfid is None or frame.minor_frames <= 1:
        return np.ones(n, np.int32) if frame.minor_frames <= 1 else np.zeros(n, np.int32)
    s = frame.sfid
    width = int(frame.widths()[s.word])
    length = s.length or width
    shift = width - (s.msb_bit - 1) - length
    counter = (words[:, s.word].astype(np.int64) >> max(shift, 0)) & ((1 << length) - 1)
    idx = counter - s.first_count if s.increasing else s.first_count - counter
    ok = (idx >= 0) & (idx < frame.minor_frames)
    return np.where(ok, idx + 1, 0).astype(np.int32)


def _frame_filter(p: Parameter, frame: FrameFormat) -> tuple[int, int] | None:
    if p.frame_position is None or frame.minor_frames <= 1:
        return None
    return (p.frame_position, p.frame_interval or frame.minor_frames)


def _select_rows(frames: MinorFrames, filt: tuple[int, int] | None) -> np.ndarray | slice:
    if filt is None:
        return slice(None)
    fp, fi = filt
    fn = frames.frame_number
    return np.flatnonzero((fn > 0) & (fn >= fp) & ((fn - fp) % fi == 0))


class _Columns:
    """Per-column conversion tables shared by simple and complex blocks."""

    def __init__(self, params: list[Parameter], frame: FrameFormat) -> None:
        widths = [p.bit_width(frame) for p in params]
        self.width = np.array(widths, dtype=np.uint64)
        self.signed = np.array([p.encoding == "signed" for p in params])
        self.float_w = np.array([w if p.encoding == "float" else 0 for p, w in zip(params, widths)])
        deg = max((len(p.calibration.polynomial) for p in params if p.calibration.polynomial), default=2)
        coef = np.zeros((len(params), max(deg, 2)))
        coef[:, 1] = 1.0
        self.pair_cols = []
        for j, p in enumerate(params):
            if p.calibration.polynomial:
                coef[j, :] = 0.0
                coef[j, : len(p.calibration.polynomial)] = p.calibration.polynomial
            elif p.calibration.pairs:
                self.pair_cols.append((j, p.calibration))
        self.coef = coef
        self.poly_identity = bool(np.all(coef[:, 1] == 1.0) and not np.any(np.delete(coef, 1, axis=1)))
        lim = np.stack([p.limits.as_array() for p in params], axis=1) if params else np.zeros((4, 0))
        crit_lo, warn_lo, warn_hi, crit_hi = lim
        self.warn_lo = np.where(np.isnan(warn_lo), crit_lo, warn_lo)
        self.warn_hi = np.where(np.isnan(warn_hi), crit_hi, warn_hi)
        self.crit_lo, self.crit_hi = crit_lo, crit_hi
        self.has_limits = bool(np.any(~np.isnan(lim)))
        self._prepare_bounds()

    def numeric(self, raw: np.ndarray) -> np.ndarray:
        x = raw.astype(np.float64)
        if not self.signed.any() and not self.float_w.any():
            return x
        if self.signed.any():
            c = np.flatnonzero(self.signed)
            w = self.width[c]
            r = raw[:, c]
            neg = (r >> (w - np.uint64(1))) & np.uint64(1)
            x[:, c] = r.astype(np.float64) - neg.astype(np.float64) * np.exp2(w.astype(np.float64))
        for fw, dtype in ((16, np.float16), (32, np.float32), (64, np.float64)):
            c = np.flatnonzero(self.float_w == fw)
            if len(c):
                ut = {16: np.uint16, 32: np.uint32, 64: np.uint64}[fw]
                x[:, c] = raw[:, c].astype(ut).view(dtype).astype(np.float64)
        return x

    def calibrate(self, x: np.ndarray) -> np.ndarray:
        if self.poly_identity:
            eu = x.copy()
        elif self.coef.shape[1] == 2:
            eu = np.multiply(x, self.coef[:, 1])
            eu += self.coef[:, 0]
        else:
            eu = np.multiply(x, self.coef[:, -1])
            for d in range(self.coef.shape[1] - 2, 0, -1):
                eu += self.coef[:, d]
                eu *= x
            eu += self.coef[:, 0]
        for j, cal in self.pair_cols:
            eu[:, j] = cal.apply(x[:, j])
        return eu

    def limit_state(self, eu: np.ndarray) -> np.ndarray:
        state = np.zeros(eu.shape, np.int8)
        if not self.has_limits:
            return state
        with np.errstate(invalid="ignore"):
            for bound, sign in self._bounds:
                cols, values = bound
                if cols is None:
                    hit = (eu > values) if sign > 0 else (eu < values)
                    state += hit.view(np.int8) if sign > 0 else -hit.view(np.int8)
                else:
                    sub = eu[:, cols]
                    hit = (sub > values) if sign > 0 else (sub < values)
                    state[:, cols] += hit.view(np.int8) if sign > 0 else -hit.view(np.int8)
        return state

    def _prepare_bounds(self) -> None:
        """For each limit row, the columns that have it (None = all) and their values."""
        self._bounds = []
        for arr, sign in ((self.warn_hi, 1), (self.crit_hi, 1), (self.warn_lo, -1), (self.crit_lo, -1)):
            have = ~np.isnan(arr)
            if not have.any():
                continue
            if have.all():
                self._bounds.append(((None, arr), sign))
            else:
                cols = np.flatnonzero(have)
                self._bounds.append(((cols, arr[cols]), sign))


@dataclass
class _SimpleGroup:
    filt: tuple[int, int] | None
    params: list[Parameter]
    ids: np.ndarray
    words: np.ndarray  # (P,) word position
    masks: np.ndarray  # (P,) uint64
    shifts: np.ndarray  # (P,) uint64
    offset_ns: np.ndarray
    cols: _Columns
    masked: bool = True


@dataclass
class _ComplexParam:
    filt: tuple[int, int] | None
    param: Parameter
    pid: int
    positions: np.ndarray  # (k, n_fragments)
    masks: np.ndarray  # (n_fragments,) uint64
    shifts: np.ndarray  # (n_fragments,) uint64
    widths: np.ndarray  # (n_fragments,) uint64
    slot_offset_ns: np.ndarray  # (k,)
    cols: _Columns


def _mask_shift(mask: int | None, width: int) -> tuple[int, int]:
    if mask is None:
        return (1 << width) - 1, 0
    low = (mask & -mask).bit_length() - 1
    return mask, low


class ExtractionPlan:
    """How to pull every parameter of a database out of ``MinorFrames``."""

    def __init__(self, db: ParameterDatabase, ids: dict[str, int] | None = None) -> None:
        self.db = db
        frame = db.frame
        ids = ids or {p.name: i for i, p in enumerate(db.parameters)}
        widths = frame.widths()
        ns_bit = frame.ns_per_bit()
        bit_off = frame.bit_offsets()
        simple: dict[tuple | None, list[Parameter]] = {}
        self.complex: list[_ComplexParam] = []
        for p in db.parameters:
            pos = p.positions(frame)
            filt = _frame_filter(p, frame)
            if len(p.fragments) == 1 and len(pos) == 1:
                simple.setdefault(filt, []).append(p)
                continue
            ms = [_mask_shift(f.mask, int(widths[f.word])) for f in p.fragments]
            self.complex.append(
                _ComplexParam(
                    filt=filt,
                    param=p,
                    pid=ids[p.name],
                    positions=pos,
                    masks=np.array([m for m, _ in ms], np.uint64),
                    shifts=np.array([s for _, s in ms], np.uint64),
                    widths=np.array(p.fragment_widths(frame), np.uint64),
                    slot_offset_ns=np.round(bit_off[pos[:, 0]] * ns_bit).astype(np.int64),
                    cols=_Columns([p], frame),
                )
            )
        self.simple: list[_SimpleGroup] = []
        for filt, params in simple.items():
            words = np.array([p.fragments[0].word for p in params], np.int64)
            ms = [_mask_shift(p.fragments[0].mask, int(widths[p.fragments[0].word])) for p in params]
            self.simple.append(
                _SimpleGroup(
                    filt=filt,
                    params=params,
                    ids=np.array([ids[p.name] for p in params], np.int32),
                    words=words,
                    masks=np.array([m for m, _ in ms], np.uint64),
                    shifts=np.array([s for _, s in ms], np.uint64),
                    offset_ns=np.round(bit_off[words] * ns_bit).astype(np.int64),
                    cols=_Columns(params, frame),
                    masked=any(p.fragments[0].mask is not None for p in params),
                )
            )

    def extract(self, frames: MinorFrames) -> list[SampleBlock]:
        """Every parameter's samples in ``frames``, as blocks (empty blocks omitted)."""
        blocks: list[SampleBlock] = []
        if len(frames) == 0:
            return blocks
        for g in self.simple:
            rows = _select_rows(frames, g.filt)
            w = frames.words[rows][:, g.words].astype(np.uint64)
            if len(w) == 0:
                continue
            raw = (w & g.masks) >> g.shifts if g.masked else w
            blocks.append(self._finish(g.cols, tuple(p.name for p in g.params), g.ids, frames.t_ns[rows], g.offset_ns, raw))
        for c in self.complex:
            rows = _select_rows(frames, c.filt)
            w = frames.words[rows].astype(np.uint64)
            if len(w) == 0:
                continue
            raw = np.zeros((len(w), len(c.positions)), np.uint64)
            for f in range(c.positions.shape[1]):
                part = (w[:, c.positions[:, f]] & c.masks[f]) >> c.shifts[f]
                raw = (raw << c.widths[f]) | part
            t = (frames.t_ns[rows][:, None] + c.slot_offset_ns[None, :]).reshape(-1)
            blocks.append(
                self._finish(c.cols, (c.param.name,), np.array([c.pid], np.int32), t, np.zeros(1, np.int64), raw.reshape(-1, 1))
            )
        return blocks

    @staticmethod
    def _finish(cols: _Columns, names, ids, t_ns, offset_ns, raw) -> SampleBlock:
        x = cols.numeric(raw)
        eu = cols.calibrate(x)
        return SampleBlock(
            names=names,
            ids=ids,
            t_ns=np.ascontiguousarray(t_ns, dtype=np.int64),
            offset_ns=offset_ns,
            raw=raw,
            eu=eu,
            limit=cols.limit_state(eu),
        )
