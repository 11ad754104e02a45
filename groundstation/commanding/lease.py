"""Command authority held as a lease on the bus: one director cluster-wide, expiring, renewed.

The sans-I/O :class:`Authority` decides (roles, who holds it, admin override);
the lease in the bus (Redis, or in process) is the shared, expiring record that
every node and a restarted ingest node agree on. Before each authority request
the local object adopts the lease; after a granted request the lease is written
atomically (acquired only if free or already the caller's, or forced by an
override). The holder's lease is renewed while they have a connection anywhere
in the cluster or used the command channel within the lease; otherwise it runs
out and every console sees ``expire``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .authority import Authority, AuthorityRefused, PrincipalLike

__all__ = ["AuthorityLease", "LEASE_NAME"]

LEASE_NAME = "authority"
Event = dict[str, Any]


class AuthorityLease:
    def __init__(self, bus, authority: Authority, ttl_s: float = 15.0,
                 connected: Callable[[str], bool] | None = None) -> None:
        if ttl_s <= 0:
            raise ValueError(f"lease must be positive, got {ttl_s}")
        self.bus, self.authority, self.ttl_s = bus, authority, ttl_s
        self.connected = connected  # does this user have a connection somewhere (from the registry)?
        self.last_active_ns: dict[str, int] = {}

    async def sync(self, now_ns: int) -> list[Event]:
        """Adopt the shared lease into the local object (events if the holder changed)."""
        return self.authority.adopt(await self.bus.lease_get(LEASE_NAME), now_ns)

    def touch(self, user: str, now_ns: int) -> None:
        self.last_active_ns[user] = now_ns

    async def commit(self, action: str, principal: PrincipalLike, now_ns: int) -> list[Event]:
        """Write a granted local change to the shared lease; raises AuthorityRefused (with the
        events of adopting the real holder in ``exc.events``) if another node won the race."""
        self.touch(principal.user, now_ns)
        h = self.authority.holder(now_ns)
        if action == "release":
            await self.bus.lease_release(LEASE_NAME, None)
            return []
        if h is None:
            return []
        holder = {"user": h.user, "role": h.role, "since_ns": h.since_ns}
        got = await self.bus.lease_acquire(LEASE_NAME, holder, self.ttl_s, force=action == "override")
        if got is not None and got.get("user") != h.user:
            exc = AuthorityRefused(f"command authority is held by {got.get('user')} ({got.get('role')})", "held")
            exc.events = self.authority.adopt(got, now_ns)  # type: ignore[attr-defined]
            raise exc
        return []

    async def maintain(self, now_ns: int) -> list[Event]:
        """Renew the holder's lease while they are connected or active (re-taking it if the broker
        lost it, e.g. restarted); otherwise let it run out. Adopts what the bus then says."""
        h = self.authority.holder(now_ns)
        if h is not None:
            active = now_ns - self.last_active_ns.get(h.user, 0) < self.ttl_s * 1e9
            if active or (self.connected is not None and self.connected(h.user)):
                got = await self.bus.lease_acquire(LEASE_NAME, {"user": h.user, "role": h.role,
                                                                "since_ns": h.since_ns}, self.ttl_s)
                return self.authority.adopt(got, now_ns)
        return await self.sync(now_ns)
