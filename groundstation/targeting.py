"""Targeted alerts (sans-I/O): a message for the consoles at some positions or of some users.

The console registry lists every connection of every node; ``select`` picks the
consoles an alert is for and ``by_node`` groups them so each node gets one
message naming its sessions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

__all__ = ["Alert", "AlertError", "SEVERITIES", "parse_alert", "select", "by_node"]

SEVERITIES = ("info", "warning", "critical")
MAX_TEXT = 500


class AlertError(ValueError):
    """An alert request that is not valid; the message names the field."""


@dataclass(frozen=True)
class Alert:
    text: str
    severity: str
    sender: str
    t_ns: int
    positions: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def as_wire(self) -> dict:
        return {"type": "alert", "alert": self.id, "text": self.text, "severity": self.severity, "from": self.sender,
                "t_ns": self.t_ns, "to": {"positions": list(self.positions), "users": list(self.users)}}


def _names(body: dict, key: str) -> tuple[str, ...]:
    v = body.get(key, [])
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) and 0 < len(x) <= 64 for x in v) or len(v) > 100:
        raise AlertError(f"'{key}' must be a list of at most 100 names (1-64 characters)")
    return tuple(v)


def parse_alert(body: object, sender: str, now_ns: int) -> Alert:
    """An alert from a request body ``{"text", "severity", "positions": [...], "users": [...]}``."""
    if not isinstance(body, dict):
        raise AlertError("the body must be an object")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise AlertError(f"'text' must be 1-{MAX_TEXT} characters")
    severity = body.get("severity", "info")
    if severity not in SEVERITIES:
        raise AlertError(f"'severity' must be one of {', '.join(SEVERITIES)}")
    positions, users = _names(body, "positions"), _names(body, "users")
    if not positions and not users:
        raise AlertError("name at least one of 'positions' or 'users'")
    return Alert(text.strip(), severity, sender, now_ns, positions, users)


def select(entries: list[dict], alert: Alert) -> list[dict]:
    """The registry entries of the consoles the alert is for (telemetry consoles only)."""
    return [e for e in entries if e.get("kind") == "console"
            and (e.get("position") in alert.positions or e.get("user") in alert.users)]


def by_node(entries: list[dict]) -> dict[str, list[int]]:
    nodes: dict[str, list[int]] = {}
    for e in entries:
        nodes.setdefault(str(e["node"]), []).append(int(e["conn"]))
    return nodes
