"""What the vehicle put on its buses, kept for tests: the simulator's truth for bus parameters."""

from __future__ import annotations

from collections import deque

import numpy as np

from .buses import BusSamples

__all__ = ["BusTruth"]


class BusTruth:
    """The bus samples of the last ``keep_ns`` (by sample time), with wall times in ns.

    ``t0_ns`` is the wall time of RTC count 0 of the samples' ``ticks`` (the vehicle's start).
    """

    def __init__(self, names: list[str], t0_ns: int, keep_ns: int) -> None:
        self.names = names
        self.t0_ns = t0_ns
        self.keep_ns = keep_ns
        self._ids = {n: i for i, n in enumerate(names)}
        self._chunks: deque[tuple[np.ndarray, np.ndarray, np.ndarray]] = deque()  # (index, t_ns, eu)
        self._latest: dict[str, tuple[int, float]] = {}

    def add(self, samples: BusSamples) -> None:
        if not len(samples.index):
            return
        t_ns = self.t0_ns + samples.ticks * 100
        self._chunks.append((samples.index, t_ns, samples.eu))
        last = {int(i): k for k, i in enumerate(samples.index)}  # the last row of each parameter
        for i, k in last.items():
            if self._latest.get(self.names[i], (-1, 0.0))[0] <= t_ns[k]:
                self._latest[self.names[i]] = (int(t_ns[k]), float(samples.eu[k]))
        horizon = int(t_ns.max()) - self.keep_ns
        while len(self._chunks) > 1 and self._chunks[0][1].max() < horizon:
            self._chunks.popleft()

    def samples(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(t_ns int64, eu float64) of every kept sample of ``name``, in time order (NaN: no computed data)."""
        if name not in self._ids:
            raise KeyError(f"{name!r} is not a bus parameter of the vehicle")
        i = self._ids[name]
        t = [c[1][c[0] == i] for c in self._chunks]
        e = [c[2][c[0] == i] for c in self._chunks]
        if not t:
            return np.zeros(0, np.int64), np.zeros(0)
        t_ns, eu = np.concatenate(t), np.concatenate(e)
        order = np.argsort(t_ns, kind="stable")
        return t_ns[order], eu[order]

    def latest(self) -> dict[str, tuple[int, float]]:
        """``{name: (t_ns, eu)}``: the last sample of each bus parameter sent so far."""
        return dict(self._latest)
