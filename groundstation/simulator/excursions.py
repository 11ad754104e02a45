"""Limit excursions the simulated vehicle makes by itself (``groundstation demo --events``).

A deterministic schedule from a seed: the first excursion 20-40 s after the start, then one
every 60-120 s, each one of the kinds below (chosen at random, seeded): the parameter is drawn
to a level past its warning limit for the duration, with a 1 s ramp in and out,
so a console shows an alarm (and its clearing) without anyone sending a command. Pure: times
and values in, values out, a few numpy calls per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Excursion", "ExcursionSchedule", "KINDS"]

# parameter -> (level held, duration s): past the vehicle database's limits
# (EGT warning 850 degC, critical 950; HYD_PRESS warning low 2800 psi; NZ warning 4 g, critical 6)
KINDS: dict[str, tuple[float, float]] = {
    "EGT": (900.0, 12.0),  # overtemperature: warning
    "HYD_PRESS": (2650.0, 8.0),  # pressure drop: below warning low
    "NZ": (4.6, 3.0),  # a hard pull: warning high
}
RAMP_S = 1.0


@dataclass(frozen=True)
class Excursion:
    name: str
    start_s: float  # seconds after the vehicle's start
    duration_s: float
    level: float


class ExcursionSchedule:
    """The excursions of one flight, up to ``horizon_s`` (default a day), from ``seed``."""

    def __init__(self, seed: int = 0, *, first_s: tuple[float, float] = (20.0, 40.0),
                 every_s: tuple[float, float] = (60.0, 120.0), horizon_s: float = 86_400.0) -> None:
        rng = np.random.default_rng([seed, 0x45_56])  # independent of the flight model's own draws
        names = list(KINDS)
        out, t = [], float(rng.uniform(*first_s))
        while t < horizon_s:
            name = names[int(rng.integers(len(names)))]
            level, duration = KINDS[name]
            out.append(Excursion(name, t, duration, level))
            t += duration + float(rng.uniform(*every_s))
        self.excursions = tuple(out)
        self._by_name = {n: (np.array([e.start_s for e in out if e.name == n]),
                             np.array([e.duration_s for e in out if e.name == n]),
                             np.array([e.level for e in out if e.name == n])) for n in names}

    def apply(self, name: str, t: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` of ``name`` at times ``t`` (s since start) with the excursions drawn in."""
        t = np.asarray(t, np.float64)
        starts, durations, levels = self._by_name.get(name, (np.zeros(0),) * 3)
        if not len(starts):
            return values
        i = np.searchsorted(starts, t, side="right") - 1
        j = np.maximum(i, 0)
        x = t - starts[j]
        ramp = np.where(i >= 0, np.clip(np.minimum(x, durations[j] - x) / RAMP_S, 0.0, 1.0), 0.0)
        return values + ramp * (levels[j] - values)

    def between(self, t0_s: float, t1_s: float) -> list[Excursion]:
        """The excursions that overlap [t0_s, t1_s)."""
        return [e for e in self.excursions if e.start_s < t1_s and e.start_s + e.duration_s > t0_s]
