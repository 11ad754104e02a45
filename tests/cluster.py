"""Helpers for scale-out tests: a real ``redis-server`` on a free port, an ingest node and edges."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass

import redis

from tests.live import Server, Sim, free_port, server


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        exe = shutil.which("redis-server")
        assert exe, "redis-server is missing: scripts/bootstrap.sh installs it (Debian package redis-server)"
        self.dir = getattr(self, "dir", None) or tempfile.mkdtemp(prefix="gs-redis-")
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@contextmanager
def redis_server():
    srv = RedisServer(free_port()).start()
    try:
        yield srv
    finally:
        srv.kill()
        shutil.rmtree(srv.dir, ignore_errors=True)


@dataclass
class Cluster:
    redis: RedisServer
    ingest: Server
    edges: list[Server]
    sim: Sim


@asynccontextmanager
async def cluster(n_edges: int = 2, *extra: str, vehicle: dict | None = None, ingest_extra: tuple = ()):
    """redis-server, one ingest node (open mode, role director) commanding a simulator, ``n_edges`` edges."""
    sim = Sim(0, **(vehicle or {}))
    uplink = await sim.runner.listen_uplink("127.0.0.1", 0)
    common = ("--open-role", "director", *extra)
    try:
        with redis_server() as rs, ExitStack() as stack:
            ingest = stack.enter_context(server("--role", "ingest", "--redis", rs.url, "--node", "ingest",
                                                "--uplink", f"127.0.0.1:{uplink}", *common, *ingest_extra))
            edges = [stack.enter_context(server("--role", "edge", "--redis", rs.url, "--node", f"edge{i + 1}",
                                                *common)) for i in range(n_edges)]
            sim.runner.target = ("127.0.0.1", ingest.udp_port)
            sim.start()
            yield Cluster(rs, ingest, edges, sim)
    finally:
        await sim.stop()
