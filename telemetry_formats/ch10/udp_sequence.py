"""UDP message sequence numbers of one stream of datagrams: gaps, reordering, duplicates (sans-I/O).

``SequenceTracker.track(seq, stats, events)`` says what a sequence number was
relative to the stream (``NEXT``, ``JUMP``: the first, a gap or a resync,
``LATE``: reordered, ``DUPLICATE``), updates the receiver's counters and appends
a ``SequenceGap`` event for a gap or a resync. A number within ``window``
behind the newest is reordering (or a duplicate, if seen); further back, a
restart of the sender (a resync). ``forget(seq)`` takes back a datagram that
turned out unusable, so that a good copy of it is still taken.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .udp import UdpStats

__all__ = ["NEXT", "JUMP", "LATE", "DUPLICATE", "SequenceGap", "SequenceTracker"]


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """The UDP sequence number jumped: ``missing`` datagrams not (yet) seen.

    ``resync`` marks a jump too far back to be reordering (e.g. a sender restart).
    """
    expected: int
    received: int
    missing: int
    resync: bool = False


NEXT, JUMP, LATE, DUPLICATE = range(4)  # what a sequence number was, relative to the stream


class SequenceTracker:
    """The sequence numbers of one stream of datagrams: gaps, reordering, duplicates."""

    def __init__(self, modulus: int, window: int) -> None:
        self.modulus, self.window = modulus, window
        self.last: int | None = None
        self.seen: set[int] = set()
        self.recent: deque[int] = deque()
        self.damaged: set[int] = set()  # sequence numbers whose datagram was unusable

    def track(self, seq: int, st: UdpStats, events: list) -> int:

        """Account for ``seq``: NEXT, JUMP (first, gap or resync), LATE (reordered) or DUPLICATE."""
        mod = self.modulus
        last = self.last
        if last is not None and seq == last + 1 < mod:  # the usual case, first
            self.last = seq
            self._remember(seq)
            return NEXT
        status = JUMP
        if last is not None:
            ahead = (seq - self.last) % mod
            if ahead == 0 or (ahead > mod // 2 and mod - ahead <= self.window):
                if seq in self.damaged:  # the good copy of a datagram that arrived damaged
                    self.damaged.discard(seq)
                    self._remember(seq)
                    return LATE
                if seq in self.seen:
                    st.duplicates += 1
                    return DUPLICATE
                st.reordered += 1
                st.lost_datagrams = max(0, st.lost_datagrams - 1)
                self._remember(seq)
                return LATE
            expected = (self.last + 1) % mod
            if ahead > mod // 2:
                st.resyncs += 1
                self.seen.clear()
                self.recent.clear()
                events.append(SequenceGap(expected, seq, 0, resync=True))
            elif ahead > 1:
                st.gaps += 1
                st.lost_datagrams += ahead - 1
                events.append(SequenceGap(expected, seq, ahead - 1))
            else:
                status = NEXT
        self.last = seq
        self._remember(seq)
        return status

    def forget(self, seq: int) -> None:
        """``seq`` gave nothing usable: a good copy of it is still welcome."""
        self.damaged.add(seq)
        self.seen.discard(seq)

    def _remember(self, seq: int) -> None:
        self.seen.add(seq)
        recent = self.recent
        recent.append(seq)
        if len(recent) > self.window:
            old = recent.popleft()
            self.seen.discard(old)
            if self.damaged:
                self.damaged.discard(old)
