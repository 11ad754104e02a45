"""One console's protocol state (sans-I/O): subscriptions, sequence numbers, outbox.

``ConsoleSession.receive(data)`` handles one client message against the hub and
queues replies in the session's ``Outbox``; the WebSocket handler only moves
bytes. A bad message gets an ``error`` reply naming the problem; the
connection stays.

Work per message and per console is bounded here: at most ``MAX_SUBSCRIPTIONS``
subscriptions and ``MAX_SELECTORS`` names, globs and groups held per console
(``too_many_subscriptions``); a subscribe whose selection costs more than
``MAX_SELECT_COST`` units (``Catalog.select_cost``: one unit ~ one name tried
against one compiled glob) is refused (``selection_too_costly``) before any of
it is done, and the hub's ``select_budget`` (a per-user ``KeyedRate`` of cost
units per second, set by the server) refuses one over the user's share
(``over_budget``, with ``retry_after_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..auth import Role, role_allows
from ..catalog import SelectionError
from .outbox import Outbox
from .protocol import ProtocolError, decode_client_message, encode, packb
from .shedding import RateGovernor, shed_rate

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["ConsoleSession", "Subscription", "Principal", "ACK_MIN_ROLE", "MAX_SUBSCRIPTIONS", "MAX_SELECTORS",
           "MAX_SELECT_COST"]

MAX_SUBSCRIPTIONS = 32  # per console
MAX_SELECTORS = 20_000  # names + globs + groups held by one console's subscriptions
MAX_SELECT_COST = 60_000  # cost units of one subscribe (~20 ms on a slow core)
ACK_MIN_ROLE = Role.ENGINEER  # who may acknowledge alarms


@dataclass(frozen=True)
class Principal:
    """Who a console belongs to (from the token, or the open mode of the demo)."""

    user: str
    role: str
    position: str = ""  # console position, e.g. "propulsion"
    expires_at: float | None = None
    anonymous: bool = False  # open mode without a user name: per-user shares are per connection instead

    def allows(self, min_role: Role | str) -> bool:
        """True if this console's role is at least ``min_role`` (``auth.Role`` decides)."""
        return role_allows(self.role, min_role)


@dataclass
class Subscription:
    id: int
    rate: int
    names: list[str]
    globs: list[str]
    groups: list[str]
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    channel_groups: set[int] = field(default_factory=set)  # catalog group indexes
    requested: int = 0  # the rate the console asked for (``rate`` is the tier it is in: lower when shed)

    def __post_init__(self) -> None:
        self.requested = self.requested or self.rate

    @property
    def selectors(self) -> int:
        return len(self.names) + len(self.globs) + len(self.groups)


