"""Helpers for end-to-end tests: a real server process, a real simulator, real WebSocket clients."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import msgpack
import numpy as np
import websockets

from groundstation.console.protocol import BLOB_DTYPES
from groundstation.simulator.runner import SimulatorRunner
from groundstation.simulator.vehicle import Vehicle

SECRET = "test-secret-" + "x" * 40
_BLOBS = BLOB_DTYPES


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    udp_port: int
    http_port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/ws/telemetry"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@contextmanager
def server(*extra: str, open_mode: bool = True, env: dict | None = None, health_details: bool = True):
    """Start ``groundstation serve`` on free ports; yields a ``Server``. With ``health_details`` (the
    default) ``/healthz`` gives its details without a token (``--health-details``), as tests read them."""
    args = [sys.executable, "-m", "groundstation.cli", "serve", "--udp", "127.0.0.1:0", "--http", "127.0.0.1:0",
            "--log-level", "warning", *extra]
    if open_mode:
        args.append("--open")
    if health_details:
        args.append("--health-details")
    e = dict(os.environ, GROUNDSTATION_SECRET=SECRET, **(env or {}))
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=e)
    try:
        line = proc.stdout.readline()
        m = re.search(r"UDP (?:[\d.]+:(\d+)|off \(edge node\)), console https?://[\d.]+:(\d+)/", line)
        if not m:
            proc.kill()
            log.seek(0)
            raise RuntimeError(f"server did not start: {line!r} {log.read()[-2000:]}")
        srv = Server(proc, int(m.group(1) or 0), int(m.group(2)))
        srv.log = log
        yield srv
    finally:
        log.close() if proc.poll() is not None else None
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _arrays(m: dict) -> dict:
    for k, dt in _BLOBS.items():
        if isinstance(m.get(k), bytes):
            m[k] = np.frombuffer(m[k], dt)
    return m


def decode(frame: bytes) -> dict:
    """A server message with binary arrays as numpy arrays."""
    return _arrays(msgpack.unpackb(frame, raw=False))


def expand(m: dict) -> list[dict]:
    """A ``bundle`` as its ``data`` messages (each with the bundle's ``seq``); other messages as they are."""
    if m.get("type") != "bundle":
        return [m]
    return [_arrays({**f, "seq": m["seq"]}) for f in m["frames"]]


def pack(message: dict) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


class Console:
    """A console on the ``websockets`` library (independent of our server code)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.messages: list[dict] = []
        self.hello: dict | None = None
        self._pending: list[dict] = []

    @classmethod
    async def connect(cls, url: str, **kw) -> "Console":
        ws = await websockets.connect(url, max_size=None, **kw)
        c = cls(ws)
        c.hello = decode(await ws.recv())
        return c

    async def catalog(self) -> dict[str, int]:
        """Parameter ids by name, from the hello or the first catalog message."""
        cat = self.hello["catalog"]
        if not cat["params"]:
            cat = (await self.until(lambda m: m["type"] == "catalog"))["catalog"]
        return {p["name"]: p["id"] for p in cat["params"]}

    async def send(self, message: dict) -> None:
        await self.ws.send(pack(message))

    async def recv(self, timeout: float = 5.0) -> dict:
        """The next message; a tick's ``bundle`` comes out as its ``data`` messages one by one."""
        if not self._pending:
            self._pending = expand(decode(await asyncio.wait_for(self.ws.recv(), timeout)))
        m = self._pending.pop(0)
        self.messages.append(m)
        return m

    async def until(self, pred, timeout: float = 10.0) -> dict:
        """Receive until a message satisfies ``pred``; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching message")
            m = await self.recv(left)
            if pred(m):
                return m

    async def collect(self, seconds: float) -> list[dict]:
        """Everything received in the next ``seconds``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        out = []
        while (left := end - loop.time()) > 0:
            try:
                out.append(await self.recv(left))
            except (TimeoutError, asyncio.TimeoutError):
                break
        return out

    async def subscribe(self, rate: int, req: int = 1, **select) -> dict:
        await self.send({"type": "subscribe", "id": req, "rate": rate, **select})
        return await self.until(lambda m: m.get("id") == req and m["type"] in ("subscribed", "error"))

    async def close(self) -> None:
        await self.ws.close()


class Director:
    """A director on /ws/command (``websockets``): requests by id, every event kept in ``seen``."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.seen: list[dict] = []
        self._n = 0

    @classmethod
    async def connect(cls, url: str, token: str | None = None) -> "Director":
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        d = cls(await websockets.connect(url, additional_headers=headers))
        hello = await d.recv()
        assert hello["type"] == "hello"
        d.hello = hello
        return d

    async def recv(self, timeout: float = 5) -> dict:
        m = msgpack.unpackb(await asyncio.wait_for(self.ws.recv(), timeout), raw=False)
        self.seen.append(m)
        return m

    async def request(self, **msg) -> dict:
        self._n += 1
        msg["id"] = self._n
        await self.ws.send(msgpack.packb(msg))
        while True:
            m = await self.recv()
            if m.get("id") == self._n:
                return m


class Sim:
    """The vehicle simulator in the test process, sending real UDP to the server."""

    def __init__(self, port: int, **vehicle_kw) -> None:
        self.vehicle = Vehicle(start_ns=time.time_ns(), **vehicle_kw)
        self.runner = SimulatorRunner(self.vehicle, "127.0.0.1", port)
        self.task = None

    def start(self) -> "Sim":
        self.task = asyncio.ensure_future(self.runner.run())
        return self

    async def stop(self) -> None:
        self.runner.stop()
        if self.task is not None:
            await self.task
        self.runner.close()


async def refused_status(url: str, **kw) -> int:
    """The HTTP status of a refused WebSocket handshake."""
    import pytest

    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url, **kw):
            pass
    return info.value.response.status_code


@asynccontextmanager
async def vehicle_and_server(*extra: str, vehicle: dict | None = None, **kw):
    """A simulator (``Vehicle`` keyword arguments in ``vehicle``) listening for uplink, and a
    server commanding it and ingesting its stream: yields (sim, srv); stops both."""
    sim = Sim(0, **(vehicle or {}))
    uplink = await sim.runner.listen_uplink("127.0.0.1", 0)
    try:
        with server("--uplink", f"127.0.0.1:{uplink}", *extra, **kw) as srv:
            sim.runner.target = ("127.0.0.1", srv.udp_port)
            sim.start()
            yield sim, srv
    finally:
        await sim.stop()
