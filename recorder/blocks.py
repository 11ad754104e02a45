"""Sample assembly: one buffered ``Section`` into the arrays (a ``Block``) appended to a segment."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from .layout import PACKET_INDEX_COLUMNS, SegmentLayout

if TYPE_CHECKING:
    from .buffer import Section

__all__ = ["Block", "RateBlock", "TextBlock", "assemble"]


# -- assembly (runs in the writer's thread) ---------------------------------------------------
@dataclass
class RateBlock:
    time: np.ndarray  # (T,) int64
    values: np.ndarray  # (T, P) float64
    raw: np.ndarray  # (T, P)
    limit: np.ndarray  # (T, P) int8


@dataclass
class TextBlock:
    time: np.ndarray  # (n,) int64
    end: np.ndarray  # (n,) int64 end offsets relative to the block's text
    text: np.ndarray  # (bytes,) uint8

    def __len__(self) -> int:
        return len(self.time)


@dataclass
class Block:
    """Arrays ready to append to one segment (offsets relative to the block)."""

    rates: dict[str, RateBlock] = field(default_factory=dict)
    packet_data: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    packet_index: np.ndarray = field(default_factory=lambda: np.zeros((0, len(PACKET_INDEX_COLUMNS)), np.int64))
    packet_status: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))  # telemetry_formats STATUS_*
    events: TextBlock | None = None
    commands: TextBlock | None = None
    samples: int = 0
    unplaced_samples: int = 0  # samples of ids the layout does not know (dropped)
    first_ns: int | None = None
    last_ns: int | None = None

    @property
    def nbytes(self) -> int:
        n = self.packet_data.nbytes + self.packet_index.nbytes + self.packet_status.nbytes
        for r in self.rates.values():
            n += r.time.nbytes + r.values.nbytes + r.raw.nbytes + r.limit.nbytes
        for t in (self.events, self.commands):
            if t is not None:
                n += t.time.nbytes + t.end.nbytes + t.text.nbytes
        return n


def _text_block(items: list) -> TextBlock | None:
    if not items:
        return None
    lines = [line + b"\n" for _, line in items]
    text = np.frombuffer(b"".join(lines), np.uint8)
    end = np.cumsum([len(x) for x in lines], dtype=np.int64)
    return TextBlock(np.array([t for t, _ in items], np.int64), end, text)


def _packets(items: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not items:
        return np.zeros(0, np.uint8), np.zeros((0, len(PACKET_INDEX_COLUMNS)), np.int64), np.zeros(0, np.uint8)
    data = np.frombuffer(b"".join([it[0] for it in items]), np.uint8)
    index = np.array([(0, len(it[0]), *it[1:5]) for it in items], np.int64)
    status = np.array([it[5] if len(it) > 5 else 0 for it in items], np.uint8)
    lengths = index[:, 1]
    index[1:, 0] = np.cumsum(lengths)[:-1]
    return data, index, status


def _grid_rows(pid: np.ndarray, max_period: int = 1 << 16) -> tuple[int, int]:
    """(n * S, S): the leading part of ``pid`` made of n >= 2 repeats of its first S ids.

    The decommutator emits the parameters present in every minor frame as a (frames,
    slots) grid, frame after frame, then the subcommutated samples. (0, 0) when
    there is no such grid.
    """
    m = len(pid)
    if m < 4:
        return 0, 0
    # S is where the first frame's pattern starts again: one of the next places pid[0]
    # appears (a few when it is supercommutated).
    best = (0, 0)
    for S in (np.flatnonzero(pid[1:min(m, max_period + 1)] == pid[0]) + 1)[:64].tolist():
        n = m // S
        if n < 2:
            break
        rows = pid[:n * S].reshape(n, S)
        same = (rows == rows[0]).all(axis=1)
        k = n if same.all() else int(np.argmin(same))
        if k >= 2 and k * S > best[0]:
            best = (k * S, S)
            if k * S > m // 2:  # (a shorter false period covers only the start of one frame)
                break
    return best


class _Pattern:
    """Where each rate group's columns sit in one grid row (computed once per pattern)."""

    def __init__(self, row: np.ndarray, layout: SegmentLayout) -> None:
        self.row = row
        self.groups = []  # (group index, cols (k*P,) positions in the row ordered (slot j, column c), k)
        gid = layout.gid_of_pid[row]
        col = layout.col_of_pid[row]
        for g, group in enumerate(layout.groups):
            at = np.flatnonzero(gid == g)
            if not len(at):
                continue
            P = len(group.names)
            counts = np.bincount(col[at], minlength=P)
            k = int(counts[0])
            if not k or not (counts == k).all():
                self.groups = None  # not a regular grid for this layout
                return
            # stable by column: each column's slots in row (= time) order
            by_col = at[np.argsort(col[at], kind="stable")].reshape(P, k)
            self.groups.append((g, np.ascontiguousarray(by_col.T).ravel(), k))


