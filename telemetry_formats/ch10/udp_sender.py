"""Chapter 10 packets -> UDP datagrams in transfer format 1, 2 or 3 (sans-I/O).

``UdpSender`` owns the UDP message sequence counter and returns datagram bytes;
it never touches a socket. Header layouts: ``transfer.py``.

- Formats 1 and 2: whole packets are batched into full-packet messages up to
  ``max_datagram`` bytes (header included); a packet that does not fit alone is
  sent as segmented messages whose slices are multiples of 4 bytes (our choice)
  and whose first slice holds the whole packet header.
- Format 3: the packets of one ``pack`` call are one byte stream cut into
  datagrams of ``max_datagram`` bytes; each header gives the offset of the first
  packet that starts in it. Each call ends on a packet boundary (nothing is held
  back), so its last datagram may be short.
"""

from __future__ import annotations

from collections.abc import Iterable

from .header import HEADER_SIZE, parse_header
from .transfer import (
    F1_FULL_SIZE,
    F1_SEGMENTED_SIZE,
    F2_SIZE,
    F3_SIZE,
    FORMAT_1,
    FORMAT_2,
    FORMAT_3,
    TYPE_FULL,
    TYPE_SEGMENTED,
    build_f1_header,
    build_f2_header,
    build_f3_header,
    sequence_modulus,
)

__all__ = ["DEFAULT_MAX_DATAGRAM", "UdpSender", "build_datagrams", "build_transfer_header"]

DEFAULT_MAX_DATAGRAM = 65000  # IPv4 allows 65,507 bytes of UDP payload

build_transfer_header = build_f1_header  # the format 1 name kept from before formats 2 and 3


class UdpSender:
    """Packs Chapter 10 packets into datagrams of one transfer format; owns the sequence counter.

    ``source_id`` / ``source_id_length`` (4-bit units, 0-4) are format 3's; the
    default length 2 gives an 8-bit source ID and a 24-bit sequence number.
    """

    def __init__(self, seq_start: int = 0, max_datagram: int = DEFAULT_MAX_DATAGRAM, *,
                 transfer_format: int = FORMAT_1, source_id: int = 0, source_id_length: int = 2) -> None:
        if transfer_format not in (FORMAT_1, FORMAT_2, FORMAT_3):
            raise ValueError(f"unknown transfer format {transfer_format}")
        header = {FORMAT_1: F1_SEGMENTED_SIZE, FORMAT_2: F2_SIZE, FORMAT_3: F3_SIZE}[transfer_format]
        if max_datagram < header + HEADER_SIZE:
            raise ValueError(f"max_datagram {max_datagram} cannot hold a segment with a packet header")
        self.transfer_format = transfer_format
        self.source_id, self.source_id_length = source_id, source_id_length
        self.modulus = sequence_modulus(transfer_format, source_id_length)
        self.next_seq = seq_start % self.modulus
        self.max_datagram = max_datagram
        if transfer_format == FORMAT_3:
            build_f3_header(0, packet_start_offset=0, source_id=source_id, source_id_length=source_id_length)

    def _seq(self) -> int:
        seq, self.next_seq = self.next_seq, (self.next_seq + 1) % self.modulus
        return seq

    def pack(self, packets: Iterable[bytes]) -> list[bytes]:
        """Return the datagrams that carry ``packets`` in order (nothing is held back)."""
        checked = []
        for pkt in packets:
            header = parse_header(pkt)
            if header.packet_length != len(pkt):
                raise ValueError(f"packet length field {header.packet_length} != {len(pkt)} bytes given")
            checked.append((pkt, header.channel_id, header.sequence_number))
        if self.transfer_format == FORMAT_3:
            return self._stream([p for p, _, _ in checked])
        out: list[bytes] = []
        head = F1_FULL_SIZE if self.transfer_format == FORMAT_1 else F2_SIZE
        limit = self.max_datagram - head
        batch: list[bytes] = []
        size = 0
        for pkt, channel_id, channel_seq in checked:
            if size and size + len(pkt) > limit:
                out.append(self._full(batch, size))
                batch, size = [], 0
            if len(pkt) > limit:
                out.extend(self._segments(pkt, channel_id, channel_seq))
            else:
                batch.append(pkt)
                size += len(pkt)
        if batch:
            out.append(self._full(batch, size))
        return out

    def _full(self, batch: list[bytes], size: int) -> bytes:
        if self.transfer_format == FORMAT_1:
            head = build_f1_header(TYPE_FULL, self._seq())
        else:
            head = build_f2_header(TYPE_FULL, self._seq(), data_bytes=size)
        return head + b"".join(batch)

    def _segments(self, pkt: bytes, channel_id: int, channel_seq: int) -> list[bytes]:
        head = F1_SEGMENTED_SIZE if self.transfer_format == FORMAT_1 else F2_SIZE
        step = (self.max_datagram - head) & ~3
        mv = memoryview(pkt)
        out = []
        for off in range(0, len(pkt), step):
            piece = mv[off : off + step]
            if self.transfer_format == FORMAT_1:
                hdr = build_f1_header(TYPE_SEGMENTED, self._seq(), channel_id=channel_id,
                                      channel_sequence_number=channel_seq, segment_offset=off)
            else:
                hdr = build_f2_header(TYPE_SEGMENTED, self._seq(), data_bytes=len(piece), channel_id=channel_id,
                                      segment_offset=off)
            out.append(hdr + piece)
        return out

    def _stream(self, packets: list[bytes]) -> list[bytes]:
        data = b"".join(packets)
        starts, pos = [], 0
        for p in packets:
            starts.append(pos)
            pos += len(p)
        step = self.max_datagram - F3_SIZE
        out, i = [], 0
        for off in range(0, len(data), step):
            while i < len(starts) and starts[i] < off:
                i += 1
            start = starts[i] - off if i < len(starts) and starts[i] < off + step else None
            out.append(build_f3_header(self._seq(), packet_start_offset=start, source_id=self.source_id,
                                       source_id_length=self.source_id_length) + data[off : off + step])
        return out


def build_datagrams(packets: Iterable[bytes], seq_start: int = 0, max_datagram: int = DEFAULT_MAX_DATAGRAM,
                    *, transfer_format: int = FORMAT_1) -> list[bytes]:
    """One-shot ``UdpSender(seq_start, max_datagram, transfer_format=...).pack(packets)``."""
    return UdpSender(seq_start, max_datagram, transfer_format=transfer_format).pack(packets)
