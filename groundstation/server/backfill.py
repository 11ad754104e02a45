"""The backfill shell: a console's missed interval read from the recording, replied at its pace.

``Backfiller`` is the hub's ``backfill_provider`` when the station records. A
request (``subscribe`` with ``since_ns``, or ``backfill``) is clipped to the
retention window (``console.backfill.plan``), read by the recorder's worker
thread from the session's files and its buffers (``RecorderService.read_recent``,
never on the event loop, with a bounded share of the worker that flushes always
go before) into ``console.backfill.Buckets``, reduced there too, and sent as
``backfill`` messages followed by ``backfill_done``. Replies are events (never
dropped), so they are queued only while the console's outbox holds less than
``max_queued_bytes``: a long backfill never pushes a console over its bounds.

Slots are shared fairly: at most ``max_pending`` backfills run on the server and
at most ``max_per_user`` of them for one user (over all their connections), so
one user re-requesting on many connections cannot keep everyone else at
``backfill_busy``. A console that goes away stops its read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import Counter

import numpy as np

from ..console.backfill import DEFAULT_RETENTION_S, Buckets, messages, plan

__all__ = ["Backfiller"]


class Backfiller:
    def __init__(self, hub, recorder, *, retention_s: float = DEFAULT_RETENTION_S, max_pending: int = 4,
                 max_per_user: int = 1, max_queued_bytes: int = 1 << 20) -> None:
        self.hub = hub
        self.recorder = recorder
        self.retention_s = retention_s
        self.max_pending = max_pending
        self.max_per_user = max_per_user
        self.max_queued_bytes = max_queued_bytes
        self.pending = 0
        self.by_user: Counter[str] = Counter()  # running backfills per user
        self.served = 0
        self.refused = 0

    @staticmethod
    def user_of(session) -> str:
        """Whose slots a backfill takes: its user's (per connection if anonymous, see ``Principal``)."""
        p = getattr(session, "principal", None)
        if p is None or not p.user or p.anonymous:
            return f"session {getattr(session, 'node', '')}:{session.id}"
        return f"user {p.user}"

    def __call__(self, session, sub, since_ns: int, request_id: int | None, now_ns: int) -> None:
        """Start one backfill (on the event loop); an ``error`` reply if too many are running (on the
        server, or for this user)."""
        user = self.user_of(session)
        busy = None
        if self.by_user[user] >= self.max_per_user:
            busy = (f"{self.by_user[user]} backfill(s) of {user} running, at most {self.max_per_user} per user; "
                    f"ask again when it is done", "user")
        elif self.pending >= self.max_pending:
            busy = f"{self.pending} backfills are running; ask again in a few seconds", "server"
        if busy is not None:
            self.refused += 1
            session.send({"type": "error", "id": request_id, "code": "backfill_busy", "message": busy[0],
                          "scope": busy[1]}, now_ns)
            return
        latest = self.hub.latest
        ids = sub.ids[latest.seen[sub.ids]] if len(sub.ids) else sub.ids
        newest = int(latest.t_ns[ids].max()) if len(ids) else now_ns
        p = plan(sub.id, request_id, sub.rate, since_ns, newest, self.retention_s)
        names = {self.hub.catalog.entries[i].name: int(i) for i in np.asarray(sub.ids).tolist()}
        buckets = Buckets(sub.rate, p.from_ns)
        try:  # read and reduced in the recorder's worker: nothing of it on the event loop
            fut = self.recorder.read_recent(names, p.from_ns, buckets.add, then=lambda _counts: buckets.result())
        except RuntimeError as exc:
            session.send({"type": "error", "id": request_id, "code": "backfill_unavailable", "message": str(exc)},
                         now_ns)
            return
        self.pending += 1
        self.by_user[user] += 1
        asyncio.ensure_future(self._reply(session, user, p, fut))

    async def _reply(self, session, user: str, p, fut) -> None:
        try:
            try:
                while not fut.done():  # (polled: a console that leaves stops the read)
                    if not self._open(session):
                        fut.cancel()
                        return
                    await asyncio.sleep(0.05)
                result = fut.result()
            except concurrent.futures.CancelledError:  # the recorder closed
                return
            except Exception as exc:  # an unreadable file: the console is told, the server goes on
                session.send({"type": "error", "id": p.request_id, "code": "backfill_failed",
                              "message": f"cannot read the recording: {exc}"}, time.time_ns())
                return
            for m in messages(p, result, until_ns=time.time_ns()):
                while session.outbox.bytes > self.max_queued_bytes and self._open(session):
                    await asyncio.sleep(0.02)
                if not self._open(session):
                    return
                session.send(m, time.time_ns())
            self.served += 1
        finally:
            self.pending -= 1
            self.by_user[user] -= 1
            if self.by_user[user] <= 0:
                del self.by_user[user]

    def _open(self, session) -> bool:
        if getattr(session, "remote", False):  # a console on an edge node: its node paces it
            return True
        return self.hub.sessions.get(session.id) is session and not session.outbox.close_reason
