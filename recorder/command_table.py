"""One row per command from a recording's command history records (one record per state change)."""

from __future__ import annotations

__all__ = ["command_rows", "STATES"]

# The life cycle of docs/commanding.md, in order; states a newer station adds come after these.
STATES = ("QUEUED", "RELEASED", "SENT", "ACKNOWLEDGED", "COMPLETED", "REJECTED", "FAILED", "TIMED_OUT")
FIELDS = ("id", "name", "args", "user", "role", "reason", "hazardous", "sequence", "state", "code", "detail")


def command_rows(records: list[dict]) -> list[dict]:
    """The final state of each command: its fields, and ``<STATE>_ns`` for every state it reached.

    A command is its ``id`` and the time it was first seen (ids start over when a station restarts
    within one recording session); rows are in the order the commands were first recorded.
    """
    rows: dict[tuple, dict] = {}
    current: dict[object, tuple] = {}  # id -> key of the command with that id seen last
    for r in records:
        times = {str(k): int(v) for k, v in (r.get("times") or {}).items() if v is not None}
        first = min(times.values()) if times else r.get("time_ns")
        key = current.get(r.get("id"))
        if key is None or (times and key[1] != first):
            key = (r.get("id"), first)
            current[r.get("id")] = key
        row = rows.setdefault(key, {"_times": {}})
        row.update({f: r.get(f) for f in FIELDS if f in r})
        row["_times"].update(times)
    out = []
    states = list(STATES) + sorted({s for row in rows.values() for s in row["_times"]} - set(STATES))
    for row in rows.values():
        times = row.pop("_times")
        out.append({**{f: row.get(f) for f in FIELDS}, **{f"{s}_ns": times.get(s) for s in states}})
    return out
