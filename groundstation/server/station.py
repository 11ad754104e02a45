"""The ground station service: ties ingest, link status and the console hub together.

Event-loop glue only: datagrams from the UDP endpoint go through ``Ingest``;
decoded batches, configuration changes and link changes go to the ``Hub``;
periodic callbacks run the tier ticks and the housekeeping (link timeout,
token expiry). Everything that decides lives in the sans-I/O objects.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Gauge
from tornado.ioloop import PeriodicCallback

from telemetry_formats.paramdb import MissionDatabase, ParameterDatabase

from ..auth import OriginPolicy, TokenVerifier
from ..catalog import Catalog
from ..console.hub import Hub
from ..console.protocol import CLOSE_TOO_SLOW, CLOSE_UNAUTHORIZED
from ..console.session import MAX_SELECT_COST
from ..ingest.core import Ingest
from ..ingest.link import LinkMonitor
from ..ingest.notices import IngestNotices
from ..logs import flush_log_summaries, log_event, log_throttled
from ..metrics import Metrics
from .api import RequestRates
from .limits import ConnectionLimiter, KeyedRate
from .udp import SourceFilter

__all__ = ["GroundStation", "StationConfig"]


@dataclass
class StationConfig:
    udp_host: str = "127.0.0.1"
    udp_port: int = 5510
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    params: ParameterDatabase | None = None
    mission: MissionDatabase | None = None  # every --params file merged (params is its PCM link); bus sources too
    channel_id: int | None = None
    link_timeout_s: float = 0.5
    tick_interval_s: float = 0.002
    open_mode: bool = False  # no token needed (demo); consoles get ``open_role``
    open_role: str = "viewer"
    secret: bytes | None = None
    origins: list[str] | None = None  # browser Origins allowed; None = this server's own address
    # (clients that send no Origin, i.e. not browsers, are not origin-checked: their token is)
    udp_rcvbuf: int = 16 << 20
    uplink: tuple[str, int] | None = None  # the vehicle's uplink address; None = no command channel
    command_rate: tuple[int, float] = (5, 10.0)  # accepted commands per user per that many seconds
    record_dir: str | None = None  # record HDF5 into this folder
    record_fsync: bool = False
    certfile: str | None = None  # TLS (https/wss) when both are set
    keyfile: str | None = None
    max_connections_per_address: int = 64  # sockets open from one address (HTTP 429 past it); 0 = no limit
    max_connections: int = 0  # sockets open in all, HTTP and WebSocket (HTTP 503 past it); 0 = no limit
    http_timeout_s: float = 10.0  # for a request's headers, an idle keep-alive connection, a body
    api_rate: float = 20.0  # HTTP API requests per second per user and per address (bursts of twice that)
    health_details: bool = False  # /healthz details for anyone (else only for an admin's token)
    message_rate: float = 20.0  # console messages per second per connection (bursts of twice that); 0 = none
    user_message_rate: float = 40.0  # ... and per user over all their connections; 0 = none
    select_budget: float = 30_000.0  # subscribe cost units per second per user (bursts of MAX_SELECT_COST)
    ping_interval_s: float = 5.0  # WebSocket ping; no pong within ping_timeout_s closes (half-open links)
    ping_timeout_s: float = 5.0
    console_max_behind_s: float = 10.0  # a console behind this long is closed with 4008 (Outbox)
    console_age_budget_s: float = 0.2  # data age past this sheds a console's rate (console.shedding); 0 = never
    udp_sources: list[str] | None = None  # addresses/networks allowed to send telemetry; None = any
    strict_checksums: bool = False  # refuse (not decode) packets whose data checksum fails; recorded either way
    role: str = "standalone"  # standalone (in-process bus), ingest or edge (Redis bus; docs/deploy.md)
    redis_url: str | None = None
    bus_prefix: str = "gs"  # Redis key and channel namespace: one per station sharing a Redis
    node: str | None = None  # this node's name on the bus (default: role-host-pid)
    authority_lease_s: float = 15.0  # command authority lapses this long after its holder is gone
    registry_ttl_s: float = 15.0  # a node's console registry entries expire this long after it stops refreshing


def now_ns() -> int:
    return time.time_ns()


_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")


def _reason_kind(reason: str) -> str:
    """A decode error's reason without its numbers (offsets, lengths): the key its log lines are limited by."""
    return _NUMBERS.sub("#", reason)[:80]


