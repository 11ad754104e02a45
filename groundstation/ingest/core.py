"""The ingest core (sans-I/O): UDP datagrams in, configuration, samples and errors out.

``Ingest.receive(datagram, arrival_ns, sender)`` runs the whole receive chain for
one datagram: UDP transfer format (sequence state per sender, gaps, reassembly),
Chapter 10 packets (checksums, resync), then each packet to its channel's decoder
from the table ``decoders.DECODERS`` (TMATS, time, PCM, MIL-STD-1553, ARINC-429).
A new TMATS, or the parameter files alone, set the parameters in force
(``paramdb.active.combine``: files over TMATS) and every channel decoder is
configured again. It returns an ``IngestResult`` and never raises on bad input.

Damaged packets. A packet whose data checksum fails is decoded like any other
(TMATS, time, PCM, everything: each decoder checks what it reads) and reported
as an error of kind ``data_checksum``; with ``strict_checksums`` it is refused
instead. Either way it is in ``IngestResult.packets`` for the raw archive, as
are truncated packets and packets with unusable headers or lengths
(``ReceivedSpan``, with their status): what came down the link is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from telemetry_formats.ch10.header import HEADER_SIZE, HeaderError, parse_header
from telemetry_formats.ch10.packet import STATUS_HEADER, STATUS_TRUNCATED, Packet
from telemetry_formats.ch10.pcm import DATA_TYPE_PCM_F1
from telemetry_formats.ch10.reader import DecodeError, PacketReader
from telemetry_formats.ch10.replay_marker import MARKER_KEY, packet_marker
from telemetry_formats.ch10.time import RtcCorrelator
from telemetry_formats.ch10.tmats_packet import DATA_TYPE_TMATS
from telemetry_formats.ch10.udp import DatagramError, PacketReceived, PartialDropped, SequenceGap
from telemetry_formats.decom import SampleBatch
from telemetry_formats.paramdb import MissionDatabase, ParameterDatabase
from telemetry_formats.paramdb.active import ActiveDatabase, combine
from telemetry_formats.paramdb.mission import PcmSource, Source
from telemetry_formats.tmats import Tmats

from .decoders import DECODERS, Decoder, Setup, TmatsSeen
from .senders import DEFAULT_MAX_SENDERS, SenderNote, SenderTable

__all__ = ["Ingest", "IngestResult", "IngestStats", "IngestError", "ReceivedSpan", "Configuration", "REPLAY_KEY",
           "ERROR_REASONS"]

# Reason classes of IngestError.kind (bounded: /metrics labels decode errors by them).
ERROR_REASONS = ("udp", "udp_partial", "sequence_gap", "header", "truncated", "length", "data_checksum",
                 "tmats", "time", "pcm", "1553", "429")
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
    """The parameters in force: every source in one id space (``db``), from where, which version.

    ``channel_id`` is the first PCM link's channel (-1 without PCM); ``db.channels`` has every parameter's.
    """

    channel_id: int
    db: ActiveDatabase
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
    mil1553_packets: int = 0
    arinc429_packets: int = 0
    other_packets: int = 0  # packets of data types whose decoder names no counter of its own
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
    """Decode one vehicle's stream: every channel through its data type's decoder (``decoders.DECODERS``).

    ``params`` (a ``MissionDatabase``, or one PCM ``ParameterDatabase``) comes before the
    stream's TMATS (``paramdb.active.combine``). ``channel_id`` selects the one PCM
    channel to decommutate (default: every PCM link the TMATS describes) and the
    channel a parameter file's PCM link with no channel is bound to (default: the
    TMATS's first PCM channel, or the first PCM packet seen). ``year`` gives day-of-year time packets their year (default:
    the year of the arrival time). ``strict_checksums`` refuses packets whose
    data checksum fails (they are still archived). ``max_senders`` bounds the
    UDP senders whose sequence state is kept (``SenderTable``).
    """

    def __init__(
        self,
        *,
        params: MissionDatabase | ParameterDatabase | None = None,
        channel_id: int | None = None,
        year: int | None = None,
        on_log: Callable[[str, dict], None] | None = None,
        strict_checksums: bool = False,
        max_senders: int = DEFAULT_MAX_SENDERS,
    ) -> None:
        if isinstance(params, ParameterDatabase):
            params = MissionDatabase(pcm=[PcmSource(Source("pcm", None, params.source), params)])
        self.params = params
        self.channel_id = channel_id
        self.year = year
        self.strict_checksums = strict_checksums
        self.udp = SenderTable(max_senders=max_senders)
        self.clock = RtcCorrelator()
        self.stats = IngestStats()
        self.config: Configuration | None = None
        self._version = 0
        self._log = on_log or (lambda event, fields: None)
        self._setup = Setup(None, self.to_utc_ns, self.clock, year, self._log)
        self.decoders: dict[tuple[int, int], Decoder] = {}  # (channel, data type) -> its decoder
        self._tmats_seen: Tmats | None = None
        self._bind: int | None = None  # the channel a parameter file's unbound PCM link is decoded on

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
            self._decode(ev, arrival_ns, res)

    def _decoder(self, channel_id: int, data_type: int) -> Decoder | None:
        """The channel's decoder (made on its first packet), None for a data type nothing decodes."""
        key = (channel_id, data_type)
        dec = self.decoders.get(key)
        if dec is None:
            cls = DECODERS.get(data_type)
            if cls is None:
                return None
            dec = self.decoders[key] = cls(channel_id, self._setup)
        return dec

    def _unbound_pcm(self) -> bool:
        """A parameter file's PCM link waits for its channel (``channel_id`` or the first PCM channel seen)."""
        return self.params is not None and self._bind is None and any(s.source.channel is None
                                                                       for s in self.params.pcm)

    def _before(self, p: Packet, res: IngestResult) -> None:
        """Parameter files alone configure on the first packet (with a PCM link to bind: on its channel's)."""
        if self.params is None or self.config is not None or p.data_type == DATA_TYPE_TMATS:
            return  # (a TMATS configures when it is decoded)
        if self._unbound_pcm():
            if p.data_type != DATA_TYPE_PCM_F1 or self.channel_id not in (None, p.channel_id):
                return
            self._bind = p.channel_id
        self._configure(self.params.pcm[0].db.source if self.params.pcm else "parameter files", [], res)

    def _decode(self, p: Packet, arrival_ns: int, res: IngestResult) -> None:
        self._before(p, res)
        dec = self._decoder(p.channel_id, p.data_type)
        if dec is None:
            return
        stat = getattr(dec, "stat", "other_packets")
        setattr(self.stats, stat, getattr(self.stats, stat, 0) + 1)
        out = dec.decode(p, arrival_ns)
        for kind, text in out.errors:
            self.stats.decode_errors += 1
            res.errors.append(IngestError(text, kind))
        if out.unconfigured and self.config is None:
            self.stats.unconfigured_packets += 1
        self.stats.frames += out.frames
        res.frames += out.frames
        for batch in out.samples:
            self.stats.samples += len(batch)
            res.samples.append(batch)
        if out.tmats is not None:
            self._tmats(out.tmats, res)

    def _tmats(self, seen: TmatsSeen, res: IngestResult) -> None:
        """A new TMATS: the parameters in force again, parameter files first (``paramdb.active.combine``)."""
        self._tmats_seen = seen.tmats
        if self._unbound_pcm():
            pcm = [c.channel_id for c in seen.tmats.channels if c.channel_type == "PCMIN" and c.channel_id is not None]
            self._bind = self.channel_id if self.channel_id is not None else (pcm[0] if pcm else None)
        source = "TMATS" if self.params is None else "parameter files + TMATS"
        self._configure(source, list(seen.damage), res)

    def _configure(self, source: str, problems: list[str], res: IngestResult) -> None:
        db, more = combine(self.params, self._tmats_seen, pcm_channel=self.channel_id, bind_pcm=self._bind)
        self._version += 1
        channel = min((c for c in db.pcm if c >= 0), default=-1)
        self.config = Configuration(channel, db, source, self._version, problems + more)
        self._setup.db = db
        for dec in self.decoders.values():
            dec.configure(self._setup)
        res.configured, res.configured_at = self.config, len(res.samples)
        self._log("configured", {"channel": channel, "channels": sorted(set(db.channels)), "source": source,
                                 "parameters": len(db.parameters), "bit_rate": db.frame.bit_rate,
                                 "version": self._version})

    def bus_monitor(self) -> dict:
        """Every 1553 message and ARINC-429 label seen on any channel (``BusMonitor.snapshot`` rows, merged)."""
        out: dict[str, list] = {"mil1553": [], "arinc429": [], "undecoded": []}
        for _, dec in sorted(self.decoders.items()):
            monitor = getattr(dec, "monitor", None)
            if monitor is not None:
                for kind, rows in monitor.snapshot().items():
                    out[kind] += rows
        return out
