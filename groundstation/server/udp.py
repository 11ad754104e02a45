"""The UDP ingest endpoint: a socket drained on readiness, handing bytes to the station.

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

__all__ = ["open_udp_endpoint", "SourceFilter", "UdpReader", "set_receive_buffer"]


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


MAX_DATAGRAM = 65_535
DatagramHandler = Callable[[bytes, int, tuple], None]  # (datagram, arrival ns, sender address)


class UdpReader:
    """Reads every datagram waiting on ``sock`` each time it is readable (at most ``batch``).

    asyncio's datagram transport reads one datagram per event-loop iteration: behind a
    long iteration (a tick writing to thousands of consoles) datagrams then wait in the
    socket for as many iterations as there are datagrams, and the data the next tick
    sends is older than it need be. Draining keeps the ingest current."""

    def __init__(self, sock: socket.socket, on_datagram: DatagramHandler, sources: SourceFilter,
                 batch: int = 32) -> None:
        self.sock = sock
        self.on_datagram = on_datagram
        self.sources = sources
        self.batch = batch
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._drain)
        self._closed = False

    def _drain(self) -> None:
        recv, sources = self.sock.recvfrom, self.sources
        for _ in range(self.batch):
            try:
                data, addr = recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP errors on loopback etc.: the socket stays usable
                continue
            if sources.networks is None or sources.allows(addr[0]):
                self.on_datagram(data, time.time_ns(), addr)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()


SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; Python does not name it


def set_receive_buffer(sock: socket.socket, size: int) -> int:
    """Ask for a ``size``-byte receive buffer; returns what the kernel gave.

    ``SO_RCVBUF`` is capped at ``net.core.rmem_max`` (often 208 KiB to 4 MiB), which a
    stall of a few hundred milliseconds under a datagram flood overruns; a process with
    CAP_NET_ADMIN gets the full size with ``SO_RCVBUFFORCE``. Otherwise raise
    ``net.core.rmem_max`` (docs/deploy.md)."""
    for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, size)
            break
        except OSError:
            continue
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


async def open_udp_endpoint(host: str, port: int, on_datagram: DatagramHandler,
                            rcvbuf: int = 16 << 20,
                            sources: SourceFilter | None = None) -> tuple[UdpReader, int]:
    """Bind ``host:port`` (port 0 = any free port); returns the reader (``close()``) and the bound port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    set_receive_buffer(sock, rcvbuf)
    sock.bind((host, port))
    sock.setblocking(False)
    return UdpReader(sock, on_datagram, sources or SourceFilter(None)), sock.getsockname()[1]