class GroundStation:
    def __init__(self, config: StationConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.ingest = Ingest(params=config.mission if config.mission is not None else config.params,
                             channel_id=config.channel_id,
                             on_log=lambda ev, f: log_throttled(ev, ev, logging.INFO, **f),
                             strict_checksums=config.strict_checksums)
        self.notices = IngestNotices(strict_checksums=config.strict_checksums)
        self.link = LinkMonitor(config.link_timeout_s, now_ns())
        self.hub = Hub(Catalog(), now_ns=now_ns())
        self.hub.on_close = self._close_slow
        self.user_message_rates = KeyedRate(config.user_message_rate)  # console messages, per user
        self.hub.select_budget = KeyedRate(config.select_budget, burst=MAX_SELECT_COST) if config.select_budget \
            else None
        self.hub.link_provider = lambda: self.link.status.as_dict()
        self.closers: dict[int, Callable[[int, str], None]] = {}  # session id -> close(code, reason)
        self.packet_listeners: list[Callable] = []  # e.g. the recorder
        self._periodic: list[PeriodicCallback] = []
        self._started = False
        self.commands = None  # the CommandCenter when an uplink is configured
        self.bus = None  # the Bus (in-process, or Redis to scale out) once started
        self.registry = None  # this node's connections in the bus's console registry
        self.node_link = None
        self.recorder = None  # the RecorderService with --record
        self.transport = None  # the UDP reader (server.udp.UdpReader), closed on stop
        self.udp_sources = SourceFilter(config.udp_sources)
        self.connection_limiter = ConnectionLimiter(config.max_connections_per_address, config.max_connections)
        self.api_rates = RequestRates(config.api_rate)
        self._refused_seen = 0
        self.started_ns = now_ns()
        self._lost_seen = 0
        self._replay_seen_ns = 0
        self._bus_monitor_sent_ns = 0
        self._last_housekeeping: float | None = None
        self.origin_policy = OriginPolicy(config.origins or [])
        self.verifier = TokenVerifier(config.secret) if config.secret else None

    # -- data path --------------------------------------------------------------
    def on_datagram(self, data: bytes, arrival_ns: int | None = None, sender: tuple | None = None) -> None:
        arrival_ns = arrival_ns or now_ns()
        t0 = time.perf_counter()
        res = self.ingest.receive(data, arrival_ns, sender)
        self._after(res, arrival_ns, len(data))
        self.metrics.decode_seconds.observe(time.perf_counter() - t0)

    def _after(self, res, arrival_ns: int, n_bytes: int) -> None:
        m = self.metrics
        m.datagrams.inc()
        m.datagram_bytes.inc(n_bytes)
        changed = self.link.data(arrival_ns)
        if changed is not None:
            self._link_changed(changed)
        if res.replay is not None:
            self._replay_seen_ns = arrival_ns
            if not self.hub.source.get("replay"):
                log_event("replay", **{k: v for k, v in res.replay.items() if isinstance(v, (str, int, float))})
            self._set_source({"replay": True, **{k: v for k, v in res.replay.items() if k != "replay"}}, arrival_ns,
                             announce=not self.hub.source.get("replay"))
        if res.configured is not None:
            cfg = res.configured
            self.hub.set_catalog(Catalog(cfg.db, cfg.version), arrival_ns)
            log_event("catalog", channel=cfg.channel_id, channels=sorted(set(cfg.db.channels)), source=cfg.source,
                      parameters=len(cfg.db.parameters), problems=cfg.problems[:10])
        for batch in res.samples:
            self.hub.on_samples(batch, arrival_ns)
            m.samples.inc(len(batch))
        if res.frames:
            m.frames.inc(res.frames)
        if res.errors:
            m.decode_errors.inc(len(res.errors))
            for e in res.errors:
                m.decode_error(getattr(e, "kind", "other"))
            for e in res.errors[:5]:  # the first few per kind of reason in full, then a summary
                log_throttled("decode_error", _reason_kind(str(e)), logging.INFO, reason=e)
        if res.senders or res.packets:
            self.notices.observe(res, arrival_ns)
        for listener in self.packet_listeners:
            listener(res, arrival_ns)
        stats = self.ingest.stats
        lost = stats.datagrams_lost - self._lost_seen
        if lost > 0:
            m.datagrams_lost.inc(lost)
            m.datagram_gaps.inc()
        self._lost_seen = stats.datagrams_lost

    def _link_changed(self, status) -> None:
        self.metrics.link_up.set(1 if status.state == "OK" else 0)
        self.hub.set_link(status.as_dict(), now_ns())
        log_event("link", state=status.state, reason=status.reason)

    # -- periodic -----------------------------------------------------------------
    def tick(self) -> None:
        t0 = time.perf_counter()
        now = now_ns()
        before = self.hub.stats.deliveries
        encoded = self.hub.tick(now)
        if encoded:
            self.metrics.tick_seconds.observe(time.perf_counter() - t0)
            self.metrics.frames_encoded.inc(encoded)
            self.metrics.deliveries.inc(self.hub.stats.deliveries - before)
            if self.hub.last_arrival_ns:
                self.metrics.age_seconds.observe(max(now - self.hub.last_arrival_ns, 0) / 1e9)

    def _set_source(self, source: dict, now: int, announce: bool) -> None:
        self.hub.source = source
        if announce:
            self.hub.broadcast({"type": "source", "source": source}, now)

    def housekeeping(self) -> None:
        now = now_ns()
        if self.hub.source.get("replay") and now - self._replay_seen_ns > 3_000_000_000:
            log_event("replay_ended")
            self._set_source({"replay": False}, now, announce=True)
        changed = self.link.check(now)
        if changed is not None:
            self._link_changed(changed)
        for ev in self.notices.due(now):  # damaged packets, UDP senders: at most one of each a second
            log_event(ev["type"], logging.WARNING, message=ev["message"])
            self.hub.broadcast(ev, now)
        if self.udp_sources.refused != self._refused_seen:
            log_event("udp_source_refused", logging.WARNING, refused=self.udp_sources.refused - self._refused_seen,
                      last=self.udp_sources.last_refused)
            self._refused_seen = self.udp_sources.refused
        self.console_housekeeping(now)
        if now - self._bus_monitor_sent_ns >= 1_000_000_000:
            self._bus_monitor_sent_ns = now
            self.send_bus_monitor(now)

    def send_bus_monitor(self, now: int) -> None:
        """The bus monitor snapshot, once a second, to the consoles that asked for it."""
        watching = [s for s in self.hub.sessions.values() if s.bus_monitor]
        if not watching:
            return
        message = {"type": "bus_monitor", "t": now, **self.ingest.bus_monitor()}
        for s in watching:
            s.send(message, now)

    def console_housekeeping(self, now: int) -> None:
        """Console metrics, closing consoles whose token expired, the rate-limited logs' summaries."""
        flush_log_summaries()
        mono = time.monotonic()
        if self._last_housekeeping is not None:
            self.metrics.loop_lag_seconds.observe(max(mono - self._last_housekeeping - 0.1, 0.0))
        self._last_housekeeping = mono
        depth = max((len(s.outbox) for s in self.hub.sessions.values()), default=0)
        self.metrics.queue_depth.set(depth)
        self.metrics.consoles.set(len(self.hub.sessions))
        for s in list(self.hub.sessions.values()):
            exp = s.principal.expires_at
            if exp is not None and exp * 1e9 < now and s.id in self.closers:
                self.closers[s.id](CLOSE_UNAUTHORIZED, "token expired")

    def _close_slow(self, session, reason: str) -> None:
        close = self.closers.get(session.id)
        if close is not None:
            self.metrics.slow_closes.inc()
            log_event("console_too_slow", session=session.id, user=session.principal.user, reason=reason)
            close(CLOSE_TOO_SLOW, f"too slow: {reason}"[:120])

    def add_periodic(self, fn: Callable[[], None], interval_s: float) -> None:
        """Run ``fn`` every ``interval_s`` once started (and at once if already started)."""
        cb = PeriodicCallback(fn, interval_s * 1000)
        self._periodic.append(cb)
        if self._started:
            cb.start()

    def start_periodic(self, tick: bool = True) -> None:
        if tick:
            self._periodic.append(PeriodicCallback(self.tick, self.config.tick_interval_s * 1000))
        self._periodic.append(PeriodicCallback(self.housekeeping, 100))
        self._started = True
        for p in self._periodic:
            p.start()

    def start_recording(self, folder: str, fsync: bool = False) -> None:
        """Record every datagram's packets and samples and every console event into ``folder``."""
        from recorder.service import RecorderService  # h5py only when recording

        from .backfill import Backfiller

        # a session a killed server left open (within 10 min) goes on in a new segment file
        rec = self.recorder = RecorderService(folder, fsync=fsync, resume_within_s=600.0)
        self.packet_listeners.append(rec.on_ingest)
        self.hub.backfill_provider = Backfiller(self.hub, rec)  # consoles' since_ns: from the recording

        def on_event(ev: dict, t_ns: int) -> None:
            if ev.get("type") == "command":
                rec.on_command(ev["record"], t_ns)
            elif ev.get("type") in ("alarm", "link", "authority", "arm", "recorder", "integrity", "udp_sender"):
                rec.on_event(ev, t_ns)

        self.hub.event_listeners.append(on_event)

        def flush() -> None:
            for ev in rec.flush_due():
                level = logging.ERROR if ev.get("state") == "error" else logging.INFO
                log_event("recorder", level, **{k: v for k, v in ev.items() if k != "type"})
                self.hub.broadcast(ev, now_ns())  # an error reaches every console; live data goes on

        self.add_periodic(flush, 0.1)
        Gauge("gs_recorder_flush_age_seconds", "time since the recorder's last flush (what a crash would lose)",
              registry=self.metrics.registry).set_function(lambda: rec.flush_age_s() or 0.0)
        log_event("recording", folder=str(rec.folder), session=rec.session, index=str(rec.index_path),
                  resumed=rec.writer.resumed)

    async def stop(self) -> None:
        """Stop the periodic tasks and close the recorder (its final write runs off the event loop)."""
        for p in self._periodic:
            p.stop()
        if self.recorder is not None:
            await self.recorder.aclose()
        if self.transport is not None:
            self.transport.close()

    def health(self) -> dict:
        s = self.ingest.stats
        udp = self.ingest.udp.stats
        cfg = self.ingest.config
        return {
            "status": "ok",
            "uptime_s": round((now_ns() - self.started_ns) / 1e9, 3),
            "link": self.link.status.as_dict(),
            "configured": None if cfg is None else {
                "channel": cfg.channel_id, "source": cfg.source, "parameters": len(cfg.db.parameters),
                "version": cfg.version, "channels": {
                    "pcm": sorted(c for c in cfg.db.pcm if c >= 0),  # PCM links decoded (with parameters or not)
                    **{kind: sorted({c for k, c in zip(cfg.db.kinds, cfg.db.channels) if k == kind})
                       for kind in ("1553", "429")}}},  # bus channels with parameters (all are monitored)
            "bus_monitor": self.ingest.bus_monitor(),
            "consoles": len(self.hub.sessions),
            "connections": {"open": self.connection_limiter.total, "max": self.config.max_connections or None,
                            "refused": self.connection_limiter.refused},
            "ingest": s.as_dict(),
            "udp": {"gaps": udp.gaps, "lost": udp.lost_datagrams, "duplicates": udp.duplicates,
                    "refused_sources": self.udp_sources.refused, "last_refused_source": self.udp_sources.last_refused,
                    **self.ingest.udp.status(limit=4)},
            "integrity": {"checksum_errors": s.checksum_errors, "damaged_spans": s.damaged_spans,
                          "strict_checksums": self.config.strict_checksums},
            "recorder": self.recorder.status() if self.recorder is not None else None,
            "bus": self.bus.status() if self.bus is not None else None,
        }
