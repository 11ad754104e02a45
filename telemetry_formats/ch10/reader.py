"""Sans-I/O Chapter 10 stream reader: bytes in, packets and decode errors out.

Never raises on bad input. Anything that is not a valid packet becomes a
``DecodeError`` with its offset, channel (when the header was readable), reason,
reason class (``kind``) and the skipped bytes; reading resumes at the next 0xEB25
whose header checksum is valid.

A packet whose data checksum fails (its header is valid, its lengths agree) is
still a packet: it is returned with ``Packet.checksum_error`` set, for the
caller to decode, report and keep -- recorders in the field write bad data
checksums, and the data is usually fine. ``strict_checksums=True`` turns such a
packet into a ``DecodeError`` of kind ``"data_checksum"`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .header import HEADER_SIZE, HeaderError, parse_header
from .packet import (
    MAX_PACKET_LENGTH,
    STATUS_DATA_CHECKSUM,
    STATUS_HEADER,
    STATUS_TRUNCATED,
    Packet,
    PacketError,
    parse_packet,
)

__all__ = ["DecodeError", "PacketReader", "iter_packets", "checksum_error_of", "ERROR_KINDS"]

# Reason classes of a DecodeError (bounded: metrics label by them).
ERROR_KINDS = ("header", "truncated", "length", "data_checksum")
_KIND_STATUS = {"header": STATUS_HEADER, "truncated": STATUS_TRUNCATED, "length": STATUS_HEADER,
                "data_checksum": STATUS_DATA_CHECKSUM}

_SYNC_BYTES = b"\x25\xeb"


@dataclass(frozen=True, slots=True)
class DecodeError:
    """A span of input that did not decode, and why."""

    offset: int
    reason: str
    length: int = 0
    channel_id: int | None = None
    data: bytes = b""
    kind: str = "header"  # ERROR_KINDS from the reader (no valid header = garbage, truncated, bad lengths,
    # data checksum); decoders above it use "tmats", "time", "pcm"

    def __str__(self) -> str:
        ch = f" channel {self.channel_id}" if self.channel_id is not None else ""
        return f"offset {self.offset}{ch}: {self.reason} ({self.length} bytes)"

    @property
    def is_packet(self) -> bool:
        """True when the span starts with a valid packet header (a damaged packet, not garbage)."""
        return self.kind in ("truncated", "length", "data_checksum")

    @property
    def status(self) -> int:
        """The raw archive status of these bytes (``telemetry_formats.ch10.packet.STATUS_*``)."""
        return _KIND_STATUS.get(self.kind, STATUS_HEADER)


def checksum_error_of(p: Packet) -> DecodeError | None:
    """A packet's data checksum failure as a ``DecodeError`` (for reports), or None."""
    if p.checksum_error is None:
        return None
    return DecodeError(p.offset, p.checksum_error, len(p.raw), p.channel_id, kind="data_checksum")


def _find_next_header(buf: memoryview, start: int) -> int:
    """Offset of the next sync with a valid header checksum at or after ``start``, or -1."""
    raw = buf.obj if isinstance(buf.obj, bytes) and buf.nbytes == len(buf.obj) else bytes(buf)
    pos = start
    while True:
        pos = raw.find(_SYNC_BYTES, pos)
        if pos < 0 or pos + HEADER_SIZE > len(raw):
            return pos if pos >= 0 else -1
        try:
            parse_header(raw, pos)
            return pos
        except HeaderError:
            pos += 1


def iter_packets(
    buf: bytes | memoryview, base_offset: int = 0, *, final: bool = True, strict_checksums: bool = False
) -> Iterator[Packet | DecodeError]:
    """Yield every packet and decode error in ``buf``.

    With ``final=False`` a trailing incomplete packet is not reported; the caller
    learns how much was consumed from ``PacketReader``.
    """
    reader = PacketReader(strict_checksums=strict_checksums)
    yield from reader.feed(buf, final=final, base_offset=base_offset)


