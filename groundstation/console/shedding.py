"""Rate shedding (sans-I/O): fresh data for a console the server cannot keep up with.

Under overload the server keeps its tick rate and data ages: a console at 20 Hz
gets every bundle, later and later. A ``RateGovernor`` watches one console's data
age (send time minus the newest sample's arrival time, both the server's clock) and
decides its rate level: level ``k`` halves every subscription's requested rate ``k``
times (20 -> 10 -> 5 -> 2 -> 1 Hz), never below 1 Hz. It steps down when the smoothed
age (an exponential average, so one late write does not count) stays over the budget
for ``hold_s``, and back up when the console has caught up (smoothed age under a
quarter of the budget) for ``recover_s``. The coarser tier's min/max/count cover every sample,
so no spike is hidden. The session applies the level and tells its console.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RateGovernor", "shed_rate", "AGE_BUDGET_S"]

AGE_BUDGET_S = 0.2  # a console's data age past this is overload


def shed_rate(rate: int, level: int) -> int:
    """``rate`` halved ``level`` times, at least 1 Hz (and never above ``rate``)."""
    for _ in range(level):
        if rate <= 1:
            break
        rate = max(1, rate // 2)
    return rate


@dataclass
class RateGovernor:
    """One console's rate level from its data ages; ``observe`` returns the new level when it changes."""

    budget_s: float = AGE_BUDGET_S  # 0: never shed
    hold_s: float = 0.5  # over budget this long before the next step down
    recover_s: float = 2.0  # caught up this long before a step up
    max_level: int = 5
    smoothing: float = 0.3  # weight of the newest age in the average
    level: int = 0
    last_age_ns: int = 0
    age_ns: float = -1.0  # the smoothed age (-1: nothing seen yet)
    _over_since: int | None = None
    _under_since: int | None = None

    def observe(self, age_ns: int, now_ns: int) -> int | None:
        self.last_age_ns = age_ns
        if self.budget_s <= 0:
            return None
        self.age_ns = age_ns if self.age_ns < 0 else self.age_ns + self.smoothing * (age_ns - self.age_ns)
        age_ns = int(self.age_ns)
        budget = int(self.budget_s * 1e9)
        if age_ns > budget:
            self._under_since = None
            if self._over_since is None:
                self._over_since = now_ns
            elif now_ns - self._over_since >= self.hold_s * 1e9 and self.level < self.max_level:
                self._over_since = now_ns  # the next step waits for the lower rate to show its effect
                self.level += 1
                return self.level
            return None
        self._over_since = None
        if age_ns <= budget // 4 and self.level > 0:
            if self._under_since is None:
                self._under_since = now_ns
            elif now_ns - self._under_since >= self.recover_s * 1e9:
                self._under_since = now_ns
                self.level -= 1
                return self.level
        elif age_ns > budget // 4:
            self._under_since = None
        return None
