"""``serve``, ``simulate`` and ``demo``: the long-running commands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time

from telemetry_formats.paramdb import ConfigError, load_mission

from .auth import secret_from_env
from .commanding import commanding_from
from .logs import log_event, setup_logging
from .server.start import start_station
from .server.station import StationConfig
from .simulator.buses import VEHICLE_ICD_FILE
from .simulator.flight import Spike
from .simulator.runner import SimulatorRunner
from .simulator.vehicle import MAX_BIT_RATE, MIN_BIT_RATE, Vehicle

__all__ = ["add_run_commands", "host_port"]


def host_port(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT``; IPv6 as ``[::1]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or default_host
    try:
        p = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT") from None
    if not 0 <= p <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: port out of range")
    return host, p


def _bit_rate(text: str) -> float:
    v = float(text)
    if not MIN_BIT_RATE <= v <= MAX_BIT_RATE:
        raise argparse.ArgumentTypeError(f"bit rate must be {MIN_BIT_RATE}..{MAX_BIT_RATE} b/s")
    return v


def _rate(text: str) -> tuple[int, float]:
    try:
        n, per = text.split("/")
        return int(n), float(per)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N/SECONDS, e.g. 5/10") from None


def _spike(text: str) -> Spike:
    try:
        name, rest = text.split("@")
        t, value = rest.split("=")
        return Spike(name, float(t), float(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME@SECONDS=VALUE") from None


FD_RESERVE = 256  # open files besides the connections: listening and UDP sockets, HDF5, Redis, logs


def max_connections(requested: int | None) -> int:
    """The cap on open connections (HTTP and WebSocket sockets): ``requested``, or by default the open-files limit
    less ``FD_RESERVE`` (0 = none). Raises the soft open-files limit to the hard one first: the
    usual soft limit of 1,024 would otherwise fail ``accept`` near 1,000 consoles."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):
        soft = -1  # unknown here: no default cap
    else:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        if soft != resource.RLIM_INFINITY and soft < target:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass  # keep the soft limit: the cap follows it
        if soft == resource.RLIM_INFINITY:
            soft = -1
    if requested is not None:
        if requested < 0:
            sys.exit("groundstation: --max-connections must be >= 0")
        return requested
    return max(16, soft - FD_RESERVE) if soft > 0 else 0


def _station_config(args: argparse.Namespace, open_mode: bool) -> StationConfig:
    udp_host, udp_port = args.udp
    http_host, http_port = args.http
    params = mission = None
    if getattr(args, "params", None):
        try:
            mission = load_mission(args.params)
            params = mission.pcm_database(args.channel)
            commanding_from(mission)  # a vehicle file's commands and verifier: refused here if unusable
        except (ConfigError, OSError) as exc:
            sys.exit(f"groundstation: {exc}")
    secret = None
    if not open_mode:
        try:
            secret = secret_from_env()
        except ValueError as exc:
            sys.exit(f"groundstation serve: {exc} (or run with --open for a local demo)")
    origins = args.origin or None  # None: the server's own address once bound
    if bool(args.cert) != bool(args.key):
        sys.exit("groundstation: give both --cert and --key for TLS")
    return StationConfig(udp_host=udp_host, udp_port=udp_port, http_host=http_host, http_port=http_port,
                         params=params, mission=mission, channel_id=args.channel, link_timeout_s=args.link_timeout,
                         open_mode=open_mode, open_role=getattr(args, "open_role", "viewer"), secret=secret,
                         origins=origins, uplink=None if args.no_uplink else args.uplink,
                         certfile=args.cert, keyfile=args.key, command_rate=args.command_rate,
                         record_dir=args.record, record_fsync=args.fsync,
                         max_connections_per_address=args.max_connections_per_address,
                         max_connections=max_connections(args.max_connections),
                         message_rate=args.message_rate, user_message_rate=args.user_message_rate,
                         ping_interval_s=args.ping_interval,
                         http_timeout_s=args.http_timeout, api_rate=args.api_rate,
                         health_details=args.health_details,
                         ping_timeout_s=min(args.ping_timeout, args.ping_interval),
                         console_max_behind_s=args.console_max_behind,
                         console_age_budget_s=args.console_age_budget,
                         role=getattr(args, "role", "standalone"), redis_url=getattr(args, "redis", None),
                         bus_prefix=getattr(args, "redis_prefix", "gs"), node=getattr(args, "node", None),
                         authority_lease_s=args.authority_lease, registry_ttl_s=args.registry_ttl,
                         udp_sources=args.udp_source, strict_checksums=getattr(args, "strict_checksums", False))


