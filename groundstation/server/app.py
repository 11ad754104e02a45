"""The Tornado application: the route table (``make_app``), the console WebSocket shell, health and
metrics, and the HTTP access checks the other handlers share (``authenticate``, ``authorize``,
``check_origin``). Starting a node is ``start.py``'s."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

from tornado.iostream import SSLIOStream, StreamClosedError
from tornado.web import Application, HTTPError, RequestHandler, StaticFileHandler
from tornado.websocket import WebSocketClosedError

from ..auth import AuthError, token_from_request
from ..console.outbox import Outbox
from ..console.protocol import ABORT_MESSAGE_BYTES, CLOSE_TOO_SLOW, MAX_MESSAGE_BYTES
from ..console.session import Principal
from ..logs import log_event, log_throttled
from .guard import GuardedSocket
from .limits import audit_refusal
from .station import GroundStation, now_ns

__all__ = ["make_app", "authenticate", "authorize", "check_origin", "TelemetrySocket"]


class _Base(RequestHandler):
    def initialize(self, station: GroundStation) -> None:
        self.station = station


class HealthHandler(_Base):
    """``/healthz``: the status for anyone; the details (paths, host, counters) for an admin's token,
    or for anyone with ``--health-details``."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        health = self.station.health()
        details = self.station.config.health_details or _is_admin(self.station, self)
        self.write(json.dumps(health if details else {"status": health.get("status", "ok")}))


def _is_admin(station: GroundStation, handler: RequestHandler) -> bool:
    """True if the request carries an admin's valid token (open mode: if the open role is admin); no
    refusal is audited: a health probe without one simply gets less."""
    cfg = station.config
    if cfg.open_mode:
        return cfg.open_role == "admin"
    token = token_from_request(handler.get_query_argument("token", None), handler.request.headers.get("Authorization"),
                               handler.get_cookie("gs_token"))
    if station.verifier is None or not token:
        return False
    try:
        return station.verifier.verify(token).allows("admin")
    except AuthError:
        return False


