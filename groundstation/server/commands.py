"""The command channel's shells: the uplink sender, ``/ws/command`` and the HTTP API.

``CommandCenter`` connects the sans-I/O ``CommandService`` to the world: it feeds
it the vehicle's echo words from decoded telemetry, sends what it releases over
UDP to the vehicle, broadcasts every event to every console, and writes one
audit log line per attempt. The handlers authenticate (director or admin),
check the Origin, bound message size and rate, and translate requests.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque

import msgpack
from tornado.web import HTTPError, RequestHandler

from telemetry_formats.uplink import encode_uplink

from ..auth import Role
from ..commanding import AuthorityRefused, CommandRejected, CommandService, commanding_from, simulated_vehicle
from ..console.protocol import CLOSE_FLOOD, CLOSE_UNAUTHORIZED, MAX_MESSAGE_BYTES
from ..logs import audit_event, log_event
from ..strict_json import MAX_DEPTH, depth_within
from .api import ApiHandler
from .app import authorize, check_origin
from .guard import GuardedSocket
from .limits import audit_refusal
from .station import GroundStation, now_ns

__all__ = ["CommandCenter", "command_handlers"]

MAX_COMMAND_MESSAGE = 16 * 1024
MESSAGES_PER_SECOND = 50


class CommandCenter:
    def __init__(self, station: GroundStation, uplink: tuple[str, int]) -> None:
        self.station = station
        self.uplink = uplink
        self.sock = socket.socket(socket.AF_INET6 if ":" in uplink[0] else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        # Seed the uplink sequence from the clock so a restarted ground station is never "stale".
        mission = station.config.mission
        vehicle = (commanding_from(mission) if mission is not None else None) or simulated_vehicle()
        self.telemetry = vehicle.telemetry_names()  # the echo words and every effect's parameters
        self.service = CommandService(vehicle.commands, encode_uplink, on_audit=self._audit, echo=vehicle.echo,
                                      sequence_start=int(time.time()), rate_limit=station.config.command_rate)
        self.sockets: set = set()  # open /ws/command handlers
        self._pending_audit: deque[dict] = deque()
        self.datagrams_sent = 0
        self.lease = None  # an AuthorityLease once the station joins its bus
        self._lease_due = 0
        station.packet_listeners.append(self._on_decoded)
        station.hub.hello_extra = self.hello_extra

    # -- telemetry in ---------------------------------------------------------------
    def _on_decoded(self, res, arrival_ns: int) -> None:
        if not res.samples:
            return
        hub = self.station.hub
        values = {}
        for name in self.telemetry:
            e = hub.catalog.by_name.get(name)
            if e is not None and hub.latest.seen[e.id]:
                values[name] = float(hub.latest.value[e.id])
        if values:
            self.publish(self.service.observe(values, arrival_ns))
            self.pump()

    # -- periodic: timeouts, arms, the queue -------------------------------------------
    def tick(self) -> None:
        now = now_ns()
        self.publish(self.service.tick(now))
        self.publish(self.service.authority.expire(now))
        self.pump()
        if self.lease is not None and now >= self._lease_due:
            self._lease_due = now + int(self.lease.ttl_s / 3 * 1e9)
            asyncio.ensure_future(self._maintain_lease(now))
        for handler in list(self.sockets):
            exp = handler.principal.expires_at
            if exp is not None and exp * 1e9 < now:
                handler.close(CLOSE_UNAUTHORIZED, "token expired")

    def pump(self, publish: bool = True) -> list:
        """Send whatever the service releases (one command in flight at a time); returns the
        events, already published unless ``publish`` is False."""
        events: list = []
        while (rel := self.service.next_to_send(now_ns())) is not None:
            events += rel.events
            if rel.packet is None:
                continue
            try:
                self.sock.sendto(rel.packet, self.uplink)
                self.datagrams_sent += 1
                events += self.service.sent(rel.record.id, now_ns())
            except OSError as exc:
                events += self.service.send_failed(rel.record.id, str(exc), now_ns())
        if publish:
            self.publish(events)
            self._flush_audit()
        return events

    # -- events out ------------------------------------------------------------------------
    def publish(self, events) -> None:
        now = now_ns()
        for ev in events:
            self.station.hub.broadcast(ev, now)
            for handler in list(self.sockets):
                handler.send(ev)
            if ev.get("type") == "authority":
                audit_event("authority", **{k: v for k, v in ev.items() if k != "type"})

    async def _maintain_lease(self, now: int) -> None:
        try:
            self.publish(await self.lease.maintain(now))
        except Exception as exc:  # noqa: BLE001 - the broker may be away; retried at the next due time
            log_event("authority_lease_failed", logging.WARNING, error=str(exc)[:200])

    def opening_events(self) -> list[dict]:
        """What a command socket gets after its hello: authority, live arms."""
        return self.service.snapshot(now_ns(), 0)

    def hello_extra(self) -> dict:
        now = now_ns()
        return {"commands": self.service.definitions_as_wire(), "authority": self.service.authority.as_wire(now),
                "arms": [a.as_wire("armed") for a in self.service.arms], "arm_timeout_s": self.service.arm_timeout_s,
                "history": [ev["record"] for ev in self.service.snapshot(now, 50) if ev.get("type") == "command"]}

    def _audit(self, entry: dict) -> None:
        self._pending_audit.append(entry)  # written after the uplink send, off the critical path

    def _flush_audit(self) -> None:
        while self._pending_audit:
            audit_event("command_audit", **self._pending_audit.popleft())

    # -- requests (shared by the WebSocket and HTTP shells, and by edge nodes over the bus) ----
    async def handle(self, principal, msg: dict) -> dict:
        """``request`` with the authority lease on the bus kept in step (never raises on bad input)."""
        if self.lease is None or msg.get("type") != "authority":
            if self.lease is not None and msg.get("type") in ("command", "arm", "execute"):
                self.lease.touch(principal.user, now_ns())
            return self.request(principal, msg)
        try:
            self.publish(await self.lease.sync(now_ns()))
            reply = self.request(principal, msg)
            if reply.get("type") == "authority_ok":
                await self.lease.commit(str(msg.get("action")), principal, now_ns())
            return reply
        except AuthorityRefused as exc:
            self.publish(getattr(exc, "events", []))
            audit_event("authority_request", user=principal.user, role=str(principal.role),
                        action=msg.get("action"), outcome="refused", reason=str(exc))
            return _error(msg, exc.code, str(exc))
        except Exception as exc:  # noqa: BLE001 - the broker is away: refuse rather than guess
            log_event("authority_lease_failed", logging.WARNING, error=str(exc)[:200])
            return _error(msg, "lease_unavailable", "the command authority lease cannot be reached; try again")

    def request(self, principal, msg: dict) -> dict:
        """Handle one command-channel request; returns the reply (never raises on bad input)."""
        kind = msg.get("type")
        now = now_ns()
        svc = self.service
        try:
            if kind == "authority":
                action = msg.get("action")
                if not isinstance(action, str):
                    return _error(msg, "bad_field", "action must be take, release, override or renew")
                fn = {"take": svc.authority.take, "release": svc.authority.release,
                      "override": svc.authority.override, "renew": svc.authority.renew}.get(action)
                if fn is None:
                    return _error(msg, "bad_field", "action must be take, release, override or renew")
                events = fn(principal, now)
                audit_event("authority_request", user=principal.user, role=str(principal.role), action=action,
                            outcome="granted")
                self.publish(events)
                self._flush_audit()
                return {"type": "authority_ok", "id": msg.get("id"), "authority": svc.authority.as_wire(now)}
            if kind == "command":
                events = svc.submit(principal, msg.get("name"), msg.get("args"), reason=msg.get("reason", ""),
                                    client_seq=msg.get("client_seq"), now_ns=now)
                return self._record_reply(msg, events)
            if kind == "arm":
                arm_id, expires, events = svc.arm(principal, msg.get("name"), msg.get("args"),
                                                  reason=msg.get("reason", ""), client_seq=msg.get("client_seq"),
                                                  now_ns=now)
                self.publish(events)
                self._flush_audit()
                if arm_id is None:
                    return self._record_reply(msg, events, publish=False)
                return {"type": "armed", "id": msg.get("id"), "arm": arm_id, "expires_ns": expires}
            if kind == "execute":
                events = svc.execute(principal, msg.get("arm"), client_seq=msg.get("client_seq"), now_ns=now)
                return self._record_reply(msg, events)
            if kind == "disarm":
                self.publish(svc.disarm(principal, msg.get("arm"), now))
                self._flush_audit()
                return {"type": "disarmed", "id": msg.get("id"), "arm": msg.get("arm")}
            if kind == "history":
                return {"type": "history", "id": msg.get("id"),
                        "records": svc.history.as_wire(int(msg.get("n", 100)) if str(msg.get("n", "")).isdigit() else 100)}
            if kind == "definitions":
                return {"type": "definitions", "id": msg.get("id"), "commands": svc.definitions_as_wire()}
            if kind == "authority_state":
                return svc.authority.as_wire(now)
            return _error(msg, "unknown_type", f"unknown message type {kind!r}")
        except AuthorityRefused as exc:
            audit_event("authority_request", user=principal.user, role=str(principal.role),
                        action=msg.get("action"), outcome="refused", reason=str(exc))
            return _error(msg, exc.code, str(exc))
        except CommandRejected as exc:
            self._flush_audit()
            return {"type": "error", "id": msg.get("id"), **exc.as_wire()}

    def _record_reply(self, msg: dict, events: list, publish: bool = True) -> dict:
        sent = self.pump(publish=False)  # the uplink first: consoles and logs can wait a millisecond
        if publish:
            self.publish(events)
        self.publish(sent)
        self._flush_audit()
        record = next((e["record"] for e in reversed(events) if e.get("type") == "command"), None)
        state = record["state"] if record else None
        return {"type": "rejected" if state == "REJECTED" else "accepted", "id": msg.get("id"), "record": record}


def _error(msg: dict, code: str, message: str) -> dict:
    return {"type": "error", "id": msg.get("id") if isinstance(msg, dict) else None, "code": code, "message": message}


def _authorize(station: GroundStation, handler: RequestHandler):
    return authorize(station, handler, str(Role.DIRECTOR), "command_refused")


class CommandSocket(GuardedSocket):
    """``/ws/command``: directors' requests and the command/authority events."""

    def initialize(self, center: CommandCenter) -> None:
        self.center = center
        self.station = center.station
        self.principal = None
        self._times: deque[float] = deque()

    def check_origin(self, origin: str) -> bool:
        return check_origin(self.station, self, origin, "command_refused") is None

    def prepare(self) -> None:
        self.principal = _authorize(self.center.station, self)

    def open(self) -> None:
        self.guard_open(0)  # the message rate is MESSAGES_PER_SECOND below
        self.center.sockets.add(self)
        self.register("command", id(self), self.principal)
        log_event("command_open", user=self.principal.user, role=self.principal.role)
        self.send({"type": "hello", "protocol": 1, "user": self.principal.user, "role": self.principal.role,
                   **self.center.hello_extra()})
        for ev in self.center.opening_events():
            self.send(ev)

    async def on_message(self, message) -> None:
        if self.guard_incoming(message, MAX_MESSAGE_BYTES):
            return
        now = time.monotonic()
        self._times.append(now)  # counted before decoding: garbage counts too
        while self._times and now - self._times[0] > 1.0:
            self._times.popleft()
        over = len(self._times) - MESSAGES_PER_SECOND
        if over == 1 or over > 9 * MESSAGES_PER_SECOND:  # audited once per burst, and the flood
            audit_refusal("command_refused", "rate_limited" if over == 1 else "flood",
                          f"more than {MESSAGES_PER_SECOND} messages per second", path=self.request.path,
                          remote=self.request.remote_ip, user=self.principal.user)
        if over > 9 * MESSAGES_PER_SECOND:
            self.close(CLOSE_FLOOD, "message flood")
            return
        if isinstance(message, str) or len(message) > MAX_COMMAND_MESSAGE:
            self.send(_error({}, "bad_message", f"binary msgpack maps of at most {MAX_COMMAND_MESSAGE} bytes"))
            return
        try:
            msg = msgpack.unpackb(message, raw=False)
        except Exception:  # noqa: BLE001 - any decoding failure is the client's
            self.send(_error({}, "bad_msgpack", "not valid msgpack"))
            return
        if not isinstance(msg, dict):
            self.send(_error({}, "bad_message", "a message must be a map"))
            return
        if not depth_within(msg, MAX_DEPTH):  # replies, history and audit lines echo what it holds
            self.send(_error(msg, "too_deep", f"a message may nest at most {MAX_DEPTH} levels"))
            return
        if over > 0:
            self.send(_error(msg, "rate_limited", f"more than {MESSAGES_PER_SECOND} messages per second"))
            return
        self.send(await self.center.handle(self.principal, msg))

    def send(self, message: dict) -> None:
        try:
            fut = self.write_message(msgpack.packb(message, use_bin_type=True), binary=True)
        except Exception:  # noqa: BLE001 - closed sockets are dropped from the set on close
            return
        # a peer gone before the write ends fails the future later: retrieve it (else asyncio logs
        # "Task exception was never retrieved" with a traceback for every such client)
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    def on_close(self) -> None:
        self.center.sockets.discard(self)
        self.unregister()


