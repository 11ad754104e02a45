"""The Redis backend of the bus (redis-py asyncio with hiredis): pub/sub for telemetry
and requests, a Redis Stream for events, keys for the hello state and the snapshot,
a hash + sorted set for the console registry, and Lua scripts for the atomic
authority lease.

Writes go through one queue drained by one task into pipelines, in order, so the
event loop never waits for Redis. When Redis goes away, telemetry queued for it is
dropped (at-most-once, counted); events are kept and written again when Redis is
back. Events (and reliable addressed messages such as targeted alerts) are
entries of the stream ``PREFIX:events`` (``XADD ... MAXLEN ~ stream_maxlen``),
numbered by the ingest node (``e`` its epoch, ``n`` its count): each edge reads
from its last delivered id with ``XREAD BLOCK``, drops a number it already
delivered (a retried write) and reports a jump in the numbers (it was away longer
than the stream holds) through ``on_events_lost``. An edge keeps its position in
``PREFIX:events:pos`` so that a restarted edge resumes where it stopped. The
pub/sub reader reconnects with backoff and resubscribes, and ``on_connection``
tells the station so it can resynchronise its consoles.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..logs import log_event
from .base import EDGE, Bus
from .envelope import BusMessageError, TierFrame, pack, pack_tier, unpack, unpack_tier

__all__ = ["RedisBus"]

MAX_BACKOFF_S = 1.0  # reconnect and write retries: 0.1 s doubling to this
STREAM_MAXLEN = 10_000  # events kept in the stream (approximate trimming)
MAX_PENDING_EVENTS = 65_536  # events held by the ingest node while Redis is away

_HOLDS = "local cur = redis.call('GET', KEYS[1]) local mine = cur and string.sub(cur, 1, #ARGV[1] + 1) == ARGV[1] .. '\\n'"
_ACQUIRE = _HOLDS + """
if ARGV[4] == '1' or not cur or mine then
  redis.call('SET', KEYS[1], ARGV[1] .. '\\n' .. ARGV[2], 'PX', ARGV[3])