class MetricsHandler(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4")
        self.write(self.station.metrics.render())


def authenticate(station: GroundStation, handler: RequestHandler, min_role: str = "viewer") -> Principal:
    """The principal of a request, from its token (or the open mode); HTTP 401/403 if refused."""
    cfg = station.config
    position = handler.get_query_argument("position", "")
    if cfg.open_mode:
        user = handler.get_query_argument("user", "")
        return Principal(user=(user or "operator")[:64], role=cfg.open_role, position=position[:64],
                         anonymous=not user)
    token = token_from_request(handler.get_query_argument("token", None), handler.request.headers.get("Authorization"),
                               handler.get_cookie("gs_token"))
    try:
        if station.verifier is None:
            raise AuthError("no token secret configured on the server", "config")
        p = station.verifier.verify(token)
    except AuthError as exc:
        station.metrics.auth_refusals.inc()
        audit_refusal("auth_refused", exc.code, str(exc), path=handler.request.path, remote=handler.request.remote_ip)
        raise HTTPError(401, reason=str(exc)[:200]) from None
    if not p.allows(min_role):
        station.metrics.auth_refusals.inc()
        audit_refusal("auth_refused", "role", f"role {p.role} below {min_role}", path=handler.request.path,
                      remote=handler.request.remote_ip, user=p.user)
        raise HTTPError(403, reason=f"role {p.role} may not use this endpoint")
    return Principal(user=p.user, role=str(p.role), position=position[:64], expires_at=p.expires_at)


def check_origin(station: GroundStation, handler: RequestHandler, origin: str, refused: str) -> str | None:
    """The one Origin check: None if ``origin`` is allowed, else the reason, counted and audited as ``refused``."""
    try:
        station.origin_policy.check(origin)
        return None
    except AuthError as exc:
        station.metrics.auth_refusals.inc()
        audit_refusal(refused, exc.code, str(exc), path=handler.request.path, remote=handler.request.remote_ip,
                      origin=origin)
        return str(exc)


def authorize(station: GroundStation, handler: RequestHandler, min_role: str, refused: str) -> Principal:
    """An HTTP API request or non-console handshake: the Origin if the client sent one (browsers),
    then ``authenticate``; every refusal is audited as ``refused`` (e.g. ``command_refused``)."""
    origin = handler.request.headers.get("Origin")
    if origin is not None and (reason := check_origin(station, handler, origin, refused)) is not None:
        raise HTTPError(403, reason=reason[:200])
    return authenticate(station, handler, min_role=min_role)  # its refusals are audited there


class TelemetrySocket(GuardedSocket):
    """``/ws/telemetry``: moves bytes between a console and its ``ConsoleSession``."""

    def initialize(self, station: GroundStation) -> None:
        self.station = station
        self.session = None
        self._writing = False  # a stream write is in flight
        self._direct = True  # frames written to the stream ourselves (no compression)
        self._raw = True  # ... and straight to the socket when the stream has nothing queued (not TLS)
        self._closed = False

    def check_origin(self, origin: str) -> bool:
        return check_origin(self.station, self, origin, "origin_refused") is None

    def prepare(self) -> None:
        self.principal = authenticate(self.station, self)

    SEND_BUFFER = 256 * 1024  # small, so a slow console's backlog shows up in its outbox (conflated)

    def open(self) -> None:
        sock = getattr(self.ws_connection.stream, "socket", None) if self.ws_connection else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.SEND_BUFFER)
        hub = self.station.hub
        self.guard_open(self.station.config.message_rate, user_rate=self.station.user_message_rates)
        outbox = Outbox(max_behind_s=self.station.config.console_max_behind_s)
        conn = self.ws_connection
        self._direct = getattr(conn, "_compressor", None) is None and hasattr(conn, "stream")
        self._raw = self._direct and not isinstance(conn.stream, SSLIOStream)  # TLS: through the stream only
        outbox.on_ready = self._kick
        self.session = hub.connect(self.principal, now_ns(), outbox=outbox)
        self.session.governor.budget_s = self.station.config.console_age_budget_s
        self.station.closers[self.session.id] = self._close
        self.register("console", self.session.id, self.principal)
        self.station.metrics.consoles.set(len(hub.sessions))
        log_event("console_open", session=self.session.id, user=self.principal.user, role=self.principal.role,
                  remote=self.request.remote_ip)
        self._kick()  # the hello, queued before the session was known here

    def on_message(self, message) -> None:
        if self.guard_incoming(message, MAX_MESSAGE_BYTES):
            return
        if self.session is not None and (v := self.guard_message()).action == "ok":
            self.session.receive(message, now_ns())
        elif self.session is not None and v.reply:
            self.session.send({"type": "error", "id": None, "code": v.refusal.code, "message": v.refusal.reason})

    def on_server_close(self, code: int | None, reason: str | None) -> None:
        super().on_server_close(code, reason)
        self.on_close()  # no frame may follow a close frame: detach now, not when the peer answers

    def on_close(self) -> None:
        self._closed = True
        if self.session is not None and self.session.id in self.station.closers:
            self.station.hub.disconnect(self.session)
            self.station.closers.pop(self.session.id, None)
            self.unregister()
            self.station.metrics.consoles.set(len(self.station.hub.sessions))
            self.station.metrics.drops.inc(self.session.outbox.dropped)
            log_event("console_close", session=self.session.id, code=self.close_code, reason=self.close_reason,
                      server_close=self.server_close)

    def _close(self, code: int, reason: str) -> None:
        if not self._closed:
            self.close(code, reason)

    def _kick(self) -> None:
        """Write everything the outbox holds, framed, in one stream write, at once (from the tick
        itself: no task to wake per console). While a write is still in flight, new messages wait
        in the outbox (where telemetry conflates) and the write's completion takes them."""
        if self._writing or self._closed or self.session is None or self.ws_connection is None:
            return
        outbox = self.session.outbox
        chunks = []
        while (data := outbox.pop()) is not None:
            chunks.append(data)
        if not chunks:
            return
        fut = None
        try:
            if self._direct:
                fut = self._send(b"".join([ws_frame(c) for c in chunks]))
            else:
                for c in chunks:
                    fut = self.write_message(c, binary=True)
        except (WebSocketClosedError, StreamClosedError):
            return
        if outbox.close_reason:
            self._close(CLOSE_TOO_SLOW, f"too slow: {outbox.close_reason}"[:120])
            return
        if fut is not None and not fut.done():
            self._writing = True
            fut.add_done_callback(self._written)
        self.session.sent(now_ns())  # the data age of what was written: may shed this console's rate

    def _send(self, data: bytes):
        """Framed bytes to the socket: straight into the kernel when the stream has nothing queued
        (the common case: no future, no stream buffer), else what is left through the stream,
        which keeps the order and reports errors. Returns the stream's future, or None if all sent."""
        stream = self.ws_connection.stream
        if self._raw and not stream.writing() and not stream.closed():
            try:
                sent = stream.socket.send(data)
            except OSError:  # would block, or an error the stream write below reports
                sent = 0
            if sent == len(data):
                return None
            data = memoryview(data)[sent:]
        return stream.write(data)

    def _written(self, fut) -> None:
        self._writing = False
        if not fut.cancelled() and fut.exception() is None:
            self._kick()


