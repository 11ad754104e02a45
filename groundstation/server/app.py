"""The Tornado application: console WebSocket, health, metrics; and starting it all."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl as ssl_module
from pathlib import Path

from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.web import Application, HTTPError, RequestHandler, StaticFileHandler
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..auth import AuthError, OriginPolicy, token_from_request
from ..console.outbox import Outbox
from ..console.protocol import MAX_MESSAGE_BYTES
from ..console.session import Principal
from ..logs import log_event
from .commands import CommandCenter, command_handlers
from .station import GroundStation, StationConfig, now_ns
from .udp import open_udp_endpoint

__all__ = ["make_app", "start_station", "RunningStation"]


class _Base(RequestHandler):
    def initialize(self, station: GroundStation) -> None:
        self.station = station


class HealthHandler(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(self.station.health()))


class MetricsHandler(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4")
        self.write(self.station.metrics.render())


def authenticate(station: GroundStation, handler: RequestHandler, min_role: str = "viewer") -> Principal:
    """The principal of a request, from its token (or the open mode); HTTP 401/403 if refused."""
    cfg = station.config
    position = handler.get_query_argument("position", "")
    if cfg.open_mode:
        user = handler.get_query_argument("user", "") or "operator"
        return Principal(user=user[:64], role=cfg.open_role, position=position[:64])
    token = token_from_request(handler.get_query_argument("token", None), handler.request.headers.get("Authorization"),
                               handler.get_cookie("gs_token"))
    try:
        if station.verifier is None:
            raise AuthError("no token secret configured on the server", "config")
        p = station.verifier.verify(token)
    except AuthError as exc:
        station.metrics.auth_refusals.inc()
        log_event("auth_refused", logging.WARNING, reason=str(exc), code=exc.code, path=handler.request.path,
                  remote=handler.request.remote_ip)
        raise HTTPError(401, reason=str(exc)[:200]) from None
    if not p.allows(min_role):
        station.metrics.auth_refusals.inc()
        log_event("auth_refused", logging.WARNING, reason=f"role {p.role} below {min_role}", user=p.user)
        raise HTTPError(403, reason=f"role {p.role} may not use this endpoint")
    return Principal(user=p.user, role=str(p.role), position=position[:64], expires_at=p.expires_at)


class TelemetrySocket(WebSocketHandler):
    """``/ws/telemetry``: moves bytes between a console and its ``ConsoleSession``."""

    def initialize(self, station: GroundStation) -> None:
        self.station = station
        self.session = None
        self._wake = asyncio.Event()
        self._closed = False

    def check_origin(self, origin: str) -> bool:
        try:
            self.station.origin_policy.check(origin)
            return True
        except AuthError as exc:
            self.station.metrics.auth_refusals.inc()
            log_event("origin_refused", logging.WARNING, origin=origin, reason=str(exc))
            return False

    def prepare(self) -> None:
        self.principal = authenticate(self.station, self)

    SEND_BUFFER = 256 * 1024  # small, so a slow console's backlog shows up in its outbox (conflated)

    def open(self) -> None:
        sock = getattr(self.ws_connection.stream, "socket", None) if self.ws_connection else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.SEND_BUFFER)
        hub = self.station.hub
        outbox = Outbox()
        outbox.on_ready = self._wake.set
        self.session = hub.connect(self.principal, now_ns(), outbox=outbox)
        self.station.closers[self.session.id] = self._close
        self.station.metrics.consoles.set(len(hub.sessions))
        log_event("console_open", session=self.session.id, user=self.principal.user, role=self.principal.role,
                  remote=self.request.remote_ip)
        self._wake.set()
        asyncio.ensure_future(self._writer())

    def on_message(self, message) -> None:
        if self.session is not None:
            self.session.receive(message, now_ns())

    def on_close(self) -> None:
        self._closed = True
        self._wake.set()
        if self.session is not None:
            self.station.hub.disconnect(self.session)
            self.station.closers.pop(self.session.id, None)
            self.station.metrics.consoles.set(len(self.station.hub.sessions))
            self.station.metrics.drops.inc(self.session.outbox.dropped)
            log_event("console_close", session=self.session.id, code=self.close_code, reason=self.close_reason)

    def _close(self, code: int, reason: str) -> None:
        if not self._closed:
            self.close(code, reason)

    async def _writer(self) -> None:
        """Drain the outbox: all queued messages framed and written in one stream write, then
        wait for that write to flush before taking more (backpressure into the outbox)."""
        outbox = self.session.outbox
        conn = self.ws_connection
        direct = conn is not None and getattr(conn, "_compressor", None) is None and hasattr(conn, "stream")
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            chunks = []
            while (data := outbox.pop()) is not None:
                chunks.append(ws_frame(data))
            if chunks:
                try:
                    if direct:  # one write for the whole batch, no per-message task
                        await conn.stream.write(b"".join(chunks))
                    else:
                        for c in chunks:
                            await self.write_message(c[_header_len(c):], binary=True)
                except (WebSocketClosedError, StreamClosedError):
                    return
            if outbox.close_reason:
                self._close(4008, f"too slow: {outbox.close_reason}"[:120])
                return


def ws_frame(payload: bytes) -> bytes:
    """An unmasked, final, binary WebSocket frame (RFC 6455 5.2) around ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    if n < 1 << 16:
        return b"\x82\x7e" + n.to_bytes(2, "big") + payload
    return b"\x82\x7f" + n.to_bytes(8, "big") + payload


