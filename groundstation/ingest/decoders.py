"""One decoder per Chapter 10 data type (sans-I/O): a table, not a branch per data type.

``DECODERS`` maps a data type to the class that decodes it. ``Ingest`` keeps one
instance per channel (made on the channel's first packet) and gives each packet to
its channel's decoder; a decoder owns its channel's state (the PCM decommutator and
frame sync, a bus channel's extractor and monitor, the TMATS digest) and returns a
``Decoded``: sample batches, errors, frames, and for TMATS the setup it read. It
never reaches into another channel's decoder; what is shared (the ``Setup``: the
parameters in force, the RTC to UTC clock, the time correlator the time channel
feeds) is handed to it. Adding a data type is adding an entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import ClassVar, Protocol

from telemetry_formats.busmonitor import BusMonitor
from telemetry_formats.ch10.arinc429 import DATA_TYPE_ARINC429_F0, decode_429
from telemetry_formats.ch10.mil1553 import DATA_TYPE_1553_F1, decode_1553
from telemetry_formats.ch10.packet import Packet
from telemetry_formats.ch10.pcm import DATA_TYPE_PCM_F1
from telemetry_formats.ch10.time import DATA_TYPE_TIME_F1, RtcCorrelator, TimeDataError, parse_time_f1
from telemetry_formats.ch10.tmats_packet import DATA_TYPE_TMATS, parse_tmats_packet
from telemetry_formats.decom import BusExtractor, Decommutator, SampleBatch
from telemetry_formats.decom.decommutator import RtcClock
from telemetry_formats.paramdb.active import ActiveDatabase
from telemetry_formats.tmats import Tmats, parse_tmats, unclean_reason

__all__ = ["DECODERS", "Decoded", "Decoder", "Setup", "TmatsSeen", "Arinc429Decoder", "Mil1553Decoder",
           "PcmDecoder", "TimeDecoder", "TmatsDecoder"]


@dataclass
class Setup:
    """What every decoder is given: the parameters in force (None: not configured), the clock, the time base."""

    db: ActiveDatabase | None
    clock: RtcClock
    correlator: RtcCorrelator
    year: int | None = None
    log: Callable[[str, dict], None] = lambda event, fields: None


@dataclass(frozen=True)
class TmatsSeen:
    """A TMATS setup record that differs from the last one used (``damage``: why it is used though damaged)."""

    tmats: Tmats
    damage: list[str]


@dataclass
class Decoded:
    """What one packet gave: (kind, text) errors with kind one of ``ingest.core.ERROR_REASONS``."""

    samples: list[SampleBatch] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    tmats: TmatsSeen | None = None
    unconfigured: bool = False  # a data packet with no parameters in force for its channel


class Decoder(Protocol):
    stat: ClassVar[str]  # the ``IngestStats`` counter of this data type's packets

    def __init__(self, channel_id: int, setup: Setup) -> None: ...
    def configure(self, setup: Setup) -> None: ...
    def decode(self, packet: Packet, arrival_ns: int) -> Decoded: ...


class TmatsDecoder:
    """Channel 0 setup records: a new (or changed) TMATS, parsed; a damaged one only if its text is clean."""

    stat = "tmats_packets"

    def __init__(self, channel_id: int, setup: Setup) -> None:
        self._digest: bytes | None = None

    def configure(self, setup: Setup) -> None:
        pass

    def decode(self, p: Packet, arrival_ns: int) -> Decoded:
        digest = hashlib.sha1(bytes(p.body[4:])).digest()
        if digest == self._digest:
            return Decoded()
        # The digest is remembered only once the TMATS is used: a damaged copy between two good
        # ones must not make the good one look new (a needless reconfiguration clears alarms).
        try:
            text = parse_tmats_packet(p.body).text
            tmats = parse_tmats(text)
        except ValueError as exc:
            return Decoded(errors=[("tmats", f"offset {p.offset}: undecodable TMATS: {exc}")])
        damage: list[str] = []
        if p.checksum_error is not None:
            unclean = unclean_reason(text, tmats)
            if unclean is not None:
                return Decoded(errors=[("tmats", f"offset {p.offset}: TMATS with a bad data checksum not used: "
                                                 f"{unclean}")])
            damage = [f"the TMATS packet's data checksum failed ({p.checksum_error}); its text parses cleanly "
                      "and is used"]
        self._digest = digest
        return Decoded(tmats=TmatsSeen(tmats, damage))


class TimeDecoder:
    """Time format 1: feeds the RTC to UTC correlation every other channel's clock reads."""

    stat = "time_packets"

    def __init__(self, channel_id: int, setup: Setup) -> None:
        self.configure(setup)

    def configure(self, setup: Setup) -> None:
        self.setup = setup

    def decode(self, p: Packet, arrival_ns: int) -> Decoded:
        try:
            tf = parse_time_f1(p)
            year = tf.year or self.setup.year or datetime.fromtimestamp(arrival_ns / 1e9, tz=timezone.utc).year
            utc = tf.utc_ns(year)
        except (TimeDataError, ValueError, TypeError) as exc:
            return Decoded(errors=[("time", f"offset {p.offset}: bad time packet: {exc}")])
        clock = self.setup.correlator
        if clock.observe(p.header.rtc, utc):
            self.setup.log("time_jump", {"error_ns": clock.last_error_ns})
        return Decoded()


