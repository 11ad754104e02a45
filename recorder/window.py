"""The recent samples of a live recording session, by parameter name (for console backfill).

``read_window`` runs in the recorder's worker thread (the only thread that touches
the open segment file). It reads the session's segment files from ``from_ns`` on,
in pieces of at most ``piece_bytes`` with a short pause after each (h5py holds the
GIL while it reads: small pieces keep the event loop running), then the samples
still in memory: the sections being written or waiting in the buffer. A sample
that is both in a file and in memory (its section was written meanwhile) is
passed once: from a file, only samples older than a parameter's first sample in
memory are taken. ``sink(ids, t_ns, eu, limit)`` receives numpy pieces, where
``ids`` are the caller's ids for the names asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .reader import _bisect
from .segment import Segment

__all__ = ["read_window"]

Sink = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]
NEVER = np.iinfo(np.int64).max


def read_window(writer, memory: list, ids_by_name: dict[str, int], from_ns: int, sink: Sink, *,
                piece_bytes: int = 256 << 10, pause_s: float = 0.0002) -> dict:
    """Pass every recorded sample of the named parameters with ``t > from_ns`` to ``sink`` once.

    ``writer`` is the session's ``HDF5Writer``; ``memory`` the buffered ``Section``s not
    yet flushed, oldest first. Returns counts (files read, samples from files and memory).
    """
    n = max(ids_by_name.values(), default=-1) + 1
    first = np.full(max(n, 1), NEVER, np.int64)
    pieces = _memory_pieces(memory, ids_by_name, from_ns, first)
    stats = {"files": 0, "file_samples": 0, "memory_samples": sum(len(p[1]) for p in pieces), "problems": []}
    open_path = writer.current_file
    for entry, path in zip(list(writer.index.segments), writer.files):
        last = entry.get("last_ns")
        if entry.get("closed_ns") is not None and last is not None and last <= from_ns:
            continue
        if path == open_path and writer._seg is not None:
            f, rows = writer._seg.file, writer._seg.rows
            stats["file_samples"] += _read_file(f, lambda d, rows=rows: rows.get(d, 0), ids_by_name, from_ns,
                                                first, sink, piece_bytes, pause_s)
        else:
            seg = Segment(path, entry)
            try:
                if seg.file is not None:
                    stats["file_samples"] += _read_file(seg.file, seg._rows, ids_by_name, from_ns, first, sink,
                                                        piece_bytes, pause_s)
                stats["problems"] += seg.problems
            finally:
                seg.close()
        stats["files"] += 1
    for p in pieces:
        sink(*p)
    return stats


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


def _read_file(f, rows_of, ids_by_name: dict[str, int], from_ns: int, first: np.ndarray, sink: Sink,
               piece_bytes: int, pause_s: float) -> int:
    passed = 0
    if "rates" not in f:
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
        tds, vds, lds = g["time"], g["values"], g["limit"]
        a = _bisect(tds, n, from_ns - int(off.max()))
        step = max(1, piece_bytes // (vds.shape[1] * 9 + 8))
        while a < n:
            b = min(a + step, n)
            t, v, lim = tds[a:b], vds[a:b], lds[a:b]
            for j, cid in cols:
                tt = t + off[j]
                keep = (tt > from_ns) & (tt < first[cid])
                k = int(np.count_nonzero(keep))
                if k:
                    sink(np.full(k, cid, np.int64), tt[keep], v[keep, j], lim[keep, j])
                    passed += k
            a = b
            if pause_s:
                time.sleep(pause_s)
    return passed
