"""Structured logs that cannot hurt the server: one JSON object per line on stderr.

Every line is JSON, whoever logs it (our code, Tornado, asyncio's "Task
exception was never retrieved"), and every line is redacted: ``token=`` query
values, ``Authorization`` values and anything shaped like a JWT never reach the
log. Records are formatted on the caller's thread and handed to a bounded
queue (``QueueHandler``); a ``QueueListener`` thread writes them. A stderr that
is slow or not read at all then blocks that thread, never the event loop: past
``QUEUE_LINES`` waiting lines new ones are dropped and counted
(:func:`log_stats`, ``gs_log_lines_dropped`` in ``/metrics``), and the writer
says how many once it can write again.

Lines that an attacker can cause at will (decode errors, refused handshakes and
requests) go through :func:`log_throttled` / :func:`audit_throttled`: the first
``LogThrottle.burst`` per reason per interval in full, the rest counted and
reported as one summary line per reason and interval (:func:`flush_log_summaries`,
called by the station's housekeeping). Lines from other libraries are throttled
the same way, per logger and message template.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from logging.handlers import QueueHandler, QueueListener
from typing import IO

__all__ = ["setup_logging", "log_event", "audit_event", "log_throttled", "audit_throttled", "flush_log_summaries",
           "log_stats", "redact", "JsonFormatter", "LogThrottle"]

logger = logging.getLogger("groundstation")
audit_logger = logging.getLogger("groundstation.audit")  # always on, whatever the log level

QUEUE_LINES = 10_000  # lines waiting for a slow stderr before new ones are dropped
FOREIGN_LOGGERS = ("tornado.access", "tornado.application", "tornado.general", "asyncio")

_SECRETS = re.compile(
    r"(?i)((?:access_|gs_)?token=)[^&\s\"'\\;]+"  # token=..., gs_token=... (query strings, cookies)
    r"|(authorization\W{1,6}(?:(?:bearer|basic)\s+)?)[^\s\"',}\\]+"  # Authorization: Bearer ...
    r"|eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")  # anything shaped like a JWT


_DIGITS = re.compile(r"\d+")


def _redacted(m: re.Match) -> str:
    prefix = m.group(1) or m.group(2)
    return f"{prefix}<redacted>" if prefix else "<redacted>"


def redact(text: str) -> str:
    """``text`` with token values, ``Authorization`` values and JWT-shaped strings replaced."""
    if "oken" not in text and "uthorization" not in text and "eyJ" not in text:
        return text
    return _SECRETS.sub(_redacted, text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``event``, the record's fields; redacted."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": self._message(record),
        }
        if not record.name.startswith(logger.name):
            out["logger"] = record.name
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        try:
            line = json.dumps(out, default=str, allow_nan=False)
        except (ValueError, TypeError, RecursionError):  # NaN, nesting past the recursion limit, odd keys
            line = json.dumps(_plain(out, 0))
        return redact(line)

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        try:
            return record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            return str(record.msg)


def _plain(v, depth: int):
    """``v`` as strict JSON can hold it: non-finite floats as strings, nesting cut at 16 levels."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if depth >= 16:
        return "..."
    if isinstance(v, dict):
        return {str(k): _plain(x, depth + 1) for k, x in list(v.items())[:1000]}
    if isinstance(v, (list, tuple)):
        return [_plain(x, depth + 1) for x in v[:1000]]
    return str(v)[:2000]


@dataclass
class LogStats:
    dropped: int = 0  # lines dropped because the queue was full (stderr not keeping up)
    suppressed: int = 0  # lines summarised by the rate limit instead of written
    reported_dropped: int = 0  # dropped lines already reported in a line of their own


_stats = LogStats()


def log_stats() -> LogStats:
    """What the logging has had to leave out, since the process started."""
    return _stats