class PcmDecoder:
    """One PCM link: its channel's decommutator (frame sync, calibration, limits) from its own P-group."""

    stat = "pcm_packets"

    def __init__(self, channel_id: int, setup: Setup) -> None:
        self.channel_id = channel_id
        self.configure(setup)

    def configure(self, setup: Setup) -> None:
        db = setup.db
        link = None if db is None else db.pcm.get(self.channel_id)
        self.decom = None if link is None else Decommutator(link, clock=setup.clock, ids=db.ids)

    def decode(self, p: Packet, arrival_ns: int) -> Decoded:
        if self.decom is None:
            return Decoded(unconfigured=True)
        out = self.decom.feed(p)
        res = Decoded(errors=[("pcm", str(e)) for e in out.errors], frames=len(out.frames))
        if len(out.samples):
            res.samples.append(out.samples)
        return res


class _BusDecoder:
    """A bus channel: every message into its bus monitor, the defined parameters into samples."""

    kind: ClassVar[str]
    read: Callable  # the data type's packet decoder
    extract: ClassVar[str]  # the ``BusExtractor`` method for its batches

    def __init__(self, channel_id: int, setup: Setup) -> None:
        self.channel_id = channel_id
        self.monitor = BusMonitor()  # kept across reconfigurations: what was seen stays seen
        self.configure(setup)

    def configure(self, setup: Setup) -> None:
        db = setup.db
        defined = db is not None and self.channel_id in {ch for k, ch in zip(db.kinds, db.channels) if k == self.kind}
        self.extractor = BusExtractor(db.bus, clock=setup.clock, ids=db.ids) if defined else None

    def decode(self, p: Packet, arrival_ns: int) -> Decoded:
        batch = self.read(p)
        self.monitor.feed(batch)
        res = Decoded(errors=[(self.kind, str(e)) for e in batch.errors if not e.decoded])
        if self.extractor is not None:
            out = getattr(self.extractor, self.extract)(batch)
            if len(out):
                res.samples.append(out)
        return res


class Mil1553Decoder(_BusDecoder):
    """MIL-STD-1553 format 1."""

    stat = "mil1553_packets"
    kind = "1553"
    read = staticmethod(decode_1553)
    extract = "extract_1553"


class Arinc429Decoder(_BusDecoder):
    """ARINC-429 format 0."""

    stat = "arinc429_packets"
    kind = "429"
    read = staticmethod(decode_429)
    extract = "extract_429"


DECODERS: dict[int, type[Decoder]] = {
    DATA_TYPE_TMATS: TmatsDecoder,
    DATA_TYPE_TIME_F1: TimeDecoder,
    DATA_TYPE_PCM_F1: PcmDecoder,
    DATA_TYPE_1553_F1: Mil1553Decoder,
    DATA_TYPE_ARINC429_F0: Arinc429Decoder,
}
