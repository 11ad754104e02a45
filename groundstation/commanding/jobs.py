"""What the command service tracks between calls: arms, releases, jobs in flight, attempts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .definitions import CommandDef, Value, display_args
from .history import CommandRecord

__all__ = ["Arm", "Release"]

Event = dict[str, Any]


@dataclass
class Arm:
    """A hazardous (or any) command armed by one user, to be executed before ``expires_ns``."""

    id: int
    user: str
    role: str
    defn: CommandDef
    values: dict[str, Value]
    reason: str
    armed_ns: int
    expires_ns: int

    def as_wire(self, action: str, detail: str = "") -> Event:
        return {"type": "arm", "action": action, "arm_id": self.id, "command": self.defn.name,
                "args": display_args(self.defn, self.values), "hazardous": self.defn.hazardous, "user": self.user,
                "role": self.role, "reason": self.reason, "armed_ns": self.armed_ns, "expires_ns": self.expires_ns,
                "detail": detail}


class Release(NamedTuple):
    """What ``next_to_send`` let out: ``packet`` to send, or None if the record failed on release."""

    record: CommandRecord
    packet: bytes | None
    events: list[Event]


@dataclass
class _Job:
    record: CommandRecord
    defn: CommandDef
    base_count: int | None = None  # the echo count word before release
    base_result: int | None = None
    deadline_ns: int = 0  # of the current stage
    note: str = ""  # what verification saw that did not count


@dataclass
class _Attempt:
    user: str
    role: str
    name: object
    raw_args: object
    reason: str
    client_seq: object
    defn: CommandDef | None = None
    values: dict[str, Value] | None = None
    arm_id: int | None = None
