"""A console's bounded send queue (sans-I/O): telemetry conflates, events never drop.

Telemetry frames carry a key (rate tier and group). When the queue passes its
bound, queued telemetry is conflated: older frames of a key give way to newer
ones, so a slow console gets the latest values. Events (alarms, link status,
command history, replies) are never dropped. A console that has needed
conflation and not drained its queue since for ``max_behind_s`` (it is not
keeping up), or whose events alone pass the hard byte limit, is to be closed
(``CLOSE_TOO_SLOW``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Outbox"]


@dataclass
class _Item:
    data: bytes
    key: object | None  # None = an event, never dropped
    sample_ns: int = 0  # telemetry: arrival time of the newest sample it carries


class Outbox:
    def __init__(self, *, max_frames: int = 512, max_bytes: int = 8 << 20, max_behind_s: float = 10.0,
                 hard_max_bytes: int = 64 << 20) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.hard_max_bytes = hard_max_bytes
        self.max_behind_ns = int(max_behind_s * 1e9)
        self._q: deque[_Item] = deque()
        self.bytes = 0
        self.dropped = 0  # telemetry frames conflated away
        self.behind_since_ns: int | None = None
        self.close_reason: str | None = None
        self.on_ready = None  # called after a push that made the queue non-empty (the writer may take it at once)
        self.sent_sample_ns = 0  # newest sample time of the telemetry popped (for the data age at send time)

    def __len__(self) -> int:
        return len(self._q)

    def push_event(self, data: bytes, now_ns: int = 0) -> None:
        self._push(_Item(data, None), now_ns)

    def push_data(self, key: object, data: bytes, now_ns: int = 0, sample_ns: int = 0) -> None:
        self._push(_Item(data, key, sample_ns), now_ns)

    def _push(self, item: _Item, now_ns: int) -> None:
        was_empty = not self._q
        self._q.append(item)
        self.bytes += len(item.data)
        self._enforce(now_ns)
        if was_empty and self.on_ready is not None:
            self.on_ready()

    def pop(self) -> bytes | None:
        if not self._q:
            return None
        item = self._q.popleft()
        self.bytes -= len(item.data)
        if item.sample_ns > self.sent_sample_ns:
            self.sent_sample_ns = item.sample_ns
        if not self._q:
            self.behind_since_ns = None  # drained: caught up
        return item.data

    def _over(self) -> bool:
        return len(self._q) > self.max_frames or self.bytes > self.max_bytes

    def _enforce(self, now_ns: int) -> None:
        if self._over():
            if self.behind_since_ns is None:
                self.behind_since_ns = now_ns
            self._conflate()
        if self.bytes > self.hard_max_bytes:
            self.close_reason = f"{self.bytes} bytes of events queued"
        elif self.behind_since_ns is not None and now_ns - self.behind_since_ns > self.max_behind_ns:
            self.close_reason = f"behind for more than {self.max_behind_ns / 1e9:g} s"

    def _conflate(self) -> None:
        """Keep only the newest telemetry frame of each key (events keep their order)."""
        newest: dict[object, int] = {}
        for i, item in enumerate(self._q):
            if item.key is not None:
                newest[item.key] = i
        kept: deque[_Item] = deque()
        for i, item in enumerate(self._q):
            if item.key is None or newest[item.key] == i:
                kept.append(item)
            else:
                self.dropped += 1
                self.bytes -= len(item.data)
        self._q = kept
