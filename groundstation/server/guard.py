"""The WebSocket handlers' guard: per-address connection limit, message rate, audited refusals.

A thin Tornado shell around :mod:`.limits`. ``GuardedSocket`` is mixed into the
``/ws/telemetry`` and ``/ws/command`` handlers: ``guard_prepare()`` refuses the
handshake with HTTP 429 past the per-address limit, ``guard_open()`` counts the
connection and notices every close the server starts (message too big, ping
timeout, 4008, flood), ``guard_incoming()`` and ``guard_message()`` apply the message
size and rate, and the connection's slot is released when its socket closes. Every refusal writes an audit line.
"""

from __future__ import annotations

import time

from tornado.web import HTTPError
from tornado.websocket import WebSocketHandler

from .limits import CLOSE_FLOOD, KeyedRate, MessageRate, Verdict, audit_refusal

__all__ = ["GuardedSocket"]


class GuardedSocket(WebSocketHandler):
    """Mixin for the server's WebSocket handlers (they set ``self.station`` in ``initialize``)."""

    _counted = False
    server_close: tuple[int | None, str | None] | None = None  # the close this server started, if any

    def guard_prepare(self) -> None:
        """Refuse the handshake (HTTP 429, audited) if this address has too many connections."""
        refusal = self.station.connection_limiter.admit(self.request.remote_ip)
        if refusal is not None:
            self.station.metrics.auth_refusals.inc()
            audit_refusal("connection_refused", refusal.code, refusal.reason, path=self.request.path,
                          remote=self.request.remote_ip)
            raise HTTPError(refusal.status, reason=refusal.reason[:200])

    user_rate: KeyedRate | None = None  # the per-user message rate this connection's messages also count in

    def guard_open(self, rate: float, burst: int | None = None, user_rate: KeyedRate | None = None) -> None:
        """Count the connection; limit its messages to ``rate``/s (and its user's, over all their
        connections, to ``user_rate``); watch for server-side closes."""
        self.station.connection_limiter.opened(self.request.remote_ip)
        self._counted = True
        self.message_rate = MessageRate(rate, burst)
        self.user_rate = user_rate
        conn = self.ws_connection
        if conn is None:
            return
        close = conn.close

        def closing(code: int | None = None, reason: str | None = None) -> None:
            if self.server_close is None and not conn.server_terminated:
                self.server_close = (code if code is not None or reason is None else 1000, reason)
                self.on_server_close(*self.server_close)
            close(code, reason)

        conn.close = closing  # Tornado closes through this for 1009 and ping timeouts too

    _registered: str | None = None  # this connection's key in the console registry

    def register(self, kind: str, conn: int, principal) -> None:
        """Enter this connection in the bus's console registry (when the station has one)."""
        from .station import now_ns

        registry = self.station.registry
        if registry is not None:
            self._registered = registry.add(kind, conn, principal, self.request.remote_ip, now_ns())

    def unregister(self) -> None:
        if self._registered is not None:
            self.station.registry.remove(self._registered)
            self._registered = None

    def on_server_close(self, code: int | None, reason: str | None) -> None:
        """The server sent a close frame: audit what is a refusal (a handler may extend this)."""
        if code == 1009:
            audit_refusal("message_refused", "too_large", reason or "message too big", path=self.request.path,
                          remote=self.request.remote_ip, user=getattr(self.principal, "user", None))

    def guard_incoming(self, message: bytes | str, limit: int) -> bool:
        """True if ``message`` must not be handled: the server has sent its close frame (Tornado
        still delivers what the client sends until the handshake ends), or the message is over
        ``limit`` bytes, which closes with 1009 (audited). Such a message has been read whole, so
        the close frame reaches the client: Tornado's own limit (``websocket_max_message_size``,
        far higher) drops the connection with the rest unread, and a client still sending would
        see a reset instead."""
        if self.server_close is not None:
            return True
        if len(message) <= limit:
            return False
        self.close(1009, "message too big")
        return True

    def guard_message(self) -> Verdict:
        """The rate verdict for one incoming message; a flood is closed here (``CLOSE_FLOOD``)."""
        now = time.monotonic()
        principal = getattr(self, "principal", None)
        user = getattr(principal, "user", None)
        v = self.message_rate.check(now)
        scope = "connection"
        if v.action == "ok" and self.user_rate is not None and user is not None and not principal.anonymous:
            v, scope = self.user_rate.check(user, now), "user"
        if v.action != "ok" and (v.reply or v.action == "close"):
            audit_refusal("message_refused", v.refusal.code, v.refusal.reason, path=self.request.path,
                          remote=self.request.remote_ip, user=user, scope=scope,
                          dropped=self.message_rate.dropped)
        if v.action == "close":
            self.close(CLOSE_FLOOD, "message flood")
        return v

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self.guard_close()  # the socket is gone: only now is its slot free (a close frame may wait 5 s)

    def guard_close(self) -> None:
        """Release the address's connection slot (once)."""
        if self._counted:
            self._counted = False
            self.station.connection_limiter.closed(self.request.remote_ip)
