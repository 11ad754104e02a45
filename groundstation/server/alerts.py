"""``/api/alert`` and ``/api/consoles``: targeted alerts and the console registry over HTTP.

An engineer, director or admin sends an alert to console positions or users;
the registry says which consoles those are on which node, and each node gets
one message naming its sessions. The reply lists who got it.
"""

from __future__ import annotations

import json
import logging

from tornado.web import HTTPError, RequestHandler

from ..logs import audit_event, log_event
from ..targeting import AlertError, by_node, parse_alert, select
from .station import GroundStation, now_ns

__all__ = ["alert_handlers"]

MAX_BODY = 8 * 1024


class _RegistryHandler(RequestHandler):
    def initialize(self, station: GroundStation) -> None:
        self.station = station

    def prepare(self) -> None:
        from .app import authorize  # late import: app imports this module

        self.principal = authorize(self.station, self, "engineer", "api_refused")

    def _json(self, obj, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(obj, default=str))


class ConsolesApi(_RegistryHandler):
    async def get(self) -> None:
        self._json({"consoles": await self.station.bus.consoles()})


class AlertApi(_RegistryHandler):
    async def post(self) -> None:
        if len(self.request.body) > MAX_BODY:
            raise HTTPError(413, reason=f"body larger than {MAX_BODY} bytes")
        try:
            alert = parse_alert(json.loads(self.request.body or b"{}"), self.principal.user, now_ns())
        except (AlertError, ValueError) as exc:
            self._json({"type": "error", "code": "bad_alert", "message": str(exc)}, 400)
            return
        targets = select(await self.station.bus.consoles(), alert)
        for node, sessions in by_node(targets).items():
            self.station.bus.to_node(node, {"type": "deliver", "sessions": sessions, "message": alert.as_wire()})
        audit_event("alert", alert=alert.id, user=alert.sender, severity=alert.severity,
                    positions=list(alert.positions), users=list(alert.users), delivered=len(targets))
        if not targets:
            log_event("alert_undelivered", logging.WARNING, alert=alert.id, positions=list(alert.positions),
                      users=list(alert.users))
        self._json({"alert": alert.id, "delivered": len(targets),
                    "consoles": [{k: t.get(k) for k in ("node", "conn", "user", "position")} for t in targets]},
                   200 if targets else 404)


def alert_handlers(station: GroundStation) -> list:
    args = {"station": station}
    return [(r"/api/alert", AlertApi, args), (r"/api/consoles", ConsolesApi, args)]
