"""The backfill shell: a console's missed interval read from the recording, replied at its pace.

``Backfiller`` is the hub's ``backfill_provider`` when the station records. A
request (``subscribe`` with ``since_ns``, or ``backfill``) is clipped to the
retention window (``console.backfill.plan``), read by the recorder's worker
thread from the session's files and its buffers (``RecorderService.read_recent``,
never on the event loop) into ``console.backfill.Buckets``, and sent as
``backfill`` messages followed by ``backfill_done``. Replies are events (never
dropped), so they are queued only while the console's outbox holds less than
``max_queued_bytes``: a long backfill never pushes a console over its bounds.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from ..console.backfill import DEFAULT_RETENTION_S, Buckets, messages, plan

__all__ = ["Backfiller"]


class Backfiller:
    def __init__(self, hub, recorder, *, retention_s: float = DEFAULT_RETENTION_S, max_pending: int = 4,
                 max_queued_bytes: int = 1 << 20) -> None:
        self.hub = hub
        self.recorder = recorder
        self.retention_s = retention_s
        self.max_pending = max_pending
        self.max_queued_bytes = max_queued_bytes
        self.pending = 0
        self.served = 0
        self.refused = 0

    def __call__(self, session, sub, since_ns: int, request_id: int | None, now_ns: int) -> None:
        """Start one backfill (on the event loop); an ``error`` reply if too many are running."""
        if self.pending >= self.max_pending:
            self.refused += 1
            session.send({"type": "error", "id": request_id, "code": "backfill_busy",
                          "message": f"{self.pending} backfills are running; ask again in a few seconds"}, now_ns)
            return
        latest = self.hub.latest
        ids = sub.ids[latest.seen[sub.ids]] if len(sub.ids) else sub.ids
        newest = int(latest.t_ns[ids].max()) if len(ids) else now_ns
        p = plan(sub.id, request_id, sub.rate, since_ns, newest, self.retention_s)
        names = {self.hub.catalog.entries[i].name: int(i) for i in np.asarray(sub.ids).tolist()}
        buckets = Buckets(sub.rate, p.from_ns)
        try:
            fut = self.recorder.read_recent(names, p.from_ns, buckets.add)
        except RuntimeError as exc:
            session.send({"type": "error", "id": request_id, "code": "backfill_unavailable", "message": str(exc)},
                         now_ns)
            return
        self.pending += 1
        asyncio.ensure_future(self._reply(session, p, buckets, fut))

    async def _reply(self, session, p, buckets: Buckets, fut) -> None:
        try:
            try:
                await asyncio.wrap_future(fut)
            except Exception as exc:  # an unreadable file: the console is told, the server goes on
                session.send({"type": "error", "id": p.request_id, "code": "backfill_failed",
                              "message": f"cannot read the recording: {exc}"}, time.time_ns())
                return
            for m in messages(p, buckets.result(), until_ns=time.time_ns()):
                while session.outbox.bytes > self.max_queued_bytes and self._open(session):
                    await asyncio.sleep(0.02)
                if not self._open(session):
                    return
                session.send(m, time.time_ns())
            self.served += 1
        finally:
            self.pending -= 1

    def _open(self, session) -> bool:
        if getattr(session, "remote", False):  # a console on an edge node: its node paces it
            return True
        return self.hub.sessions.get(session.id) is session and not session.outbox.close_reason