def _header_len(frame: bytes) -> int:
    return {126: 4, 127: 10}.get(frame[1], 2)


WEB_DIR = Path(__file__).resolve().parents[2] / "web"


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
        (r"/web/((?:app|vendor)/[\w./-]+|app\.css)", StaticFileHandler, {"path": str(WEB_DIR)}),
    ] + (extra_handlers or [])
    return Application(
        handlers,
        log_function=_log_request,
        websocket_ping_interval=5,
        websocket_ping_timeout=5,
        websocket_max_message_size=MAX_MESSAGE_BYTES,
    )


def _log_request(handler: RequestHandler) -> None:
    """Access log without query strings (they may carry tokens)."""
    status = handler.get_status()
    if status >= 400:
        log_event("http", logging.WARNING, status=status, method=handler.request.method, path=handler.request.path,
                  remote=handler.request.remote_ip, ms=round(1000 * handler.request.request_time(), 1))


class RunningStation:
    """A started ground station: its ports and a ``stop()``."""

    def __init__(self, station: GroundStation, server: HTTPServer, http_port: int, udp_port: int) -> None:
        self.station = station
        self.server = server
        self.http_port = http_port
        self.udp_port = udp_port

    async def stop(self) -> None:
        self.station.stop()
        self.server.stop()
        for close in list(self.station.closers.values()):
            close(1001, "server shutting down")
        await asyncio.sleep(0)


async def start_station(config: StationConfig, extra_handlers: list | None = None) -> RunningStation:
    """Bind UDP and HTTP (port 0 picks a free port) and start the periodic work."""
    station = GroundStation(config)
    transport, udp_port = await open_udp_endpoint(config.udp_host, config.udp_port, station.on_datagram,
                                                  config.udp_rcvbuf)
    station.transport = transport
    handlers = list(extra_handlers or [])
    if config.record_dir:
        station.start_recording(config.record_dir, config.record_fsync)
    if config.uplink is not None:
        station.commands = CommandCenter(station, config.uplink)
        handlers += command_handlers(station.commands)
        station.add_periodic(station.commands.tick, 0.1)
    app = make_app(station, handlers)
    ssl = None
    if config.certfile and config.keyfile:
        ssl = ssl_module.create_default_context(ssl_module.Purpose.CLIENT_AUTH)
        ssl.load_cert_chain(config.certfile, config.keyfile)
    server = HTTPServer(app, xheaders=False, ssl_options=ssl)
    sockets = bind_sockets(config.http_port, config.http_host)
    server.add_sockets(sockets)
    http_port = sockets[0].getsockname()[1]
    if not config.origins:
        scheme = "https" if ssl is not None else "http"
        config.origins = [f"{scheme}://{h}:{http_port}" for h in dict.fromkeys((config.http_host, "localhost",
                                                                                "127.0.0.1"))]
    station.origin_policy = OriginPolicy(config.origins)
    station.start_periodic()
    log_event("listening", udp=f"{config.udp_host}:{udp_port}", http=f"{config.http_host}:{http_port}",
              open_mode=config.open_mode, tls=ssl is not None, uplink=config.uplink)
    return RunningStation(station, server, http_port, udp_port)
