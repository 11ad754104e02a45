"""The recorder as the ground station uses it: cheap calls on the event loop, writes in a thread.

::

    rec = RecorderService(folder)
    station.packet_listeners.append(rec.on_ingest)    # every datagram: only buffers
    rec.on_event({"type": "alarm", ...})              # alarms, link, anything with a "type"
    rec.on_command(record.as_wire())                  # command history
    events = rec.flush_due(now_ns)                    # periodically (e.g. every 100 ms)
    rec.status()                                      # health
    fut = rec.read_recent(ids_by_name, from_ns, sink) # backfill: files + memory, in the worker's spare time
    rec.close()

``flush_due`` hands what was buffered to one worker thread (``HDF5Writer.write``
then ``flush``) once per ``flush_interval_s``, and only when the previous write
has finished: a slow disk makes the buffer grow (bounded), never the loop wait.
Backfill reads (``read_recent``) share that thread (``RecorderWorker``): they run
piece by piece with at most ``read_share`` of its time, and a write never waits
for more than one piece of a read, so backfills cannot hold a flush back.
It returns the recorder's state changes (``{"type": "recorder", "state":
"error", "message": ...}``) for the caller to log and show on consoles.

With ``resume_within_s``, a folder whose newest session was left open by a writer
that stopped (SIGKILL, a crash) less than that long ago is continued: the new
writer records into a new segment of that session (``status()["resumed"]``).
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Callable

from .buffer import RecordBuffer, Section
from .window import iter_window
from .worker import RecorderWorker
from .writer import HDF5Writer

__all__ = ["RecorderService"]


class RecorderService:
    """Record ingest results and events of one ground station into ``folder``.

    ``rotate_bytes`` / ``rotate_seconds`` rotate segment files; ``fsync`` makes
    each flush durable against power loss; ``max_buffer_bytes`` bounds memory
    when the disk cannot keep up; ``compress`` compresses each closed segment in
    the background (``recorder.compress``). ``on_state`` (optional) is called on the
    caller's thread from ``flush_due`` with each state change.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        session: str | None = None,
        flush_interval_s: float = 1.0,
        fsync: bool = False,
        rotate_bytes: int | None = 1 << 30,
        rotate_seconds: float | None = None,
        max_buffer_bytes: int = 256 << 20,
        piece_bytes: int = 256 << 10,
        pause_s: float = 0.0002,
        resume_within_s: float | None = None,
        read_share: float = 0.25,
        compress: bool = True,
        on_state: Callable[[dict], None] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.flush_interval_ns = int(flush_interval_s * 1e9)
        self.clock_ns = clock_ns
        self.buffer = RecordBuffer(max_bytes=max_buffer_bytes)
        self.writer = HDF5Writer(folder, session=session, fsync=fsync, rotate_bytes=rotate_bytes,
                                 rotate_seconds=rotate_seconds, piece_bytes=piece_bytes, pause_s=pause_s,
                                 resume_within_s=resume_within_s, compress=compress, clock_ns=clock_ns)
        self.on_state = on_state
        self._pool = RecorderWorker(read_share=read_share)
        self._future: concurrent.futures.Future | None = None
        self._inflight: list[Section] = []  # taken from the buffer, being written (for read_recent)
        self._last_submit_ns: int | None = None  # the first call writes at once
        self._reported = ("idle", None)
        self._closed = False
        self.busy_skips = 0  # flush intervals skipped because the previous write was still running

    @property
    def folder(self) -> str:
        return self.writer.folder

    @property
    def session(self) -> str:
        return self.writer.session

    @property
    def index_path(self) -> str:
        return self.writer.index_path

    # -- the event loop's side (cheap) ------------------------------------------------------------
    def on_ingest(self, res, arrival_ns: int) -> None:
        """A ``GroundStation.packet_listeners`` callable: buffer one datagram's result."""
        if self._closed:
            return
        if res.configured is not None:
            cfg = res.configured
            self.buffer.add(res, arrival_ns)
            self.buffer.add_event({"type": "configuration", "version": cfg.version, "source": cfg.source,
                                   "channel": cfg.channel_id, "parameters": len(cfg.db.parameters),
                                   "problems": list(cfg.problems)[:20]}, arrival_ns)
        else:
            self.buffer.add(res, arrival_ns)

    def on_event(self, event: dict, time_ns: int | None = None) -> None:
        """An alarm, link or other event (a JSON-able dict, ideally with a ``type``)."""
        if not self._closed:
            self.buffer.add_event(event, self.clock_ns() if time_ns is None else time_ns)

    def on_command(self, record: dict, time_ns: int | None = None) -> None:
        """A command history record (``CommandRecord.as_wire()``), at each state change."""
        if not self._closed:
            self.buffer.add_event(record, self.clock_ns() if time_ns is None else time_ns, command=True)

    def flush_due(self, now_ns: int | None = None) -> list[dict]:
        """Start a write + flush in the worker if the interval has passed and it is idle.

        Returns the state changes seen since the last call (also passed to ``on_state``).
        """
        if self._closed:
            return []
        now = self.clock_ns() if now_ns is None else now_ns
        events = self._state_changes()
        if self._last_submit_ns is None or now - self._last_submit_ns >= self.flush_interval_ns:
            if self._future is not None and not self._future.done():
                self.busy_skips += 1
            else:
                self._last_submit_ns = now
                sections = self._inflight = self.buffer.take()
                self._future = self._pool.submit(self._write_and_flush, sections)
        return events

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the write in progress (if any) is done; False on timeout (tests, tools)."""
        fut = self._future
        if fut is None:
            return True
        try:
            fut.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        except Exception:
            pass
        return True

    def read_recent(self, ids_by_name: dict[str, int], from_ns: int, sink,
                    then: Callable[[dict], object] | None = None) -> concurrent.futures.Future:
        """Pass every recorded sample of the named parameters after ``from_ns`` to ``sink`` once
        (``recorder.window.iter_window``), in the worker thread between writes, with its bounded
        share; the future's result is the read's counts, or ``then(counts)`` (also run in the
        worker: e.g. reducing what was read). What is still in memory is captured now, on the
        caller's thread, so nothing ingested before this call is missed. Cancelling the future
        stops the read."""
        if self._closed:
            raise RuntimeError("the recorder is closed")
        memory = list(self._inflight) + self.buffer.peek()

        def steps():
            counts = yield from iter_window(self.writer, memory, ids_by_name, from_ns, sink,
                                            piece_bytes=self.writer.piece_bytes)
            return counts if then is None else then(counts)

        return self._pool.submit_read(steps())

    def _write_and_flush(self, sections) -> None:
        self.writer.write_all(sections)
        self.writer.flush()

    def _state_changes(self) -> list[dict]:
        st = (self.writer.state, self.writer.error)
        if st == self._reported:
            return []
        old = self._reported
        self._reported = st
        if st[0] == "recording" and old[0] == "idle":
            ev = {"type": "recorder", "state": "recording", "file": self.writer.current_file,
                  "message": f"recording to {self.writer.current_file}"}
        elif st[0] == "error":
            ev = {"type": "recorder", "state": "error", "message": f"recording failed: {st[1]}",
                  "folder": self.folder}
        elif st[0] == "recording" and old[0] == "error":
            ev = {"type": "recorder", "state": "recording", "file": self.writer.current_file,
                  "message": f"recording resumed in {self.writer.current_file}"}
        else:
            return []
        self.buffer.add_event(ev, self.clock_ns())
        if self.on_state is not None:
            self.on_state(ev)
        return [ev]

    # -- health, shutdown ---------------------------------------------------------------------
    def flush_age_s(self) -> float | None:
        """Seconds since the last flush ended (what a crash now would lose, at most); None before the first."""
        last = self.writer.last_flush_ns
        return None if not last else round((self.clock_ns() - last) / 1e9, 3)

    def status(self) -> dict:
        s = self.writer.status()
        s["buffer_bytes"] = self.buffer.pending_bytes
        s["buffer"] = self.buffer.stats.as_dict()
        s["busy_skips"] = self.busy_skips
        s["writing"] = self._future is not None and not self._future.done()
        s["flush_interval_s"] = self.flush_interval_ns / 1e9
        s["last_flush_age_s"] = self.flush_age_s()
        s["backfill_reads"] = self._pool.reads
        s["backfill_read_s"] = round(self._pool.read_s, 3)
        s["backfill_longest_piece_ms"] = round(self._pool.longest_piece_s * 1e3, 1)
        return s

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is buffered, close the files and stop the worker (blocking)."""
        if self._closed:
            return
        self._closed = True
        if self._future is not None:
            try:
                self._future.result(timeout)
            except Exception:
                pass
        sections = self.buffer.take()
        fut = self._pool.submit(self._final, sections)
        try:
            fut.result(timeout)
        except Exception as exc:
            self.writer._note(f"closing: {exc}")
        self._pool.shutdown(wait=False)

    def _final(self, sections) -> None:
        self.writer.write_all(sections)
        self.writer.close()

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop."""
        import asyncio

        await asyncio.to_thread(self.close)
