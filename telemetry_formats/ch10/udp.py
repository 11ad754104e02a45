"""IRIG 106 Chapter 10 UDP transfer format 1: datagram headers, sender and receiver.

Sans-I/O: ``UdpSender`` turns Chapter 10 packets into datagram bytes and
``UdpReceiver`` turns datagram bytes into packet bytes and events; neither
touches a socket, and the receiver never raises on bad input.

Format 1 transfer header (all little-endian)::

    byte 0     message type (bits 7-4: 0 full packets, 1 segmented) | version (bits 3-0: 1)
    bytes 1-3  UDP message sequence number (24 bits, wraps)
    segmented messages only:
    bytes 4-5  channel ID               (of the Chapter 10 packet being segmented)
    byte 6     channel sequence number  (the packet header's sequence number)
    byte 7     reserved (0)
    bytes 8-11 segment offset           (byte offset of this segment in the packet)

A full-packet message carries one or more whole packets back to back; a
segmented message carries one slice of one packet, the first slice (offset 0)
starting with the packet header.

Confirmed against two independent implementations (the IRIG 106 text itself was
not available): irig106lib ``i106_data_stream.h`` (bitfields uFormat:4,
uMsgType:4, uUdpSeqNum:24; then uChID:16, uChanSeqNum:8, uReserved:8,
uSegmentOffset:32; its writer copies channel ID and sequence number from the
packet header and sets the offset to the byte index in the packet) and
AcraNetwork ``Chapter10UDP`` (``<BBH`` = version/type byte, sequence low byte,
sequence upper 16 bits; segmented ``<HBBI``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from construct import BitsInteger, BitStruct, Container, Default, If, Int8ul, Int16ul, Int24ul, Int32ul, Struct, this

from .header import HEADER_SIZE, HeaderError, parse_header
from .packet import MAX_PACKET_LENGTH

__all__ = [
    "VERSION", "TYPE_FULL", "TYPE_SEGMENTED", "FULL_HEADER_SIZE", "SEGMENTED_HEADER_SIZE",
    "TransferHeaderF1", "SegmentHeaderF1", "UdpTransferF1", "build_transfer_header",
    "UdpSender", "build_datagrams", "UdpReceiver", "UdpStats",
    "PacketReceived", "SequenceGap", "DatagramError", "PartialDropped",
]

VERSION = 1
TYPE_FULL, TYPE_SEGMENTED = 0, 1
SEQ_MOD = 1 << 24
FULL_HEADER_SIZE, SEGMENTED_HEADER_SIZE = 4, 12
DEFAULT_MAX_DATAGRAM = 65000  # IPv4 allows 65,507 bytes of UDP payload

# Byte 0: BitStruct reads the most significant nibble first.
TransferHeaderF1 = Struct(
    "format" / BitStruct("message_type" / BitsInteger(4), "version" / BitsInteger(4)),
    "udp_sequence_number" / Int24ul,
)
SegmentHeaderF1 = Struct(
    "channel_id" / Int16ul,
    "channel_sequence_number" / Int8ul,
    "reserved" / Default(Int8ul, 0),
    "segment_offset" / Int32ul,
)
# The whole transfer header: the segment fields follow only in segmented messages.
UdpTransferF1 = Struct(
    *TransferHeaderF1.subcons, "segment" / If(this.format.message_type == TYPE_SEGMENTED, SegmentHeaderF1)
)
_transfer = TransferHeaderF1.compile()
_segment = SegmentHeaderF1.compile()


def build_transfer_header(
    message_type: int, udp_sequence_number: int, *, channel_id: int = 0,
    channel_sequence_number: int = 0, segment_offset: int = 0,
) -> bytes:
    """Build a 4-byte (full) or 12-byte (segmented) format 1 transfer header."""
    head = _transfer.build(dict(format=dict(message_type=message_type, version=VERSION),
                                udp_sequence_number=udp_sequence_number % SEQ_MOD))
    if message_type != TYPE_SEGMENTED:
        return head
    return head + _segment.build(dict(channel_id=channel_id, segment_offset=segment_offset,
                                      channel_sequence_number=channel_sequence_number & 0xFF))


class UdpSender:
    """Packs Chapter 10 packets into format 1 datagrams; owns the 24-bit sequence counter.

    ``max_datagram`` bounds each datagram including its transfer header. Whole
    packets are batched into full-packet messages; a packet that does not fit
    alone is sent as segmented messages whose slices are multiples of 4 bytes
    (our choice) and whose first slice holds the whole packet header.
    """

    def __init__(self, seq_start: int = 0, max_datagram: int = DEFAULT_MAX_DATAGRAM) -> None:
        if max_datagram < SEGMENTED_HEADER_SIZE + HEADER_SIZE:
            raise ValueError(f"max_datagram {max_datagram} cannot hold a segment with a packet header")
        self.next_seq = seq_start % SEQ_MOD
        self.max_datagram = max_datagram

    def _seq(self) -> int:
        seq, self.next_seq = self.next_seq, (self.next_seq + 1) % SEQ_MOD
        return seq

    def pack(self, packets: Iterable[bytes]) -> list[bytes]:
        """Return the datagrams that carry ``packets`` in order (nothing is held back)."""
        out: list[bytes] = []
        limit = self.max_datagram - FULL_HEADER_SIZE
        batch: list[bytes] = []
        size = 0
        for pkt in packets:
            header = parse_header(pkt)
            if header.packet_length != len(pkt):
                raise ValueError(f"packet length field {header.packet_length} != {len(pkt)} bytes given")
            if size and size + len(pkt) > limit:
                out.append(build_transfer_header(TYPE_FULL, self._seq()) + b"".join(batch))
                batch, size = [], 0
            if len(pkt) > limit:
                out.extend(self._segments(pkt, header.channel_id, header.sequence_number))
            else:
                batch.append(pkt)
                size += len(pkt)
        if batch:
            out.append(build_transfer_header(TYPE_FULL, self._seq()) + b"".join(batch))
        return out

    def _segments(self, pkt: bytes, channel_id: int, channel_seq: int) -> list[bytes]:
        step = (self.max_datagram - SEGMENTED_HEADER_SIZE) & ~3
        mv = memoryview(pkt)
        return [
            build_transfer_header(TYPE_SEGMENTED, self._seq(), channel_id=channel_id,
                                  channel_sequence_number=channel_seq, segment_offset=off)
            + mv[off : off + step]
            for off in range(0, len(pkt), step)
        ]


def build_datagrams(packets: Iterable[bytes], seq_start: int = 0,
                    max_datagram: int = DEFAULT_MAX_DATAGRAM) -> list[bytes]:
    """One-shot ``UdpSender(seq_start, max_datagram).pack(packets)``."""
    return UdpSender(seq_start, max_datagram).pack(packets)


@dataclass(frozen=True, slots=True)
class PacketReceived:
    """One complete Chapter 10 packet (bytes as sent); not yet checksum-verified."""
    data: bytes
    udp_sequence_number: int
    reassembled: bool = False


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """The UDP sequence number jumped: ``missing`` datagrams not (yet) seen.

    ``resync`` marks a jump too far back to be reordering (e.g. a sender restart).
    """
    expected: int
    received: int
    missing: int
    resync: bool = False


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


@dataclass(slots=True)
class _Partial:
    segments: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    length: int | None = None  # packet_length, once the offset-0 segment is in
    last_seen: int = 0


Event = PacketReceived | SequenceGap | DatagramError | PartialDropped


class UdpReceiver:
    """Datagrams in, packets and events out; never raises on bad input.

    Partial packets are keyed by (channel ID, channel sequence number), kept in
    least-recently-updated order and bounded in count, bytes and age. Age counts
    datagrams received since a partial's last segment (there is no clock here); the
    default of 256 keeps a partial from outliving its 8-bit channel sequence number
    in the usual case of one packet per datagram.
    """

    def __init__(self, *, max_partials: int = 64, max_partial_bytes: int = 32 << 20,
                 max_partial_age: int = 256, reorder_window: int = 1024) -> None:
        self.stats = UdpStats()
        self.max_partials, self.max_partial_bytes = max_partials, max_partial_bytes
        self.max_partial_age, self.reorder_window = max_partial_age, reorder_window
        self._partials: dict[tuple[int, int], _Partial] = {}
        self._held = 0
        self._last: int | None = None
        self._seen: set[int] = set()
        self._recent: deque[int] = deque()
        self._damaged: set[int] = set()  # sequence numbers whose datagram was unusable

    def receive(self, datagram: bytes) -> list[Event]:
        """Process one datagram; return the events it caused, in order."""
        st = self.stats
        st.datagrams += 1
        st.bytes += len(datagram)
        events: list[Event] = []
        self._expire(events)
        if len(datagram) < FULL_HEADER_SIZE:
            return self._bad(events, f"datagram too short: {len(datagram)} bytes", None, datagram)
        hdr = _transfer.parse(datagram[:FULL_HEADER_SIZE])
        seq, mtype = hdr.udp_sequence_number, hdr.format.message_type
        if hdr.format.version != VERSION:
            return self._bad(events, f"unknown transfer format version {hdr.format.version}", None, datagram)
        if not self._track(seq, events):
            return events
        malformed, packets = self.stats.malformed, self.stats.packets
        self._dispatch(seq, mtype, datagram, events)
        if self.stats.malformed > malformed and self.stats.packets == packets:
            self._damaged.add(seq)  # it gave nothing: a good copy of it is still welcome
            self._seen.discard(seq)
        return events

    def _dispatch(self, seq: int, mtype: int, datagram: bytes, events: list[Event]) -> None:
        if mtype == TYPE_FULL:
            self._full(seq, memoryview(datagram)[FULL_HEADER_SIZE:], events)
        elif mtype == TYPE_SEGMENTED:
            if len(datagram) <= SEGMENTED_HEADER_SIZE:
                self._bad(events, f"segmented datagram too short: {len(datagram)} bytes", seq, datagram)
                return
            seg = _segment.parse(datagram[FULL_HEADER_SIZE:SEGMENTED_HEADER_SIZE])
            self._add_segment(seq, seg, bytes(datagram[SEGMENTED_HEADER_SIZE:]), events)
        else:
            self._bad(events, f"unknown message type {mtype}", seq, datagram)

    def flush(self) -> list[Event]:
        """Drop every partial packet (end of stream); return the drop events."""
        events: list[Event] = []
        for key in list(self._partials):
            self._drop(key, "incomplete at flush", events)
        return events

    def _track(self, seq: int, events: list[Event]) -> bool:
        """Account for ``seq``; False means drop the datagram as a duplicate."""
        st = self.stats
        if self._last is not None:
            ahead = (seq - self._last) % SEQ_MOD
            if ahead == 0 or (ahead > SEQ_MOD // 2 and SEQ_MOD - ahead <= self.reorder_window):
                if seq in self._damaged:  # the good copy of a datagram that arrived damaged
                    self._damaged.discard(seq)
                    self._remember(seq)
                    return True
                if seq in self._seen:
                    st.duplicates += 1
                    return False
                st.reordered += 1
                st.lost_datagrams = max(0, st.lost_datagrams - 1)
                self._remember(seq)
                return True
            expected = (self._last + 1) % SEQ_MOD
            if ahead > SEQ_MOD // 2:
                st.resyncs += 1
                self._seen.clear()
                self._recent.clear()
                events.append(SequenceGap(expected, seq, 0, resync=True))
            elif ahead > 1:
                st.gaps += 1
                st.lost_datagrams += ahead - 1
                events.append(SequenceGap(expected, seq, ahead - 1))
        self._last = seq
        self._remember(seq)
        return True

    def _remember(self, seq: int) -> None:
        self._seen.add(seq)
        self._recent.append(seq)
        if len(self._recent) > self.reorder_window:
            old = self._recent.popleft()
            self._seen.discard(old)
            self._damaged.discard(old)

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

    def _add_segment(self, seq: int, seg: Container, payload: bytes, events: list[Event]) -> None:
        key = (seg.channel_id, seg.channel_sequence_number)
        off, end = seg.segment_offset, seg.segment_offset + len(payload)
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
            if (header.channel_id, header.sequence_number) != key:
                reason = (f"segment header channel {key[0]} seq {key[1]} != packet header "
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
        self._partials[key] = self._partials.pop(key)  # most recently updated last
        if part.length is not None:
            # Check every held segment when the length is first learned, else just this one.
            held = part.segments.items() if length is not None else [(off, payload)]
            over = [o for o, b in held if o + len(b) > part.length]
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
