"""Sans-I/O replay: the schedule that turns timed packets into timed datagrams (the marker it sends is
``telemetry_formats.ch10.replay_marker``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

from telemetry_formats.ch10.header import HEADER_SIZE
from telemetry_formats.ch10.packet import STATUS_HEADER, STATUS_OK, STATUS_TRUNCATED
from telemetry_formats.ch10.replay_marker import (
    MARKER_CHANNEL,
    MARKER_DATA_TYPE,
    MARKER_KEY,
    build_marker,
    is_replay_marker,
    parse_marker,
)
from telemetry_formats.ch10.rtc import RTC_MOD
from telemetry_formats.ch10.udp import (
    DEFAULT_MAX_DATAGRAM,
    FULL_HEADER_SIZE,
    SEQ_MOD,
    TYPE_FULL,
    UdpSender,
    build_transfer_header,
)

__all__ = [
    "MARKER_KEY", "MARKER_CHANNEL", "MARKER_DATA_TYPE", "DEFAULT_MAX_RATE", "RTC_MOD", "build_marker",
    "parse_marker", "is_replay_marker", "ReplayPacket", "Timeline", "ReplayStats", "ReplaySchedule",
]

DEFAULT_MAX_RATE = 50e6  # bytes/s of datagrams
_ALONE = (STATUS_TRUNCATED, STATUS_HEADER)  # packets the UDP sender cannot batch (length field disagrees)


# -- packets ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayPacket:
    """One Chapter 10 packet and its recording time (ns on any base; only differences matter)."""

    raw: bytes
    time_ns: int
    rtc: int = 0
    status: int = STATUS_OK  # telemetry_formats.ch10.packet.STATUS_*: damaged packets are sent too


# -- the schedule (sans-I/O) ----------------------------------------------------------------------------


class Timeline:
    """Recording times (ns) -> a position (ns) that never goes backwards, with long gaps shortened."""

    def __init__(self, max_gap_ns: int | None = 60_000_000_000) -> None:
        self.max_gap_ns = max_gap_ns
        self.ref: int | None = None
        self.position_ns = 0

    def advance(self, t_ns: int) -> int:
        if self.ref is None:
            self.ref = t_ns
            return 0
        d = t_ns - self.ref
        if d > 0:
            self.position_ns += d if self.max_gap_ns is None else min(d, self.max_gap_ns)
            self.ref = t_ns
        elif self.max_gap_ns is not None and d < -self.max_gap_ns:
            self.ref = t_ns  # a discontinuity (new RTC base, clock step): no time passes
        return self.position_ns


@dataclasses.dataclass
class ReplayStats:
    packets: int = 0
    packet_bytes: int = 0
    datagrams: int = 0
    datagram_bytes: int = 0
    markers: int = 0
    old_markers_skipped: int = 0
    unsendable: int = 0  # truncated packets too long for one datagram (cannot be reassembled): not sent
    damaged_left_out: int = 0  # packets not sent because of their status (``strict_checksums``)
    passes: int = 0
    position_s: float = 0.0  # recording position of the last packet scheduled
    end_offset_s: float = 0.0  # when the last datagram is due


class ReplaySchedule:
    """Packets in, ``(send_at_offset_s, datagram)`` out, in time order.

    ``packets``: an iterable of ``ReplayPacket`` or a callable returning one
    (needed with ``loop=True``: each pass calls it again). ``speed``: a factor,
    or None for as fast as possible. Every datagram (markers too) is due no
    earlier than the previous one plus its size / ``max_rate``. Replay markers
    are due at 0 and every ``marker_interval_s`` while there is data to send.
    Damaged packets are sent as they are, unless ``strict_checksums``.
    """

    def __init__(
        self,
        packets: Iterable[ReplayPacket] | Callable[[], Iterable[ReplayPacket]],
        *,
        source: str,
        speed: float | None = 1.0,
        loop: bool = False,
        max_rate: float = DEFAULT_MAX_RATE,
        max_datagram: int = DEFAULT_MAX_DATAGRAM,
        marker_interval_s: float = 1.0,
        batch_window_s: float = 0.001,
        max_gap_s: float | None = 60.0,
        seq_start: int = 0,
        strict_checksums: bool = False,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError("speed must be > 0 (or None for as fast as possible)")
        if loop and not callable(packets) and iter(packets) is packets:
            raise ValueError("loop=True needs a callable or a re-iterable collection of packets")
        self._packets = packets
        self.source = source
        self.speed = speed
        self.loop = loop
        self.max_rate = float(max_rate)
        self.marker_interval_s = marker_interval_s
        self.batch_window_s = batch_window_s
        self.max_gap_ns = None if max_gap_s is None else int(max_gap_s * 1e9)
        self.sender = UdpSender(seq_start, max_datagram)
        self._limit = max_datagram - FULL_HEADER_SIZE
        self.strict_checksums = strict_checksums  # leave out every packet whose status is not ok
        self.stats = ReplayStats()
        self._free_at = 0.0  # earliest time the next datagram may go (rate bound)
        self._next_marker = 0.0
        self._marker_seq = 0

    def _source(self) -> Iterable[ReplayPacket]:
        return self._packets() if callable(self._packets) else self._packets

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        base = 0.0
        while True:
            sent_before = self.stats.packets
            self.stats.passes += 1
            yield from self._pass(base)
            if not self.loop or self.stats.packets == sent_before:
                return
            base = self._free_at

    def _pass(self, base: float) -> Iterator[tuple[float, bytes]]:
        timeline = Timeline(self.max_gap_ns)
        group: list[ReplayPacket] = []
        group_due = group_pos = 0.0
        size = 0
        self._last_pos = 0.0
        self._base = base
        for p in self._source():
            if len(p.raw) > HEADER_SIZE and p.raw[15] == MARKER_DATA_TYPE and is_replay_marker(p.raw):
                self.stats.old_markers_skipped += 1
                continue
            if self.strict_checksums and p.status != STATUS_OK:
                self.stats.damaged_left_out += 1
                continue
            pos = timeline.advance(p.time_ns) / 1e9
            due = base + (pos / self.speed if self.speed else 0.0)
            if group and (due - group_due > self.batch_window_s or size + len(p.raw) > self._limit):
                yield from self._emit(group, group_due, group_pos)
                group, size = [], 0
            if not group:
                group_due, group_pos = due, pos
            group.append(p)
            size += len(p.raw)
        if group:
            yield from self._emit(group, group_due, group_pos)

    def _emit(self, group: list[ReplayPacket], due: float, pos: float) -> Iterator[tuple[float, bytes]]:
        st = self.stats
        # Markers due before this group go first (their UDP sequence numbers too); a group's
        # datagrams then go back to back (a group is one datagram unless a packet is segmented).
        while self._next_marker <= max(due, self._free_at):
            yield self._marker(group[0].rtc, pos)
        for dg in self._pack(group):
            at = max(due, self._free_at)
            self._free_at = at + len(dg) / self.max_rate
            st.datagrams += 1
            st.datagram_bytes += len(dg)
            st.end_offset_s = at
            yield at, dg
        # counted once the consumer asks for more: an interrupted replay reports what it sent
        st.packets += len(group)
        st.packet_bytes += sum(len(p.raw) for p in group)
        st.position_s = self._last_pos = pos

    def _pack(self, group: list[ReplayPacket]) -> list[bytes]:
        """The group's datagrams. A packet cut short or with an unreadable header goes alone in a
        full-packet datagram, as it is (the station archives it with its status)."""
        if all(p.status not in _ALONE for p in group):
            return self.sender.pack([p.raw for p in group])
        out: list[bytes] = []
        run: list[bytes] = []
        for p in group:
            if p.status not in _ALONE:
                run.append(p.raw)
                continue
            out += self.sender.pack(run)
            run = []
            if len(p.raw) > self._limit:
                self.stats.unsendable += 1
                continue
            seq, self.sender.next_seq = self.sender.next_seq, (self.sender.next_seq + 1) % SEQ_MOD
            out.append(build_transfer_header(TYPE_FULL, seq) + p.raw)
        return out + self.sender.pack(run)

    def _marker(self, rtc: int, next_pos: float) -> tuple[float, bytes]:
        at = max(self._next_marker, self._free_at)
        if self.speed:
            position = min(max((at - self._base) * self.speed, self._last_pos), next_pos)
        else:
            position = self._last_pos
        raw = build_marker(self.source, self.speed, position, rtc=rtc, sequence_number=self._marker_seq)
        self._marker_seq += 1
        (dg,) = self.sender.pack([raw])
        self._free_at = at + len(dg) / self.max_rate
        self._next_marker += self.marker_interval_s
        self.stats.markers += 1
        self.stats.datagrams += 1
        self.stats.datagram_bytes += len(dg)
        return at, dg

