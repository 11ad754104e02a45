"""The recorder's one worker thread: writes first, reads (console backfill) in slices with a bounded share.

::

    worker = RecorderWorker(read_share=0.25)
    fut = worker.submit(fn, *args)     # a write + flush, or closing: before any read slice waiting
    fut = worker.submit_read(steps)    # a generator (recorder.window.iter_window): one piece per next()
    worker.shutdown()

The writer's files are touched by this thread only. A write never waits for a
read: a read runs one piece at a time (``next(steps)``) and gives the thread back
whenever a write is queued, so a write waits at most one piece. Reads take turns
(round robin, one slice each) and together use at most ``read_share`` of the
thread's time: after a slice of ``d`` seconds the next one starts no sooner than
``d * (1 - share) / share`` later, which also leaves the GIL to the event loop
(h5py holds it while it reads). A read's future resolves with the generator's
return value.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
from collections.abc import Callable, Generator

__all__ = ["RecorderWorker"]


class _Read:
    __slots__ = ("steps", "future", "busy_s")

    def __init__(self, steps: Generator) -> None:
        self.steps = steps
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.busy_s = 0.0  # thread time this read has had


class RecorderWorker:
    """One thread; ``submit`` for writes (FIFO, first), ``submit_read`` for reads (sliced, bounded share)."""

    def __init__(self, *, read_share: float = 0.25, slice_s: float = 0.002, name: str = "recorder") -> None:
        if not 0 < read_share <= 1:
            raise ValueError(f"read_share must be in (0, 1], got {read_share}")
        self.read_share = read_share
        self.slice_s = slice_s
        self._writes: collections.deque = collections.deque()
        self._reads: collections.deque[_Read] = collections.deque()
        self._cond = threading.Condition()
        self._read_after = 0.0  # monotonic time before which no read slice starts
        self._stopping = False
        self.read_s = 0.0  # thread time spent reading, in all
        self.longest_piece_s = 0.0  # the longest single step of a read (what a write may wait, at most)
        self.write_s = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def reads(self) -> int:
        """Reads not finished."""
        return len(self._reads)

    def submit(self, fn: Callable, *args) -> concurrent.futures.Future:
        """Run ``fn(*args)`` in the thread before any read slice still waiting."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._cond:
            if self._stopping:
                raise RuntimeError("the recorder's worker is stopped")
            self._writes.append((fut, fn, args))
            self._cond.notify()
        return fut

    def submit_read(self, steps: Generator) -> concurrent.futures.Future:
        """Run the generator to its end in slices; the future gets its return value."""
        r = _Read(steps)
        with self._cond:
            if self._stopping:
                raise RuntimeError("the recorder's worker is stopped")
            self._reads.append(r)
            self._cond.notify()
        return r.future

    def shutdown(self, wait: bool = True) -> None:
        """Stop after the writes queued; reads not finished are cancelled."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    # -- the thread ----------------------------------------------------------------------------
    def _next(self):
        """The next job: a write if any, else a read whose turn it is; None when stopping."""
        with self._cond:
            while True:
                if self._writes:
                    return self._writes.popleft()
                if self._stopping:
                    for r in self._reads:
                        r.future.cancel()
                    self._reads.clear()
                    return None
                wait = None
                if self._reads:
                    wait = self._read_after - time.monotonic()
                    if wait <= 0:
                        r = self._reads.popleft()
                        return r
                self._cond.wait(wait)

    def _run(self) -> None:
        while (job := self._next()) is not None:
            if isinstance(job, _Read):
                self._slice(job)
                continue
            fut, fn, args = job
            if not fut.set_running_or_notify_cancel():
                continue
            t0 = time.monotonic()
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                fut.set_exception(exc)
            self.write_s += time.monotonic() - t0

    def _slice(self, r: _Read) -> None:
        """Pieces of one read until its slice is used up or a write is waiting; then back in line."""
        t0 = time.monotonic()
        done = False
        try:
            if r.future.cancelled():
                return
            while True:
                p0 = time.monotonic()
                try:
                    next(r.steps)
                except StopIteration as stop:
                    done = True
                    if not r.future.cancelled():  # (cancelled meanwhile: the console has gone)
                        r.future.set_result(stop.value)
                    return
                now = time.monotonic()
                self.longest_piece_s = max(self.longest_piece_s, now - p0)
                if self._writes or now - t0 >= self.slice_s:
                    return
        except BaseException as exc:  # noqa: BLE001 - an unreadable file: the read fails, the worker goes on
            done = True
            if not r.future.done():
                r.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            busy = time.monotonic() - t0
            r.busy_s += busy
            self.read_s += busy
            with self._cond:
                self._read_after = time.monotonic() + busy * (1 - self.read_share) / self.read_share
                if not done and not r.future.done():
                    self._reads.append(r)