class PacketReader:
    """Incremental reader: ``feed()`` bytes as they arrive, get packets and errors.

    A run of garbage that spans several ``feed`` calls is reported once, when the
    next valid header (or the end of input) is seen.
    """

    MAX_ERROR_BYTES = 1 << 16  # bytes of a bad span kept in its DecodeError

    def __init__(self, *, strict_checksums: bool = False) -> None:
        self.strict_checksums = strict_checksums
        self._buf = b""
        self._base = 0  # stream offset of self._buf[0]
        self._junk_start: int | None = None  # stream offset where unreported garbage began
        self._junk_reason = ""
        self._junk_channel: int | None = None
        self._junk_len = 0
        self._junk = bytearray()

    @property
    def consumed(self) -> int:
        """Stream offset up to which input has been decoded or reported."""
        return self._base

    def feed(
        self, data: bytes | memoryview, *, final: bool = False, base_offset: int | None = None
    ) -> list[Packet | DecodeError]:
        """Add bytes and return what decodes. ``final`` reports a trailing partial
        packet as truncated instead of waiting for more."""
        if base_offset is not None and not self._buf:
            self._base = base_offset
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        events: list[Packet | DecodeError] = []
        pos = self._scan(buf, events, final)
        self._base += pos
        self._buf = buf[pos:]
        return events

    def _scan(self, buf: bytes, events: list, final: bool) -> int:
        pos = 0
        n = len(buf)
        mv = memoryview(buf)
        while pos < n:
            if n - pos < HEADER_SIZE:
                if not final:
                    return pos
                self._junk_add(buf, pos, n, "truncated header at end of input")
                self._junk_flush(events)
                return n
            channel = None
            try:
                header = parse_header(buf, pos)
            except HeaderError as exc:
                reason = str(exc)
            else:
                self._junk_flush(events)
                reason = None
                if header.packet_length > MAX_PACKET_LENGTH or header.packet_length < HEADER_SIZE:
                    # Skipped like a bad header, so that the span up to the next valid
                    # header is one error however the input is split across feed() calls.
                    reason = f"implausible packet length {header.packet_length}"
                    channel = header.channel_id
            if reason is not None:
                nxt = _find_next_header(memoryview(buf), pos + 1)
                if nxt < 0:
                    stop = n if final else max(pos, n - HEADER_SIZE + 1)
                    self._junk_add(buf, pos, stop, reason, channel)
                    if final:
                        self._junk_flush(events)
                    return stop
                self._junk_add(buf, pos, nxt, reason, channel)
                pos = nxt
                continue
            end = pos + header.packet_length
            if end > n:
                if not final:
                    return pos
                # A packet cut off by the end of input, unless another valid header
                # follows inside its claimed length: then only the span up to it is bad.
                nxt = _find_next_header(memoryview(buf), pos + HEADER_SIZE)
                stop = n if nxt < 0 else nxt
                reason = f"truncated packet: {stop - pos} of {header.packet_length} bytes"
                events.append(self._error(buf, pos, stop, reason, header.channel_id, "truncated"))
                if nxt < 0:
                    return n
                pos = nxt
                continue
            try:
                packet = parse_packet(mv, pos, header=header, stream_offset=self._base + pos,
                                      flag_checksum=not self.strict_checksums)
            except (HeaderError, PacketError) as exc:
                kind = "data_checksum" if "data checksum" in str(exc) else "length"
                events.append(self._error(buf, pos, end, str(exc), header.channel_id, kind))
                pos = end
                continue
            events.append(packet)
            pos = end
        return pos

    def _junk_add(self, buf: bytes, start: int, end: int, reason: str, channel: int | None = None) -> None:
        if end <= start:
            return
        if self._junk_start is None:
            self._junk_start = self._base + start
            self._junk_reason = reason
            self._junk_channel = channel
        self._junk_len += end - start
        room = self.MAX_ERROR_BYTES - len(self._junk)
        if room > 0:
            self._junk += buf[start : start + min(room, end - start)]

    def _junk_flush(self, events: list) -> None:
        if self._junk_start is None:
            return
        events.append(
            DecodeError(
                offset=self._junk_start,
                reason=self._junk_reason,
                length=self._junk_len,
                channel_id=self._junk_channel,
                data=bytes(self._junk),
            )
        )
        self._junk_start, self._junk_len, self._junk = None, 0, bytearray()

    def _error(self, buf: bytes, start: int, end: int, reason: str, channel: int | None, kind: str) -> DecodeError:
        # A damaged packet's bytes are kept whole (it is passed on and archived as received).
        return DecodeError(
            offset=self._base + start,
            reason=reason,
            length=end - start,
            channel_id=channel,
            data=bytes(buf[start:end]),
            kind=kind,
        )
