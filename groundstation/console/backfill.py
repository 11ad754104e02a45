"""Backfill (sans-I/O): a reconnecting console's missed interval as its rate buckets.

A console that reconnects sends the newest sample time it saw (``since_ns``) with
``subscribe`` (or a ``backfill`` request). The server reads the recorded samples
after it, and this module reduces them to the subscription's rate: per bucket of
``1/rate`` s (aligned on multiples of the period, like the live ticks) and
parameter, the min, max, last, count, last sample time and most severe limit
state, as the live ``data`` frames carry them. ``plan`` clips the request to the
retention window; ``Buckets.add`` takes samples in pieces of any size and order;
``messages`` cuts the result into ``backfill`` messages of bounded size, then one
``backfill_done``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .protocol import field_blob

__all__ = ["BackfillPlan", "plan", "Buckets", "messages", "ROW_BYTES", "DEFAULT_RETENTION_S"]

DEFAULT_RETENTION_S = 3600.0  # an hour: the longest chart window
ROW_BYTES = 8 + 4 + 8 + 8 + 8 + 4 + 8 + 1  # t, ids, min, max, last, count, last_t, limit
MAX_MESSAGE_ROWS = 4096  # ~200 KB per backfill message


@dataclass(frozen=True)
class BackfillPlan:
    """What a request will get: samples with ``from_ns < t``, at ``rate`` buckets."""

    sub: int
    request_id: int | None
    rate: int
    since_ns: int  # as asked
    from_ns: int  # after clipping to the retention window
    clipped: bool
    retention_s: float


def plan(sub: int, request_id: int | None, rate: int, since_ns: int, newest_ns: int,
         retention_s: float = DEFAULT_RETENTION_S) -> BackfillPlan:
    """Clip ``since_ns`` to ``retention_s`` before ``newest_ns`` (the newest sample time known)."""
    oldest = newest_ns - int(retention_s * 1e9)
    clipped = since_ns < oldest
    return BackfillPlan(sub, request_id, rate, since_ns, oldest if clipped else since_ns, clipped, retention_s)


class Buckets:
    """Per (bucket, parameter) figures over samples added in pieces (any order across pieces)."""

    def __init__(self, rate: int, from_ns: int) -> None:
        self.period = 1_000_000_000 // rate
        self.from_ns = from_ns
        self.first_bucket = from_ns // self.period
        self.samples = 0
        self._parts: list[tuple[np.ndarray, ...]] = []

    def add(self, ids: np.ndarray, t: np.ndarray, eu: np.ndarray, limit: np.ndarray) -> None:
        """Samples (parameter id, time, engineering value, limit state); times at or before ``from_ns`` ignored."""
        keep = t > self.from_ns
        if not keep.all():
            ids, t, eu, limit = ids[keep], t[keep], eu[keep], limit[keep]
        if not len(t):
            return
        self.samples += len(t)
        key = ((t // self.period - self.first_bucket) << 32) | ids.astype(np.int64)
        self._parts.append(_reduce(key, eu, eu, eu, t, np.ones(len(t), np.int64), limit, t))
        if len(self._parts) >= 64:  # bound the pieces kept: merge them
            self._parts = [_reduce(*(np.concatenate(c) for c in zip(*self._parts)))]

    def result(self) -> dict[str, np.ndarray]:
        """Rows sorted by bucket end time ``t``, then parameter id."""
        if not self._parts:
            key, mn, mx, last, last_t, count, lim = _empty()
        else:
            key, mn, mx, last, last_t, count, lim, _ = _reduce(*(np.concatenate(c) for c in zip(*self._parts)))
        bucket = (key >> 32) + self.first_bucket
        return {"t": (bucket + 1) * self.period, "ids": (key & 0xFFFFFFFF).astype(np.uint32), "min": mn, "max": mx,
                "last": last, "count": count, "last_t": last_t, "limit": lim}


def _empty():
    z64 = np.zeros(0, np.int64)
    return z64, np.zeros(0), np.zeros(0), np.zeros(0), z64, z64, np.zeros(0, np.int8)


def _reduce(key, mn, mx, last, last_t, count, limit, worst_t):
    """Merge rows with equal ``key``: min of mins, max of maxes, the newest last, summed counts, and
    the most severe limit state (the earliest if equally severe). Returns unique sorted keys."""
    order = np.lexsort((last_t, key))  # by key, then time: the newest of a key is its last row
    key, last_t, last = key[order], last_t[order], last[order]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    ends = np.concatenate((starts[1:], [len(key)])) - 1
    mn, mx, count = mn[order], mx[order], count[order]
    limit, worst_t = limit[order], worst_t[order]
    # most severe first, then earliest: the first row of each key in that order
    worst = np.lexsort((worst_t, -np.abs(limit.astype(np.int16)), key))
    pick = worst[starts]
    return (key[starts], np.minimum.reduceat(mn, starts), np.maximum.reduceat(mx, starts), last[ends],
            last_t[ends], np.add.reduceat(count, starts), limit[pick], worst_t[pick])


_FIELDS = ("t", "ids", "min", "max", "last", "count", "last_t", "limit")  # dtypes: protocol.BLOB_DTYPES


def messages(p: BackfillPlan, result: dict[str, np.ndarray], *, max_rows: int = MAX_MESSAGE_ROWS,
             until_ns: int | None = None) -> list[dict]:
    """The ``backfill`` messages (``max_rows`` rows each) and the closing ``backfill_done``."""
    n = len(result["t"])
    out = []
    for part, a in enumerate(range(0, n, max_rows)):
        b = min(a + max_rows, n)
        out.append({"type": "backfill", "id": p.request_id, "sub": p.sub, "rate": p.rate, "part": part,
                    **{k: field_blob(k, result[k][a:b]) for k in _FIELDS}})
    last_t = result["last_t"]
    out.append({"type": "backfill_done", "id": p.request_id, "sub": p.sub, "rate": p.rate,
                "since_ns": p.since_ns, "from_ns": p.from_ns, "clipped": p.clipped, "retention_s": p.retention_s,
                "to_ns": int(last_t.max()) if len(last_t) else until_ns, "parts": len(out), "rows": n})
    return out