end
return redis.call('GET', KEYS[1])"""
_RENEW = _HOLDS + " if mine then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = _HOLDS + " if cur and (ARGV[1] == '' or mine) then return redis.call('DEL', KEYS[1]) end return 0"
_LIVE = """
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #dead > 0 then redis.call('HDEL', KEYS[1], unpack(dead)) redis.call('ZREM', KEYS[2], unpack(dead)) end
return redis.call('HVALS', KEYS[1])"""


class RedisBus(Bus):
    """``url``: redis://[user:password@]host:port/db (or rediss:// for TLS); ``prefix`` namespaces one station."""

    MAX_QUEUE = 4096

    def __init__(self, url: str, node: str, *, prefix: str = "gs", stream_maxlen: int = STREAM_MAXLEN) -> None:
        super().__init__(node)
        self.url, self.prefix, self.stream_maxlen = url, prefix, stream_maxlen
        self.redis = aioredis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
        self._out: deque[tuple[str, str, object]] = deque()
        self._events: deque[bytes] = deque()  # stream entries not yet written: kept across an outage
        self._epoch = os.urandom(6).hex()  # this publisher's numbering of its events
        self._ev_n = 0
        self.position: dict = {}  # an edge: {"id": last entry read, "seen": {publisher epoch: last number}}
        self.resumed_from: str | None = None  # an edge: the stored position it started from
        self._state: bytes | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self.connected = False
        self.stats = {"published": 0, "dropped": 0, "received": 0, "bad": 0, "reconnects": 0, "events_written": 0,
                      "events_delivered": 0, "events_duplicate": 0, "events_lost": 0, "events_dropped": 0}
        self._scripts = {name: self.redis.register_script(src) for name, src in
                         (("acquire", _ACQUIRE), ("renew", _RENEW), ("release", _RELEASE), ("live", _LIVE))}

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def start(self, role: str) -> None:
        await super().start(role)
        channels = [self.key("node", self.node)]
        channels += [self.key("tel"), self.key("snap")] if role == EDGE else [self.key("req")]
        self._tasks = [asyncio.ensure_future(self._writer()), asyncio.ensure_future(self._reader(channels)),
                       asyncio.ensure_future(self._stream_reader())]  # the ingest node: messages addressed to it

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.redis.aclose()

    # -- writing ---------------------------------------------------------------------------------------
    def _queue(self, op: str, key: str, payload: object) -> None:
        if len(self._out) >= self.MAX_QUEUE:
            self._out.popleft()
            self.stats["dropped"] += 1
        self._out.append((op, key, payload))
        self._wake.set()

    def publish_tier(self, frame: TierFrame) -> None:
        self._queue("publish", self.key("tel"), pack_tier(frame))

    def publish_event(self, event: dict) -> None:
        self._queue_event({"ev": event})

    def _queue_event(self, entry: dict) -> None:
        self._ev_n += 1
        if len(self._events) >= MAX_PENDING_EVENTS:
            self._events.popleft()  # the edges see the jump in the numbers and resynchronise
            self.stats["events_dropped"] += 1
        self._events.append(pack({"e": self._epoch, "n": self._ev_n, **entry}))
        self._wake.set()

    def publish_snapshot(self, blob: bytes) -> None:
        self._queue("set", self.key("snapshot"), blob)
        self._queue("publish", self.key("snap"), blob)

    def set_state(self, state: dict) -> None:
        self._state = pack(state)  # written before anything queued after it
        self._wake.set()

    def request(self, message: dict) -> None:
        self._queue("publish", self.key("req"), pack(message))

    def to_node(self, node: str, message: dict, *, reliable: bool = False) -> None:
        if not reliable:
            self._queue("publish", self.key("node", node), pack(message))
        elif node == self.node:
            if self.on_node_message is not None:
                asyncio.get_event_loop().call_soon(self.on_node_message, message)
        else:
            self._queue_event({"to": node, "ev": message})

    def set_demand(self, demand: dict) -> None:
        self._queue("hset", self.key("demand"), (self.node, pack({"t": time.time(), "d": demand})))

    def register(self, entries: dict[str, dict], ttl_s: float) -> None:
        if entries:
            self._queue("register", "", ({f"{self.node}/{k}": pack(v) for k, v in entries.items()},
                                         time.time() + ttl_s))

    def unregister(self, keys: list[str]) -> None:
        if keys:
            self._queue("unregister", "", [f"{self.node}/{k}" for k in keys])

    async def _writer(self) -> None:
        backoff = 0.1
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            batch, self._out = self._out, deque()
            events, self._events = self._events, deque()
            state, self._state = self._state, None
            if not batch and not events and state is None:
                continue
            pipe = self.redis.pipeline(transaction=False)
            if state is not None:
                pipe.set(self.key("state"), state)
            for op, key, payload in batch:
                self._add(pipe, op, key, payload)
            for entry in events:
                pipe.xadd(self.key("events"), {"m": entry}, maxlen=self.stream_maxlen, approximate=True)
            try:
                await pipe.execute()
                self.stats["published"] += len(batch)
                self.stats["events_written"] += len(events)
                backoff = 0.1
            except (RedisError, OSError) as exc:
                self.stats["dropped"] += len(batch)
                if state is not None and self._state is None:
                    self._state = state  # the state is idempotent: keep it for the next try
                events.extend(self._events)  # events are written again, in order, when Redis is back
                self._events = events
                log_event("bus_write_failed", logging.WARNING, error=str(exc)[:200], dropped=len(batch),
                          events_kept=len(events))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                if self._state is not None or self._events:
                    self._wake.set()

    def _add(self, pipe, op: str, key: str, payload) -> None:
        if op == "publish":
            pipe.publish(key, payload)
        elif op == "set":
            pipe.set(key, payload)
        elif op == "hset":
            pipe.hset(key, payload[0], payload[1])
        elif op == "register":
            entries, expiry = payload
            pipe.hset(self.key("consoles"), mapping=entries)
            pipe.zadd(self.key("consoles", "expiry"), {k: expiry for k in entries})
        elif op == "unregister":
            pipe.hdel(self.key("consoles"), *payload)
            pipe.zrem(self.key("consoles", "expiry"), *payload)

    # -- reading ---------------------------------------------------------------------------------------
    async def _reader(self, channels: list[str]) -> None:
        backoff = 0.1
        handlers = {self.key("tel"): self._on_tel, self.key("snap"): self._on_snap,
                    self.key("req"): self._on_req, self.key("node", self.node): self._on_node}
        ever = False
        while not self._closed:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(*channels)
                if ever:
                    self.stats["reconnects"] += 1
                ever = True
                self._set_connected(True)
                backoff = 0.1
                while not self._closed:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    self.stats["received"] += 1
                    try:
                        handlers[msg["channel"].decode()](msg["data"])
                    except BusMessageError as exc:
                        self.stats["bad"] += 1
                        log_event("bus_bad_message", logging.WARNING, channel=msg["channel"].decode(), error=str(exc))
            except (RedisError, OSError) as exc:
                self._set_connected(False, str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            finally:
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass

    async def _stream_reader(self) -> None:
        """Read the event stream from the last delivered id, forever (across outages): an edge takes every
        event and the messages addressed to it, the ingest node only the messages addressed to it."""
        key, backoff, last_id = self.key("events"), 0.1, None
        while not self._closed:
            try:
                if last_id is None:
                    last_id = await self._start_position()
                reply: Any = await self.redis.xread({key: last_id}, count=512, block=1000)
                backoff = 0.1
                for _, entries in reply or ():
                    for entry_id, fields in entries:
                        last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                        self._on_entry(last_id, fields.get(b"m", b""))
                if reply:
                    self._queue("hset", self.key("events", "pos"), (self.node, pack(self.position)))
            except (RedisError, OSError):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _start_position(self) -> str:
        """Where to read from: this node's stored position, else the stream's newest entry (or its start)."""
        raw: Any = await self.redis.hget(self.key("events", "pos"), self.node)
        if raw is not None:
            self.position = unpack(raw)
            self.resumed_from = str(self.position.get("id"))
            return self.resumed_from
        newest: Any = await self.redis.xrevrange(self.key("events"), count=1)
        if not newest:
            return "0-0"
        entry_id, fields = newest[0]
        self.position = {"id": entry_id.decode(), "seen": {}}
        try:
            m = unpack(fields.get(b"m", b""))
            self.position["seen"][m["e"]] = int(m["n"])
        except (BusMessageError, KeyError, TypeError, ValueError):
            pass
        return entry_id.decode()

    def _on_entry(self, entry_id: str, data: bytes) -> None:
        """One stream entry: drop a repeat, report a jump in a publisher's numbering, deliver the rest."""
        try:
            m = unpack(data)
            epoch, n = str(m.get("e")), int(m.get("n", 0))
        except (BusMessageError, TypeError, ValueError) as exc:
            self.stats["bad"] += 1
            log_event("bus_bad_message", logging.WARNING, channel="events", error=str(exc))
            return
        seen = self.position.setdefault("seen", {})
        last = seen.get(epoch)
        self.position["id"] = entry_id
        if last is not None and n <= last:
            self.stats["events_duplicate"] += 1
            return
        seen[epoch] = n
        if len(seen) > 8:  # publishers (ingest node lives, edges sending alerts) no longer heard of
            del seen[next(iter(seen))]
        missed = n - last - 1 if last is not None else 0
        if missed > 0:
            self.stats["events_lost"] += missed
            log_event("bus_events_lost", logging.WARNING, node=self.node, missed=missed)
            if self.on_events_lost is not None:
                self.on_events_lost(missed)
        to, ev = m.get("to"), m.get("ev")
        if not isinstance(ev, dict) or (to is None and self.role != EDGE):  # events are the edges'
            return
        self.stats["events_delivered"] += 1
        if to is None:
            if self.on_event is not None:
                self.on_event(ev)
        elif to == self.node and self.on_node_message is not None:
            self.on_node_message(ev)

    def _set_connected(self, up: bool, reason: str = "") -> None:
        if up == self.connected:
            return
        self.connected = up
        log_event("bus_connected" if up else "bus_lost", logging.INFO if up else logging.WARNING,
                  url=self._safe_url(), node=self.node, reason=reason[:200])
        if self.on_connection is not None:
            self.on_connection(up)

    def _safe_url(self) -> str:
        return self.url.split("@")[-1]

    def _on_tel(self, data: bytes) -> None:
        if self.on_tier is not None:
            self.on_tier(unpack_tier(data))

    def _on_snap(self, data: bytes) -> None:
        if self.on_snapshot is not None:
            self.on_snapshot(data)

    def _on_req(self, data: bytes) -> None:
        if self.on_request is not None:
            self.on_request(unpack(data))

    def _on_node(self, data: bytes) -> None:
        if self.on_node_message is not None:
            self.on_node_message(unpack(data))

    # -- queries ---------------------------------------------------------------------------------------
    async def get_state(self) -> dict | None:
        data = await self.redis.get(self.key("state"))
        return None if data is None else unpack(data)

    async def get_snapshot(self) -> bytes | None:
        return await self.redis.get(self.key("snapshot"))

    async def get_demand(self, max_age_s: float) -> dict[int, set[str]]:
        now = time.time()
        merged: dict[int, set[str]] = {}
        for raw in (await self.redis.hgetall(self.key("demand"))).values():
            entry = unpack(raw)
            if now - entry.get("t", 0) <= max_age_s:
                for rate, groups in entry.get("d", {}).items():
                    merged.setdefault(int(rate), set()).update(groups)
        return merged

    async def consoles(self) -> list[dict]:
        raw = await self._scripts["live"](keys=[self.key("consoles"), self.key("consoles", "expiry")],
                                          args=[time.time()])
        return [unpack(r) for r in raw]

    async def lease_get(self, name: str) -> dict | None:
        return _holder(await self.redis.get(self.key("lease", name)))

    async def lease_acquire(self, name: str, holder: dict, ttl_s: float, *, force: bool = False) -> dict | None:
        raw = await self._scripts["acquire"](keys=[self.key("lease", name)],
                                             args=[holder["user"], pack(holder), int(ttl_s * 1000), int(force)])
        return _holder(raw)

    async def lease_renew(self, name: str, user: str, ttl_s: float) -> bool:
        return bool(await self._scripts["renew"](keys=[self.key("lease", name)], args=[user, int(ttl_s * 1000)]))

    async def lease_release(self, name: str, user: str | None) -> bool:
        return bool(await self._scripts["release"](keys=[self.key("lease", name)], args=[user or ""]))

    def status(self) -> dict:
        return {**super().status(), "url": self._safe_url(), "queued": len(self._out),
                "events_queued": len(self._events), "events_position": self.position.get("id"),
                "events_resumed_from": self.resumed_from, **self.stats}


def _holder(raw: bytes | None) -> dict | None:
    if raw is None:
        return None
    _, _, body = raw.partition(b"\n")
    return unpack(body)
