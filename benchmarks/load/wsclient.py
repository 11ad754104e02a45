"""A lean WebSocket client connection for the load generator: one ``asyncio.Protocol``, no task per console.

The ``websockets`` asyncio client costs ~19 us per received message (a reader
task, a frame-parser generator, an assembler and a queue per connection).
This one parses server frames in ``data_received`` (RFC 6455 server frames are
unmasked) and hands each complete message to ``on_message(payload, t_ns)``,
with ``t_ns`` the ``time.time_ns()`` at which its bytes were read. It answers
pings, masks what it sends (as a client must), and supports what the load
generator needs: binary messages, ping/pong, close. Fragmented messages are
reassembled; no extensions (none are offered).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections.abc import Callable
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_H16 = struct.Struct("!H")
_H64 = struct.Struct("!Q")


def mask_frame(opcode: int, payload: bytes) -> bytes:
    """One FIN client frame (masked, as RFC 6455 requires of clients)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + _H16.pack(n)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + _H64.pack(n)
    key = os.urandom(4)
    if n:
        k = int.from_bytes(key * (n // 4 + 1), "little") & ((1 << (8 * n)) - 1)
        payload = (int.from_bytes(payload, "little") ^ k).to_bytes(n, "little")
    return head + key + payload


class WSClient(asyncio.Protocol):
    """One console connection. ``opened`` resolves after the 101; ``closed`` when the TCP connection ends."""

    __slots__ = ("url", "on_message", "transport", "buf", "opened", "closed", "_key", "_frag", "close_code", "_now")

    def __init__(self, url: str, on_message: Callable[[bytes, int], None]) -> None:
        loop = asyncio.get_running_loop()
        self.url = urlsplit(url)
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.opened: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        self._key = base64.b64encode(os.urandom(16))
        self._frag: list[bytes] | None = None
        self.close_code: int | None = None
        self._now = time.time_ns

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        u = self.url
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        transport.write(
            f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self._key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.opened.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[:end + 4]
            accept = base64.b64encode(hashlib.sha1(self._key + _GUID).digest()).decode()
            if not head.startswith("HTTP/1.1 101") or accept not in head:
                self.opened.set_exception(ConnectionError(head.split("\r\n", 1)[0] or "bad handshake"))
                self.transport.close()
                return
            self.opened.set_result(True)
        self._parse(self._now())

    def _parse(self, t: int) -> None:
        buf = self.buf
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            ln = b1 & 0x7F
            hdr = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = _H16.unpack_from(buf, pos + 2)[0]
                hdr = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = _H64.unpack_from(buf, pos + 2)[0]
                hdr = 10
            end = pos + hdr + ln
            if end > n:
                break
            payload = bytes(buf[pos + hdr:end])
            pos = end
            self._frame(b0, payload, t)
        if pos:
            del buf[:pos]

    def _frame(self, b0: int, payload: bytes, t: int) -> None:
        op = b0 & 0x0F
        fin = b0 & 0x80
        if op == 2 or op == 1:
            if fin:
                self.on_message(payload, t)
            else:
                self._frag = [payload]
        elif op == 0 and self._frag is not None:
            self._frag.append(payload)
            if fin:
                msg, self._frag = b"".join(self._frag), None
                self.on_message(msg, t)
        elif op == 9:  # ping: pong with the same payload
            self.transport.write(mask_frame(0xA, payload))
        elif op == 8:  # close: echo the code, then the server closes TCP
            self.close_code = _H16.unpack_from(payload)[0] if len(payload) >= 2 else 1005
            self.transport.write(mask_frame(0x8, payload[:2]))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed before the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    # -- sending --------------------------------------------------------------------------------
    def send_binary(self, payload: bytes) -> None:
        self.transport.write(mask_frame(0x2, payload))

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(mask_frame(0x8, _H16.pack(code)))
            self.transport.close()


async def connect(url: str, on_message: Callable[[bytes, int], None], timeout: float = 60.0) -> WSClient:
    """Open one connection and wait for the 101."""
    u = urlsplit(url)
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(
        loop.create_connection(lambda: WSClient(url, on_message), u.hostname, u.port or 80), timeout)
    await asyncio.wait_for(proto.opened, timeout)
    return proto
