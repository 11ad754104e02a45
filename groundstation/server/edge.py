"""An edge node: consoles only, fed by the ingest node over the bus.

The edge runs the same console hub as the ingest node, but its data comes from
the bus: each tier frame's encoded group maps go to its consoles as they are
(no decoding, no re-encoding); events are re-broadcast; the hello state and the
snapshot for late joiners are mirrored. Alarm acknowledges and commands are
forwarded to the ingest node and its reply comes back on this node's channel.
A jump in a tier's sequence, or the broker coming back, sends each affected
console a ``gap`` and a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

from ..bus import EDGE, Bus, BusMessageError, SeqTracker, TierFrame
from ..bus.envelope import unpack_snapshot
from ..catalog import Catalog
from ..logs import log_event
from .cluster import NodeLink
from .station import GroundStation, StationConfig, now_ns

__all__ = ["EdgeStation", "RemoteCommandCenter"]

REQUEST_TIMEOUT_S = 5.0
COMMAND_EVENTS = ("command", "authority", "arm")


class _AlarmMirror:
    """The ingest node's alarms as last seen in its state (edges do not judge limits)."""

    def __init__(self) -> None:
        self.wire: list = []

    def as_wire(self) -> list:
        return self.wire

    def observe(self, summary) -> list:
        return []


