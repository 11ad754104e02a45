"""Starting a node: the standalone server (default), the ingest node or an edge node.

``start_station`` binds UDP (not on edges) and HTTP (port 0 picks a free port),
joins the bus (in-process by default, Redis with ``redis_url``) and starts the
periodic work.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl as ssl_module

from tornado.netutil import bind_sockets

from ..auth import OriginPolicy
from ..bus import EDGE, INGEST, STANDALONE, make_bus
from ..commanding.lease import AuthorityLease
from ..logs import log_event
from .alerts import alert_handlers
from .app import make_app
from .cluster import IngestLink
from .commands import CommandCenter, command_handlers
from .http_server import GuardedHTTPServer
from .station import GroundStation, StationConfig, now_ns
from .udp import open_udp_endpoint

__all__ = ["RunningStation", "start_station", "ROLES"]

ROLES = (STANDALONE, INGEST, EDGE)
MAX_BODY_BYTES = 64 * 1024  # HTTP request bodies (the API takes at most 16 KiB; Tornado's default is 100 MB)


class RunningStation:
    """A started node: its ports and a ``stop()``."""

    def __init__(self, station: GroundStation, server: GuardedHTTPServer, http_port: int, udp_port: int | None) -> None:
        self.station = station
        self.server = server
        self.http_port = http_port
        self.udp_port = udp_port

    async def stop(self) -> None:
        await self.station.stop()
        self.server.stop()
        for close in list(self.station.closers.values()):
            close(1001, "server shutting down")
        if self.station.bus is not None:
            await self.station.bus.close()
        await asyncio.sleep(0)


def _node_name(config: StationConfig) -> str:
    return config.node or f"{config.role}-{socket.gethostname()}-{os.getpid()}"


async def start_station(config: StationConfig, extra_handlers: list | None = None) -> RunningStation:
    if config.role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {config.role!r}")
    if config.role != STANDALONE and not config.redis_url:
        raise ValueError(f"the {config.role} role needs a Redis URL (--redis)")
    if config.role == STANDALONE and config.redis_url:
        raise ValueError("a Redis URL (--redis) needs --role ingest or edge: a standalone node uses no broker")
    if config.role == EDGE and config.record_dir:
        raise ValueError("an edge node does not record: give --record to the ingest node")
    bus = make_bus(config.redis_url, _node_name(config), config.bus_prefix)
    handlers = list(extra_handlers or [])
    udp_port = None
    if config.role == EDGE:
        from .edge import EdgeStation

        station: GroundStation = EdgeStation(config, bus)
        await station.join()
        handlers += alert_handlers(station) + command_handlers(station.commands)
    else:
        station = GroundStation(config)
        station.bus = bus
        await bus.start(config.role)
        transport, udp_port = await open_udp_endpoint(config.udp_host, config.udp_port, station.on_datagram,
                                                      config.udp_rcvbuf, station.udp_sources)
        station.transport = transport
        if config.record_dir:
            station.start_recording(config.record_dir, config.record_fsync)
        handlers += alert_handlers(station)
        if config.uplink is not None:
            station.commands = CommandCenter(station, config.uplink)
            handlers += command_handlers(station.commands)
            station.add_periodic(station.commands.tick, 0.1)
        link = station.node_link = IngestLink(station, bus)
        station.registry = link.registry
        if station.commands is not None:
            station.commands.lease = AuthorityLease(bus, station.commands.service.authority,
                                                    config.authority_lease_s,
                                                    connected=lambda user: user in link.online_users)
            station.commands.publish(await station.commands.lease.sync(now_ns()))
    app = make_app(station, handlers)
    ssl = None
    if config.certfile and config.keyfile:
        ssl = ssl_module.create_default_context(ssl_module.Purpose.CLIENT_AUTH)
        ssl.load_cert_chain(config.certfile, config.keyfile)
    metrics = station.metrics
    server = GuardedHTTPServer(app, xheaders=False, ssl_options=ssl, limiter=station.connection_limiter,
                               timeout_s=config.http_timeout_s, max_body_bytes=MAX_BODY_BYTES,
                               on_refused=metrics.auth_refusals.inc, on_accept_error=metrics.accept_errors.inc)
    sockets = bind_sockets(config.http_port, config.http_host)
    server.add_sockets(sockets)
    http_port = sockets[0].getsockname()[1]
    if not config.origins:
        scheme = "https" if ssl is not None else "http"
        config.origins = [f"{scheme}://{h}:{http_port}" for h in dict.fromkeys((config.http_host, "localhost",
                                                                                "127.0.0.1"))]
    station.origin_policy = OriginPolicy(config.origins)
    station.start_periodic()
    log_event("listening", role=config.role, node=bus.node, bus=bus.kind,
              udp=None if udp_port is None else f"{config.udp_host}:{udp_port}",
              http=f"{config.http_host}:{http_port}", open_mode=config.open_mode, tls=ssl is not None,
              uplink=config.uplink if config.role != EDGE else "via the ingest node")
    return RunningStation(station, server, http_port, udp_port)

