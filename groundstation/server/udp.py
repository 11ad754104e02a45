"""The UDP ingest endpoint: an asyncio datagram protocol handing bytes to the station.

With ``sources`` (addresses or networks), datagrams from anywhere else are dropped
and counted before they reach the decoder: only the vehicle's (or the receiver's)
address can configure the decommutator with a TMATS or feed it data.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable

__all__ = ["open_udp_endpoint", "SourceFilter"]


class SourceFilter:
    """Which sender addresses may feed the ingest (None: any); counts the refused."""

    def __init__(self, sources: list[str] | None) -> None:
        self.networks = [ipaddress.ip_network(s, strict=False) for s in sources] if sources else None
        self._allowed: set[str] = set()
        self.refused = 0
        self.last_refused: str | None = None

    def allows(self, host: str) -> bool:
        if self.networks is None or host in self._allowed:
            return True
        try:
            ip = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            ip = None
        if ip is not None and any(ip in n for n in self.networks):
            self._allowed.add(host)
            return True
        self.refused += 1
        self.last_refused = host
        return False


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, int], None], sources: SourceFilter) -> None:
        self.on_datagram = on_datagram
        self.sources = sources

    def datagram_received(self, data: bytes, addr) -> None:
        if self.sources.networks is None or self.sources.allows(addr[0]):
            self.on_datagram(data, time.time_ns())

    def error_received(self, exc: Exception) -> None:  # ICMP errors on loopback etc.
        pass


async def open_udp_endpoint(host: str, port: int, on_datagram: Callable[[bytes, int], None],
                            rcvbuf: int = 16 << 20,
                            sources: SourceFilter | None = None) -> tuple[asyncio.DatagramTransport, int]:
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
    sources = sources or SourceFilter(None)
    transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(on_datagram, sources), sock=sock)
    return transport, sock.getsockname()[1]