async def _until_signal(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await stop.wait()


async def _serve(args: argparse.Namespace, open_mode: bool, with_simulator: bool) -> int:
    config = _station_config(args, open_mode)
    sim = None
    if with_simulator:
        vehicle = Vehicle(start_ns=time.time_ns(), bit_rate=args.bitrate, seed=args.seed,
                          events=getattr(args, "events", False))
        sim = SimulatorRunner(vehicle, config.udp_host, 0)
        config.uplink = ("127.0.0.1", await sim.listen_uplink("127.0.0.1", 0))
    try:
        running = await start_station(config)
    except ValueError as exc:
        sys.exit(f"groundstation serve: {exc}")
    scheme = "https" if config.certfile else "http"
    url = f"{scheme}://{config.http_host}:{running.http_port}/"
    stop = asyncio.Event()
    if sim is not None:
        sim.target = (config.udp_host, running.udp_port)
        asyncio.ensure_future(sim.run())
    ws = "wss" if config.certfile else "ws"
    udp = "off (edge node)" if running.udp_port is None else f"{config.udp_host}:{running.udp_port}"
    print(f"ground station: UDP {udp}, console {url}, "
          f"WebSocket {ws}://{config.http_host}:{running.http_port}/ws/telemetry, "
          f"uplink {'%s:%d' % config.uplink if config.uplink else 'off'}", flush=True)
    if running.station.recorder is not None:
        print(f"recording into {running.station.recorder.folder} (index {running.station.recorder.index_path})",
              flush=True)
    if getattr(args, "duration", None):
        asyncio.get_running_loop().call_later(args.duration, stop.set)
    await _until_signal(stop)
    if sim is not None:
        sim.stop()
    await running.stop()
    return 0


async def _simulate(args: argparse.Namespace) -> int:
    host, port = args.to
    vehicle = Vehicle(start_ns=time.time_ns(), bit_rate=args.bitrate, seed=args.seed, spikes=args.spike or [],
                      max_datagram=args.max_datagram)
    sim = SimulatorRunner(vehicle, host, port)
    if args.uplink is not None:
        await sim.listen_uplink(*args.uplink)
    stop = asyncio.Event()
    task = asyncio.ensure_future(sim.run(args.duration))
    waiter = asyncio.ensure_future(_until_signal(stop))
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    sim.stop()
    await task
    waiter.cancel()
    print(f"sent {sim.datagrams} datagrams, {vehicle.frames_sent} minor frames, {sim.bytes} bytes", flush=True)
    return 0


def _common_server_args(p: argparse.ArgumentParser, http_default: str) -> None:
    p.add_argument("--udp", type=host_port, default=host_port("127.0.0.1:5510"), help="UDP ingest HOST:PORT")
    p.add_argument("--http", type=host_port, default=host_port(http_default), help="HTTP/WebSocket HOST:PORT")
    p.add_argument("--udp-source", action="append", metavar="ADDR[/BITS]",
                   help="accept telemetry only from this address or network (repeatable; default: any)")
    p.add_argument("--params", action="append", metavar="FILE",
                   help="vehicle database: parameter file (.toml, .yaml) or ICD (.csv) instead of the stream's TMATS"
                        " (repeatable: the files merge; docs/parameters.md)")
    p.add_argument("--channel", type=int, help="PCM channel ID to decommutate (default: the TMATS's first)")
    p.add_argument("--strict-checksums", action="store_true",
                   help="refuse packets whose data checksum fails (default: decode them and report the error; "
                        "they are recorded either way)")
    p.add_argument("--link-timeout", type=float, default=0.5, help="seconds without data before LINK LOST")
    p.add_argument("--origin", action="append", help="allowed browser Origin (repeatable)")
    p.add_argument("--record", metavar="DIR", help="record HDF5 into DIR (docs/recording.md)")
    p.add_argument("--fsync", action="store_true", help="fsync the recording at every flush")
    p.add_argument("--log-level", default="info")
    p.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    p.add_argument("--uplink", type=host_port, default=host_port("127.0.0.1:5511"),
                   help="the vehicle's uplink command address HOST:PORT")
    p.add_argument("--no-uplink", action="store_true", help="no command channel")
    p.add_argument("--command-rate", type=_rate, default=(5, 10.0), metavar="N/SECONDS",
                   help="accepted commands per user per period (default 5/10)")
    p.add_argument("--max-connections", type=int, default=None, metavar="N",
                   help="connections (HTTP and WebSocket) open in all; more get HTTP 503 (default: the "
                        "open-files limit, raised to its hard limit, less a reserve; 0 = no limit)")
    p.add_argument("--max-connections-per-address", type=int, default=64, metavar="N",
                   help="connections open from one IP address; more get HTTP 429 (0 = no limit)")
    p.add_argument("--http-timeout", type=float, default=10.0, metavar="S",
                   help="close a connection whose request headers or body take longer, or idle this long")
    p.add_argument("--api-rate", type=float, default=20.0, metavar="PER_S",
                   help="HTTP API requests per second per user and per address, bursts of twice that; "
                        "more get 429 (0 = no limit)")
    p.add_argument("--health-details", action="store_true",
                   help="/healthz details for anyone (default: status only without an admin token)")
    p.add_argument("--message-rate", type=float, default=20.0, metavar="PER_S",
                   help="console messages per second per connection, bursts of twice that (0 = no limit)")
    p.add_argument("--user-message-rate", type=float, default=40.0, metavar="PER_S",
                   help="console messages per second per user over all their connections, bursts of twice "
                        "that (0 = no limit)")
    p.add_argument("--ping-interval", type=float, default=5.0, metavar="S", help="WebSocket ping interval")
    p.add_argument("--ping-timeout", type=float, default=5.0, metavar="S",
                   help="close a connection whose pong is this late (half-open links); at most --ping-interval")
    p.add_argument("--console-age-budget", type=float, default=0.2, metavar="S",
                   help="a console whose data is older than this when sent steps down a rate tier (20 -> 10 -> "
                        "5 Hz ...) and back up once caught up (rate_limited); 0 = never (default 0.2)")
    p.add_argument("--console-max-behind", type=float, default=10.0, metavar="S",
                   help="close a console (4008) that stays this long behind")
    p.add_argument("--registry-ttl", type=float, default=15.0, help=argparse.SUPPRESS)
    p.add_argument("--authority-lease", type=float, default=15.0, metavar="S",
                   help="command authority lapses this long after its holder has gone (default 15)")
    p.add_argument("--cert", help="TLS certificate (PEM) for https/wss")
    p.add_argument("--key", help="TLS private key (PEM)")


def add_run_commands(sub) -> None:
    p = sub.add_parser("serve", help="run the ground station server")
    _common_server_args(p, "127.0.0.1:8080")
    p.add_argument("--open", action="store_true", help="no tokens (local use only): every console gets --open-role")
    p.add_argument("--open-role", default="viewer", choices=["viewer", "engineer", "director", "admin"])
    p.add_argument("--role", default="standalone", choices=["standalone", "ingest", "edge"],
                   help="standalone (default, no broker); ingest or edge to scale out on Redis (docs/deploy.md)")
    p.add_argument("--redis", metavar="URL", help="Redis for --role ingest/edge (refused without one of them): redis://[user:pass@]host:port/db")
    p.add_argument("--redis-prefix", default="gs", help="key and channel namespace of this station in Redis")
    p.add_argument("--node", help="this node's name on the bus (default: role-host-pid)")
    p.set_defaults(func=lambda a: _run(a, _serve(a, a.open, False)))

    p = sub.add_parser("simulate", help="run the vehicle simulator, streaming Chapter 10 over UDP")
    p.add_argument("--to", type=host_port, default=host_port("127.0.0.1:5510"), help="ground station HOST:PORT")
    p.add_argument("--bitrate", type=_bit_rate, default=1_000_000, help="PCM bit rate, b/s (default 1e6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--spike", type=_spike, action="append", help="one-sample spike NAME@SECONDS=VALUE")
    p.add_argument("--max-datagram", type=int, default=65000, help="largest UDP datagram, bytes")
    p.add_argument("--uplink", type=host_port, default=host_port("127.0.0.1:5511"),
                   help="listen for uplink commands on HOST:PORT")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=lambda a: _run(a, _simulate(a)))

    p = sub.add_parser("demo", help="simulator + server in one process, no broker, no tokens (local only)")
    _common_server_args(p, "127.0.0.1:8080")
    p.add_argument("--bitrate", type=_bit_rate, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-record", action="store_true", help="do not record (the demo records into ./recordings)")
    p.add_argument("--events", action="store_true",
                   help="the vehicle goes past a limit by itself now and then (EGT, HYD_PRESS, NZ; seeded by --seed)")
    p.set_defaults(func=lambda a: _run(a, _serve(_demo_args(a), True, True)), open_role="director")


def _demo_args(a: argparse.Namespace) -> argparse.Namespace:
    a.open_role = "director"
    if not a.params:  # the simulator's bus ICD: PCM (from the TMATS), 1553 and ARINC-429 with no flags
        a.params = [str(VEHICLE_ICD_FILE)]
    if not a.record and not a.no_record:
        a.record = "recordings"  # the demo records by default
    if a.udp == host_port("127.0.0.1:5510"):
        a.udp = ("127.0.0.1", 0)  # a free port, so a demo never collides with a running server
    return a


def _run(args: argparse.Namespace, coro) -> int:
    setup_logging(os.environ.get("GROUNDSTATION_LOG", args.log_level))
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        log_event("fatal", logging.ERROR, error=str(exc))  # a JSON line like every other on stderr
        return 1
