"""The in-process bus: the default, no broker. Several nodes may share one ``Broker``
in a process (used by tests of the edge logic); messages are delivered on the next
loop iteration, like a broker would, never re-entrantly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .base import EDGE, INGEST, STANDALONE, Bus
from .envelope import TierFrame

__all__ = ["Broker", "InProcessBus"]


class Broker:
    """Shared state of the nodes of one process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.nodes: dict[str, InProcessBus] = {}
        self.state: dict | None = None
        self.snapshot: bytes | None = None
        self.demand: dict[str, tuple[float, dict]] = {}
        self.registry: dict[tuple[str, str], tuple[float, dict]] = {}  # (node, key) -> (expiry, entry)
        self.leases: dict[str, tuple[float, dict]] = {}

    def lease(self, name: str) -> dict | None:
        exp_holder = self.leases.get(name)
        if exp_holder is None or exp_holder[0] <= self.clock():
            self.leases.pop(name, None)
            return None
        return exp_holder[1]


class InProcessBus(Bus):
    def __init__(self, node: str = "local", broker: Broker | None = None) -> None:
        super().__init__(node)
        self.broker = broker or Broker()
        self.broker.nodes[node] = self

    def _each(self, role: str, handler: str, arg) -> None:
        loop = asyncio.get_event_loop()
        for bus in list(self.broker.nodes.values()):
            fn = getattr(bus, handler)
            if bus is not self and bus.role == role and fn is not None:
                loop.call_soon(fn, arg)

    def publish_tier(self, frame: TierFrame) -> None:
        self._each(EDGE, "on_tier", frame)

    def publish_event(self, event: dict) -> None:
        self._each(EDGE, "on_event", event)

    def publish_snapshot(self, blob: bytes) -> None:
        self.broker.snapshot = blob
        self._each(EDGE, "on_snapshot", blob)

    def set_state(self, state: dict) -> None:
        self.broker.state = state

    async def get_state(self) -> dict | None:
        return self.broker.state

    async def get_snapshot(self) -> bytes | None:
        return self.broker.snapshot

    def request(self, message: dict) -> None:
        for role in (INGEST, STANDALONE):
            self._each(role, "on_request", message)
        if self.role in (INGEST, STANDALONE) and self.on_request is not None:
            asyncio.get_event_loop().call_soon(self.on_request, message)

    def to_node(self, node: str, message: dict, *, reliable: bool = False) -> None:
        bus = self.broker.nodes.get(node)
        if bus is not None and bus.on_node_message is not None:
            asyncio.get_event_loop().call_soon(bus.on_node_message, message)

    def set_demand(self, demand: dict) -> None:
        self.broker.demand[self.node] = (self.broker.clock(), demand)

    async def get_demand(self, max_age_s: float) -> dict[int, set[str]]:
        now = self.broker.clock()
        merged: dict[int, set[str]] = {}
        for t, demand in self.broker.demand.values():
            if now - t <= max_age_s:
                for rate, groups in demand.items():
                    merged.setdefault(int(rate), set()).update(groups)
        return merged

    def register(self, entries: dict[str, dict], ttl_s: float) -> None:
        exp = self.broker.clock() + ttl_s
        for key, entry in entries.items():
            self.broker.registry[(self.node, key)] = (exp, entry)

    def unregister(self, keys: list[str]) -> None:
        for key in keys:
            self.broker.registry.pop((self.node, key), None)

    async def consoles(self) -> list[dict]:
        now = self.broker.clock()
        reg = self.broker.registry
        for k in [k for k, (exp, _) in reg.items() if exp <= now]:
            del reg[k]
        return [entry for _, entry in reg.values()]

    async def lease_get(self, name: str) -> dict | None:
        return self.broker.lease(name)

    async def lease_acquire(self, name: str, holder: dict, ttl_s: float, *, force: bool = False) -> dict | None:
        current = self.broker.lease(name)
        if force or current is None or current.get("user") == holder.get("user"):
            self.broker.leases[name] = (self.broker.clock() + ttl_s, holder)
            return holder
        return current

    async def lease_renew(self, name: str, user: str, ttl_s: float) -> bool:
        current = self.broker.lease(name)
        if current is None or current.get("user") != user:
            return False
        self.broker.leases[name] = (self.broker.clock() + ttl_s, current)
        return True

    async def lease_release(self, name: str, user: str | None) -> bool:
        current = self.broker.lease(name)
        if current is None or (user is not None and current.get("user") != user):
            return False
        del self.broker.leases[name]
        return True
