"""Prometheus metrics of one ground station (own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

from .ingest.core import ERROR_REASONS
from .logs import log_stats

__all__ = ["Metrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.datagrams = Counter("gs_datagrams", "UDP datagrams received", registry=r)
        self.datagram_bytes = Counter("gs_datagram_bytes", "UDP bytes received", registry=r)
        self.datagram_gaps = Counter("gs_datagram_gaps", "UDP sequence gaps", registry=r)
        self.datagrams_lost = Counter("gs_datagrams_lost", "datagrams missing from the UDP sequence", registry=r)
        self.frames = Counter("gs_minor_frames", "PCM minor frames decoded", registry=r)
        self.samples = Counter("gs_samples", "parameter samples decoded", registry=r)
        self.decode_errors = Counter("gs_decode_errors", "decode errors (any layer)", registry=r)
        self.decode_errors_by_reason = Counter("gs_decode_errors_by_reason", "decode errors by reason class",
                                               ["reason"], registry=r)
        # bounded: these labels and no others (children kept: a flood of errors costs a dict lookup each)
        self._by_reason = {reason: self.decode_errors_by_reason.labels(reason) for reason in (*ERROR_REASONS, "other")}
        self.consoles = Gauge("gs_consoles", "console WebSocket sessions open", registry=r)
        self.queue_depth = Gauge("gs_console_queue_max", "largest console send queue (frames)", registry=r)
        self.drops = Counter("gs_console_frames_conflated", "telemetry frames conflated for slow consoles",
                             registry=r)
        self.slow_closes = Counter("gs_console_slow_closes", "consoles closed for being too slow", registry=r)
        self.frames_encoded = Counter("gs_frames_encoded", "telemetry frames encoded (once per tier and group)",
                                      registry=r)
        self.deliveries = Counter("gs_deliveries", "telemetry bundles queued to consoles", registry=r)
        self.decode_seconds = Histogram("gs_decode_seconds", "time to decode one datagram", registry=r,
                                        buckets=LATENCY_BUCKETS)
        self.tick_seconds = Histogram("gs_tick_seconds", "time to encode and queue one tick", registry=r,
                                      buckets=LATENCY_BUCKETS)
        self.age_seconds = Histogram("gs_frame_age_seconds", "datagram arrival to frame queued", registry=r,
                                     buckets=LATENCY_BUCKETS)
        self.loop_lag_seconds = Histogram("gs_loop_lag_seconds", "event-loop lateness of the 100 ms housekeeping",
                                          registry=r, buckets=LATENCY_BUCKETS)
        self.link_up = Gauge("gs_link_up", "1 while telemetry flows", registry=r)
        self.auth_refusals = Counter("gs_auth_refusals", "connections refused (token or origin)", registry=r)
        self.api_rate_limited = Counter("gs_api_rate_limited", "HTTP API requests refused with 429", registry=r)
        self.accept_errors = Counter("gs_accept_errors", "failed accept() calls (e.g. EMFILE), each followed by "
                                     "a pause", registry=r)
        r.register(_LogCollector())

    def decode_error(self, reason: str) -> None:
        """Count one decode error under its reason class (``ERROR_REASONS``, else ``other``)."""
        by = self._by_reason
        (by.get(reason) or by["other"]).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LogCollector:
    """The logging's own counters (process-wide): lines dropped by a full queue, lines summarised."""

    def collect(self):
        stats = log_stats()
        yield CounterMetricFamily("gs_log_lines_dropped", "log lines dropped: the log queue was full (stderr "
                                  "not keeping up)", value=stats.dropped)
        yield CounterMetricFamily("gs_log_lines_suppressed", "log lines left out by the per-reason rate limit "
                                  "(counted in summary lines)", value=stats.suppressed)
