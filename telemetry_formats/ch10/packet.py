"""A whole Chapter 10 packet: header, optional secondary header, body, filler, data checksum.

Packet layout (IRIG 106 Chapter 10/11)::

    primary header (24) | secondary header (12, optional) | CSDW (4) + data
    | filler (0-3 bytes, to a multiple of 4) | data checksum (0, 1, 2 or 4 bytes)

``data_length`` counts the CSDW and data; ``packet_length`` counts everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checksum import data_checksum, data_checksum_size
from .header import (
    HEADER_SIZE,
    SECONDARY_HEADER_SIZE,
    Header,
    HeaderError,
    build_header,
    build_secondary_header,
    parse_header,
    parse_secondary_header,
)

__all__ = ["Packet", "PacketError", "build_packet", "parse_packet", "MAX_PACKET_LENGTH",
           "STATUS_OK", "STATUS_DATA_CHECKSUM", "STATUS_TRUNCATED", "STATUS_HEADER", "STATUS_NAMES"]

# The standard caps packets at 512 KiB; allow some slack for non-conforming recorders
# while still refusing absurd lengths from a corrupt header.
MAX_PACKET_LENGTH = 1 << 24

# What a span of received bytes was, as the raw archive records it (docs/recording.md).
STATUS_OK = 0  # a packet, every check passed
STATUS_DATA_CHECKSUM = 1  # a packet whose data checksum failed (decoded all the same)
STATUS_TRUNCATED = 2  # a valid header, fewer bytes than its packet length
STATUS_HEADER = 3  # starts with the sync pattern, but the header (or its lengths) is unusable
STATUS_NAMES = {STATUS_OK: "ok", STATUS_DATA_CHECKSUM: "data checksum error", STATUS_TRUNCATED: "truncated",
                STATUS_HEADER: "header error"}


class PacketError(ValueError):
    """A packet whose lengths or data checksum do not agree with its contents."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One parsed packet: its header, the secondary header time (if any) and the body.

    ``body`` starts with the 4-byte channel-specific data word and holds
    ``data_length`` bytes; ``raw`` is the whole packet as it was on the wire.
    """

    header: Header
    body: memoryview
    raw: memoryview
    secondary: dict | None = None
    offset: int = 0  # where the packet starts in its stream or file
    checksum_error: str | None = None  # why the data checksum failed, if it did (the packet is still decoded)

    @property
    def channel_id(self) -> int:
        return self.header.channel_id

    @property
    def status(self) -> int:
        """``STATUS_OK``, or ``STATUS_DATA_CHECKSUM`` when the data checksum failed."""
        return STATUS_OK if self.checksum_error is None else STATUS_DATA_CHECKSUM

    @property
    def data_type(self) -> int:
        return self.header.data_type

    @property
    def rtc(self) -> int:
        return self.header.rtc

    @property
    def csdw(self) -> int:
        """The channel-specific data word as an integer."""
        return int.from_bytes(self.body[:4], "little")

    @property
    def data(self) -> memoryview:
        """The packet data after the channel-specific data word."""
        return self.body[4:]


def packet_layout(header: Header) -> tuple[int, int, int]:
    """Return (body offset, filler length, checksum size) implied by a header."""
    body_off = HEADER_SIZE + (SECONDARY_HEADER_SIZE if header.secondary_header else 0)
    cks = data_checksum_size(header.checksum_type)
    filler = header.packet_length - body_off - header.data_length - cks
    return body_off, filler, cks


def parse_packet(buf: bytes | memoryview, offset: int = 0, *, verify_data: bool = True,
                 header: Header | None = None, stream_offset: int | None = None,
                 flag_checksum: bool = False) -> Packet:
    """Parse the packet at ``offset``; raise ``HeaderError``/``PacketError`` if it is bad.

    The returned views reference ``buf`` without copying. ``header``: the header at
    ``offset``, already parsed and verified by the caller. ``stream_offset``: the
    packet's ``offset`` to report (default ``offset``). ``flag_checksum``: a data
    checksum mismatch is noted in ``Packet.checksum_error`` instead of raised.
    """
    mv = buf if isinstance(buf, memoryview) else memoryview(buf)
    if header is None:
        header = parse_header(mv, offset)
    if header.packet_length > MAX_PACKET_LENGTH:
        raise PacketError(f"packet length {header.packet_length} exceeds {MAX_PACKET_LENGTH}")
    body_off, filler, cks = packet_layout(header)
    if header.data_length < 4 or filler < 0:
        raise PacketError(
            f"inconsistent lengths: packet {header.packet_length}, data {header.data_length}"
        )
    end = offset + header.packet_length
    if end > len(mv):
        raise PacketError(
            f"truncated packet: {len(mv) - offset} of {header.packet_length} bytes present"
        )
    secondary = None
    if header.secondary_header:
        secondary = parse_secondary_header(mv, header.secondary_time_format, offset + HEADER_SIZE)
    body = mv[offset + body_off : offset + body_off + header.data_length]
    problem = None
    if cks and verify_data:
        stored = int.from_bytes(mv[end - cks : end], "little")
        computed = data_checksum(header.checksum_type, mv[offset + body_off : end - cks])
        if stored != computed:
            problem = f"data checksum mismatch: stored 0x{stored:0{2 * cks}X}, computed 0x{computed:0{2 * cks}X}"
            if not flag_checksum:
                raise PacketError(problem)
    return Packet(header, body, mv[offset:end], secondary, offset if stream_offset is None else stream_offset,
                  problem)


def build_packet(
    *,
    channel_id: int,
    data_type: int,
    body: bytes,
    sequence_number: int = 0,
    rtc: int = 0,
    data_type_version: int = 0x06,
    checksum_type: int = 0,
    secondary_time: dict | None = None,
    secondary_time_format: int = 0,
    ipts_source: bool = False,
    rtc_sync_error: bool = False,
    data_overflow: bool = False,
) -> bytes:
    """Build a complete packet around ``body`` (CSDW + data) with filler and checksums."""
    secondary = b""
    if secondary_time is not None:
        secondary = build_secondary_header(secondary_time_format, **secondary_time)
    cks = data_checksum_size(checksum_type)
    unpadded = HEADER_SIZE + len(secondary) + len(body) + cks
    filler = b"\x00" * (-unpadded % 4)
    packet_length = unpadded + len(filler)
    header = build_header(
        channel_id=channel_id,
        packet_length=packet_length,
        data_length=len(body),
        data_type=data_type,
        sequence_number=sequence_number,
        rtc=rtc,
        data_type_version=data_type_version,
        secondary_header=bool(secondary),
        ipts_source=ipts_source,
        rtc_sync_error=rtc_sync_error,
        data_overflow=data_overflow,
        secondary_time_format=secondary_time_format,
        checksum_type=checksum_type,
    )
    trailer = b""
    if cks:
        trailer = data_checksum(checksum_type, body + filler).to_bytes(cks, "little")
    return header + secondary + body + filler + trailer


def rebuild_packet(packet: Packet) -> bytes:
    """Build a packet again from its parsed fields (filler is the minimum; a recorder
    that padded more produces a longer original)."""
    h = packet.header
    secondary = None
    if packet.secondary is not None:
        secondary = {k: v for k, v in packet.secondary.items() if k != "time_ns"}
    return build_packet(
        channel_id=h.channel_id,
        data_type=h.data_type,
        body=bytes(packet.body),
        sequence_number=h.sequence_number,
        rtc=h.rtc,
        data_type_version=h.data_type_version,
        checksum_type=h.checksum_type,
        secondary_time=secondary,
        secondary_time_format=h.secondary_time_format,
        ipts_source=h.ipts_source,
        rtc_sync_error=h.rtc_sync_error,
        data_overflow=h.data_overflow,
    )


__all__ += ["packet_layout", "rebuild_packet", "HeaderError"]
