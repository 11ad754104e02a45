"""The ingest core (sans-I/O): UDP datagrams in, configuration, samples and errors out.

``Ingest.receive(datagram, arrival_ns, sender)`` runs the whole receive chain for
one datagram: UDP transfer format (sequence state per sender, gaps, reassembly),
Chapter 10 packets (checksums, resync), TMATS (configures or reconfigures the
decommutator when it changes), Time format 1 (RTC to UTC), PCM decommutation,
calibration and limits. It returns an ``IngestResult`` and never raises on bad input.

Damaged packets. A packet whose data checksum fails is decoded like any other
(TMATS, time, PCM, everything: each decoder checks what it reads) and reported
as an error of kind ``data_checksum``; with ``strict_checksums`` it is refused
instead. Either way it is in ``IngestResult.packets`` for the raw archive, as
are truncated packets and packets with unusable headers or lengths
(``ReceivedSpan``, with their status): what came down the link is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from telemetry_formats.ch10.header import HEADER_SIZE, HeaderError, parse_header
from telemetry_formats.ch10.packet import STATUS_HEADER, STATUS_TRUNCATED, Packet
from telemetry_formats.ch10.pcm import DATA_TYPE_PCM_F1
from telemetry_formats.ch10.reader import DecodeError, PacketReader
from telemetry_formats.ch10.replay_marker import MARKER_KEY, packet_marker
from telemetry_formats.ch10.time import DATA_TYPE_TIME_F1, RtcCorrelator, TimeDataError, parse_time_f1
from telemetry_formats.ch10.tmats_packet import DATA_TYPE_TMATS, parse_tmats_packet
from telemetry_formats.ch10.udp import DatagramError, PacketReceived, PartialDropped, SequenceGap
from telemetry_formats.decom import Decommutator, SampleBatch
from telemetry_formats.paramdb import ConfigError, ParameterDatabase, from_tmats
from telemetry_formats.tmats import parse_tmats, unclean_reason

from .senders import DEFAULT_MAX_SENDERS, SenderNote, SenderTable

__all__ = ["Ingest", "IngestResult", "IngestStats", "IngestError", "ReceivedSpan", "Configuration", "REPLAY_KEY",
           "ERROR_REASONS"]

# Reason classes of IngestError.kind (bounded: /metrics labels decode errors by them).
ERROR_REASONS = ("udp", "udp_partial", "sequence_gap", "header", "truncated", "length", "data_checksum",
                 "tmats", "time", "pcm")
_SYNC = b"\x25\xeb"


class IngestError(str):
    """One decode error's text, with its reason class ``kind`` (one of ``ERROR_REASONS``)."""

    kind: str

    def __new__(cls, text: str, kind: str) -> IngestError:
        obj = super().__new__(cls, text)
        obj.kind = kind
        return obj


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """Bytes received as a packet that did not decode as one (truncated, bad header or lengths).

    Kept for the raw archive with ``status`` (``telemetry_formats.ch10.packet.STATUS_*``);
    channel, data type and RTC are -1 / -1 / 0 when the header could not be read.
    """

    raw: bytes
    channel_id: int
    data_type: int
    rtc: int
    status: int

    @classmethod
    def of(cls, raw: bytes, status: int) -> ReceivedSpan:
        try:
            h = parse_header(raw)
        except HeaderError:
            return cls(bytes(raw), -1, -1, 0, status)
        return cls(bytes(raw), h.channel_id, h.data_type, h.rtc, status)

DATA_TYPE_USER = 0x00  # computer-generated data format 0 (user-defined)
REPLAY_KEY = MARKER_KEY  # `groundstation replay` marks its stream with this JSON key


@dataclass
class Configuration:
    """The active decommutation setup: which channel, from where, with what database."""

    channel_id: int
    db: ParameterDatabase
    source: str  # "TMATS" or the parameter file path
    version: int
    problems: list[str] = field(default_factory=list)


@dataclass
class IngestStats:
    datagrams: int = 0
    bytes: int = 0
    packets: int = 0
    decode_errors: int = 0
    datagram_gaps: int = 0
    datagrams_lost: int = 0
    time_packets: int = 0
    tmats_packets: int = 0
    pcm_packets: int = 0
    frames: int = 0
    samples: int = 0
    unconfigured_packets: int = 0
    checksum_errors: int = 0  # packets whose data checksum failed (used unless strict_checksums)
    damaged_spans: int = 0  # truncated packets and packets with unusable headers, archived as received

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class IngestResult:
    """What one datagram produced."""

    samples: list[SampleBatch] = field(default_factory=list)
    # every packet received, in order, for the raw archive: Packets (ok or data checksum error;
    # ``Packet.status``) and ReceivedSpans (truncated, header error)
    packets: list[Packet | ReceivedSpan] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)
    senders: list[SenderNote] = field(default_factory=list)  # a sender appeared, started over, was forgotten
    configured: Configuration | None = None  # set when the configuration changed
    configured_at: int = 0  # samples[:configured_at] were decoded under the configuration before it
    frames: int = 0
    replay: dict | None = None  # a replay marker seen in this datagram (see ``REPLAY_KEY``)