def _rates(batches: list, layout: SegmentLayout) -> tuple[dict[str, RateBlock], int, int]:
    """Long-format samples to one ``values(time, param)`` block per rate group.

    Fast path: the every-frame part of each batch is a (frames, slots) grid whose slots
    repeat frame after frame, so each group's rows are one column gather. The rest
    (subcommutated samples, anything irregular) is sorted by parameter (stable, so in
    time order) and reshaped, or aligned by time when parameters have missing samples.
    """
    if not batches or not layout.groups:
        return {}, 0, sum(len(b) for b in batches)
    n_params = layout.n_params
    pieces: dict[int, list] = {}  # group index -> [(time, values, raw, limit)]
    rest = []
    patterns: dict[bytes, _Pattern] = {}
    total = unplaced = 0
    run: list = []  # consecutive grid parts with the same row pattern: gathered once
    run_key = prev_row = None
    for b in batches:
        m = len(b.pid)
        total += m
        if not m:
            continue
        glen, row_len = _grid_rows_like(b.pid, prev_row) if prev_row is not None else (0, 0)
        if not glen:
            glen, row_len = _grid_rows(b.pid)
        done, key = 0, None
        if glen:
            row = b.pid[:row_len]
            key = row.tobytes()
            pat = patterns.get(key)
            if pat is None and row.min() >= 0 and row.max() < n_params:
                pat = patterns[key] = _Pattern(row, layout)
            if pat is not None and pat.groups is not None:
                done, prev_row = glen, row
            else:
                key = None
        if run and key != run_key:
            _take_run(run, patterns[run_key], layout, pieces, rest)
            run = []
        if done:
            run_key = key
            run.append(b if done == m else _slice(b, 0, done))
        if done < m:
            rest.append(b if not done else _slice(b, done, m))
    if run:
        _take_run(run, patterns[run_key], layout, pieces, rest)
    placed = total
    if rest:
        r_out, _, unplaced = _sorted_rates(rest, layout)
        placed -= unplaced
        for g, blk in r_out.items():
            pieces.setdefault(g, []).append((blk.time, blk.values, blk.raw, blk.limit))
    out = {}
    for g, parts in sorted(pieces.items()):
        group = layout.groups[g]
        if len(parts) == 1:
            t, v, r, lim = parts[0]
        else:
            parts.sort(key=lambda x: int(x[0][0]) if len(x[0]) else 0)
            t, v, r, lim = (np.concatenate(x) for x in zip(*parts))
            if len(t) > 1 and (np.diff(t) < 0).any():  # interleaved pieces: put rows in time order
                o = np.argsort(t, kind="stable")
                t, v, r, lim = t[o], v[o], r[o], lim[o]
        out[group.name] = RateBlock(t, v, r.astype(group.raw_dtype, copy=False), lim)
    return out, placed, unplaced


def _grid_rows_like(pid: np.ndarray, row: np.ndarray) -> tuple[int, int]:
    """``_grid_rows`` for a batch expected to repeat ``row`` (the previous batch's): one check."""
    S, m = len(row), len(pid)
    n = m // S
    if n < 2 or pid[0] != row[0]:
        return 0, 0
    same = (pid[:n * S].reshape(n, S) == row).all(axis=1)
    k = n if same.all() else int(np.argmin(same))
    return (k * S, S) if k >= 2 and k * S > m // 2 else (0, 0)


def _take_run(run: list, pat: "_Pattern", layout: SegmentLayout, pieces: dict, rest: list) -> None:
    """The grid parts of consecutive batches with one row pattern, gathered as one grid."""
    if len(run) == 1:
        b = run[0]
    else:
        b = SimpleNamespace(**{k: np.concatenate([getattr(x, k) for x in run])
                               for k in ("pid", "t_ns", "raw", "eu", "limit")})
    if not _take_grid(b, len(b.pid), len(pat.row), pat, layout, pieces):
        rest.extend(run)


def _slice(b, a: int, z: int):
    return SimpleNamespace(pid=b.pid[a:z], t_ns=b.t_ns[a:z], raw=b.raw[a:z], eu=b.eu[a:z], limit=b.limit[a:z])


