"""The bus between ground-station nodes: one interface, an in-process and a Redis backend.

A node is the ingest node (owns the UDP link, the recorder and the uplink) or an
edge node (consoles only). The ingest node publishes each tier tick's encoded
frames, every console event, the snapshot and its hello state; edges receive
them and forward to their consoles. Edges send requests (alarm acknowledges,
commands) to the ingest node and get the reply on their own channel. The
console registry and the command-authority lease live behind the same
interface. Publishing never blocks: messages are queued and written in order by
the backend; telemetry is at-most-once; events reach every edge exactly once and
in order, across a broker outage too (the Redis backend carries them on a
stream); an edge that was away longer than the broker keeps them is told through
``on_events_lost``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from .envelope import TierFrame

__all__ = ["Bus", "INGEST", "EDGE", "STANDALONE"]

STANDALONE, INGEST, EDGE = "standalone", "ingest", "edge"


class Bus(ABC):
    """What a node needs from the others. Handlers are set by the station before ``start``."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.role = STANDALONE
        self.on_tier: Callable[[TierFrame], None] | None = None  # edges
        self.on_event: Callable[[dict], None] | None = None  # edges
        self.on_snapshot: Callable[[bytes], None] | None = None  # edges
        self.on_request: Callable[[dict], None] | None = None  # the ingest node
        self.on_node_message: Callable[[dict], None] | None = None  # replies, targeted alerts
        self.on_connection: Callable[[bool], None] | None = None  # broker lost (False) / back (True)
        self.on_events_lost: Callable[[int], None] | None = None  # edges: events the broker no longer held
        self.connected = True

    @property
    def kind(self) -> str:
        return self.__class__.__name__

    async def start(self, role: str) -> None:
        self.role = role

    async def close(self) -> None:  # noqa: B027 - nothing to release in process; backends override
        """Stop the backend's tasks and connections."""

    # -- published (ingest node) ---------------------------------------------------------------------
    @abstractmethod
    def publish_tier(self, frame: TierFrame) -> None: ...

    @abstractmethod
    def publish_event(self, event: dict) -> None: ...

    @abstractmethod
    def publish_snapshot(self, blob: bytes) -> None: ...

    @abstractmethod
    def set_state(self, state: dict) -> None:
        """The ingest node's hello state (catalog, link, alarms, ...), visible before the next event."""

    @abstractmethod
    async def get_state(self) -> dict | None: ...

    @abstractmethod
    async def get_snapshot(self) -> bytes | None: ...

    # -- requests and addressed messages --------------------------------------------------------------
    @abstractmethod
    def request(self, message: dict) -> None:
        """To the ingest node (``message["reply_to"]`` names the node that wants the answer)."""

    @abstractmethod
    def to_node(self, node: str, message: dict, *, reliable: bool = False) -> None:
        """To one node; ``reliable``: kept across a broker outage and delivered once, in order with events."""

    # -- which tiers and groups edges need ----------------------------------------------------------
    @abstractmethod
    def set_demand(self, demand: dict) -> None:
        """This edge's ``{rate: [group names]}``."""

    @abstractmethod
    async def get_demand(self, max_age_s: float) -> dict[int, set[str]]:
        """Every live edge's demand merged (entries older than ``max_age_s`` ignored)."""

    # -- console registry ----------------------------------------------------------------------------
    @abstractmethod
    def register(self, entries: dict[str, dict], ttl_s: float) -> None:
        """Add or refresh this node's connections (key -> entry); each expires after ``ttl_s``."""

    @abstractmethod
    def unregister(self, keys: list[str]) -> None: ...

    @abstractmethod
    async def consoles(self) -> list[dict]:
        """Every live registry entry of every node."""

    # -- leases ----------------------------------------------------------------------------------------
    @abstractmethod
    async def lease_get(self, name: str) -> dict | None: ...

    @abstractmethod
    async def lease_acquire(self, name: str, holder: dict, ttl_s: float, *, force: bool = False) -> dict | None:
        """Atomically take the lease if free or already ``holder["user"]``'s (or always with ``force``).
        Returns the holder after the attempt: ``holder`` when granted, the other holder when not."""

    @abstractmethod
    async def lease_renew(self, name: str, user: str, ttl_s: float) -> bool:
        """Extend the lease if ``user`` still holds it."""

    @abstractmethod
    async def lease_release(self, name: str, user: str | None) -> bool:
        """Drop the lease if ``user`` holds it (``None``: whoever holds it)."""

    def status(self) -> dict[str, Any]:
        return {"backend": self.kind, "node": self.node, "role": self.role, "connected": self.connected}
