"""IRIG 106 Chapter 10 UDP transfer headers, formats 1, 2 and 3: layouts, build, parse, detection.

Bytes in, a ``TransferHeader`` out (or a ``TransferHeaderError`` naming what is
wrong). The construct definitions are the layouts; ``parse_transfer_header``
reads the same bits with ``struct`` on the hot path, and ``_check_fast_layout``
proves at import time that the two agree.

Format 1 (all little-endian; 4 bytes, 12 when segmented)::

    byte 0     message type (bits 7-4: 0 full packets, 1 segmented) | format (bits 3-0: 1)
    bytes 1-3  UDP message sequence number (24 bits)
    segmented: bytes 4-5 channel ID, byte 6 channel sequence number, byte 7 reserved,
               bytes 8-11 segment offset (bytes into the Chapter 10 packet)

Format 2 (12 bytes: three 32-bit words, each sent most significant byte first)::

    word 0  bits 31-8 UDP message sequence number | bits 7-4 message type | bits 3-0 format (2)
    word 1  bits 31-24 segment offset, high 8 bits | bits 23-0 packet size
    word 2  bits 31-16 segment offset, low 16 bits | bits 15-0 channel ID

Format 3 (8 bytes, little-endian)::

    byte 0     source ID length (bits 7-4, in 4-bit units: 0-4) | format (bits 3-0: 3)
    byte 1     reserved (0)
    bytes 2-3  offset of the first packet start in this datagram's payload (bytes)
    bytes 4-7  a 32-bit word: the source ID in its top 4 * length bits, the UDP message
               sequence number in the rest (length 2: 8-bit source, 24-bit sequence)

Format 3 payloads are a byte stream: packets run on across datagrams, and the
packet-start offset lets a receiver pick the stream up again after a loss.

What this was confirmed against (the IRIG 106 Chapter 10 text itself was not
available here):

- irig106lib (github:bbaggerman/irig106lib, ``src/i106_data_stream.h``):
  ``SuUDP_Transfer_Header_F1_NonSeg`` / ``_F1_Seg`` (uFormat:4, uMsgType:4,
  uUdpSeqNum:24; uChID:16, uChanSeqNum:8, uReserved:8, uSegmentOffset:32);
  ``SuUDP_Transfer_Header_F2`` (uFormat:4, uMsgType:4, uUdpSeqNum:24;
  uPacketSize:24 "Packet size in bytes", uSegmentOffset1:8; uChanID:16,
  uSegmentOffset2:16); ``SuUDP_Transfer_Header_F3`` (uFormat:4, uSrcIdLen:4,
  uReserved:8, uPktStartOffset:16; uUdpSeqNum:24, uSrcId:8). Bitfields from the
  least significant bit of each 32-bit word. Its reader decodes format 1 only.
- AcraNetwork (github:diarmuidcwc/AcraNetwork, ``AcraNetwork/Chapter10/Chapter10UDP.py``):
  format 2 "is big endian" (``>HBB`` then ``>BBHHH``: sequence high 16 bits,
  sequence low byte, type/format byte; segment offset high byte, packet size
  high byte and low 16 bits, segment offset low 16 bits, channel ID) and writes
  the packet size as the Chapter 10 bytes carried / 4; format 3 ``<BBH`` + ``<I``
  with the source ID / sequence split by the source ID length in 4-bit units.

The two agree on every field's bits; AcraNetwork fixes the byte order of format
2 (big-endian words). They differ on the unit of the format 2 packet size: this
module writes AcraNetwork's (32-bit words of Chapter 10 data in the datagram) and
reads either. The format 2 segment offset is taken in 32-bit words as well (our
reading: Chapter 10 packets and our segments are whole 32-bit words; neither
source says), and a format 3 datagram in which no packet starts carries the
offset 0xFFFF (our choice).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from construct import BitsInteger, BitStruct, Default, If, Int8ul, Int16ul, Int24ul, Int32ul, Struct, this

__all__ = [
    "FORMAT_1", "FORMAT_2", "FORMAT_3", "TYPE_FULL", "TYPE_SEGMENTED",
    "F1_FULL_SIZE", "F1_SEGMENTED_SIZE", "F2_SIZE", "F3_SIZE", "F3_NO_PACKET_START", "F1_SEGMENT_STRUCT",
    "TransferHeaderF1", "SegmentHeaderF1", "UdpTransferF1", "UdpTransferF2", "UdpTransferF3",
    "TransferHeader", "TransferHeaderError", "parse_transfer_header", "detect_format",
    "build_f1_header", "build_f2_header", "build_f3_header", "sequence_modulus",
]

FORMAT_1, FORMAT_2, FORMAT_3 = 1, 2, 3
TYPE_FULL, TYPE_SEGMENTED = 0, 1
F1_FULL_SIZE, F1_SEGMENTED_SIZE, F2_SIZE, F3_SIZE = 4, 12, 12, 8
F3_NO_PACKET_START = 0xFFFF
_SYNC = b"\x25\xeb"

# -- the layouts (construct) -------------------------------------------------------------------------

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
UdpTransferF1 = Struct(
    *TransferHeaderF1.subcons, "segment" / If(this.format.message_type == TYPE_SEGMENTED, SegmentHeaderF1)
)
# Big-endian 32-bit words: a BitStruct over the bytes in order reads each word msb first.
UdpTransferF2 = BitStruct(
    "udp_sequence_number" / BitsInteger(24),
    "message_type" / BitsInteger(4),
    "version" / BitsInteger(4),
    "segment_offset_high" / BitsInteger(8),
    "packet_size" / BitsInteger(24),
    "segment_offset_low" / BitsInteger(16),
    "channel_id" / BitsInteger(16),
)
UdpTransferF3 = Struct(
    "format" / BitStruct("source_id_length" / BitsInteger(4), "version" / BitsInteger(4)),
    "reserved" / Default(Int8ul, 0),
    "packet_start_offset" / Int16ul,
    "source_and_sequence" / Int32ul,  # split by source_id_length: see sequence_modulus
)
_f1 = TransferHeaderF1.compile()
_f1_segment = SegmentHeaderF1.compile()


def sequence_modulus(transfer_format: int, source_id_length: int = 0) -> int:
    """How many UDP message sequence numbers a format counts before it wraps."""
    if transfer_format == FORMAT_3:
        return 1 << (32 - 4 * source_id_length)
    return 1 << 24


class TransferHeader(NamedTuple):
    """A decoded transfer header of any format; fields a format lacks are None (a tuple: one per datagram)."""

    transfer_format: int
    message_type: int  # TYPE_FULL or TYPE_SEGMENTED (format 3: TYPE_FULL, a stream)
    udp_sequence_number: int
    size: int  # bytes of header before the Chapter 10 data
    channel_id: int | None = None
    channel_sequence_number: int | None = None
    segment_offset: int | None = None  # bytes
    packet_size: int | None = None  # format 2, as sent
    source_id: int | None = None
    source_id_length: int | None = None
    packet_start_offset: int | None = None  # format 3, None when no packet starts here

    @property
    def sequence_modulus(self) -> int:
        return sequence_modulus(self.transfer_format, self.source_id_length or 0)


class TransferHeaderError(ValueError):
    """A datagram whose transfer header cannot be read."""


# -- building ------------------------------------------------------------------------------------------


def build_f1_header(message_type: int, udp_sequence_number: int, *, channel_id: int = 0,
                    channel_sequence_number: int = 0, segment_offset: int = 0) -> bytes:
    """A 4-byte (full) or 12-byte (segmented) format 1 transfer header."""
    head = _f1.build(dict(format=dict(message_type=message_type, version=FORMAT_1),
                          udp_sequence_number=udp_sequence_number % (1 << 24)))
    if message_type != TYPE_SEGMENTED:
        return head
    return head + _f1_segment.build(dict(channel_id=channel_id, segment_offset=segment_offset,
                                         channel_sequence_number=channel_sequence_number & 0xFF))


def build_f2_header(message_type: int, udp_sequence_number: int, *, data_bytes: int, channel_id: int = 0,
                    segment_offset: int = 0) -> bytes:
    """A 12-byte format 2 header for ``data_bytes`` of Chapter 10 data (a multiple of 4)
    at byte ``segment_offset`` (a multiple of 4) of its packet."""
    if data_bytes % 4 or segment_offset % 4:
        raise ValueError("format 2 carries whole 32-bit words")
    words = segment_offset // 4
    return _F2_WORDS.pack(((udp_sequence_number % (1 << 24)) << 8) | (message_type << 4) | FORMAT_2,
                          ((words >> 16) << 24) | (data_bytes // 4), ((words & 0xFFFF) << 16) | channel_id)


def build_f3_header(udp_sequence_number: int, *, packet_start_offset: int | None, source_id: int = 0,
                    source_id_length: int = 2) -> bytes:
    """An 8-byte format 3 header (``packet_start_offset`` None: no packet starts in this datagram)."""
    if not 0 <= source_id_length <= 4:
        raise ValueError(f"source ID length {source_id_length} (4-bit units) not in 0-4")
    seq_bits = 32 - 4 * source_id_length
    if source_id >> (4 * source_id_length):
        raise ValueError(f"source ID {source_id} does not fit {4 * source_id_length} bits")
    word = (source_id << seq_bits) | (udp_sequence_number % (1 << seq_bits)) if source_id_length else (
        udp_sequence_number % (1 << 32))
    start = F3_NO_PACKET_START if packet_start_offset is None else packet_start_offset
    return _F3.pack((source_id_length << 4) | FORMAT_3, 0, start, word)


# -- parsing -------------------------------------------------------------------------------------------

F1_SEGMENT_STRUCT = struct.Struct("<HBBI")  # bytes 4-11 of a format 1 segment
_F2_WORDS = struct.Struct(">III")
_F3 = struct.Struct("<BBHI")


def parse_transfer_header(datagram: bytes | memoryview, transfer_format: int) -> TransferHeader:
    """Read the transfer header of ``datagram`` in the given format; raises ``TransferHeaderError``."""
    n = len(datagram)
    if transfer_format == FORMAT_1:
        if n < F1_FULL_SIZE:
            raise TransferHeaderError(f"datagram too short: {n} bytes")
        b0 = datagram[0]
        mtype, seq = b0 >> 4, int.from_bytes(datagram[1:4], "little")
        if mtype == TYPE_FULL:
            return TransferHeader(FORMAT_1, TYPE_FULL, seq, F1_FULL_SIZE)
        if mtype != TYPE_SEGMENTED:
            raise TransferHeaderError(f"unknown message type {mtype}")
        if n <= F1_SEGMENTED_SIZE:
            raise TransferHeaderError(f"segmented datagram too short: {n} bytes")
        channel, chan_seq, _, offset = F1_SEGMENT_STRUCT.unpack_from(datagram, F1_FULL_SIZE)
        return TransferHeader(FORMAT_1, TYPE_SEGMENTED, seq, F1_SEGMENTED_SIZE, channel_id=channel,
                              channel_sequence_number=chan_seq, segment_offset=offset)
    if transfer_format == FORMAT_2:
        if n < F2_SIZE:
            raise TransferHeaderError(f"format 2 datagram too short: {n} bytes")
        w0, w1, w2 = _F2_WORDS.unpack_from(datagram)
        mtype = (w0 >> 4) & 0xF
        if mtype not in (TYPE_FULL, TYPE_SEGMENTED):
            raise TransferHeaderError(f"unknown message type {mtype}")
        size, data = w1 & 0xFFFFFF, n - F2_SIZE
        if size * 4 != data and size != data:
            raise TransferHeaderError(f"format 2 packet size {size} does not match the {data} bytes carried")
        return TransferHeader(FORMAT_2, mtype, w0 >> 8, F2_SIZE, channel_id=w2 & 0xFFFF,
                              segment_offset=(((w1 >> 24) << 16) | (w2 >> 16)) * 4, packet_size=size)
    if transfer_format == FORMAT_3:
        if n < F3_SIZE:
            raise TransferHeaderError(f"format 3 datagram too short: {n} bytes")
        b0, _, start, word = _F3.unpack_from(datagram)
        length = b0 >> 4
        if length > 4:
            raise TransferHeaderError(f"format 3 source ID length {length} not in 0-4")
        seq_bits = 32 - 4 * length
        return TransferHeader(FORMAT_3, TYPE_FULL, word & ((1 << seq_bits) - 1), F3_SIZE,
                              source_id=word >> seq_bits if length else 0, source_id_length=length,
                              packet_start_offset=None if start == F3_NO_PACKET_START else start)
    raise TransferHeaderError(f"unknown transfer format {transfer_format}")


def _f1_plausible(dg: bytes | memoryview) -> bool:
    mtype = dg[0] >> 4
    if mtype == TYPE_FULL:
        return dg[4:6] == _SYNC
    return mtype == TYPE_SEGMENTED and len(dg) > F1_SEGMENTED_SIZE


def _f2_plausible(dg: bytes | memoryview) -> bool:
    if len(dg) < F2_SIZE or dg[3] & 0x0F != FORMAT_2:
        return False
    size, data = int.from_bytes(dg[5:8], "big"), len(dg) - F2_SIZE
    return size * 4 == data or size == data


def detect_format(datagram: bytes | memoryview) -> int | None:
    """The transfer format a datagram is in (1, 2 or 3), or None when no format fits.

    Format 1 and 3 keep the format in the low nibble of byte 0, format 2 (big-endian)
    in the low nibble of byte 3, where format 1 has the top of its sequence number: a
    datagram that reads as both goes to the one whose packet size or sync agrees.
    """
    if len(datagram) < F1_FULL_SIZE:
        return None
    low = datagram[0] & 0x0F
    if low == FORMAT_1 and not (_f2_plausible(datagram) and not _f1_plausible(datagram)):
        return FORMAT_1
    if _f2_plausible(datagram):
        return FORMAT_2
    if low == FORMAT_3:
        return FORMAT_3
    return None


def _check_fast_layout() -> None:
    f2 = build_f2_header(TYPE_SEGMENTED, 0xABCDEF, data_bytes=0x40, channel_id=0x1234, segment_offset=0x3456788)
    c = UdpTransferF2.parse(f2)
    h = parse_transfer_header(f2 + b"\0" * 0x40, FORMAT_2)
    if (c.udp_sequence_number, c.message_type, c.version, c.channel_id, c.packet_size,
            ((c.segment_offset_high << 16) | c.segment_offset_low) * 4) != (
            h.udp_sequence_number, h.message_type, FORMAT_2, h.channel_id, h.packet_size, h.segment_offset):
        raise AssertionError("format 2 fast reader disagrees with UdpTransferF2")
    f3 = build_f3_header(0x123456, packet_start_offset=0x20, source_id=0xA5)
    c3, h3 = UdpTransferF3.parse(f3), parse_transfer_header(f3, FORMAT_3)
    if (c3.format.version, c3.format.source_id_length, c3.packet_start_offset,
            c3.source_and_sequence) != (FORMAT_3, 2, h3.packet_start_offset, (0xA5 << 24) | h3.udp_sequence_number):
        raise AssertionError("format 3 fast reader disagrees with UdpTransferF3")
    f1 = build_f1_header(TYPE_SEGMENTED, 0x654321, channel_id=7, channel_sequence_number=9, segment_offset=64)
    c1, h1 = UdpTransferF1.parse(f1), parse_transfer_header(f1 + b"\0", FORMAT_1)
    if (c1.udp_sequence_number, c1.segment.channel_id, c1.segment.channel_sequence_number,
            c1.segment.segment_offset) != (h1.udp_sequence_number, h1.channel_id, h1.channel_sequence_number,
                                           h1.segment_offset):
        raise AssertionError("format 1 fast reader disagrees with UdpTransferF1")


_check_fast_layout()
