"""Command history: one record per attempt, its state with a timestamp per state reached, the latest N kept.

A record is Queued, Released, Sent, Acknowledged (the vehicle's echo seen), Completed
(the effect seen) -- or Rejected (refused here), Failed (send error or the vehicle
refused it) or Timed out. ``reason`` is the operator's free-text "why"; ``code`` and
``detail`` say why a command did not complete.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CommandRecord", "History", "State", "TERMINAL"]


class State(enum.StrEnum):
    QUEUED = "QUEUED"
    RELEASED = "RELEASED"
    SENT = "SENT"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL = frozenset({State.COMPLETED, State.REJECTED, State.FAILED, State.TIMED_OUT})

# Where each state may go next (a record starts QUEUED or REJECTED).
_NEXT: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.RELEASED, State.FAILED}),
    State.RELEASED: frozenset({State.SENT, State.FAILED, State.TIMED_OUT}),
    State.SENT: frozenset({State.ACKNOWLEDGED, State.COMPLETED, State.FAILED, State.TIMED_OUT}),
    State.ACKNOWLEDGED: frozenset({State.COMPLETED, State.FAILED, State.TIMED_OUT}),
}


@dataclass
class CommandRecord:
    """One command attempt, accepted or not."""

    id: int
    name: str
    opcode: int | None  # None if the command is unknown
    args: dict[str, Any]  # as validated (enum by choice name), or as submitted if refused
    user: str
    role: str
    reason: str = ""  # the operator's why
    client_seq: int | None = None  # the console's own number for this request
    sequence: int | None = None  # uplink sequence number, set on release
    hazardous: bool = False
    arm_id: int | None = None
    values: dict[str, int | float] = field(default_factory=dict)  # numeric arguments as sent (enum -> code)
    state: State | None = None
    times: dict[State, int] = field(default_factory=dict)  # ns when each state was reached
    code: str = ""  # why it did not complete, for programs
    detail: str = ""  # ... and for people

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def advance(self, state: State, now_ns: int, *, code: str = "", detail: str = "") -> None:
        """Move to ``state`` at ``now_ns``; ValueError on a transition the lifecycle does not have."""
        allowed = frozenset({State.QUEUED, State.REJECTED}) if self.state is None else _NEXT.get(self.state, ())
        if state not in allowed:
            raise ValueError(f"command {self.id}: {self.state} -> {state} is not a valid transition")
        self.state = state
        self.times[state] = now_ns
        if code or detail:
            self.code, self.detail = code, detail

    def as_wire(self) -> dict:
        return {"id": self.id, "name": self.name, "opcode": self.opcode, "args": dict(self.args),
                "values": dict(self.values), "user": self.user, "role": self.role, "reason": self.reason,
                "client_seq": self.client_seq, "sequence": self.sequence, "hazardous": self.hazardous,
                "arm_id": self.arm_id, "state": str(self.state) if self.state else None,
                "times": {str(s): t for s, t in self.times.items()}, "code": self.code, "detail": self.detail}


class History:
    """The latest ``size`` records by id, oldest first."""

    def __init__(self, size: int = 1000) -> None:
        if size < 1:
            raise ValueError(f"history size must be at least 1, got {size}")
        self.size = size
        self._records: OrderedDict[int, CommandRecord] = OrderedDict()

    def add(self, record: CommandRecord) -> None:
        self._records[record.id] = record
        while len(self._records) > self.size:
            self._records.popitem(last=False)

    def get(self, record_id: int) -> CommandRecord | None:
        return self._records.get(record_id)

    def latest(self, n: int | None = None) -> list[CommandRecord]:
        """The newest ``n`` records (all if None), oldest first."""
        records = list(self._records.values())
        return records if n is None else records[-n:] if n > 0 else []

    def as_wire(self, n: int | None = None) -> list[dict]:
        return [r.as_wire() for r in self.latest(n)]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[CommandRecord]:
        return iter(list(self._records.values()))