def ws_frame(payload: bytes) -> bytes:
    """An unmasked, final, binary WebSocket frame (RFC 6455 5.2) around ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    if n < 1 << 16:
        return b"\x82\x7e" + n.to_bytes(2, "big") + payload
    return b"\x82\x7f" + n.to_bytes(8, "big") + payload


WEB_DIR = Path(__file__).resolve().parents[2] / "web"
ASSET_DIRS = ("app", "vendor")  # what the console loads: its modules and the built libraries (web/build.mjs)
ASSET_SUFFIXES = (".js", ".css")


def built_assets(web_dir: Path = WEB_DIR) -> frozenset[str]:
    """The files ``/web/`` serves, relative to ``web_dir``: ``app.css`` and the ``.js``/``.css`` files under
    ``app/`` and ``vendor/`` (no symlinks). Nothing else: not package.json, build.mjs or node_modules."""
    found = {"app.css"} if (web_dir / "app.css").is_file() else set()
    for d in ASSET_DIRS:
        for f in (web_dir / d).rglob("*"):
            if f.suffix in ASSET_SUFFIXES and f.is_file() and not f.is_symlink():
                found.add(f.relative_to(web_dir).as_posix())
    return frozenset(found)


class AssetHandler(StaticFileHandler):
    """``/web/...``: only the files listed at start (:func:`built_assets`); anything else is a 404."""

    def initialize(self, path: str, assets: frozenset[str]) -> None:
        super().initialize(path)
        self.assets = assets

    async def get(self, path: str, include_body: bool = True) -> None:
        if path not in self.assets:
            raise HTTPError(404)
        await super().get(path, include_body)


class ConsolePage(RequestHandler):
    """The browser console's single page (``web/index.html``)."""

    def get(self) -> None:
        index = WEB_DIR / "index.html"
        if not index.is_file():
            raise HTTPError(404, reason="web console not installed")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.write(index.read_bytes())


def make_app(station: GroundStation, extra_handlers: list | None = None) -> Application:
    args = {"station": station}
    handlers = [
        (r"/ws/telemetry", TelemetrySocket, args),
        (r"/healthz", HealthHandler, args),
        (r"/metrics", MetricsHandler, args),
        (r"/", ConsolePage),
        (r"/web/([\w./-]+)", AssetHandler, {"path": str(WEB_DIR), "assets": built_assets()}),
    ] + (extra_handlers or [])
    return Application(
        handlers,
        log_function=_log_request,
        websocket_ping_interval=station.config.ping_interval_s,
        websocket_ping_timeout=station.config.ping_timeout_s,
        websocket_max_message_size=ABORT_MESSAGE_BYTES,
    )


def _log_request(handler: RequestHandler) -> None:
    """Access log of failed requests without query strings (they may carry tokens), rate-limited per status."""
    status = handler.get_status()
    if status >= 400:
        log_throttled("http", str(status), logging.WARNING, status=status, method=handler.request.method,
                      path=handler.request.path, remote=handler.request.remote_ip,
                      ms=round(1000 * handler.request.request_time(), 1))
