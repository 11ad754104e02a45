"""Command authority: one holder at a time; take, release, admin override, optional lease.

Sans-I/O: the caller passes the clock (ns). Every change returns ``authority`` events
for all consoles; a refusal raises :class:`AuthorityRefused`, whose reason names the
holder. Only directors and admins may hold authority; only an admin may override.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..auth import Role

__all__ = ["Authority", "AuthorityRefused", "Holder", "PrincipalLike", "principal_role"]

Event = dict[str, Any]


class PrincipalLike(Protocol):
    """Anything with a user name and a role (``auth.Principal`` or a console's principal)."""

    user: str
    role: Any  # Role or its name


def principal_role(principal: PrincipalLike) -> Role | None:
    """The caller's role, or None if it is not one we know."""
    return Role.lookup(getattr(principal, "role", None))


class AuthorityRefused(Exception):
    """Authority not granted; ``reason`` for people (names the holder), ``code`` for programs."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


@dataclass(frozen=True)
class Holder:
    user: str
    role: str
    since_ns: int
    expires_ns: int | None = None  # lease end; None without a lease

    def describe(self) -> str:
        return f"{self.user} ({self.role})"


class Authority:
    """Who may command now. ``lease_s``: authority lapses unless renewed (None: held until released)."""

    def __init__(self, lease_s: float | None = None, min_role: Role = Role.DIRECTOR) -> None:
        if lease_s is not None and lease_s <= 0:
            raise ValueError(f"lease must be positive, got {lease_s}")
        self.lease_s, self.min_role = lease_s, min_role
        self._holder: Holder | None = None

    def holder(self, now_ns: int) -> Holder | None:
        """The holder at ``now_ns`` (None if free or the lease has run out)."""
        h = self._holder
        return None if h is None or (h.expires_ns is not None and now_ns >= h.expires_ns) else h

    def holds(self, user: str, now_ns: int) -> bool:
        h = self.holder(now_ns)
        return h is not None and h.user == user

    def require(self, principal: PrincipalLike, now_ns: int) -> None:
        """Return if ``principal`` holds authority; AuthorityRefused naming the holder otherwise."""
        h = self.holder(now_ns)
        if h is not None and h.user == principal.user:
            return
        if h is not None:
            raise AuthorityRefused(f"command authority is held by {h.describe()}", "held")
        lapsed = self._holder
        if lapsed is not None and lapsed.user == principal.user:
            raise AuthorityRefused("your command authority lease ran out; take authority again", "lapsed")
        raise AuthorityRefused("nobody holds command authority; take it first", "free")

    def take(self, principal: PrincipalLike, now_ns: int) -> list[Event]:
        """Take authority if free (or already ours: renews the lease); refused if someone else holds it."""
        self._check_role(principal, self.min_role, "hold command authority")
        events = self.expire(now_ns)
        h = self._holder
        if h is not None and h.user != principal.user:
            raise AuthorityRefused(f"command authority is held by {h.describe()}; ask them to release it"
                                   " or an admin to override", "held")
        since = h.since_ns if h is not None else now_ns
        self._holder = Holder(principal.user, str(principal_role(principal)), since, self._lease_end(now_ns))
        return events + [self._event("take", principal.user, h.user if h else None)]

    def override(self, principal: PrincipalLike, now_ns: int) -> list[Event]:
        """Admin only: take authority from whoever holds it."""
        self._check_role(principal, Role.ADMIN, "override command authority")
        events = self.expire(now_ns)
        previous = self._holder
        self._holder = Holder(principal.user, str(principal_role(principal)), now_ns, self._lease_end(now_ns))
        return events + [self._event("override", principal.user, previous.user if previous else None)]

    def release(self, principal: PrincipalLike, now_ns: int) -> list[Event]:
        """Give authority up: the holder, or an admin for anyone. Nothing happens if nobody holds it."""
        events = self.expire(now_ns)
        h = self._holder
        if h is None:
            return events
        if h.user != principal.user and principal_role(principal) != Role.ADMIN:
            raise AuthorityRefused(f"only {h.describe()} or an admin may release command authority", "not_holder")
        self._holder = None
        return events + [self._event("release", principal.user, h.user)]

    def renew(self, principal: PrincipalLike, now_ns: int) -> list[Event]:
        """Extend the holder's lease from ``now_ns``."""
        self.require(principal, now_ns)
        h = self._holder
        self._holder = Holder(h.user, h.role, h.since_ns, self._lease_end(now_ns))
        return [self._event("renew", principal.user, h.user)]

    def expire(self, now_ns: int) -> list[Event]:
        """Free authority whose lease has run out (call from the shell's timer)."""
        h = self._holder
        if h is None or h.expires_ns is None or now_ns < h.expires_ns:
            return []
        self._holder = None
        return [self._event("expire", None, h.user)]

    def adopt(self, holder: dict | None, now_ns: int) -> list[Event]:
        """Make this object agree with the shared lease (``{"user", "role", "since_ns"}`` or None).
        Returns ``expire`` or ``take`` events when that changes who holds authority here."""
        current = self.holder(now_ns)
        if holder is None:
            self._holder = None
            return [] if current is None else [self._event("expire", None, current.user)]
        if current is not None and current.user == holder.get("user"):
            return []
        self._holder = Holder(str(holder.get("user")), str(holder.get("role")), int(holder.get("since_ns") or now_ns),
                              self._lease_end(now_ns))
        return [self._event("take", self._holder.user, current.user if current else None)]

    def as_wire(self, now_ns: int) -> Event:
        """The current state as an event (``action: "state"``) for a console that just connected."""
        h = self.holder(now_ns)
        return self._event("state", None, None, h)

    def _check_role(self, principal: PrincipalLike, need: Role, what: str) -> None:
        role = principal_role(principal)
        if role is None or role < need:
            raise AuthorityRefused(f"role {role or principal.role} may not {what} ({need} or above required)", "role")

    def _lease_end(self, now_ns: int) -> int | None:
        return None if self.lease_s is None else now_ns + int(self.lease_s * 1e9)

    def _event(self, action: str, by: str | None, previous: str | None, h: Holder | None = None) -> Event:
        h = self._holder if h is None and action != "state" else h
        return {"type": "authority", "action": action, "holder": h.user if h else None, "role": h.role if h else None,
                "since_ns": h.since_ns if h else None, "expires_ns": h.expires_ns if h else None, "by": by,
                "previous": previous}
