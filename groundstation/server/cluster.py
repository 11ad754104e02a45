"""A station on the bus: the console registry, addressed messages, and the ingest node's side.

Every node keeps its connections in the bus's console registry (refreshed well
before they expire, so a dead node's consoles leave on expiry) and delivers
targeted alerts addressed to its sessions. The ingest node (or the standalone
server, on the in-process bus) publishes each tier tick's encoded frames, every
console event preceded by its hello state, and the snapshot; it serves the
edges' requests (alarm acknowledges, commands) and keeps the command-authority
lease.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import numpy as np

from ..bus import INGEST, Bus
from ..bus.envelope import pack_snapshot
from ..console.session import ACK_MIN_ROLE, Principal, Subscription
from ..logs import log_event

if TYPE_CHECKING:
    from .station import GroundStation

__all__ = ["Registry", "NodeLink", "IngestLink", "RemoteSession", "deliver"]

DEMAND_MAX_AGE_S = 5.0


class Registry:
    """This node's connections in the bus's console registry."""

    def __init__(self, bus: Bus, ttl_s: float = 15.0) -> None:
        self.bus, self.ttl_s = bus, ttl_s
        self.entries: dict[str, dict] = {}

    def add(self, kind: str, conn: int, principal, remote: str, since_ns: int) -> str:
        key = f"{kind}/{conn}"
        entry = {"node": self.bus.node, "kind": kind, "conn": conn, "user": principal.user,
                 "role": str(principal.role), "position": getattr(principal, "position", ""), "remote": remote,
                 "since_ns": since_ns}
        self.entries[key] = entry
        self.bus.register({key: entry}, self.ttl_s)
        return key

    def remove(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self.bus.unregister([key])

    def refresh(self) -> None:
        self.bus.register(self.entries, self.ttl_s)


def deliver(station: "GroundStation", message: dict, now_ns: int) -> int:
    """Hand a ``deliver`` message's console message (an alert, a backfill reply) to the sessions
    of this node it names; returns how many got it."""
    payload, n = message.get("message"), 0
    for sid in message.get("sessions", []):
        s = station.hub.sessions.get(sid)
        if s is not None and isinstance(payload, dict):
            s.send(payload, now_ns)
            n += 1
    return n


class _NoOutbox:
    bytes = 0
    close_reason = None


class RemoteSession:
    """A console on another node as the ingest node's backfill sees it: replies go over the bus."""

    remote = True
    outbox = _NoOutbox()

    def __init__(self, bus: Bus, node: str, session_id: int) -> None:
        self.bus, self.node, self.id = bus, node, session_id

    def send(self, message: dict, now_ns: int = 0) -> None:
        self.bus.to_node(self.node, {"type": "deliver", "sessions": [self.id], "message": message})


class NodeLink:
    """What every node does on the bus: registry upkeep and messages addressed to it."""

    def __init__(self, station: "GroundStation", bus: Bus) -> None:
        self.station, self.bus = station, bus
        self.registry = Registry(bus, station.config.registry_ttl_s)
        bus.on_node_message = self._on_node_message
        station.add_periodic(self.registry.refresh, self.registry.ttl_s / 3)

    def _on_node_message(self, message: dict) -> None:
        from .station import now_ns

        if message.get("type") == "deliver":
            deliver(self.station, message, now_ns())