class ConsoleSession:
    def __init__(self, session_id: int, principal: Principal, hub: "Hub", outbox: Outbox | None = None) -> None:
        self.id = session_id
        self.principal = principal
        self.hub = hub
        self.outbox = outbox if outbox is not None else Outbox()
        self.seq = 0
        self.subs: dict[int, Subscription] = {}
        self._next_sub = 1
        self.errors = 0
        self.bus_monitor = False  # send the 1 Hz bus monitor snapshots (``bus_monitor`` message)
        self.closed = False  # after close(): messages are ignored, nothing is attached again
        self.governor = RateGovernor()
        self._age_from = 0  # the outbox's sent sample time already observed

    # -- sending --------------------------------------------------------------
    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, message: dict, now_ns: int = 0) -> None:
        """Queue an event message (never dropped)."""
        self.outbox.push_event(encode(self.next_seq(), message), now_ns)

    def send_parts(self, key, head: bytes, tail: bytes, now_ns: int = 0, sample_ns: int = 0) -> None:
        """Queue one tick's telemetry from ``SharedFrame.bundle_parts`` (built once for many consoles)."""
        self.outbox.push_data(key, head + packb(self.next_seq()) + tail, now_ns, sample_ns)

    # -- rate shedding ----------------------------------------------------------
    def sent(self, now_ns: int) -> int | None:
        """The shell wrote what it popped: judge the data age of that telemetry (send time minus its
        newest sample's arrival); past the budget the subscriptions step down a rate tier, and back up
        once caught up (``rate_limited`` tells the console). Returns the new level when it changed."""
        sample_ns = self.outbox.sent_sample_ns
        if sample_ns == self._age_from or self.closed:
            return None
        self._age_from = sample_ns
        level = self.governor.observe(now_ns - sample_ns, now_ns)
        if level is not None:
            self.shed(level, now_ns)
        return level

    def shed(self, level: int, now_ns: int) -> None:
        """Move every subscription to its requested rate halved ``level`` times and say so."""
        for sub in self.subs.values():
            rate = shed_rate(sub.requested, level)
            if rate != sub.rate:
                self.hub.detach(self, sub)
                sub.rate = rate
                self.hub.attach(self, sub)
        g = self.governor
        age_ms, budget_ms = round(max(g.age_ns, 0) / 1e6, 1), round(g.budget_s * 1e3, 3)
        reason = (f"data age {age_ms:g} ms over the {budget_ms} ms budget: fewer updates, newest values first"
                  if level else f"caught up (data age {age_ms:g} ms): the requested rates again")
        self.send({"type": "rate_limited", "level": level, "reason": reason, "age_ms": age_ms, "budget_ms": budget_ms,
                   "subs": [{"sub": sub.id, "rate": sub.rate, "requested": sub.requested}
                            for sub in self.subs.values()]}, now_ns)

    # -- receiving ------------------------------------------------------------
    def receive(self, data: bytes | str, now_ns: int = 0) -> None:
        """Handle one client message; replies are queued in the outbox (nothing once closed)."""
        if self.closed:
            return
        req_id = None
        try:
            msg = decode_client_message(data)
            req_id = msg["id"]
            getattr(self, f"_on_{msg['type']}")(msg, now_ns)
        except ProtocolError as exc:
            self.errors += 1
            req_id = exc.request_id if exc.request_id is not None else req_id
            self.send({"type": "error", "id": req_id, "code": exc.code, "message": str(exc), **exc.extra}, now_ns)

    def _on_bus_monitor(self, msg: dict, now_ns: int) -> None:
        """Start (``on``) or stop the 1 Hz ``bus_monitor`` snapshots to this console."""
        self.bus_monitor = msg["on"]
        self.send({"type": "bus_monitor_ok", "id": msg["id"], "on": self.bus_monitor}, now_ns)

    def _on_ping(self, msg: dict, now_ns: int) -> None:
        self.send({"type": "pong", "id": msg["id"], "server_ns": now_ns}, now_ns)

    def _on_subscribe(self, msg: dict, now_ns: int) -> None:
        sub = Subscription(self._next_sub, shed_rate(msg["rate"], self.governor.level), msg["names"], msg["globs"],
                           msg["groups"], requested=msg["rate"])
        self._admit(sub, now_ns)
        try:
            self.hub.resolve(sub)
        except SelectionError as exc:
            raise ProtocolError("unknown_parameters", str(exc), unknown=exc.unknown) from None
        self._next_sub += 1
        self.subs[sub.id] = sub
        self.hub.attach(self, sub)
        self.send({"type": "subscribed", "id": msg["id"], "sub": sub.id, "rate": sub.requested,
                   "ids": sub.ids.tolist(), "groups": sorted(self.hub.catalog.group_names[g] for g in sub.channel_groups)},
                  now_ns)
        self.send(self.hub.snapshot(sub.ids, sub.id), now_ns)
        if msg.get("since_ns") is not None:
            self._backfill(msg["id"], sub, msg["since_ns"], now_ns)

    def _admit(self, sub: Subscription, now_ns: int) -> None:
        """Refuse a subscription over this console's caps, the cost cap or the user's budget."""
        held = sum(s.selectors for s in self.subs.values())
        if len(self.subs) >= MAX_SUBSCRIPTIONS or held + sub.selectors > MAX_SELECTORS:
            raise ProtocolError("too_many_subscriptions",
                                f"{len(self.subs)} subscriptions holding {held} names, globs and groups: at most "
                                f"{MAX_SUBSCRIPTIONS} and {MAX_SELECTORS}; unsubscribe first",
                                limit=[MAX_SUBSCRIPTIONS, MAX_SELECTORS], held=[len(self.subs), held])
        cost = self.hub.catalog.select_cost(sub.names, sub.globs, sub.groups)
        if cost > MAX_SELECT_COST:
            raise ProtocolError("selection_too_costly", f"this selection costs {cost} units, more than "
                                f"{MAX_SELECT_COST}: use fewer globs, or globs with a literal start",
                                cost=cost, limit=MAX_SELECT_COST)
        budget = getattr(self.hub, "select_budget", None)
        if budget is not None:
            now_s = now_ns / 1e9
            key = self.share_key
            wait = budget.retry_after(key, now_s, cost)
            if wait > 0:
                raise ProtocolError("over_budget", f"{key} is over the subscribe budget ({budget.rate:g} units/s)"
                                    f"; this one costs {cost}: retry in {wait:.2f} s",
                                    cost=cost, retry_after_s=math.ceil(wait * 1000) / 1000)
            budget.check(key, now_s, cost)

    @property
    def share_key(self) -> str:
        """Whose share this console's work counts in: its user, or itself if anonymous."""
        return f"session {self.id}" if self.principal.anonymous else f"user {self.principal.user}"

    def _on_backfill(self, msg: dict, now_ns: int) -> None:
        sub = self.subs.get(msg["sub"])
        if sub is None:
            raise ProtocolError("unknown_subscription", f"no subscription {msg['sub']}", known=sorted(self.subs))
        self._backfill(msg["id"], sub, msg["since_ns"], now_ns)

    def _backfill(self, req_id: int | None, sub: Subscription, since_ns: int, now_ns: int) -> None:
        """Hand the request to the hub's ``backfill_provider`` (set by the station when it records)."""
        provider = getattr(self.hub, "backfill_provider", None)
        if provider is None:
            raise ProtocolError("backfill_unavailable", "this ground station does not record: nothing to backfill "
                                                        "from")
        provider(self, sub, since_ns, req_id, now_ns)

    def _on_unsubscribe(self, msg: dict, now_ns: int) -> None:
        sub = self.subs.pop(msg["sub"], None)
        if sub is None:
            raise ProtocolError("unknown_subscription", f"no subscription {msg['sub']}", known=sorted(self.subs))
        self.hub.detach(self, sub)
        self.send({"type": "unsubscribed", "id": msg["id"], "sub": sub.id}, now_ns)

    def _on_snapshot(self, msg: dict, now_ns: int) -> None:
        if msg["sub"] is None:
            ids = np.arange(len(self.hub.catalog), dtype=np.int32)
        elif msg["sub"] in self.subs:
            ids = self.subs[msg["sub"]].ids
        else:
            raise ProtocolError("unknown_subscription", f"no subscription {msg['sub']}", known=sorted(self.subs))
        snap = self.hub.snapshot(ids, msg["sub"])
        snap["id"] = msg["id"]
        self.send(snap, now_ns)

    def _on_ack(self, msg: dict, now_ns: int) -> None:
        if not self.principal.allows(ACK_MIN_ROLE):
            raise ProtocolError("forbidden", f"role {self.principal.role} may not acknowledge alarms "
                                             f"(needs {ACK_MIN_ROLE} or above)")
        if self.hub.forward is not None:  # an edge: the ingest node owns the alarms and replies later
            self.hub.forward(self, msg)
            return
        try:
            self.hub.acknowledge(msg["alarm"], self.principal.user, now_ns)
        except KeyError:
            raise ProtocolError("unknown_alarm", f"no active alarm {msg['alarm']}") from None
        self.send({"type": "acked", "id": msg["id"], "alarm": msg["alarm"]}, now_ns)

    def close(self) -> None:
        self.closed = True
        for sub in list(self.subs.values()):
            self.hub.detach(self, sub)
        self.subs.clear()
