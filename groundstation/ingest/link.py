"""Link status (sans-I/O): WAITING until data, OK while it flows, LOST after a silence."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LinkMonitor", "LinkStatus", "WAITING", "OK", "LOST"]

WAITING, OK, LOST = "WAITING", "OK", "LOST"


@dataclass(frozen=True)
class LinkStatus:
    """The link state and since when (UTC ns); ``last_data_ns`` is the newest datagram."""

    state: str
    since_ns: int
    last_data_ns: int | None
    reason: str = ""

    def as_dict(self) -> dict:
        return {"state": self.state, "since_ns": self.since_ns, "last_data_ns": self.last_data_ns,
                "reason": self.reason}


class LinkMonitor:
    """Call ``data(now)`` for every datagram and ``check(now)`` periodically; both return
    a new ``LinkStatus`` when the state changes, else None."""

    def __init__(self, timeout_s: float = 0.5, now_ns: int = 0) -> None:
        self.timeout_ns = int(timeout_s * 1e9)
        self.status = LinkStatus(WAITING, now_ns, None, "no data yet")
        self.losses = 0

    def data(self, now_ns: int) -> LinkStatus | None:
        prev = self.status
        if prev.state == OK:
            self.status = LinkStatus(OK, prev.since_ns, now_ns)
            return None
        reason = "data flowing" if prev.state == WAITING else f"data back after {(now_ns - prev.since_ns) / 1e9:.1f} s"
        self.status = LinkStatus(OK, now_ns, now_ns, reason)
        return self.status

    def check(self, now_ns: int) -> LinkStatus | None:
        s = self.status
        if s.state == OK and s.last_data_ns is not None and now_ns - s.last_data_ns > self.timeout_ns:
            self.losses += 1
            self.status = LinkStatus(LOST, s.last_data_ns, s.last_data_ns,
                                     f"no data for {self.timeout_ns / 1e9:.1f} s")
            return self.status
        return None
