"""The HTTP API's shared shell: request rate per address and per user, strict JSON bodies, JSON replies.

``ApiHandler`` is the base of ``/api/commands``, ``/api/alert`` and the other
``/api/*`` handlers. Before anything else a request is counted against its
address's rate, then authorized (``app.authorize``), then counted against its
user's rate (:class:`RequestRates`, token buckets from :mod:`.limits`); over
either rate it gets HTTP 429 with ``Retry-After`` and a JSON ``error``
``rate_limited`` (audited, rate-limited like every refusal). Bodies are parsed
by :func:`..strict_json.loads_strict`: a body that is too large, not JSON,
non-finite or nested too deep is a 400 (413 for size) with a reason, never a 500.
"""

from __future__ import annotations

import json
import math
import time

from tornado.web import RequestHandler

from ..strict_json import JsonRefused, loads_strict
from .limits import MessageRate, Refusal, audit_refusal

__all__ = ["ApiHandler", "RequestRates"]


class RequestRates:
    """Token buckets per key (an address, a user) for HTTP API requests (sans-I/O): ``rate`` per
    second, bursts of twice that (``rate`` 0 = no limit). At most ``max_keys`` buckets are kept (the
    least recently used go first), so requests from many addresses cannot grow it."""

    def __init__(self, rate: float, max_keys: int = 4096) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: dict[str, MessageRate] = {}
        self.refused = 0

    def check(self, key: str, now_s: float, what: str) -> Refusal | None:
        """None if one more request for ``key`` may go ahead at ``now_s``, else the refusal (counted)."""
        if not self.rate:
            return None
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = MessageRate(self.rate, close_after=math.inf)
            while len(self._buckets) >= self.max_keys:
                del self._buckets[next(iter(self._buckets))]
        self._buckets[key] = bucket  # (re)inserted last: the dict is in least-recently-used order
        if bucket.check(now_s).action == "ok":
            return None
        self.refused += 1
        return Refusal("rate_limited", f"more than {self.rate:g} API requests per second {what} "
                                       f"(bursts of {bucket.burst:g}); try again later")

    def retry_after_s(self) -> int:
        """Whole seconds a refused client should wait (one request's worth of tokens, at least 1 s)."""
        return max(1, math.ceil(1 / self.rate)) if self.rate else 1


class ApiHandler(RequestHandler):
    """Base of the ``/api/*`` handlers: set ``min_role`` and ``refused_event``; ``self.station`` is set
    by ``initialize`` of the subclass."""

    min_role = "engineer"
    refused_event = "api_refused"
    station = None

    def prepare(self) -> None:
        from .app import authorize  # late import: app imports the modules that import this one

        rates = self.station.api_rates
        if self._over_rate(rates.check(f"addr:{self.request.remote_ip}", time.monotonic(), "from this address")):
            return
        self.principal = authorize(self.station, self, self.min_role, self.refused_event)
        self._over_rate(rates.check(f"user:{self.principal.user}", time.monotonic(), "for this user"))

    def _over_rate(self, refusal: Refusal | None) -> bool:
        if refusal is None:
            return False
        self.station.metrics.api_rate_limited.inc()
        audit_refusal(self.refused_event, refusal.code, refusal.reason, path=self.request.path,
                      remote=self.request.remote_ip, user=getattr(getattr(self, "principal", None), "user", None))
        self.set_header("Retry-After", str(self.station.api_rates.retry_after_s()))
        self.reply({"type": "error", "id": None, "code": refusal.code, "message": refusal.reason}, 429)
        self.finish()
        return True

    def json_body(self, max_bytes: int) -> dict | None:
        """The request body as a JSON object (empty = ``{}``); None if refused (the 4xx reply is written)."""
        try:
            body = loads_strict(self.request.body or b"{}", max_bytes)
        except JsonRefused as exc:
            self.reply({"type": "error", "id": None, "code": exc.code, "message": f"body refused: {exc}"},
                       413 if exc.code == "too_large" else 400)
            return None
        if not isinstance(body, dict):
            self.reply({"type": "error", "id": None, "code": "bad_message", "message": "the body must be a JSON "
                        "object"}, 400)
            return None
        return body

    def reply(self, obj, status: int = 200) -> None:
        """``obj`` as the JSON reply (finite numbers only: nothing non-finite was accepted)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(obj, default=str))