class IngestLink(NodeLink):
    """The node that owns the UDP link: publishes to edges and serves their requests."""

    def __init__(self, station: "GroundStation", bus: Bus) -> None:
        super().__init__(station, bus)
        hub = station.hub
        self._pending: list[dict] = []
        self._snapshot_of = -1
        self.online_users: set[str] = set()
        self.requests_served = 0
        if bus.role == INGEST:
            hub.tier_listeners.append(bus.publish_tier)
            hub.event_listeners.append(self._on_event)
            station.add_periodic(self._publish_snapshot, 0.1)
            station.add_periodic(lambda: self._spawn(self._poll_demand()), 0.5)
            bus.set_state(self.state())
        bus.on_request = self._on_request
        bus.on_connection = self._on_connection
        station.add_periodic(lambda: self._spawn(self._poll_users()), self.registry.ttl_s / 3)

    def state(self) -> dict:
        """What an edge needs for a console's hello."""
        hub = self.station.hub
        return {"catalog": hub.catalog.as_wire(), "link": self.station.link.status.as_dict(), "source": hub.source,
                "alarms": hub.alarms.as_wire(), "extra": hub.hello_extra() if hub.hello_extra else {}}

    # -- out --------------------------------------------------------------------------------------------
    def _on_connection(self, up: bool) -> None:
        """The broker is back (maybe restarted, empty): write the state, snapshot and registry again."""
        if up:
            self.registry.refresh()
            if self.bus.role == INGEST:
                self.bus.set_state(self.state())
                self._snapshot_of = -1

    def _on_event(self, event: dict, t_ns: int) -> None:
        if not self._pending:
            asyncio.get_event_loop().call_soon(self._flush_events)
        self._pending.append(event)

    def _flush_events(self) -> None:
        """The hello state first, then the events in order: an edge that reads the state after an
        event sees that event's effect."""
        pending, self._pending = self._pending, []
        self.bus.set_state(self.state())
        for ev in pending:
            self.bus.publish_event(ev)

    def _publish_snapshot(self) -> None:
        hub = self.station.hub
        if hub.last_arrival_ns != self._snapshot_of:
            self._snapshot_of = hub.last_arrival_ns
            self.bus.publish_snapshot(pack_snapshot(hub.latest, hub.catalog.version))

    def _spawn(self, coro) -> None:
        asyncio.ensure_future(coro)

    async def _poll_demand(self) -> None:
        try:
            self.station.hub.set_remote_demand(await self.bus.get_demand(DEMAND_MAX_AGE_S))
        except Exception as exc:  # noqa: BLE001 - the broker may be away; keep the last demand
            log_event("bus_demand_failed", logging.DEBUG, error=str(exc)[:200])

    async def _poll_users(self) -> None:
        try:
            self.online_users = {e.get("user") for e in await self.bus.consoles()}
        except Exception as exc:  # noqa: BLE001
            log_event("bus_registry_failed", logging.DEBUG, error=str(exc)[:200])

    # -- requests from edges ----------------------------------------------------------------------------
    def _on_request(self, req: dict) -> None:
        self._spawn(self._serve(req))

    async def _serve(self, req: dict) -> None:
        from .station import now_ns

        kind, msg = req.get("kind"), req.get("msg") if isinstance(req.get("msg"), dict) else {}
        p = req.get("principal") or {}
        principal = Principal(user=str(p.get("user", "")), role=str(p.get("role", "viewer")),
                              position=str(p.get("position", "")))
        if kind == "demand":
            await self._poll_demand()
            return
        if kind == "backfill":
            self._backfill(req, now_ns())
            return
        if kind == "ack":
            reply = self._ack(principal, msg, now_ns())
        elif kind == "command":
            center = self.station.commands
            reply = (await center.handle(principal, msg) if center is not None else
                     {"type": "error", "id": msg.get("id"), "code": "no_uplink",
                      "message": "the ingest node has no command channel"})
        else:
            reply = {"type": "error", "id": msg.get("id"), "code": "unknown_request", "message": f"{kind!r}"}
        self.requests_served += 1
        if isinstance(req.get("reply_to"), str):
            self.bus.to_node(req["reply_to"], {"type": "reply", "rid": req.get("rid"), "reply": reply})

    def _backfill(self, req: dict, now: int) -> None:
        """A console on an edge asks for the interval it missed: served from this node's recording."""
        session = RemoteSession(self.bus, str(req.get("reply_to")), int(req.get("session", 0)))
        if req.get("user"):  # backfill slots are shared per user over every node
            session.principal = Principal(user=str(req["user"]), role="viewer")
        provider = getattr(self.station.hub, "backfill_provider", None)
        if provider is None:
            session.send({"type": "error", "id": req.get("request_id"), "code": "backfill_unavailable",
                          "message": "the ingest node does not record: nothing to backfill from"}, now)
            return
        s = req.get("sub") or {}
        sub = Subscription(int(s.get("id", 0)), int(s.get("rate", 1)), [], [], [],
                           ids=np.asarray(s.get("ids", []), np.int32))
        provider(session, sub, int(req.get("since_ns", 0)), req.get("request_id"), now)

    def _ack(self, principal: Principal, msg: dict, now: int) -> dict:
        hub = self.station.hub
        if not principal.allows(ACK_MIN_ROLE):
            return {"type": "error", "id": msg.get("id"), "code": "forbidden",
                    "message": f"role {principal.role} may not acknowledge alarms"}
        try:
            hub.acknowledge(msg.get("alarm"), principal.user, now)
        except KeyError:
            return {"type": "error", "id": msg.get("id"), "code": "unknown_alarm",
                    "message": f"no active alarm {msg.get('alarm')}"}
        return {"type": "acked", "id": msg.get("id"), "alarm": msg.get("alarm")}