class _BoundedQueueHandler(QueueHandler):
    """``QueueHandler`` on a bounded queue: a full queue drops the record (counted), never blocks."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.queue.full():  # don't even format what cannot be written
            _stats.dropped += 1
            return
        try:
            self.queue.put_nowait(self.prepare(record))
        except queue.Full:
            _stats.dropped += 1
        except Exception:  # noqa: BLE001 - logging must never raise into the server, nor write around the queue
            _stats.dropped += 1


class _LineWriter:
    """The listener's output: each formatted line to ``stream``; says when lines were dropped.

    Not a ``logging.Handler``, so ``logging.shutdown()`` at exit never waits on a blocked stream."""

    level = logging.NOTSET

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def handle(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(f"{record.msg}\n")
            if _stats.dropped != _stats.reported_dropped:
                n, _stats.reported_dropped = _stats.dropped - _stats.reported_dropped, _stats.dropped
                ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                self.stream.write(json.dumps({"ts": ts, "level": "warning", "event": "log_lines_dropped",
                                              "dropped": n, "dropped_total": _stats.dropped}) + "\n")
            self.stream.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stderr: the line is lost, the server goes on
            _stats.dropped += 1


class _Listener(QueueListener):
    def stop_within(self, timeout_s: float) -> None:
        """Write what is queued, waiting at most ``timeout_s`` (a blocked stderr must not hang the exit)."""
        thread = self._thread
        if thread is None:
            return
        try:
            self.queue.put(self._sentinel, timeout=timeout_s)
        except queue.Full:
            return
        thread.join(timeout_s)
        self._thread = None


_listener: _Listener | None = None


def _stop_listener() -> None:
    global _listener
    if _listener is not None:
        _listener.stop_within(2.0)
        _listener = None


class LogThrottle:
    """Per-key line budget (sans-I/O): ``burst`` lines per key per ``interval_s`` in full, the rest
    counted; ``due(now)`` returns the counts of every interval that has ended with lines suppressed.
    At most ``max_keys`` keys are tracked (more share the key ``"other"``), so hostile input that
    varies its reasons cannot grow it."""

    def __init__(self, burst: int = 5, interval_s: float = 10.0, max_keys: int = 512) -> None:
        self.burst = burst
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._windows: dict[tuple, list] = {}  # key -> [window start, lines passed, lines suppressed, fields]
        self._lock = threading.Lock()

    def admit(self, key: tuple, now: float, fields: dict | None = None) -> bool:
        """True if a line for ``key`` may be written now; False: it was counted for the summary."""
        with self._lock:
            w = self._windows.get(key)
            if w is None:
                if len(self._windows) >= self.max_keys:
                    key = ("other",)
                    w = self._windows.get(key)
                if w is None:
                    w = self._windows[key] = [now, 0, 0, fields or {}]
            if w[1] < self.burst:
                w[1] += 1
                return True
            w[2] += 1
            return False

    def due(self, now: float) -> list[tuple[tuple, int, dict]]:
        """``(key, suppressed, fields of the first line)`` for each ended interval that suppressed lines;
        ended intervals are forgotten (a key's next line starts a new one)."""
        out = []
        with self._lock:
            for key, w in list(self._windows.items()):
                if now - w[0] >= self.interval_s:
                    del self._windows[key]
                    if w[2]:
                        out.append((key, w[2], w[3]))
        return out


_throttle = LogThrottle()


class _ForeignThrottle(logging.Filter):
    """Lines from other libraries (Tornado, asyncio), throttled per logger and message template."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(logger.name):
            return True
        key = ("foreign", record.name, _DIGITS.sub("#", str(record.msg)[:120])[:80])  # "Task-99" = "Task-#"
        if _throttle.admit(key, time.monotonic(), {"logger": record.name, "template": str(record.msg)[:200]}):
            return True
        _stats.suppressed += 1
        return False


def setup_logging(level: str = "info", stream: IO[str] | None = None) -> None:
    """JSON lines on ``stream`` (stderr) through a bounded queue, for our loggers and the libraries'."""
    global _listener
    _stop_listener()
    q: queue.Queue = queue.Queue(QUEUE_LINES)
    handler = _BoundedQueueHandler(q)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_ForeignThrottle())
    _listener = _Listener(q, _LineWriter(stream or sys.stderr))
    _listener.start()
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    audit_logger.handlers[:] = []  # its lines go to the groundstation handler, whatever the level
    audit_logger.setLevel(logging.INFO)
    audit_logger.propagate = True
    for name in FOREIGN_LOGGERS:
        logging.getLogger(name).handlers[:] = [handler]
        logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger(name).propagate = False
    root = logging.getLogger()
    root.handlers[:] = [handler]  # anything else (warnings, other libraries): JSON too
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)


atexit.register(_stop_listener)  # registered after logging's own exit hook, so it runs first


def log_event(event: str, level: int = logging.INFO, **fields) -> None:
    """Log ``event`` with structured fields."""
    logger.log(level, event, extra={"fields": fields})


def audit_event(event: str, **fields) -> None:
    """An audit line (command attempts, authority): logged whatever the log level."""
    if "ts" in fields:  # keep the formatter's ISO time; the caller's clock goes beside it
        fields["ts_ns"] = fields.pop("ts")
    audit_logger.info(event, extra={"fields": {"audit": True, **fields}})


def log_throttled(event: str, key: str, level: int = logging.WARNING, **fields) -> None:
    """``log_event``, limited per ``(event, key)`` (``key``: the kind of reason): the rest of the
    interval is one summary line."""
    if _throttle.admit((event, key), time.monotonic(), {"audit": False, "level": level}):
        log_event(event, level, **fields)
    else:
        _stats.suppressed += 1


def audit_throttled(event: str, code: str, **fields) -> None:
    """``audit_event``, limited per ``(event, code)``: the rest of the interval is one summary audit line."""
    if _throttle.admit((event, code), time.monotonic(), {"audit": True, "level": logging.INFO}):
        audit_event(event, code=code, **fields)
    else:
        _stats.suppressed += 1


def flush_log_summaries(now: float | None = None) -> int:
    """Write one summary line per reason whose interval ended with lines suppressed; returns how many."""
    due = _throttle.due(time.monotonic() if now is None else now)
    for key, n, first in due:
        summary = {"suppressed": n, "interval_s": _throttle.interval_s, "summary": True}
        if key[0] == "foreign":
            log_event("log_lines_suppressed", logging.WARNING, logger=first.get("logger"),
                      template=first.get("template"), **summary)
        elif first.get("audit"):
            audit_event(key[0], code=key[1] if len(key) > 1 else None, **summary)
        else:
            log_event(key[0], first.get("level", logging.WARNING), kind=key[1] if len(key) > 1 else None,
                      **summary)
    return len(due)
