"""Structured logs: one JSON object per line on stderr."""

from __future__ import annotations

import json
import logging
import sys
import time

__all__ = ["setup_logging", "log_event", "audit_event"]

logger = logging.getLogger("groundstation")
audit_logger = logging.getLogger("groundstation.audit")  # always on, whatever the log level


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    audit_logger.handlers[:] = [handler]
    audit_logger.setLevel(logging.INFO)
    audit_logger.propagate = False
    for name in ("tornado.access", "tornado.application", "tornado.general"):
        logging.getLogger(name).handlers[:] = [handler]
        logging.getLogger(name).setLevel(logging.WARNING)


def log_event(event: str, level: int = logging.INFO, **fields) -> None:
    """Log ``event`` with structured fields."""
    logger.log(level, event, extra={"fields": fields})


def audit_event(event: str, **fields) -> None:
    """An audit line (command attempts, authority): logged whatever the log level."""
    if "ts" in fields:  # keep the formatter's ISO time; the caller's clock goes beside it
        fields["ts_ns"] = fields.pop("ts")
    audit_logger.info(event, extra={"fields": {"audit": True, **fields}})
