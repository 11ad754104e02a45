"""``/api/alert`` and ``/api/consoles``: targeted alerts and the console registry over HTTP.

An engineer, director or admin sends an alert to console positions or users;
the registry says which consoles those are on which node, and each node gets
one message naming its sessions. The reply lists who got it.
"""

from __future__ import annotations

import logging

from ..logs import audit_event, log_event
from ..targeting import AlertError, by_node, parse_alert, select
from .api import ApiHandler
from .station import GroundStation, now_ns

__all__ = ["alert_handlers"]

MAX_BODY = 8 * 1024


class _RegistryHandler(ApiHandler):
    min_role = "engineer"
    refused_event = "api_refused"

    def initialize(self, station: GroundStation) -> None:
        self.station = station


class ConsolesApi(_RegistryHandler):
    async def get(self) -> None:
        self.reply({"consoles": await self.station.bus.consoles()})


class AlertApi(_RegistryHandler):
    async def post(self) -> None:
        body = self.json_body(MAX_BODY)
        if body is None:
            return
        try:
            alert = parse_alert(body, self.principal.user, now_ns())
        except AlertError as exc:
            self.reply({"type": "error", "code": "bad_alert", "message": str(exc)}, 400)
            return
        targets = select(await self.station.bus.consoles(), alert)
        for node, sessions in by_node(targets).items():
            self.station.bus.to_node(node, {"type": "deliver", "sessions": sessions, "message": alert.as_wire()},
                                    reliable=True)
        audit_event("alert", alert=alert.id, user=alert.sender, severity=alert.severity,
                    positions=list(alert.positions), users=list(alert.users), delivered=len(targets))
        if not targets:
            log_event("alert_undelivered", logging.WARNING, alert=alert.id, positions=list(alert.positions),
                      users=list(alert.users))
        self.reply({"alert": alert.id, "delivered": len(targets),
                    "consoles": [{k: t.get(k) for k in ("node", "conn", "user", "position")} for t in targets]},
                   200 if targets else 404)


def alert_handlers(station: GroundStation) -> list:
    args = {"station": station}
    return [(r"/api/alert", AlertApi, args), (r"/api/consoles", ConsolesApi, args)]
