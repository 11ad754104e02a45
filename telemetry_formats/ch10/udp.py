"""IRIG 106 Chapter 10 UDP transfer formats 1, 2 and 3: datagrams in, packets and events out.

Sans-I/O: ``UdpReceiver`` turns datagram bytes into packet bytes and events,
never touches a socket and never raises on bad input; ``UdpSender``
(``udp_sender.py``) does the reverse. The header layouts, and what they were
confirmed against, are in ``transfer.py``.

Each datagram's format is detected from its header (``transfer.detect_format``)
unless the receiver is given ``formats`` to accept. Formats 1 and 2 carry whole
packets or segments of one packet (reassembled here, in any arrival order);
format 3 carries a byte stream per source ID, cut into packets here and picked
up again at the next packet start after a lost datagram. Sequence numbers are
tracked per format (per source ID in format 3), each with its own modulus.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .header import HEADER_SIZE, HeaderError, parse_header
from .packet import MAX_PACKET_LENGTH
from .transfer import (
    F1_FULL_SIZE,
    F1_SEGMENT_STRUCT,
    F1_SEGMENTED_SIZE,
    FORMAT_1,
    FORMAT_2,
    FORMAT_3,
    TYPE_FULL,
    TYPE_SEGMENTED,
    SegmentHeaderF1,
    TransferHeader,
    TransferHeaderError,
    TransferHeaderF1,
    UdpTransferF1,
    detect_format,
    parse_transfer_header,
)
from .udp_sender import DEFAULT_MAX_DATAGRAM, UdpSender, build_datagrams, build_transfer_header
from .udp_sequence import DUPLICATE, LATE, NEXT, SequenceGap, SequenceTracker

__all__ = [
    "VERSION", "TYPE_FULL", "TYPE_SEGMENTED", "FULL_HEADER_SIZE", "SEGMENTED_HEADER_SIZE", "DEFAULT_MAX_DATAGRAM",
    "TransferHeaderF1", "SegmentHeaderF1", "UdpTransferF1", "build_transfer_header",
    "UdpSender", "build_datagrams", "UdpReceiver", "UdpStats",
    "PacketReceived", "SequenceGap", "DatagramError", "PartialDropped",
]

VERSION = FORMAT_1
SEQ_MOD = 1 << 24
FULL_HEADER_SIZE, SEGMENTED_HEADER_SIZE = F1_FULL_SIZE, F1_SEGMENTED_SIZE
NO_CHANNEL_SEQUENCE = -1  # format 2 segments carry no channel sequence number
_SYNC = b"\x25\xeb"

@dataclass(frozen=True, slots=True)
class PacketReceived:
    """One complete Chapter 10 packet (bytes as sent); not yet checksum-verified."""
    data: bytes
    udp_sequence_number: int
    reassembled: bool = False


@dataclass(frozen=True, slots=True)
class DatagramError:
    """A datagram (or part of one) that was discarded, and why."""
    reason: str
    udp_sequence_number: int | None = None
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class PartialDropped:
    """A partly reassembled packet that was given up on, and why."""
    channel_id: int
    channel_sequence_number: int
    reason: str
    received_bytes: int
    packet_length: int | None


@dataclass(slots=True)
class UdpStats:
    """Receiver counters (datagrams and bytes count everything received)."""
    datagrams: int = 0
    bytes: int = 0
    packets: int = 0
    gaps: int = 0
    lost_datagrams: int = 0  # net: reduced again when a missing datagram arrives late
    reordered: int = 0
    duplicates: int = 0
    resyncs: int = 0
    malformed: int = 0
    reassembled: int = 0
    dropped_partial: int = 0
    formats: dict[int, int] = field(default_factory=dict)  # datagrams per transfer format


@dataclass(slots=True)
class _Partial:
    segments: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    length: int | None = None  # packet_length, once the offset-0 segment is in
    last_seen: int = 0


Event = PacketReceived | SequenceGap | DatagramError | PartialDropped

@dataclass(slots=True)
class _Stream:
    """A format 3 source: the bytes of a packet that runs on into the next datagram."""

    pending: bytes | None = None


class UdpReceiver:
    """Datagrams in, packets and events out; never raises on bad input.

    Partial packets (formats 1 and 2) are keyed by (channel ID, channel sequence
    number; -1 in format 2, which has none), kept in least-recently-updated order
    and bounded in count, bytes and age. Age counts datagrams received since a
    partial's last segment (there is no clock here); the default of 256 keeps a
    partial from outliving its 8-bit channel sequence number in the usual case of
    one packet per datagram. ``formats``: the transfer formats accepted (others
    are malformed datagrams).
    """

    def __init__(self, *, max_partials: int = 64, max_partial_bytes: int = 32 << 20,
                 max_partial_age: int = 256, reorder_window: int = 1024,
                 formats: Iterable[int] = (FORMAT_1, FORMAT_2, FORMAT_3)) -> None:
        self.stats = UdpStats()
        self.max_partials, self.max_partial_bytes = max_partials, max_partial_bytes
        self.max_partial_age, self.reorder_window = max_partial_age, reorder_window
        self.formats = frozenset(formats)
        self._partials: dict[tuple[int, int], _Partial] = {}
        self._held = 0
        self._sequences: dict[tuple[int, int], SequenceTracker] = {}
        self._streams: dict[int, _Stream] = {}

    def receive(self, datagram: bytes) -> list[Event]:
        """Process one datagram; return the events it caused, in order."""
        st = self.stats
        st.datagrams += 1
        st.bytes += len(datagram)
        events: list[Event] = []
        if self._partials:
            self._expire(events)
        if len(datagram) < FULL_HEADER_SIZE:
            return self._bad(events, f"datagram too short: {len(datagram)} bytes", None, datagram)
        b0 = datagram[0]
        if b0 == 0x11 and len(datagram) > SEGMENTED_HEADER_SIZE and FORMAT_1 in self.formats:
            # Format 1 segments, the common case of reassembly: read inline (what transfer.py reads).
            seq = int.from_bytes(datagram[1:4], "little")
            channel, chan_seq, _, offset = F1_SEGMENT_STRUCT.unpack_from(datagram, FULL_HEADER_SIZE)
            sequence = self._sequence(FORMAT_1, 0, SEQ_MOD)
            if sequence.track(seq, st, events) == DUPLICATE:
                return events
            # A view of an immutable datagram is kept as is (no copy until the packet is joined).
            piece = (memoryview(datagram) if type(datagram) is bytes else bytes(datagram))[SEGMENTED_HEADER_SIZE:]
            self._note(sequence, seq, self._add_segment, seq, channel, chan_seq, offset, piece, events)
            return events
        if b0 == 0x01 and datagram[4:6] == _SYNC:
            fmt = FORMAT_1  # what detect_format says of it, without asking
        else:
            fmt = detect_format(datagram)
        if fmt is None or fmt not in self.formats:
            what = f"transfer format {fmt}" if fmt is not None else f"transfer format version {datagram[0] & 0x0F}"
            return self._bad(events, f"unknown {what}" if fmt is None else f"{what} not accepted", None, datagram)
        try:
            hdr = parse_transfer_header(datagram, fmt)
        except TransferHeaderError as exc:
            seq = int.from_bytes(datagram[1:4], "little") if fmt == FORMAT_1 else None
            return self._bad(events, str(exc), seq, datagram)
        seq = hdr.udp_sequence_number
        sequence = self._sequence(fmt, hdr.source_id or 0, hdr.sequence_modulus)
        status = sequence.track(seq, st, events)
        if status == DUPLICATE:
            return events
        payload = memoryview(datagram)[hdr.size:]
        if fmt == FORMAT_3:
            self._note(sequence, seq, self._stream, hdr, status, payload, events)
        elif hdr.message_type == TYPE_FULL:
            self._note(sequence, seq, self._full, seq, payload, events)
        else:
            chan_seq = NO_CHANNEL_SEQUENCE if hdr.channel_sequence_number is None else hdr.channel_sequence_number
            self._note(sequence, seq, self._add_segment, seq, hdr.channel_id or 0, chan_seq, hdr.segment_offset or 0,
                       bytes(payload), events)
        return events

    def holds_partial(self) -> bool:
        """True while part of a packet waits for the rest (segments, or a format 3 packet running on)."""
        return bool(self._partials) or any(s.pending for s in self._streams.values())

    def _sequence(self, fmt: int, source: int, modulus: int) -> SequenceTracker:
        st = self.stats
        st.formats[fmt] = st.formats.get(fmt, 0) + 1
        sequence = self._sequences.get((fmt, source))
        if sequence is None:
            sequence = self._sequences[(fmt, source)] = SequenceTracker(modulus, self.reorder_window)
        return sequence

    def _note(self, sequence: SequenceTracker, seq: int, handler, *args) -> None:
        """Run ``handler``; a datagram that gave only errors may still come again in good shape."""
        st = self.stats
        malformed, packets = st.malformed, st.packets
        handler(*args)
        if st.malformed > malformed and st.packets == packets:
            sequence.forget(seq)

    def flush(self) -> list[Event]:
        """Drop every partial packet (end of stream); return the drop events."""
        events: list[Event] = []
        for key in list(self._partials):
            self._drop(key, "incomplete at flush", events)
        for stream in self._streams.values():
            self._drop_stream(stream, "incomplete at flush", events)
        return events

    def _full(self, seq: int, payload: memoryview, events: list[Event]) -> None:
        if not payload:
            self._bad(events, "full-packet datagram with no packet", seq, b"")
            return
        pos, n = 0, len(payload)
        while pos < n:
            try:
                length = parse_header(payload, pos).packet_length
            except HeaderError as exc:
                self._bad(events, f"at payload offset {pos}: {exc}", seq, payload[pos:])
                return
            if length < HEADER_SIZE or pos + length > n:
                reason = f"at payload offset {pos}: packet length {length} does not fit {n - pos} bytes"
                self._bad(events, reason, seq, payload[pos:])
                return
            events.append(PacketReceived(bytes(payload[pos : pos + length]), seq))
            self.stats.packets += 1
            pos += length

    # -- format 3: a byte stream per source ----------------------------------------------------------

    def _stream(self, hdr: TransferHeader, status: int, payload: memoryview, events: list[Event]) -> None:
        seq, start = hdr.udp_sequence_number, hdr.packet_start_offset
        if status == LATE:  # reordered: only the packets wholly inside it; the stream goes on as it was
            stream = _Stream()
        else:
            stream = self._streams.get(hdr.source_id or 0)
            if stream is None:
                stream = self._streams[hdr.source_id or 0] = _Stream()
        if start is not None and start > len(payload):
            self._drop_stream(stream, "format 3 stream: lost at a bad packet start offset", events)
            self._bad(events, f"packet start offset {start} beyond the {len(payload)} bytes carried", seq, payload)
            return
        if stream.pending is not None:
            if status != NEXT:
                self._drop_stream(stream, "format 3 stream: a datagram before this one is missing", events)
            else:
                head = payload if start is None else payload[:start]
                rest = self._cut(stream, stream.pending + bytes(head), seq, events)
                if start is not None and rest:
                    self._drop_stream(stream, f"format 3 stream: packet runs past the next packet start "
                                              f"({len(rest)} bytes over)", events)
                if start is None:
                    return
        if start is not None:
            self._cut(stream, bytes(payload[start:]), seq, events)

    def _cut(self, stream: _Stream, data: bytes, seq: int, events: list[Event]) -> bytes:
        """Emit the whole packets at the start of ``data``; keep the rest as ``pending`` and return it."""
        stream.pending = None
        pos, n = 0, len(data)
        while n - pos >= HEADER_SIZE:
            try:
                length = parse_header(data, pos).packet_length
            except HeaderError as exc:
                self._bad(events, f"format 3 stream at offset {pos}: {exc}", seq, data[pos:])
                return b""
            if not HEADER_SIZE <= length <= MAX_PACKET_LENGTH:
                self._bad(events, f"format 3 stream: implausible packet length {length}", seq, data[pos:])
                return b""
            if pos + length > n:
                break
            events.append(PacketReceived(data[pos : pos + length], seq))
            self.stats.packets += 1
            pos += length
        rest = data[pos:]
        stream.pending = rest or None
        return rest

    def _drop_stream(self, stream: _Stream, reason: str, events: list[Event]) -> None:
        if stream.pending is None:
            return
        data, stream.pending = stream.pending, None
        channel = seq = length = None
        try:
            h = parse_header(data)
            channel, seq, length = h.channel_id, h.sequence_number, h.packet_length
        except HeaderError:
            pass
        self.stats.dropped_partial += 1
        events.append(PartialDropped(channel if channel is not None else -1,
                                     seq if seq is not None else NO_CHANNEL_SEQUENCE, reason, len(data), length))

    # -- formats 1 and 2: segments of one packet -------------------------------------------------------

    def _add_segment(self, seq: int, channel_id: int, chan_seq: int, off: int, payload: bytes | memoryview,
                     events: list[Event]) -> None:
        key = (channel_id, chan_seq)
        end = off + len(payload)
        if end > MAX_PACKET_LENGTH:
            self._bad(events, f"bad segment offset {off} (+{len(payload)} bytes)", seq, payload)
            return
        part = self._partials.get(key)
        if part is not None and off in part.segments:
            if part.segments[off] == payload:  # the same segment sent twice
                self.stats.duplicates += 1
                return
            self._drop(key, "superseded by a new packet with the same channel sequence number", events)
            part = None
        length = None
        if off == 0:
            try:
                header = parse_header(payload)
            except HeaderError as exc:
                self._bad(events, f"first segment: {exc}", seq, payload)
                return
            length = header.packet_length
            if header.channel_id != key[0] or chan_seq not in (NO_CHANNEL_SEQUENCE, header.sequence_number):
                reason = (f"segment header channel {key[0]} seq {chan_seq} != packet header "
                          f"channel {header.channel_id} seq {header.sequence_number}")
                self._bad(events, reason, seq, payload)
                return
            if not HEADER_SIZE <= length <= MAX_PACKET_LENGTH:
                self._bad(events, f"implausible packet length {length}", seq, payload)
                return
        if part is None:
            while len(self._partials) >= self.max_partials:
                self._drop(next(iter(self._partials)), "evicted: too many partial packets", events)
            part = self._partials[key] = _Partial()
        part.length = length if length is not None else part.length
        part.segments[off] = payload
        part.size += len(payload)
        part.last_seen = self.stats.datagrams
        self._held += len(payload)
        if next(reversed(self._partials)) != key:
            self._partials[key] = self._partials.pop(key)  # most recently updated last
        if part.length is not None:
            # Check every held segment when the length is first learned, else just this one.
            if length is not None:
                over = [o for o, b in part.segments.items() if o + len(b) > length]
            else:
                over = [off] if end > part.length else []
            if over:
                self._drop(key, f"bad segment offset {over[0]}: beyond packet length {part.length}", events)
                return
            if part.size >= part.length:
                self._complete(key, part, seq, events)
                return
        elif part.size > MAX_PACKET_LENGTH:
            self._drop(key, "too many bytes without a first segment", events)
        while self._held > self.max_partial_bytes and self._partials:
            self._drop(next(iter(self._partials)), "evicted: partial packet memory limit", events)

    def _complete(self, key: tuple[int, int], part: _Partial, seq: int, events: list[Event]) -> None:
        offsets = sorted(part.segments)
        ends = [o + len(part.segments[o]) for o in offsets]
        if offsets[1:] != ends[:-1] or part.size != part.length:
            self._drop(key, "overlapping segments", events)
            return
        del self._partials[key]
        self._held -= part.size
        self.stats.reassembled += 1
        self.stats.packets += 1
        events.append(PacketReceived(b"".join(part.segments[o] for o in offsets), seq, reassembled=True))

    def _expire(self, events: list[Event]) -> None:
        horizon = self.stats.datagrams - self.max_partial_age
        while self._partials:
            key, part = next(iter(self._partials.items()))
            if part.last_seen >= horizon:
                return
            self._drop(key, "stale: no segment for too long", events)

    def _drop(self, key: tuple[int, int], reason: str, events: list[Event]) -> None:
        part = self._partials.pop(key)
        self._held -= part.size
        self.stats.dropped_partial += 1
        events.append(PartialDropped(key[0], key[1], reason, part.size, part.length))

    def _bad(self, events: list[Event], reason: str, seq: int | None, data: bytes | memoryview) -> list[Event]:
        self.stats.malformed += 1
        events.append(DatagramError(reason, seq, bytes(data)))
        return events