class Ingest:
    """Decode one vehicle's stream. ``params`` overrides the TMATS database.

    ``channel_id`` selects the PCM channel to decommutate (default: the first
    PCM channel the TMATS describes, or the first PCM packet seen with
    ``params``). ``year`` gives day-of-year time packets their year (default:
    the year of the arrival time). ``strict_checksums`` refuses packets whose
    data checksum fails (they are still archived). ``max_senders`` bounds the
    UDP senders whose sequence state is kept (``SenderTable``).
    """

    def __init__(
        self,
        *,
        params: ParameterDatabase | None = None,
        channel_id: int | None = None,
        year: int | None = None,
        on_log: Callable[[str, dict], None] | None = None,
        strict_checksums: bool = False,
        max_senders: int = DEFAULT_MAX_SENDERS,
    ) -> None:
        self.params = params
        self.channel_id = channel_id
        self.year = year
        self.strict_checksums = strict_checksums
        self.udp = SenderTable(max_senders=max_senders)
        self.clock = RtcCorrelator()
        self.stats = IngestStats()
        self.config: Configuration | None = None
        self.decom: Decommutator | None = None
        self._tmats_digest: bytes | None = None
        self._version = 0
        self._log = on_log or (lambda event, fields: None)

    def to_utc_ns(self, rtc):
        """RTC counts to UTC ns: from time packets once seen, before that from arrival times (``RtcCorrelator``)."""
        return self.clock.to_utc_ns(rtc)

    # -- the receive chain --------------------------------------------------
    def receive(self, datagram: bytes, arrival_ns: int, sender=None) -> IngestResult:
        """Decode one UDP datagram from ``sender`` (``(host, port)``) that arrived at ``arrival_ns`` (UTC ns)."""
        res = IngestResult()
        self.stats.datagrams += 1
        self.stats.bytes += len(datagram)
        res.senders, events = self.udp.receive(datagram, sender)
        for ev in events:
            if isinstance(ev, PacketReceived):
                self._packets(ev.data, arrival_ns, res)
            elif isinstance(ev, SequenceGap):
                self.stats.datagram_gaps += 1
                self.stats.datagrams_lost += max(ev.missing, 0)
                res.errors.append(IngestError(
                    f"UDP sequence gap: expected {ev.expected}, got {ev.received} ({ev.missing} missing)",
                    "sequence_gap"))
            elif isinstance(ev, DatagramError):
                self._datagram_error(ev, res)
            elif isinstance(ev, PartialDropped):
                self.stats.decode_errors += 1
                res.errors.append(IngestError(f"UDP: {ev.reason}", "udp_partial"))
        return res

    def _datagram_error(self, ev: DatagramError, res: IngestResult) -> None:
        """A datagram (or its tail) that did not split into packets: archived if it starts like one."""
        self.stats.decode_errors += 1
        data = ev.data
        if not data.startswith(_SYNC):  # not Chapter 10 bytes at all (junk, a foreign protocol)
            res.errors.append(IngestError(f"UDP: {ev.reason}", "udp"))
            return
        status, kind = STATUS_HEADER, "header"
        if len(data) >= HEADER_SIZE:
            try:
                if parse_header(data).packet_length > len(data):
                    status, kind = STATUS_TRUNCATED, "truncated"
            except HeaderError:
                pass
        res.errors.append(IngestError(f"UDP: {ev.reason}", kind))
        self.stats.damaged_spans += 1
        res.packets.append(ReceivedSpan.of(data, status))

    def receive_packets(self, data: bytes, arrival_ns: int) -> IngestResult:
        """Decode Chapter 10 packets without the UDP transfer header (e.g. a .c10 file's bytes)."""
        res = IngestResult()
        self._packets(data, arrival_ns, res)
        return res

    def _packets(self, data: bytes, arrival_ns: int, res: IngestResult) -> None:
        for ev in PacketReader(strict_checksums=self.strict_checksums).feed(data, final=True):
            if isinstance(ev, DecodeError):
                self.stats.decode_errors += 1
                res.errors.append(IngestError(str(ev), ev.kind))
                if ev.kind == "data_checksum":
                    self.stats.checksum_errors += 1
                if ev.data.startswith(_SYNC):  # refused, but archived as received
                    self.stats.damaged_spans += ev.kind != "data_checksum"
                    res.packets.append(ReceivedSpan.of(ev.data, ev.status))
                continue
            if ev.checksum_error is not None:
                self.stats.checksum_errors += 1
                self.stats.decode_errors += 1
                res.errors.append(IngestError(f"offset {ev.offset} channel {ev.channel_id}: {ev.checksum_error} "
                                              "(packet used)", "data_checksum"))
            self.stats.packets += 1
            dt = ev.data_type
            if dt == DATA_TYPE_USER and ev.channel_id == 0:
                marker = packet_marker(ev)
                if marker is not None:  # the replayer's, not the vehicle's: not recorded
                    res.replay = marker
                    continue
            res.packets.append(ev)
            self.clock.provisional(ev.header.rtc, arrival_ns)
            if dt == DATA_TYPE_TMATS:
                self._tmats(ev, res)
            elif dt == DATA_TYPE_TIME_F1:
                self._time(ev, arrival_ns, res)
            elif dt == DATA_TYPE_PCM_F1:
                self._pcm(ev, res)

    def _tmats(self, p: Packet, res: IngestResult) -> None:
        self.stats.tmats_packets += 1
        digest = hashlib.sha1(bytes(p.body[4:])).digest()
        if digest == self._tmats_digest:
            return
        # The digest is remembered only once the TMATS is used: a damaged copy between two good
        # ones must not make the good one look new (a needless reconfiguration clears alarms).
        try:
            text = parse_tmats_packet(p.body).text
            tmats = parse_tmats(text)
        except ValueError as exc:
            self._tmats_error(res, f"offset {p.offset}: undecodable TMATS: {exc}")
            return
        damage: list[str] = []
        if p.checksum_error is not None:
            unclean = unclean_reason(text, tmats)
            if unclean is not None:
                self._tmats_error(res, f"offset {p.offset}: TMATS with a bad data checksum not used: {unclean}")
                return
            damage = [f"the TMATS packet's data checksum failed ({p.checksum_error}); its text parses cleanly "
                      "and is used"]
        if self.params is not None:
            self._tmats_digest = digest
            self._log("tmats_ignored", {"reason": "a parameter file is in use"})
            return
        channel = self.channel_id
        if channel is None:
            pcm = [c.channel_id for c in tmats.channels if c.channel_type == "PCMIN" and c.channel_id is not None]
            channel = pcm[0] if pcm else None
        if channel is None:
            self._tmats_error(res, "TMATS describes no PCM channel")
            return
        try:
            db, problems = from_tmats(tmats, channel)
        except ConfigError as exc:
            self._tmats_error(res, f"TMATS: {exc}")
            return
        self._tmats_digest = digest
        self._configure(channel, db, "TMATS", damage + problems, res)

    def _tmats_error(self, res: IngestResult, reason: str) -> None:
        self.stats.decode_errors += 1
        res.errors.append(IngestError(reason, "tmats"))

    def _configure(self, channel: int, db: ParameterDatabase, source: str, problems: list[str],
                   res: IngestResult) -> None:
        self._version += 1
        self.config = Configuration(channel, db, source, self._version, problems)
        self.decom = Decommutator(db, clock=self.to_utc_ns)
        res.configured, res.configured_at = self.config, len(res.samples)
        self._log("configured", {"channel": channel, "source": source, "parameters": len(db.parameters),
                                 "bit_rate": db.frame.bit_rate, "version": self._version})

    def _time(self, p: Packet, arrival_ns: int, res: IngestResult) -> None:
        self.stats.time_packets += 1
        try:
            tf = parse_time_f1(p)
            year = tf.year or self.year or datetime.fromtimestamp(arrival_ns / 1e9, tz=timezone.utc).year
            utc = tf.utc_ns(year)
        except (TimeDataError, ValueError, TypeError) as exc:
            self.stats.decode_errors += 1
            res.errors.append(IngestError(f"offset {p.offset}: bad time packet: {exc}", "time"))
            return
        if self.clock.observe(p.header.rtc, utc):
            self._log("time_jump", {"error_ns": self.clock.last_error_ns})

    def _pcm(self, p: Packet, res: IngestResult) -> None:
        self.stats.pcm_packets += 1
        if self.decom is None and self.params is not None:
            if self.channel_id in (None, p.channel_id):
                self._configure(p.channel_id, self.params, self.params.source or "parameter file", [], res)
        if self.decom is None or p.channel_id != self.config.channel_id:
            if self.decom is None:
                self.stats.unconfigured_packets += 1
            return
        out = self.decom.feed(p)
        for e in out.errors:
            self.stats.decode_errors += 1
            res.errors.append(IngestError(str(e), "pcm"))
        self.stats.frames += len(out.frames)
        res.frames += len(out.frames)
        if len(out.samples):
            self.stats.samples += len(out.samples)
            res.samples.append(out.samples)
