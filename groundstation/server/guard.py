"""The WebSocket handlers' guard: message size and rate, server-side closes, audited refusals.

A thin Tornado shell around :mod:`.limits`. ``GuardedSocket`` is mixed into the
``/ws/telemetry`` and ``/ws/command`` handlers: ``guard_open()`` sets the message
rate and notices every close the server starts (message too big, ping timeout,
4008, flood), ``guard_incoming()`` and ``guard_message()`` apply the message size
and rate. Every refusal writes an audit line. The connection limits are not
here: the HTTP server counts every socket, WebSockets included, from ``accept``
until it is closed (:mod:`.http_server`).
"""

from __future__ import annotations

import time

from tornado.websocket import WebSocketHandler

from ..console.protocol import CLOSE_FLOOD
from .limits import KeyedRate, MessageRate, Verdict, audit_refusal

__all__ = ["GuardedSocket"]


class GuardedSocket(WebSocketHandler):
    """Mixin for the server's WebSocket handlers (they set ``self.station`` in ``initialize``)."""

    server_close: tuple[int | None, str | None] | None = None  # the close this server started, if any

    user_rate: KeyedRate | None = None  # the per-user message rate this connection's messages also count in

    def guard_open(self, rate: float, burst: int | None = None, user_rate: KeyedRate | None = None) -> None:
        """Limit the connection's messages to ``rate``/s (and its user's, over all their connections,
        to ``user_rate``); watch for server-side closes."""
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