class EdgeStation(GroundStation):
    def __init__(self, config: StationConfig, bus: Bus) -> None:
        super().__init__(config)
        self.bus = bus
        self.state: dict = {}
        self.seq = SeqTracker()
        self.link_node = NodeLink(self, bus)
        self.registry = self.link_node.registry
        self._rids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._refresh_soon = False
        self.frames_skipped = 0
        hub = self.hub
        hub.alarms = _AlarmMirror()
        hub.link_provider = lambda: self.state.get("link", hub.link)
        hub.hello_extra = lambda: {**self.state.get("extra", {}),
                                   "bus": {"state": "OK" if bus.connected else "LOST", "node": bus.node}}
        hub.forward = self._forward_ack
        hub.backfill_provider = self._forward_backfill
        bus.on_tier = self._on_tier
        bus.on_event = self._on_event
        bus.on_snapshot = self._on_snapshot
        bus.on_connection = self._on_connection
        bus.on_events_lost = self._on_events_lost
        bus.on_node_message = self._on_node_message
        self.commands = RemoteCommandCenter(self)
        self._demand: dict = {}

    async def join(self) -> None:
        """Start the bus and take the ingest node's state and snapshot."""
        await self.bus.start(EDGE)
        await self._resync()

    async def _resync(self) -> None:
        try:
            state = await self.bus.get_state()
            if state is not None:
                self._apply_state(state)
            snap = await self.bus.get_snapshot()
            if snap is not None:
                self._on_snapshot(snap)
        except Exception as exc:  # noqa: BLE001 - the broker may be away; the reconnect resyncs
            log_event("edge_resync_failed", logging.WARNING, error=str(exc)[:200])

    def _apply_state(self, state: dict) -> None:
        self.state = state
        hub = self.hub
        wire = state.get("catalog") or {}
        if wire.get("version") != hub.catalog.version or len(wire.get("params", [])) != len(hub.catalog):
            hub.set_catalog(Catalog.from_wire(wire), now_ns(), own_alarms=False)
        hub.source = state.get("source", hub.source)
        hub.link = state.get("link", hub.link)
        hub.alarms.wire = state.get("alarms", [])

    # -- from the bus -------------------------------------------------------------------------------
    def _on_tier(self, frame: TierFrame) -> None:
        now = now_ns()
        missed = self.seq.observe(frame.rate, frame.seq)
        if frame.catalog_version != self.hub.catalog.version:
            self.frames_skipped += 1
            self._refresh_state()
            return
        if missed:
            self._gap(frame.rate, f"{missed} tier frames lost on the bus", now)
        t0 = time.perf_counter()
        before = self.hub.stats.deliveries
        self.hub.distribute(frame, now)
        self.metrics.tick_seconds.observe(time.perf_counter() - t0)
        self.metrics.frames_encoded.inc(len(frame.groups))
        self.metrics.deliveries.inc(self.hub.stats.deliveries - before)
        self.metrics.age_seconds.observe(max(now - frame.ingest_ns, 0) / 1e9)
        self.hub.last_arrival_ns = frame.ingest_ns

    def _on_event(self, event: dict) -> None:
        now = now_ns()
        kind = event.get("type")
        if kind == "catalog":
            try:
                self.hub.set_catalog(Catalog.from_wire(event.get("catalog") or {}), now, own_alarms=False)
            except (KeyError, TypeError, ValueError) as exc:
                log_event("edge_bad_catalog", logging.WARNING, error=str(exc)[:200])
            self._refresh_state()
            return
        if kind == "link":
            self.hub.link = {k: v for k, v in event.items() if k != "type"}
        elif kind == "source":
            self.hub.source = event.get("source", self.hub.source)
        self.hub.broadcast(event, now)
        if kind in COMMAND_EVENTS:
            self.commands.push(event)
        self._refresh_state()

    def _on_snapshot(self, blob: bytes) -> None:
        try:
            version, latest = unpack_snapshot(blob)
        except BusMessageError as exc:
            log_event("edge_bad_snapshot", logging.WARNING, error=str(exc))
            return
        if version == self.hub.catalog.version and len(latest.seen) == len(self.hub.catalog):
            self.hub.latest = latest

    def _refresh_state(self) -> None:
        """Re-read the hello state soon (alarms, command history) after events; coalesced."""
        if not self._refresh_soon:
            self._refresh_soon = True
            asyncio.get_event_loop().call_later(0.02, lambda: asyncio.ensure_future(self._refresh_now()))

    async def _refresh_now(self) -> None:
        self._refresh_soon = False
        try:
            state = await self.bus.get_state()
        except Exception:  # noqa: BLE001 - the next event or reconnect retries
            return
        if state is not None:
            self._apply_state(state)

    def _on_connection(self, up: bool) -> None:
        now = now_ns()
        self.hub.broadcast({"type": "bus", "state": "OK" if up else "LOST", "node": self.bus.node}, now)
        if up:
            asyncio.ensure_future(self._recovered())

    def _on_events_lost(self, missed: int) -> None:
        """The broker no longer held events this edge missed: say so, then re-send the state."""
        asyncio.ensure_future(self._events_lost(missed))

    async def _events_lost(self, missed: int) -> None:
        await self._resync()
        hub = self.hub
        hub.broadcast({"type": "events_lost", "missed": missed,
                       "reason": "this edge was away longer than the bus keeps events",
                       "alarms": hub.alarms.as_wire(), "link": hub.link_provider() if hub.link_provider else hub.link,
                       "extra": self.state.get("extra", {})}, now_ns())

    async def _recovered(self) -> None:
        await self._resync()
        self.registry.refresh()  # the tier sequence is kept: frames the ingest node could not publish show as a gap
        self._push_demand(force=True)
        now = now_ns()
        for rate in list(self.hub.tiers):
            self._gap(rate, "the bus reconnected", now)

    def _gap(self, rate: int, reason: str, now: int) -> None:
        """Tell the consoles of one tier what they missed and give them a fresh snapshot."""
        log_event("edge_gap", logging.INFO, rate=rate, reason=reason)
        for s in list(self.hub.sessions.values()):
            for sub in s.subs.values():
                if sub.rate == rate:
                    s.send({"type": "gap", "sub": sub.id, "rate": rate, "reason": reason}, now)
                    s.send(self.hub.snapshot(sub.ids, sub.id), now)

    # -- to the ingest node ---------------------------------------------------------------------------
    def _push_demand(self, force: bool = False) -> None:
        demand = self.hub.demand()
        if force or demand != self._demand:
            self._demand = demand
            self.bus.set_demand({str(r): g for r, g in demand.items()})
            self.bus.request({"kind": "demand", "reply_to": None})

    async def call(self, kind: str, principal, msg: dict) -> dict:
        """Send a request to the ingest node and wait for its reply (an error if it does not answer)."""
        rid = next(self._rids)
        fut = asyncio.get_event_loop().create_future()
        self._waiting[rid] = fut
        self.bus.request({"kind": kind, "rid": rid, "reply_to": self.bus.node, "msg": msg,
                          "principal": {"user": principal.user, "role": str(principal.role),
                                        "position": getattr(principal, "position", "")}})
        try:
            return await asyncio.wait_for(fut, REQUEST_TIMEOUT_S)
        except asyncio.TimeoutError:
            return {"type": "error", "id": msg.get("id"), "code": "ingest_unavailable",
                    "message": f"the ingest node did not answer within {REQUEST_TIMEOUT_S:g} s"}
        finally:
            self._waiting.pop(rid, None)

    def _forward_ack(self, session, msg: dict) -> None:
        async def run() -> None:
            reply = await self.call("ack", session.principal, {"id": msg["id"], "alarm": msg["alarm"]})
            if session.id in self.hub.sessions:
                session.send(reply, now_ns())

        asyncio.ensure_future(run())

    def _forward_backfill(self, session, sub, since_ns: int, request_id: int | None, now_ns: int) -> None:
        """The ingest node records: it reads the interval and sends the replies to this session."""
        if not self.bus.connected:
            session.send({"type": "error", "id": request_id, "code": "backfill_busy",
                          "message": "this edge has lost the bus for now; ask again in a few seconds"}, now_ns)
            return
        self.bus.request({"kind": "backfill", "reply_to": self.bus.node, "session": session.id,
                          "sub": {"id": sub.id, "rate": sub.rate, "ids": [int(i) for i in sub.ids]},
                          "since_ns": since_ns, "request_id": request_id,
                          "user": None if session.principal.anonymous else session.principal.user})

    def _on_node_message(self, message: dict) -> None:
        if message.get("type") == "reply":
            fut = self._waiting.get(message.get("rid"))
            if fut is not None and not fut.done():
                fut.set_result(message.get("reply") or {})
        else:
            NodeLink._on_node_message(self.link_node, message)

    # -- periodic -------------------------------------------------------------------------------------
    def housekeeping(self) -> None:
        self.console_housekeeping(now_ns())
        self._push_demand()

    def start_periodic(self) -> None:
        self.add_periodic(lambda: self._push_demand(force=True), 1.0)
        super().start_periodic(tick=False)

    def health(self) -> dict:
        return {"status": "ok" if self.bus.connected else "degraded", "role": EDGE,
                "uptime_s": round((now_ns() - self.started_ns) / 1e9, 3), "link": self.hub.link,
                "consoles": len(self.hub.sessions), "bus": self.bus.status(),
                "edge": {"frames_skipped": self.frames_skipped, "frames_missed": self.seq.missed}}


class RemoteCommandCenter:
    """The command channel on an edge: requests go to the ingest node, events come back."""

    def __init__(self, station: EdgeStation) -> None:
        self.station = station
        self.sockets: set = set()

    def hello_extra(self) -> dict:
        return self.station.state.get("extra", {})

    def opening_events(self) -> list[dict]:
        extra = self.hello_extra()
        return [e for e in [extra.get("authority")] if e] + list(extra.get("arms", []))

    async def handle(self, principal, msg: dict) -> dict:
        return await self.station.call("command", principal, msg)

    def push(self, event: dict) -> None:
        for handler in list(self.sockets):
            handler.send(event)
