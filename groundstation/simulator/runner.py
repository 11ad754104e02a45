"""The simulator's I/O shell: paces ``Vehicle.advance`` by the wall clock and sends UDP."""

from __future__ import annotations

import asyncio
import socket
import time

from ..logs import log_event
from .vehicle import Vehicle

__all__ = ["SimulatorRunner"]


class SimulatorRunner:
    """Send a vehicle's datagrams to ``host:port`` every ``period_s`` until stopped.

    Deadlines are absolute (start + k * period), so scheduling jitter never turns
    into drift; the vehicle computes frame times from the wall clock itself.
    """

    def __init__(self, vehicle: Vehicle, host: str, port: int, period_s: float = 0.01) -> None:
        self.vehicle = vehicle
        self.target = (host, port)
        self.period_s = period_s
        self.datagrams = 0
        self.bytes = 0
        self.send_errors = 0
        self.late_s = 0.0  # worst lateness of a send deadline
        self._stop = asyncio.Event()
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        self.sock.setblocking(False)
        self._uplink = None
        self.uplink_port: int | None = None

    async def listen_uplink(self, host: str, port: int) -> int:
        """Receive uplink command packets on ``host:port`` (0 = a free port); returns the port."""
        vehicle = self.vehicle

        class _Uplink(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr) -> None:
                result = vehicle.handle_uplink(data, time.time_ns())
                log_event("uplink", size=len(data), result=result, source=f"{addr[0]}:{addr[1]}")

        loop = asyncio.get_running_loop()
        self._uplink, _ = await loop.create_datagram_endpoint(_Uplink, local_addr=(host, port))
        self.uplink_port = self._uplink.get_extra_info("sockname")[1]
        return self.uplink_port

    def send_due(self, now_ns: int | None = None) -> int:
        """Send everything due now; returns the number of datagrams sent."""
        n = 0
        for d in self.vehicle.advance(now_ns or time.time_ns()):
            try:
                self.sock.sendto(d, self.target)
                n += 1
                self.bytes += len(d)
            except (BlockingIOError, OSError):
                self.send_errors += 1
        self.datagrams += n
        return n

    def stop(self) -> None:
        self._stop.set()

    async def run(self, duration_s: float | None = None) -> None:
        start = time.monotonic()
        k = 0
        log_event("simulator_start", target=f"{self.target[0]}:{self.target[1]}", bit_rate=self.vehicle.bit_rate)
        while not self._stop.is_set():
            k += 1
            deadline = start + k * self.period_s
            delay = deadline - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                    break
                except asyncio.TimeoutError:
                    pass
            else:
                self.late_s = max(self.late_s, -delay)
                await asyncio.sleep(0)  # behind: still let the loop run (the consoles of a test share it)
            self.send_due()
            if duration_s is not None and time.monotonic() - start >= duration_s:
                break
        log_event("simulator_stop", datagrams=self.datagrams, frames=self.vehicle.frames_sent,
                  send_errors=self.send_errors)

    def close(self) -> None:
        self.sock.close()
        if self._uplink is not None:
            self._uplink.close()
