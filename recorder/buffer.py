"""Sans-I/O accumulation: ingest results and events in, blocks of arrays to append out.

``RecordBuffer.add(result, arrival_ns)`` is what the event loop calls for every
datagram: it only keeps references (packets as memoryviews of the datagram,
sample batches as they are), so it costs microseconds. ``take()`` hands the
pending ``Section``s over (one per configuration: a configuration change closes
a section and marks the next as starting a new segment); ``assemble(section,
layout)`` turns one into a ``Block``: rows of ``values(time, param)`` per rate
group, the packet byte stream and its index, event lines. ``assemble`` is pure
numpy and runs in the writer's thread. Nothing here imports HDF5.

Memory is bounded: past ``max_bytes`` pending, decoded samples are dropped first
(the raw packets still hold them), then packets; events are kept up to
``max_events``. Every drop is counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from .layout import PACKET_INDEX_COLUMNS, SegmentLayout

__all__ = ["RecordBuffer", "Section", "Block", "RateBlock", "TextBlock", "assemble", "BufferStats"]

SAMPLE_BYTES = 4 + 8 + 8 + 8 + 1  # pid, t, raw (as stored by the decommutator, up to 8), eu, limit
PACKET_OVERHEAD = 64


@dataclass
class Section:
    """What arrived under one configuration, between two ``take()`` calls."""

    config: object = None  # the ingest Configuration in force (None: not configured yet)
    new_segment: str | None = None  # reason to start a new segment before writing it
    packets: list = field(default_factory=list)  # (raw memoryview, channel, data_type, rtc, arrival_ns)
    samples: list = field(default_factory=list)  # SampleBatch
    events: list = field(default_factory=list)  # (time_ns, utf-8 JSON line without newline)
    commands: list = field(default_factory=list)
    nbytes: int = 0

    @property
    def config_version(self) -> int:
        return 0 if self.config is None else int(self.config.version)

    def empty(self) -> bool:
        return not (self.packets or self.samples or self.events or self.commands)


@dataclass
class BufferStats:
    packets: int = 0
    packet_bytes: int = 0
    samples: int = 0
    events: int = 0
    commands: int = 0
    dropped_packets: int = 0
    dropped_samples: int = 0
    dropped_events: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _json_line(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str, allow_nan=True).replace("\n", " ").encode()


class RecordBuffer:
    """Pending data between two writes, grouped into sections by configuration."""

    def __init__(self, *, max_bytes: int = 256 << 20, max_events: int = 100_000) -> None:
        self.max_bytes = max_bytes
        self.max_events = max_events
        self.stats = BufferStats()
        self.config = None
        self._sections: list[Section] = []
        self._current = Section()
        self.pending_bytes = 0
        self._pending_events = 0

    # -- in -------------------------------------------------------------------------------
    def configure(self, config, reason: str = "configuration") -> None:
        """A new configuration: what follows goes to a new segment."""
        self.config = config
        self._close_current()
        self._current = Section(config=config, new_segment=reason)

    def add(self, result, arrival_ns: int) -> None:
        """An ``IngestResult`` (``packets``, ``samples``, ``configured``) from one datagram."""
        cfg = getattr(result, "configured", None)
        if cfg is not None:
            self.configure(cfg)
        sec = self._current
        for p in getattr(result, "packets", ()) or ():
            raw = p.raw
            n = len(raw)
            if self.pending_bytes + n > self.max_bytes:
                self.stats.dropped_packets += 1
                continue
            h = p.header
            sec.packets.append((raw, h.channel_id, h.data_type, h.rtc, arrival_ns))
            self.pending_bytes += n + PACKET_OVERHEAD
            sec.nbytes += n + PACKET_OVERHEAD
            self.stats.packets += 1
            self.stats.packet_bytes += n
        for batch in getattr(result, "samples", ()) or ():
            m = len(batch)
            if not m:
                continue
            cost = m * SAMPLE_BYTES
            # samples give way to packets: keep a quarter of the bound for them
            if self.pending_bytes + cost > self.max_bytes * 3 // 4:
                self.stats.dropped_samples += m
                continue
            sec.samples.append(batch)
            self.pending_bytes += cost
            sec.nbytes += cost
            self.stats.samples += m

    def add_event(self, event: dict, time_ns: int, *, command: bool = False) -> None:
        """An event (alarm, link, configuration, recorder state) or a command record."""
        if self._pending_events >= self.max_events:
            self.stats.dropped_events += 1
            return
        line = _json_line(event)
        target = self._current.commands if command else self._current.events
        target.append((int(time_ns), line))
        self._pending_events += 1
        self.pending_bytes += len(line) + 16
        self._current.nbytes += len(line) + 16
        if command:
            self.stats.commands += 1
        else:
            self.stats.events += 1

    def rotate(self, reason: str) -> None:
        """Ask for a new segment from the next data on (same configuration)."""
        self._close_current()
        self._current = Section(config=self.config, new_segment=reason)

    # -- out ------------------------------------------------------------------------------
    def take(self) -> list[Section]:
        """Every pending section, oldest first; the buffer is empty after."""
        self._close_current()
        out, self._sections = self._sections, []
        self._current = Section(config=self.config)
        self.pending_bytes = 0
        self._pending_events = 0
        return out

    def _close_current(self) -> None:
        sec = self._current
        if not sec.empty() or sec.new_segment is not None:
            self._sections.append(sec)


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
    events: TextBlock | None = None
    commands: TextBlock | None = None
    samples: int = 0
    unplaced_samples: int = 0  # samples of ids the layout does not know (dropped)
    first_ns: int | None = None
    last_ns: int | None = None

    @property
    def nbytes(self) -> int:
        n = self.packet_data.nbytes + self.packet_index.nbytes
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


def _packets(items: list) -> tuple[np.ndarray, np.ndarray]:
    if not items:
        return np.zeros(0, np.uint8), np.zeros((0, len(PACKET_INDEX_COLUMNS)), np.int64)
    data = np.frombuffer(b"".join([it[0] for it in items]), np.uint8)
    index = np.array([(0, len(raw), ch, dt, rtc, arr) for raw, ch, dt, rtc, arr in items], np.int64)
    lengths = index[:, 1]
    index[1:, 0] = np.cumsum(lengths)[:-1]
    return data, index


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
    for b in batches:
        m = len(b.pid)
        total += m
        if not m:
            continue
        glen, row_len = _grid_rows(b.pid)
        done = 0
        if glen:
            row = b.pid[:row_len]
            if row.min() >= 0 and row.max() < n_params:
                key = row.tobytes()
                pat = patterns.get(key)
                if pat is None:
                    pat = patterns[key] = _Pattern(row, layout)
                if pat.groups is not None and _take_grid(b, glen, row_len, pat, layout, pieces):
                    done = glen
        if done < m:
            rest.append(b if not done else _slice(b, done, m))
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
    data, index = _packets(section.packets)
    blk = Block(rates=rates, packet_data=data, packet_index=index, events=_text_block(section.events),
                commands=_text_block(section.commands), samples=samples, unplaced_samples=unplaced)
    firsts = [int(r.time[0]) for r in rates.values() if len(r.time)]
    lasts = [int(r.time[-1]) for r in rates.values() if len(r.time)]
    if len(index):
        firsts.append(int(index[0, 5]))
        lasts.append(int(index[-1, 5]))
    if firsts:
        blk.first_ns, blk.last_ns = min(firsts), max(lasts)
    return blk
