"""Limit alarms (sans-I/O): raised on limit transitions, acknowledged once for all consoles.

An alarm is raised when a parameter leaves its limits or gets worse (warning to
critical). It stays until it has been acknowledged *and* the parameter is back
in limits, as in Yamcs and Open MCT: an operator never misses a spike that was
over before they looked. Every change is an ``AlarmEvent`` for all consoles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .console.decimate import Summary

__all__ = ["AlarmManager", "Alarm", "AlarmEvent", "SEVERITY"]

SEVERITY = {1: "WARNING", 2: "CRITICAL"}


@dataclass
class Alarm:
    id: int
    param_id: int
    name: str
    severity: int  # 1 warning, 2 critical
    direction: str  # "high" or "low"
    value: float  # the value that raised (or last escalated) it
    triggered_ns: int
    acknowledged_by: str | None = None
    acknowledged_ns: int | None = None
    returned_ns: int | None = None  # back in limits at

    def as_wire(self) -> dict:
        return {"id": self.id, "param": self.param_id, "name": self.name, "severity": SEVERITY[self.severity],
                "direction": self.direction, "value": self.value, "triggered_ns": self.triggered_ns,
                "acknowledged_by": self.acknowledged_by, "acknowledged_ns": self.acknowledged_ns,
                "returned_ns": self.returned_ns}


@dataclass
class AlarmEvent:
    """``kind``: raised, escalated, returned, reactivated, acknowledged, cleared."""

    kind: str
    alarm: Alarm
    by: str | None = None

    def as_wire(self) -> dict:
        return {"type": "alarm", "event": self.kind, "alarm": self.alarm.as_wire(), "by": self.by}


@dataclass
class AlarmManager:
    names: list[str]
    active: dict[int, Alarm] = field(default_factory=dict)  # by parameter id
    _next_id: int = 1

    def observe(self, s: Summary) -> list[AlarmEvent]:
        """Update alarms from a batch summary; returns the changes."""
        events: list[AlarmEvent] = []
        worst = np.abs(s.worst_limit)
        current = np.array([self.active[i].severity if i in self.active else 0 for i in s.ids.tolist()], np.int8) \
            if self.active else np.zeros(len(s.ids), np.int8)
        rising = np.flatnonzero(worst > current)
        for j in rising.tolist():
            pid = int(s.ids[j])
            sev = int(worst[j])
            direction = "high" if s.worst_limit[j] > 0 else "low"
            old = self.active.get(pid)
            alarm = Alarm(self._next_id, pid, self.names[pid], sev, direction, float("nan"), int(s.worst_t[j]))
            if old is None:
                self._next_id += 1
                self.active[pid] = alarm
                events.append(AlarmEvent("raised", alarm))
            else:
                old.severity, old.direction, old.triggered_ns = sev, direction, int(s.worst_t[j])
                old.acknowledged_by = old.acknowledged_ns = old.returned_ns = None
                alarm = old
                events.append(AlarmEvent("escalated", alarm))
            alarm.value = float(s.max[j] if direction == "high" else s.min[j])
        if self.active:
            back = np.flatnonzero(s.last_limit == 0)
            for j in back.tolist():
                pid = int(s.ids[j])
                alarm = self.active.get(pid)
                if alarm is None or alarm.returned_ns is not None:
                    continue
                alarm.returned_ns = int(s.last_t[j])
                if alarm.acknowledged_by is not None:
                    del self.active[pid]
                    events.append(AlarmEvent("cleared", alarm))
                else:
                    events.append(AlarmEvent("returned", alarm))
            again = np.flatnonzero(s.last_limit != 0)
            for j in again.tolist():  # out of limits again after having returned
                alarm = self.active.get(int(s.ids[j]))
                if alarm is not None and alarm.returned_ns is not None:
                    alarm.returned_ns = None
                    events.append(AlarmEvent("reactivated", alarm))
        return events

    def clear_all(self, by: str) -> list[AlarmEvent]:
        """Clear every active alarm (e.g. the vehicle was reconfigured); ids keep counting."""
        events = [AlarmEvent("cleared", a, by=by) for a in self.active.values()]
        self.active.clear()
        return events

    def acknowledge(self, alarm_id: int, user: str, now_ns: int) -> AlarmEvent:
        """Acknowledge an alarm for every console; raises KeyError for an unknown id."""
        for pid, alarm in self.active.items():
            if alarm.id == alarm_id:
                if alarm.acknowledged_by is None:
                    alarm.acknowledged_by, alarm.acknowledged_ns = user, now_ns
                if alarm.returned_ns is not None:
                    del self.active[pid]
                    return AlarmEvent("cleared", alarm, by=user)
                return AlarmEvent("acknowledged", alarm, by=user)
        raise KeyError(f"no active alarm {alarm_id}")

    def as_wire(self) -> list[dict]:
        return [a.as_wire() for a in self.active.values()]
