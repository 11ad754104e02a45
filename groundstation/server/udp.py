"""The UDP ingest endpoint: an asyncio datagram protocol handing bytes to the station."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

__all__ = ["open_udp_endpoint"]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, int], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr) -> None:
        self.on_datagram(data, time.time_ns())

    def error_received(self, exc: Exception) -> None:  # ICMP errors on loopback etc.
        pass


async def open_udp_endpoint(host: str, port: int, on_datagram: Callable[[bytes, int], None],
                            rcvbuf: int = 16 << 20) -> tuple[asyncio.DatagramTransport, int]:
    """Bind ``host:port`` (port 0 = any free port); returns the transport and the bound port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    except OSError:
        pass
    sock.bind((host, port))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(on_datagram), sock=sock)
    return transport, sock.getsockname()[1]
