"""UDP sequence state per sender (sans-I/O): one ``UdpReceiver`` for each source address and port.

Two senders on one port (a replay beside the live link, a second recorder, a
vehicle that restarts on a new port) must not judge each other's sequence
numbers: each gets its own receiver, so a datagram is only ever discarded as a
duplicate of one already taken from the same sender (and reassembly, keyed by
channel inside each receiver, is per sender and channel too).

A sender *starts over* (a new epoch: a fresh receiver, partial packets
dropped, nothing counted as lost) when its sequence number

- jumps forward by more than ``max_gap`` datagrams (no link loses that many
  and comes back: a restart, or junk),
- goes back by more than the receiver's reorder window, or
- repeats a sequence number already taken with different bytes that start
  with a valid packet header (a restart within the reorder window, e.g. a
  vehicle that rebinds the same port; a copy damaged in transit is not one).

A sender gets state only once a datagram of it was usable (gave a packet, or is
the first segment of one): junk from unknown ports is counted (``unknown_junk``)
and forgotten.
The table holds at most ``max_senders``; a new sender past that evicts the one
idle longest among those that never gave a packet (else the one idle longest),
so a flood from many ports can neither grow memory without bound nor push the
vehicle out.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field, fields

from telemetry_formats.ch10.header import HeaderError, parse_header
from telemetry_formats.ch10.transfer import FORMAT_1, detect_format
from telemetry_formats.ch10.udp import (
    FULL_HEADER_SIZE,
    SEGMENTED_HEADER_SIZE,
    SEQ_MOD,
    TYPE_SEGMENTED,
    VERSION,
    Event,
    UdpReceiver,
    UdpStats,
)

__all__ = ["SenderTable", "SenderNote", "DEFAULT_MAX_GAP", "DEFAULT_MAX_SENDERS"]

DEFAULT_MAX_GAP = 1 << 16  # datagrams: a forward jump past this is a restart, not a loss
DEFAULT_MAX_SENDERS = 32
_PER_SENDER_PARTIAL_BYTES = 8 << 20  # 32 senders x 8 MiB bounds reassembly memory at 256 MiB


@dataclass(frozen=True, slots=True)
class SenderNote:
    """A sender appeared (``event="new"``), started over (``"restart"``) or was forgotten (``"evicted"``)."""

    event: str
    sender: str
    reason: str = ""
    sequence: int | None = None

    def as_dict(self) -> dict:
        return {"event": self.event, "sender": self.sender, "reason": self.reason, "sequence": self.sequence}


@dataclass(slots=True)
class _Sender:
    name: str
    receiver: UdpReceiver
    last: int | None = None  # the highest sequence number taken (format 1)
    epoch: int = 0
    datagrams: int = 0
    taken: dict[int, int] = field(default_factory=dict)  # sequence -> crc32 of the datagram taken
    order: deque = field(default_factory=deque)


def _name(sender: Hashable) -> str:
    if isinstance(sender, tuple) and len(sender) >= 2:
        host, port = sender[0], sender[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(sender)


def _starts_with_packet(datagram: bytes) -> bool:
    """A full-packet datagram whose first packet header is valid, or a segment: not a damaged copy."""
    if datagram[0] >> 4 == TYPE_SEGMENTED:
        return len(datagram) > SEGMENTED_HEADER_SIZE
    try:
        parse_header(datagram, FULL_HEADER_SIZE)
    except HeaderError:
        return False
    return True


_STAT_NAMES = tuple(f.name for f in fields(UdpStats))


def _is_first_segment(datagram: bytes) -> bool:
    """A format 1 segment carrying the start (offset 0, with the packet header) of a packet."""
    return (datagram[0] >> 4 == TYPE_SEGMENTED and len(datagram) > SEGMENTED_HEADER_SIZE
            and datagram[8:12] == b"\0\0\0\0")


def _format1_sequence(datagram: bytes) -> int | None:
    """The sequence number of a format 1 datagram (bytes 1-3); None for formats 2 and 3, whose
    sequence state the receiver keeps by itself (per format and, in format 3, per source ID)."""
    if len(datagram) < FULL_HEADER_SIZE or datagram[0] & 0x0F != VERSION:
        return None
    if datagram[0] not in (0x01, 0x11) or detect_format(datagram) != FORMAT_1:
        return None
    return int.from_bytes(datagram[1:4], "little")


def _add_stats(total: UdpStats, part: UdpStats) -> None:
    for name in _STAT_NAMES:
        mine, theirs = getattr(total, name), getattr(part, name)
        if isinstance(mine, dict):  # counts by key (datagrams per transfer format)
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        else:
            setattr(total, name, mine + theirs)


class SenderTable:
    """Datagrams from many senders in, each sender's packets and events out (``receive``).

    ``stats`` sums every receiver's counters, those of forgotten epochs and
    senders included; ``restarts``/``new_senders``/``evicted`` count the notes.
    """

    def __init__(self, *, max_senders: int = DEFAULT_MAX_SENDERS, max_gap: int = DEFAULT_MAX_GAP,
                 reorder_window: int = 1024, max_partial_bytes: int = _PER_SENDER_PARTIAL_BYTES) -> None:
        self.max_senders = max(1, max_senders)
        self.max_gap = max_gap
        self.reorder_window = reorder_window
        self.max_partial_bytes = max_partial_bytes
        self._senders: OrderedDict[Hashable, _Sender] = OrderedDict()  # least recently heard first
        self._retired = UdpStats()
        self.new_senders = 0
        self.restarts = 0
        self.evicted = 0
        self.unknown_junk = 0  # unusable datagrams from senders not in the table (no state kept for them)

    def _receiver(self) -> UdpReceiver:
        return UdpReceiver(reorder_window=self.reorder_window, max_partial_bytes=self.max_partial_bytes)

    @property
    def stats(self) -> UdpStats:
        total = UdpStats()
        _add_stats(total, self._retired)
        for s in self._senders.values():
            _add_stats(total, s.receiver.stats)
        return total

    def __len__(self) -> int:
        return len(self._senders)

    def receive(self, datagram: bytes, sender: Hashable = None) -> tuple[list[SenderNote], list[Event]]:
        """One datagram from ``sender`` (e.g. ``(host, port)``; None: an unnamed one)."""
        notes: list[SenderNote] = []
        events: list[Event] = []
        crc = zlib.crc32(datagram)
        seq = _format1_sequence(datagram)
        s = self._senders.get(sender)
        if s is None:
            return self._first(sender, datagram, seq, crc)
        self._senders.move_to_end(sender)
        s.datagrams += 1
        if seq is not None:  # format 1: the sequence number in bytes 1-3
            reason = self._restart_reason(s, seq, crc, datagram)
            if reason is not None:
                events += self._restart(s, reason, seq, notes)
        st = s.receiver.stats
        dups, malformed, packets = st.duplicates, st.malformed, st.packets
        events += s.receiver.receive(datagram)
        if seq is not None:
            # taken: not a duplicate, and not wholly unusable (the receiver's own rule for a damaged copy)
            self._remember(s, seq, crc, st.duplicates == dups and not (st.malformed > malformed
                                                                       and st.packets == packets))
        return notes, events

    def _first(self, sender: Hashable, datagram: bytes, seq: int | None, crc: int
               ) -> tuple[list[SenderNote], list[Event]]:
        """A datagram from a sender not in the table: it gets state only if the datagram gave a packet
        or is a well-formed first segment, so junk from many ports costs no memory and evicts nobody
        (a sender first heard mid-packet loses that packet, which it could not complete anyway)."""
        rx = self._receiver()
        events = rx.receive(datagram)
        starts = _is_first_segment(datagram) if seq is not None else rx.holds_partial()  # formats 2, 3
        if not rx.stats.packets and (rx.stats.malformed or not starts):
            _add_stats(self._retired, rx.stats)
            self.unknown_junk += 1
            return [], events
        notes: list[SenderNote] = []
        events += self._add(sender, notes, rx)
        s = self._senders[sender]
        s.datagrams = 1
        if seq is not None:
            self._remember(s, seq, crc)
        return notes, events

    # -- per-sender state --------------------------------------------------------------------------
    def _restart_reason(self, s: _Sender, seq: int, crc: int, datagram: bytes) -> str | None:
        if s.last is None:
            return None
        ahead = (seq - s.last) % SEQ_MOD
        if 1 < ahead <= SEQ_MOD // 2 and ahead - 1 > self.max_gap:
            return f"sequence jumped from {s.last} to {seq}"
        if ahead > SEQ_MOD // 2 and SEQ_MOD - ahead > self.reorder_window:
            return f"sequence went back from {s.last} to {seq}"
        if s.taken.get(seq, crc) != crc and _starts_with_packet(datagram):
            return f"sequence {seq} repeated with different data"
        return None

    def _remember(self, s: _Sender, seq: int, crc: int, taken: bool = True) -> None:
        # the highest sequence number seen, as the receiver tracks it (damaged datagrams too)
        if s.last is None or 0 < (seq - s.last) % SEQ_MOD <= SEQ_MOD // 2:
            s.last = seq
        if not taken:
            return
        if seq not in s.taken:
            s.order.append(seq)
        s.taken[seq] = crc
        while len(s.order) > self.reorder_window:
            s.taken.pop(s.order.popleft(), None)

    def _add(self, sender: Hashable, notes: list[SenderNote], receiver: UdpReceiver) -> list[Event]:
        events: list[Event] = []
        while len(self._senders) >= self.max_senders:
            # the one idle longest that never gave a packet (junk, a port scan), else the one idle longest
            key = next((k for k, v in self._senders.items() if not v.receiver.stats.packets),
                       next(iter(self._senders)))
            old = self._senders.pop(key)
            events += self._retire(old)
            self.evicted += 1
            notes.append(SenderNote("evicted", old.name, "too many senders: the one idle longest is forgotten"))
        s = self._senders[sender] = _Sender(_name(sender), receiver)
        self.new_senders += 1
        notes.append(SenderNote("new", s.name))
        return events

    def _retire(self, s: _Sender) -> list[Event]:
        events = s.receiver.flush()
        _add_stats(self._retired, s.receiver.stats)
        return events

    def _restart(self, s: _Sender, reason: str, seq: int, notes: list[SenderNote]) -> list[Event]:
        events = self._retire(s)
        s.receiver = self._receiver()
        s.last = None
        s.taken.clear()
        s.order.clear()
        s.epoch += 1
        self.restarts += 1
        notes.append(SenderNote("restart", s.name, reason, seq))
        return events

    def status(self, limit: int = 8) -> dict:
        """Small enough for health: counts and the most recently heard senders."""
        recent = list(self._senders.values())[-limit:][::-1]
        return {
            "senders": len(self._senders),
            "new_senders": self.new_senders,
            "restarts": self.restarts,
            "evicted": self.evicted,
            "unknown_junk": self.unknown_junk,
            "recent": [{"sender": s.name, "datagrams": s.datagrams, "epoch": s.epoch,
                        "lost": s.receiver.stats.lost_datagrams, "duplicates": s.receiver.stats.duplicates}
                       for s in recent],
        }
