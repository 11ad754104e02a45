"""Abuse limits (sans-I/O): connections per address, messages per connection and per user, the refusal
audit line.

The WebSocket shells ask these objects before they admit a connection or
handle a message; the objects decide and count, the shells refuse (HTTP 429 at
the handshake, an ``error`` reply, or a close with ``CLOSE_FLOOD``). Every
refusal anywhere in the server is audited through :func:`audit_refusal`, with a
stable ``code`` (rate-limited per code: a flood is one summary line).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..console.protocol import CLOSE_FLOOD
from ..logs import audit_throttled

__all__ = ["CLOSE_FLOOD", "ConnectionLimiter", "KeyedRate", "MessageRate", "Refusal", "Verdict", "audit_refusal"]


@dataclass(frozen=True)
class Refusal:
    """Why something was refused: ``code`` for programs and logs, ``reason`` for people."""

    code: str
    reason: str
    status: int = 429  # HTTP status when refused at the handshake


class ConnectionLimiter:
    """At most ``max_per_address`` open connections from one remote address and ``max_total``
    in all (each 0 = no limit): past the total the server is full (HTTP 503), which keeps it
    below its open-files limit instead of failing ``accept`` for everyone.

    ``admit(addr)`` before accepting, ``opened(addr)`` once open, ``closed(addr)`` when it ends."""

    def __init__(self, max_per_address: int, max_total: int = 0) -> None:
        if max_per_address < 0 or max_total < 0:
            raise ValueError(f"connection limits must be >= 0, got {max_per_address}, {max_total}")
        self.max_per_address = max_per_address
        self.max_total = max_total
        self._open: Counter[str] = Counter()
        self.total = 0
        self.refused = 0

    def count(self, address: str) -> int:
        """Connections open from ``address``."""
        return self._open[address]

    def admit(self, address: str) -> Refusal | None:
        """None if one more connection from ``address`` may open, else the refusal (counted)."""
        if self.max_total and self.total >= self.max_total:
            self.refused += 1
            return Refusal("server_full", f"{self.max_total} connections open: the server is full", status=503)
        if self.max_per_address and self._open[address] >= self.max_per_address:
            self.refused += 1
            return Refusal("too_many_connections",
                           f"more than {self.max_per_address} connections from {address}")
        return None

    def opened(self, address: str) -> None:
        self._open[address] += 1
        self.total += 1

    def closed(self, address: str) -> None:
        self._open[address] -= 1
        self.total -= 1
        if self._open[address] <= 0:
            del self._open[address]


@dataclass(frozen=True)
class Verdict:
    """What to do with one incoming message: handle it, drop it (``reply``: say so once per
    streak of drops), or close the connection (a flood)."""

    action: str  # "ok", "drop" or "close"
    reply: bool = False
    refusal: Refusal | None = None


_OK = Verdict("ok")
_SHORT = 1 - 1e-6  # tokens this close to the cost are enough (float clocks of epoch seconds)


class MessageRate:
    """Token bucket per connection: ``rate`` messages/s on average, bursts of ``burst``.

    A message over the rate is dropped; the first drop of a streak asks for one
    reply (so a flood does not turn into a flood of error replies). More than
    ``close_after`` drops in a row (no message admitted between) is a flood: close.
    ``rate`` 0 disables the limit. Times are seconds from any monotonic clock.
    ``check(now, cost)`` charges ``cost`` tokens (default 1: one message), for a
    budget of work units rather than messages.
    """

    def __init__(self, rate: float, burst: int | None = None, close_after: int = 500) -> None:
        if rate < 0:
            raise ValueError(f"rate must be >= 0, got {rate}")
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1, int(2 * rate)))
        self.close_after = close_after
        self._tokens = self.burst
        self._last: float | None = None
        self.streak = 0  # drops since the last admitted message
        self.dropped = 0

    def check(self, now_s: float, cost: float = 1.0) -> Verdict:
        """The verdict for a message (costing ``cost`` tokens) arriving at ``now_s``."""
        if not self.rate:
            return _OK
        self._refill(now_s)
        if self._tokens >= cost * _SHORT:
            self._tokens = max(self._tokens - cost, 0.0)
            self.streak = 0
            return _OK
        self.streak += 1
        self.dropped += 1
        if self.streak > self.close_after:
            return Verdict("close", refusal=Refusal("flood", f"message flood: {self.streak} messages over "
                                                            f"{self.rate:g}/s in a row"))
        return Verdict("drop", reply=self.streak == 1,
                       refusal=Refusal("rate_limited", f"more than {self.rate:g} messages per second "
                                                       f"(bursts of {self.burst:g}); message dropped"))

    def _refill(self, now_s: float) -> None:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + max(now_s - self._last, 0.0) * self.rate)
        self._last = now_s

    def retry_after(self, now_s: float, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there (0: now; ``inf`` if ``cost`` is over the burst)."""
        if not self.rate:
            return 0.0
        if cost > self.burst:
            return float("inf")
        self._refill(now_s)
        return 0.0 if self._tokens >= cost * _SHORT else (cost - self._tokens) / self.rate

    def idle(self, now_s: float) -> bool:
        """True once the bucket is full again: forgetting it changes nothing."""
        return self._last is None or self._tokens + (now_s - self._last) * self.rate >= self.burst


class KeyedRate:
    """A ``MessageRate`` per key (a user, an address), beside the per-connection one: a user's
    connections share one budget, so opening more of them buys nothing.

    ``check(key, now_s, cost)`` gives the same verdicts as ``MessageRate.check`` for that key's
    bucket. Buckets that are full again are forgotten once more than ``max_keys`` are held, so
    memory stays bounded whatever keys arrive.
    """

    def __init__(self, rate: float, burst: int | None = None, close_after: int = 500, max_keys: int = 4096) -> None:
        MessageRate(rate, burst, close_after)  # validates
        self.rate = rate
        self.burst = burst
        self.close_after = close_after
        self.max_keys = max_keys
        self._buckets: dict[str, MessageRate] = {}
        self.dropped = 0

    def bucket(self, key: str, now_s: float) -> MessageRate:
        """The key's bucket (made full on first use)."""
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:
                self._forget(now_s)
            b = self._buckets[key] = MessageRate(self.rate, self.burst, self.close_after)
        return b

    def check(self, key: str, now_s: float, cost: float = 1.0) -> Verdict:
        v = self.bucket(key, now_s).check(now_s, cost)
        if v.action == "ok":
            return v
        self.dropped += 1
        r = v.refusal
        return Verdict(v.action, v.reply, Refusal(r.code, f"{key} over all connections: {r.reason}", r.status))

    def retry_after(self, key: str, now_s: float, cost: float = 1.0) -> float:
        return self.bucket(key, now_s).retry_after(now_s, cost)

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget(self, now_s: float) -> None:
        for k in [k for k, b in self._buckets.items() if b.idle(now_s)]:
            del self._buckets[k]
        while len(self._buckets) >= self.max_keys:  # all busy: the oldest goes (it starts full if it returns)
            del self._buckets[next(iter(self._buckets))]


def audit_refusal(event: str, code: str, reason: str, *, path: str = "", remote: str | None = None,
                  user: str | None = None, **fields) -> None:
    """The one audit line of a refusal (token, role, origin, size, rate, connection count): ``event``
    names where (``auth_refused``, ``origin_refused``, ``connection_refused``, ...), ``code`` why. The first
    few per event and code in each interval are written in full, then one summary line with the count."""
    audit_throttled(event, code, reason=reason[:200], path=path, remote=remote, user=user, **fields)