class CommandApi(ApiHandler):
    """HTTP API for scripts: JSON in and out, ``Authorization: Bearer <token>``."""

    ROUTES = {"commands": "command", "arm": "arm", "execute": "execute", "disarm": "disarm",
              "authority": "authority"}
    min_role = "director"
    refused_event = "command_refused"

    def initialize(self, center: CommandCenter) -> None:
        self.center = center
        self.station = center.station

    QUERIES = {"commands": "history", "definitions": "definitions", "authority": "authority_state"}

    async def get(self, what: str) -> None:
        kind = self.QUERIES.get(what)
        if kind is None:
            raise HTTPError(404)
        self.reply(await self.center.handle(self.principal, {"type": kind, "n": 100}))

    async def post(self, what: str) -> None:
        kind = self.ROUTES.get(what)
        if kind is None:
            raise HTTPError(404)
        body = self.json_body(MAX_COMMAND_MESSAGE)
        if body is None:
            return
        reply = await self.center.handle(self.principal, {**body, "type": kind})
        self.reply(reply, {"error": 409 if reply.get("code") in ("not_holder", "held", "authority") else 422,
                           "rejected": 422, "accepted": 202}.get(reply["type"], 200))


def command_handlers(center: CommandCenter) -> list:
    args = {"center": center}
    return [(r"/ws/command", CommandSocket, args), (r"/api/(\w+)", CommandApi, args)]
