"""The recent samples of a live recording session, by parameter name (for console backfill).

``iter_window`` runs in the recorder's worker thread (the only thread that touches
the open segment file). It reads the session's segment files from ``from_ns`` on,
in pieces of at most ``piece_bytes`` (it returns after each: h5py holds the GIL
while it reads, and the worker writes between pieces), then the samples
still in memory: the sections being written or waiting in the buffer. A sample
that is both in a file and in memory (its section was written meanwhile) is
passed once: from a file, only samples older than a parameter's first sample in
memory are taken. ``sink(ids, t_ns, eu, limit)`` receives numpy pieces, where
``ids`` are the caller's ids for the names asked.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np

from .reader import _bisect
from .segment import Segment

__all__ = ["iter_window"]

Sink = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]
NEVER = np.iinfo(np.int64).max


def iter_window(writer, memory: list, ids_by_name: dict[str, int], from_ns: int, sink: Sink, *,
                piece_bytes: int = 256 << 10) -> Generator[None, None, dict]:
    """Pass every recorded sample of the named parameters with ``t > from_ns`` to ``sink`` once, one
    piece at a time: each ``next()`` reads at most ``piece_bytes`` of a file (or passes the samples
    in memory) and returns; ``StopIteration.value`` holds the counts (files read, samples from files
    and memory). ``writer`` is the session's ``HDF5Writer``; ``memory`` the buffered ``Section``s
    not yet flushed, oldest first.

    Between pieces the caller may write and flush the session (``RecorderWorker`` does): rows
    appended meanwhile do not matter, and a segment rotated (closed) meanwhile is reopened for
    reading where the read had got to.
    """
    n = max(ids_by_name.values(), default=-1) + 1
    first = np.full(max(n, 1), NEVER, np.int64)
    pieces = _memory_pieces(memory, ids_by_name, from_ns, first)
    stats = {"files": 0, "file_samples": 0, "memory_samples": sum(len(p[1]) for p in pieces), "problems": []}
    open_path = writer.current_file
    for entry, path in list(zip(list(writer.index.segments), list(writer.files))):
        last = entry.get("last_ns")
        if entry.get("closed_ns") is not None and last is not None and last <= from_ns:
            continue
        source = _Source(writer, path, entry, live=path == open_path and writer._seg is not None)
        try:
            stats["file_samples"] += yield from _read_file(source, ids_by_name, from_ns, first, sink, piece_bytes)
            stats["problems"] += source.problems
        finally:
            source.close()
        stats["files"] += 1
    for p in pieces:
        sink(*p)
    yield
    return stats


class _Source:
    """One segment file to read: the writer's own open file while it stays open, else (closed, or
    rotated while being read) the file opened for reading."""

    def __init__(self, writer, path: str, entry: dict, live: bool) -> None:
        self.writer, self.path, self.entry = writer, path, entry
        self.live = live
        self._seg: Segment | None = None

    def file(self):
        """The h5py file and a function giving a dataset's readable rows (file None: unreadable)."""
        w = self.writer
        if self.live and w._seg is not None and w._seg.path == self.path:
            rows = w._seg.rows
            return w._seg.file, lambda d: rows.get(d, 0)
        if self._seg is None:
            self._seg = Segment(self.path, self.entry)
        return self._seg.file, self._seg._rows

    @property
    def problems(self) -> list[str]:
        return self._seg.problems if self._seg is not None else []

    def close(self) -> None:
        if self._seg is not None:
            self._seg.close()


def _memory_pieces(memory: list, ids_by_name: dict[str, int], from_ns: int, first: np.ndarray) -> list:
    """Buffered samples as (ids, t, eu, limit); ``first`` gets each id's earliest time in memory."""
    out = []
    luts: dict[int, np.ndarray] = {}
    for sec in memory:
        cfg = sec.config
        if cfg is None:
            continue
        lut = luts.get(id(cfg))
        if lut is None:
            lut = luts[id(cfg)] = np.array([ids_by_name.get(p.name, -1) for p in cfg.db.parameters] or [-1],
                                           np.int64)
        for b in sec.samples:
            pid = np.asarray(b.pid)
            inside = (pid >= 0) & (pid < len(lut))
            ids = np.where(inside, lut[np.where(inside, pid, 0)], -1)
            keep = (ids >= 0) & (b.t_ns > from_ns)
            if not keep.any():
                continue
            ids, t = ids[keep], b.t_ns[keep]
            np.minimum.at(first, ids, t)
            out.append((ids, t, b.eu[keep], b.limit[keep]))
    return out


def _read_file(source: _Source, ids_by_name: dict[str, int], from_ns: int, first: np.ndarray, sink: Sink,
               piece_bytes: int) -> Generator[None, None, int]:
    passed = 0
    f, rows_of = source.file()
    if f is None or "rates" not in f:
        return 0
    for gname in list(f["rates"]):
        g = f["rates"][gname]
        names = [x.decode() if isinstance(x, bytes) else str(x) for x in g["param"][()]]
        cols = [(j, ids_by_name[nm]) for j, nm in enumerate(names) if nm in ids_by_name]
        if not cols:
            continue
        base = f"rates/{gname}"
        n = min(rows_of(f"{base}/{d}") for d in ("time", "values", "limit"))
        if not n:
            continue
        off = np.asarray(g["values"].attrs["time_offset_ns"], np.int64)
        a = _bisect(g["time"], n, from_ns - int(off.max()))
        step = max(1, piece_bytes // (g["values"].shape[1] * 9 + 8))
        while a < n:
            b = min(a + step, n)
            t, v, lim = g["time"][a:b], g["values"][a:b], g["limit"][a:b]
            for j, cid in cols:
                tt = t + off[j]
                keep = (tt > from_ns) & (tt < first[cid])
                k = int(np.count_nonzero(keep))
                if k:
                    sink(np.full(k, cid, np.int64), tt[keep], v[keep, j], lim[keep, j])
                    passed += k
            a = b
            yield
            f, rows_of = source.file()  # the same file, unless it was rotated meanwhile
            if f is None:
                return passed
            g = f["rates"][gname]
    return passed
