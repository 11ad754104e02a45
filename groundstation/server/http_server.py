"""The HTTP server's socket shell: every socket counted, slow ones timed out, accept errors met by pausing.

``GuardedHTTPServer`` is Tornado's ``HTTPServer`` with three changes:

- every accepted socket (plain HTTP, a WebSocket, one still sending its headers)
  takes a slot in the station's ``ConnectionLimiter`` from ``accept`` until its
  file descriptor is closed; past a limit the socket is answered at once (429
  per address, 503 when full, with ``Retry-After``, audited) and closed (at once,
  unanswered, while ``MAX_REFUSING`` others are being answered: a connect flood);
- headers, idle keep-alive connections and bodies have ``timeout_s`` (Tornado's
  default header and idle timeout is an hour), and bodies are at most
  ``max_body_bytes``;
- ``accept`` failing (``EMFILE`` when out of file descriptors, ``ENFILE``,
  ``ENOBUFS``...) pauses accepting with a growing delay instead of retrying at
  once on every loop iteration, which logged a traceback per attempt; the
  failures are counted and logged through the rate-limited log.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import socket
from collections.abc import Callable
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from tornado import gen
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

from ..logs import log_throttled
from .limits import ConnectionLimiter, Refusal, audit_refusal

__all__ = ["GuardedHTTPServer", "AcceptBackoff", "add_accept_handler"]

REFUSE_READ_S = 1.0  # a refused socket's request is read (for the audit line) at most this long
MAX_REFUSING = 64  # refused sockets answered at a time (each holds a descriptor up to REFUSE_READ_S)
ACCEPT_BATCH = 128  # sockets accepted per readiness event, as Tornado does


class AcceptBackoff:
    """How long to stop accepting after a failed ``accept`` (sans-I/O): ``first_s``, doubling per
    failure in a row up to ``max_s``; a successful ``accept`` resets it."""

    def __init__(self, first_s: float = 0.05, max_s: float = 1.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._next = first_s
        self.failures = 0

    def failed(self) -> float:
        """The pause after one more failure, in seconds."""
        self.failures += 1
        delay, self._next = self._next, min(self._next * 2, self.max_s)
        return delay

    def succeeded(self) -> None:
        self._next = self.first_s


def add_accept_handler(sock: socket.socket, callback: Callable[[socket.socket, Any], None],
                       on_error: Callable[[OSError, float], None]) -> Callable[[], None]:
    """``tornado.netutil.add_accept_handler`` that pauses on ``accept`` errors: ``on_error(exc, pause_s)``
    is told of each, and the listening socket is not watched again until the pause is over. Returns
    the function that stops accepting."""
    io_loop = IOLoop.current()
    backoff = AcceptBackoff()
    state = {"removed": False, "watching": True}

    def accept_ready(fd: socket.socket, events: int) -> None:
        for _ in range(ACCEPT_BATCH):
            if state["removed"]:
                return
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM...: retrying now would spin
                pause = backoff.failed()
                io_loop.remove_handler(sock)
                state["watching"] = False
                io_loop.call_later(pause, resume)
                on_error(exc, pause)
                return
            backoff.succeeded()
            callback(connection, address)

    def resume() -> None:
        if not state["removed"] and not state["watching"]:
            state["watching"] = True
            io_loop.add_handler(sock, accept_ready, IOLoop.READ)

    def remove() -> None:
        if state["watching"] and not state["removed"]:
            io_loop.remove_handler(sock)
        state["removed"] = True

    io_loop.add_handler(sock, accept_ready, IOLoop.READ)
    return remove


class GuardedHTTPServer(HTTPServer):
    """``HTTPServer`` counting every socket in ``limiter`` (see the module docstring).

    ``on_refused()`` is called for each socket refused by the limiter, ``on_accept_error()`` for
    each failed ``accept``."""

    def initialize(self, *args: Any, limiter: ConnectionLimiter, timeout_s: float, max_body_bytes: int,
                   on_refused: Callable[[], None] = lambda: None,
                   on_accept_error: Callable[[], None] = lambda: None, **kwargs: Any) -> None:
        kwargs.update(idle_connection_timeout=timeout_s, body_timeout=timeout_s, max_body_size=max_body_bytes)
        super().initialize(*args, **kwargs)
        self.limiter = limiter
        self.on_refused = on_refused
        self.on_accept_error = on_accept_error
        self._refusing = 0  # refused sockets being answered

    def add_sockets(self, sockets) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = add_accept_handler(sock, self._handle_connection, self._accept_failed)

    def _accept_failed(self, exc: OSError, pause_s: float) -> None:
        self.on_accept_error()
        code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        log_throttled("accept_failed", code, logging.ERROR, errno=code, error=str(exc)[:200],
                      paused_s=round(pause_s, 3), open_connections=self.limiter.total)

    def handle_stream(self, stream: IOStream, address: Any) -> Any:
        ip = address[0] if isinstance(address, tuple) and address else ""
        refusal = self.limiter.admit(ip)
        if refusal is not None:
            self.on_refused()
            if self._refusing >= MAX_REFUSING:  # a connect flood: no time (nor descriptors) for politeness
                audit_refusal("connection_refused", refusal.code, refusal.reason, remote=ip)
                stream.close()
                return None
            self._refusing += 1  # now: the coroutine starts only at the next loop iteration
            return self._refuse(stream, refusal, ip)
        self.limiter.opened(ip)
        close_fd = stream.close_fd

        def close_and_release() -> None:  # called once, whoever closes the stream (HTTP, WebSocket, error)
            try:
                close_fd()
            finally:
                self.limiter.closed(ip)

        stream.close_fd = close_and_release  # type: ignore[method-assign]
        return super().handle_stream(stream, address)


    async def _refuse(self, stream: IOStream, refusal: Refusal, ip: str) -> None:
        """Answer a socket over the limits: read its request head (briefly, for the audit line's path and
        so that closing does not reset the connection before the answer is read), answer, close. At most
        ``MAX_REFUSING`` at a time (counted by the caller): past that, refused sockets are closed at once."""
        try:
            path = await _request_path(stream)
            audit_refusal("connection_refused", refusal.code, refusal.reason, path=path, remote=ip)
            body = json.dumps({"type": "error", "code": refusal.code, "message": refusal.reason}).encode()
            head = (f"HTTP/1.1 {refusal.status} {HTTPStatus(refusal.status).phrase}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    f"Retry-After: 1\r\nConnection: close\r\n\r\n").encode()
            with contextlib.suppress(StreamClosedError):
                await stream.write(head + body)
        finally:
            self._refusing -= 1
            stream.close()


async def _request_path(stream: IOStream) -> str:
    """The path (without query) of the request the client sends, read for at most ``REFUSE_READ_S``."""
    try:
        head = await gen.with_timeout(timedelta(seconds=REFUSE_READ_S), stream.read_until(b"\r\n\r\n", 16384),
                                      quiet_exceptions=(StreamClosedError,))
    except Exception:  # noqa: BLE001 - timed out, closed, too long: answer all the same
        return ""
    target = head.split(b"\r\n", 1)[0].split(b" ")
    return target[1].split(b"?", 1)[0].decode("latin-1")[:200] if len(target) > 1 else ""