def _take_grid(b, glen: int, S: int, pat: _Pattern, layout: SegmentLayout, pieces: dict) -> bool:
    n = glen // S
    t2 = b.t_ns[:glen].reshape(n, S)
    parts = []
    for g, cols, k in pat.groups:
        group = layout.groups[g]
        P = len(group.names)
        tt = t2[:, cols].reshape(n * k, P)
        row_t = tt[:, 0] - group.time_offset_ns[0]
        if not (tt - group.time_offset_ns == row_t[:, None]).all():
            return False  # times do not line up as the layout says: take the general path
        parts.append((g, row_t, cols, k, P))
    e2 = b.eu[:glen].reshape(n, S)
    r2 = b.raw[:glen].reshape(n, S)
    l2 = b.limit[:glen].reshape(n, S)
    for g, row_t, cols, k, P in parts:
        pieces.setdefault(g, []).append((row_t, e2[:, cols].reshape(n * k, P), r2[:, cols].reshape(n * k, P),
                                         l2[:, cols].reshape(n * k, P)))
    return True


def _sorted_rates(batches: list, layout: SegmentLayout) -> tuple[dict[int, RateBlock], int, int]:
    """The general path: a stable sort by parameter, then rows per group."""
    if len(batches) == 1:
        b = batches[0]
        pid, t, raw, eu, lim = b.pid, b.t_ns, b.raw, b.eu, b.limit
    else:
        pid = np.concatenate([b.pid for b in batches])
        t = np.concatenate([b.t_ns for b in batches])
        raw = np.concatenate([b.raw for b in batches])  # promotes mixed widths
        eu = np.concatenate([b.eu for b in batches])
        lim = np.concatenate([b.limit for b in batches])
    n_params = layout.n_params
    known = (pid >= 0) & (pid < n_params)
    unplaced = int(len(pid) - np.count_nonzero(known))
    if unplaced:
        pid, t, raw, eu, lim = pid[known], t[known], raw[known], eu[known], lim[known]
    slot = layout.slot_of_pid[pid]
    # A stable sort by slot puts each parameter's samples together, in time order, and the
    # parameters of a rate group next to each other (radix sort for 16-bit keys).
    key = slot.astype(np.uint16) if n_params <= 0xFFFF else slot
    order = np.argsort(key, kind="stable")
    counts = np.bincount(slot, minlength=n_params)
    out = {}
    for g, group in enumerate(layout.groups):
        a, b = int(layout.group_start[g]), int(layout.group_start[g + 1])
        c = counts[a:b]
        if not c.any():
            continue
        lo, hi = int(counts[:a].sum()), int(counts[:b].sum())
        idx = order[lo:hi]
        P = b - a
        n = int(c[0])
        if (c == n).all():
            tt = t[idx].reshape(P, n)
            row_t = tt[0] - group.time_offset_ns[0]
            if (tt - group.time_offset_ns[:, None] == row_t).all():
                out[g] = RateBlock(
                    time=np.ascontiguousarray(row_t),
                    values=np.ascontiguousarray(eu[idx].reshape(P, n).T),
                    raw=np.ascontiguousarray(raw[idx].reshape(P, n).T).astype(group.raw_dtype, copy=False),
                    limit=np.ascontiguousarray(lim[idx].reshape(P, n).T),
                )
                continue
        # General case (parameters with missing samples): rows by time, gaps as NaN / 0.
        cols = layout.col_of_pid[pid[idx]]
        rt = t[idx] - group.time_offset_ns[cols]
        times, row = np.unique(rt, return_inverse=True)
        values = np.full((len(times), P), np.nan)
        raws = np.zeros((len(times), P), group.raw_dtype)
        lims = np.zeros((len(times), P), np.int8)
        values[row, cols] = eu[idx]
        raws[row, cols] = raw[idx]
        lims[row, cols] = lim[idx]
        out[g] = RateBlock(times, values, raws, lims)
    return out, int(len(pid)), unplaced


def assemble(section: Section, layout: SegmentLayout) -> Block:
    """Arrays to append for one section, under ``layout``."""
    rates, samples, unplaced = _rates(section.samples, layout)
    data, index, status = _packets(section.packets)
    blk = Block(rates=rates, packet_data=data, packet_index=index, packet_status=status, events=_text_block(section.events),
                commands=_text_block(section.commands), samples=samples, unplaced_samples=unplaced)
    firsts = [int(r.time[0]) for r in rates.values() if len(r.time)]
    lasts = [int(r.time[-1]) for r in rates.values() if len(r.time)]
    if len(index):
        firsts.append(int(index[0, 5]))
        lasts.append(int(index[-1, 5]))
    if firsts:
        blk.first_ns, blk.last_ns = min(firsts), max(lasts)
    return blk
