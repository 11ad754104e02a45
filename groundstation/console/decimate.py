"""Decimation (sans-I/O): per-parameter min, max, last and count per interval.

``summarize`` reduces one ``SampleBatch`` per parameter with one stable sort and
``reduceat`` calls. ``Accumulator`` merges summaries over one update interval
of a rate tier and hands out the interval's min/max/last/count, so a one-sample
spike survives any decimation. ``Latest`` keeps the newest value of every
parameter for snapshots.

Invalid samples (a bus word whose SSM says no computed data, a 1553 message with
error bits) arrive as ``eu`` NaN with limit state 0. min and max skip them
(``fmin``/``fmax``); ``count`` counts every sample, valid or not; ``last`` is the
last sample's value, NaN when it was invalid. An interval with only invalid samples
shows min, max and last NaN with its count: "samples came, none had a value".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telemetry_formats.decom import SampleBatch

__all__ = ["Summary", "summarize", "Accumulator", "Latest"]


@dataclass
class Summary:
    """Per-parameter reduction of a batch: arrays aligned on ``ids`` (sorted, unique)."""

    ids: np.ndarray  # int32
    min: np.ndarray
    max: np.ndarray
    last: np.ndarray
    last_t: np.ndarray  # int64 ns
    count: np.ndarray  # int64
    last_limit: np.ndarray  # int8: limit state of the last sample
    worst_limit: np.ndarray  # int8: the most severe state in the batch (sign kept)
    worst_t: np.ndarray  # int64 ns: when it first occurred


def summarize(batch: SampleBatch) -> Summary:
    """Reduce a batch per parameter id (samples of a parameter are in time order)."""
    pid = batch.pid
    order = np.argsort(pid, kind="stable")
    p = pid[order]
    eu = batch.eu[order]
    lim = batch.limit[order]
    starts = np.flatnonzero(np.concatenate(([True], p[1:] != p[:-1])))
    ends = np.concatenate((starts[1:], [len(p)])) - 1
    # the first sample with the most severe limit state, per parameter
    m = len(p) + 1
    key = np.abs(lim).astype(np.int64) * m + (m - 1 - np.arange(len(p)))
    worst_idx = (m - 1) - np.maximum.reduceat(key, starts) % m
    return Summary(
        ids=p[starts],
        min=np.fmin.reduceat(eu, starts),
        max=np.fmax.reduceat(eu, starts),
        last=eu[ends],
        last_t=batch.t_ns[order][ends],
        count=np.diff(np.concatenate((starts, [len(p)]))),
        last_limit=lim[ends],
        worst_limit=lim[worst_idx],
        worst_t=batch.t_ns[order][worst_idx],
    )


class Accumulator:
    """min/max/last/count of every parameter since the last ``take``."""

    def __init__(self, n_params: int) -> None:
        self.n = n_params
        self._reset()

    def _reset(self) -> None:
        n = self.n
        self.min = np.full(n, np.inf)
        self.max = np.full(n, -np.inf)
        self.last = np.full(n, np.nan)
        self.last_t = np.zeros(n, np.int64)
        self.count = np.zeros(n, np.int64)
        self.limit = np.zeros(n, np.int8)

    def add(self, s: Summary) -> None:
        i = s.ids
        self.min[i] = np.fmin(self.min[i], s.min)
        self.max[i] = np.fmax(self.max[i], s.max)
        self.last[i] = s.last
        self.last_t[i] = s.last_t
        self.count[i] += s.count
        worse = np.abs(s.worst_limit) > np.abs(self.limit[i])
        self.limit[i] = np.where(worse, s.worst_limit, self.limit[i])

    def take(self) -> "Accumulator":
        """Return the interval's figures (as a detached copy) and start a new interval."""
        out = Accumulator.__new__(Accumulator)
        out.n = self.n
        out.min, out.max, out.last, out.last_t, out.count, out.limit = (
            self.min, self.max, self.last, self.last_t, self.count, self.limit)
        empty = out.min > out.max  # no valid sample in the interval: min/max NaN, not +-inf
        if empty.any():
            out.min[empty] = np.nan
            out.max[empty] = np.nan
        self._reset()
        return out


class Latest:
    """The newest value, time and limit state of every parameter (for snapshots)."""

    def __init__(self, n_params: int) -> None:
        self.value = np.full(n_params, np.nan)
        self.t_ns = np.zeros(n_params, np.int64)
        self.limit = np.zeros(n_params, np.int8)
        self.seen = np.zeros(n_params, bool)

    def add(self, s: Summary) -> None:
        self.value[s.ids] = s.last
        self.t_ns[s.ids] = s.last_t
        self.limit[s.ids] = s.last_limit
        self.seen[s.ids] = True
