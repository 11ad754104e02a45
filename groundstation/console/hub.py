"""The console hub (sans-I/O): samples in, one encoded frame per tier and group out.

Rate tiers are created on demand for the rates consoles ask for (1-50 Hz).
Each tier accumulates min/max/last/count of every parameter over its interval.
On ``tick(now)`` a due tier encodes one ``SharedFrame`` per parameter group that
has subscribers and hands the same bytes to every console in that channel.
Alarms, link status and catalog changes go to every console as events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from telemetry_formats.decom import SampleBatch

from ..alarms import AlarmEvent, AlarmManager
from ..bus.envelope import TierFrame
from ..catalog import Catalog
from .decimate import Accumulator, Latest, summarize
from .protocol import MAX_RATE, MIN_RATE, PROTOCOL_VERSION, SharedFrame, encode_map, field_blob
from .session import ConsoleSession, Principal, Subscription

__all__ = ["Hub", "HubStats"]


@dataclass
class _Tier:
    rate: int
    period_ns: int
    next_ns: int
    acc: Accumulator
    channels: dict[int, set[ConsoleSession]] = field(default_factory=dict)  # group index -> sessions
    refs: dict[tuple[int, int], int] = field(default_factory=dict)  # (session id, group) -> subscriptions


@dataclass
class HubStats:
    frames_encoded: int = 0
    deliveries: int = 0
    bytes_encoded: int = 0
    ticks: int = 0


class Hub:
    """All console sessions of one process and the telemetry they subscribe to."""

    def __init__(self, catalog: Catalog | None = None, *, now_ns: int = 0) -> None:
        self.catalog = catalog or Catalog()
        self.sessions: dict[int, ConsoleSession] = {}
        self.tiers: dict[int, _Tier] = {}
        self.latest = Latest(len(self.catalog))
        self.alarms = AlarmManager([e.name for e in self.catalog.entries])
        self.link: dict = {"state": "WAITING", "since_ns": now_ns, "last_data_ns": None, "reason": "no data yet"}
        self.source: dict = {"replay": False}
        self.last_arrival_ns = 0
        self.stats = HubStats()
        self._next_session = 1
        self.on_close: Callable[[ConsoleSession, str], None] | None = None
        self.link_provider: Callable[[], dict] | None = None  # the current link status, for hellos
        self.hello_extra: Callable[[], dict] | None = None  # e.g. command definitions, authority, history
        self.backfill_provider: Callable[..., None] | None = None  # (session, sub, since_ns, req id, now): recorder
        self.select_budget = None  # a per-user KeyedRate of subscribe cost units/s (server.limits); None = none
        self.event_listeners: list[Callable[[dict, int], None]] = []  # every broadcast event (the recorder)
        self._closing: set[int] = set()  # sessions already handed to on_close
        self.tier_listeners: list[Callable[[TierFrame], None]] = []  # every tick's frames (the bus)
        self.remote_demand: dict[int, set[str]] = {}  # rate -> group names other nodes' consoles need
        self.forward: Callable[[ConsoleSession, dict], None] | None = None  # edges: requests for the ingest node
        self._tier_seq: dict[int, int] = {}  # per rate, survives tier re-creation

    # -- sessions ---------------------------------------------------------------
    def connect(self, principal: Principal, now_ns: int = 0, outbox=None) -> ConsoleSession:
        s = ConsoleSession(self._next_session, principal, self, outbox)
        self._next_session += 1
        self.sessions[s.id] = s
        s.send(self.hello(s, now_ns), now_ns)
        return s

    def disconnect(self, s: ConsoleSession) -> None:
        s.close()
        self.sessions.pop(s.id, None)
        self._closing.discard(s.id)

    def hello(self, s: ConsoleSession, now_ns: int) -> dict:
        extra = self.hello_extra() if self.hello_extra else {}
        return {**extra, "type": "hello", "protocol": PROTOCOL_VERSION, "session": s.id, "user": s.principal.user,
                "role": s.principal.role, "position": s.principal.position, "server_ns": now_ns, "rates": [1, 50], "catalog": self.catalog.as_wire(),
                "link": self.link_provider() if self.link_provider else self.link, "source": self.source,
                "alarms": self.alarms.as_wire()}

    # -- subscriptions ------------------------------------------------------------
    def resolve(self, sub: Subscription) -> None:
        """Fill a subscription's ids and channel groups from its selection (may raise SelectionError)."""
        sub.ids = self.catalog.select(sub.names, sub.globs, sub.groups)
        sub.channel_groups = set(np.unique(self.catalog.group_of[sub.ids]).tolist()) if len(sub.ids) else set()

    def _tier(self, rate: int) -> _Tier:
        tier = self.tiers.get(rate)
        if tier is None:
            tier = self.tiers[rate] = _Tier(rate, 1_000_000_000 // rate, 0, Accumulator(len(self.catalog)))
        return tier

    def attach(self, s: ConsoleSession, sub: Subscription) -> None:
        if not sub.channel_groups:
            return
        tier = self._tier(sub.rate)
        for g in sub.channel_groups:
            key = (s.id, g)
            tier.refs[key] = tier.refs.get(key, 0) + 1
            tier.channels.setdefault(g, set()).add(s)

    def detach(self, s: ConsoleSession, sub: Subscription) -> None:
        tier = self.tiers.get(sub.rate)
        if tier is None:
            return
        for g in sub.channel_groups:
            key = (s.id, g)
            tier.refs[key] = tier.refs.get(key, 1) - 1
            if tier.refs[key] <= 0:
                tier.refs.pop(key, None)
                members = tier.channels.get(g, set())
                members.discard(s)
                if not members:
                    tier.channels.pop(g, None)
        if not tier.channels and sub.rate not in self.remote_demand:
            del self.tiers[sub.rate]

    def set_remote_demand(self, demand: dict[int, set[str]]) -> None:
        """The rates and groups that consoles on other nodes need (the ingest node encodes them too)."""
        self.remote_demand = {r: set(g) for r, g in demand.items() if MIN_RATE <= r <= MAX_RATE}
        for rate in self.remote_demand:
            self._tier(rate)
        for rate in [r for r, t in self.tiers.items() if not t.channels and r not in self.remote_demand]:
            del self.tiers[rate]

    def demand(self) -> dict[int, list[str]]:
        """What this node's consoles need: ``{rate: [group names]}``."""
        return {t.rate: sorted(self.catalog.group_names[g] for g in t.channels) for t in self.tiers.values()
                if t.channels}

    # -- data in --------------------------------------------------------------------
    def on_samples(self, batch: SampleBatch, arrival_ns: int) -> None:
        """Merge one decoded batch into every tier, the snapshot and the alarms."""
        if not len(batch):
            return
        summary = summarize(batch)
        self.last_arrival_ns = arrival_ns
        self.latest.add(summary)
        for tier in self.tiers.values():
            tier.acc.add(summary)
        for ev in self.alarms.observe(summary):
            self.broadcast(ev.as_wire(), arrival_ns)

    def acknowledge(self, alarm_id: int, user: str, now_ns: int) -> AlarmEvent:
        ev = self.alarms.acknowledge(alarm_id, user, now_ns)
        self.broadcast(ev.as_wire(), now_ns)
        return ev

    def set_link(self, link: dict, now_ns: int) -> None:
        self.link = link
        self.broadcast({"type": "link", **link}, now_ns)

    def set_catalog(self, catalog: Catalog, now_ns: int, *, own_alarms: bool = True) -> None:
        """A new vehicle configuration: reset state, tell consoles, re-resolve subscriptions.
        ``own_alarms=False`` on edges, whose alarms are the ingest node's."""
        self.catalog = catalog
        self.latest = Latest(len(catalog))
        if own_alarms:
            for ev in self.alarms.clear_all(by="reconfiguration"):
                self.broadcast(ev.as_wire(), now_ns)
            next_id = self.alarms._next_id
            self.alarms = AlarmManager([e.name for e in catalog.entries])
            self.alarms._next_id = next_id  # alarm ids never repeat within a server's life
        old = [(s, sub) for s in self.sessions.values() for sub in s.subs.values()]
        self.tiers.clear()
        self.broadcast({"type": "catalog", "catalog": catalog.as_wire()}, now_ns)
        for s, sub in old:
            try:
                self.resolve(sub)
            except ValueError:
                sub.ids, sub.channel_groups = np.zeros(0, np.int32), set()
            self.attach(s, sub)
            s.send({"type": "subscribed", "id": None, "sub": sub.id, "rate": sub.rate, "ids": sub.ids.tolist(),
                    "groups": sorted(catalog.group_names[g] for g in sub.channel_groups)}, now_ns)

    def broadcast(self, message: dict, now_ns: int) -> None:
        for listener in self.event_listeners:
            listener(message, now_ns)
        for s in list(self.sessions.values()):
            s.send(message, now_ns)
            self._check(s)

    # -- data out -----------------------------------------------------------------------
    def snapshot(self, ids: np.ndarray, sub_id: int | None) -> dict:
        ids = ids[self.latest.seen[ids]] if len(ids) else ids
        return {"type": "snapshot", "sub": sub_id, "ids": field_blob("ids", ids),
                "value": field_blob("value", self.latest.value[ids]), "t": field_blob("t", self.latest.t_ns[ids]),
                "limit": field_blob("limit", self.latest.limit[ids])}

    def tick(self, now_ns: int) -> int:
        """Emit every due tier to local consoles and ``tier_listeners``; returns the frames encoded."""
        encoded = 0
        for tier in list(self.tiers.values()):
            if now_ns < tier.next_ns:
                continue
            # Align ticks on multiples of the period; skip missed ones instead of bursting.
            tier.next_ns = (now_ns // tier.period_ns + 1) * tier.period_ns
            acc = tier.acc.take()
            self.stats.ticks += 1
            wanted = set(tier.channels)
            names = self.remote_demand.get(tier.rate)
            if names:
                wanted.update(i for i, g in enumerate(self.catalog.group_names) if g in names)
            groups: dict[int, bytes] = {}  # group -> its data map, encoded once for every console of every node
            for g in sorted(wanted):
                ids = self.catalog.groups[self.catalog.group_names[g]]
                ids = ids[acc.count[ids] > 0]
                if not len(ids):
                    continue
                groups[g] = encode_map({
                    "type": "data", "rate": tier.rate, "group": self.catalog.group_names[g], "t": now_ns,
                    "ingest_ns": self.last_arrival_ns, "ids": field_blob("ids", ids),
                    "min": field_blob("min", acc.min[ids]), "max": field_blob("max", acc.max[ids]),
                    "last": field_blob("last", acc.last[ids]), "count": field_blob("count", acc.count[ids]),
                    "last_t": field_blob("last_t", acc.last_t[ids]), "limit": field_blob("limit", acc.limit[ids]),
                })
                encoded += 1
                self.stats.frames_encoded += 1
                self.stats.bytes_encoded += len(groups[g])
            if not groups:
                continue
            seq = self._tier_seq[tier.rate] = self._tier_seq.get(tier.rate, 0) + 1
            frame = TierFrame(tier.rate, seq, now_ns, self.last_arrival_ns, self.catalog.version, groups)
            self.distribute(frame, now_ns)
            for listener in self.tier_listeners:
                listener(frame)
        return encoded

    def distribute(self, frame: TierFrame, now_ns: int) -> int:
        """Send one tier frame to this node's consoles: one bundle each, a small per-console prefix
        and the shared group maps as they are. Returns the bundles queued."""
        tier = self.tiers.get(frame.rate)
        if tier is None:
            return 0
        per_session: dict[ConsoleSession, tuple[int, ...]] = {}
        for g in frame.groups:
            for s in tier.channels.get(g, ()):
                per_session[s] = per_session.get(s, ()) + (g,)
        if not per_session:
            return 0
        head = SharedFrame.of({"type": "bundle", "rate": frame.rate, "t": frame.t_ns, "ingest_ns": frame.ingest_ns})
        parts: dict[tuple[int, ...], tuple[bytes, bytes]] = {}  # consoles with the same groups share them
        for s, gs in per_session.items():
            p = parts.get(gs)
            if p is None:
                p = parts[gs] = head.bundle_parts([frame.groups[g] for g in gs])
            s.send_parts(frame.rate, p[0], p[1], now_ns, frame.ingest_ns)
            self._check(s)
        self.stats.deliveries += len(per_session)
        return len(per_session)

    def _check(self, s: ConsoleSession) -> None:
        """Hand a session that fell too far behind to ``on_close``, once (the shell may close later)."""
        if s.outbox.close_reason and self.on_close is not None and s.id not in self._closing:
            self._closing.add(s.id)
            self.on_close(s, s.outbox.close_reason)
