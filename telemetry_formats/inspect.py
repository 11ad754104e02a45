"""Recording statistics: what ``groundstation inspect`` reports, computed without I/O.

``RecordingInspector`` takes the events of a ``PacketReader`` (packets and decode
errors) and keeps, per channel, the data types, packet and byte counts, RTC
span, checksum errors, sequence gaps and, for PCM channels that the TMATS
describes, minor frames, sync errors and sync losses; for MIL-STD-1553 and
ARINC-429 channels, the bus monitor's tables (messages by RT, T/R, subaddress
and word count; labels), with problems by reason and the first few with their
packet offset and message index. ``report()`` returns a plain dict ready for JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .busmonitor import BusMonitor
from .ch10.arinc429 import DATA_TYPE_ARINC429_F0, decode_429
from .ch10.header import RTC_HZ
from .ch10.mil1553 import DATA_TYPE_1553_F1, decode_1553
from .ch10.packet import Packet
from .ch10.pcm import DATA_TYPE_PCM_F1
from .ch10.reader import DecodeError, checksum_error_of
from .ch10.time import DATA_TYPE_TIME_F1, RtcCorrelator, TimeDataError, parse_time_f1
from .ch10.tmats_packet import DATA_TYPE_TMATS, parse_tmats_packet
from .decom import Decommutator
from .paramdb import ConfigError, from_tmats
from .tmats import Tmats, parse_tmats, unclean_reason

__all__ = ["RecordingInspector", "DATA_TYPE_NAMES", "data_type_name"]

DATA_TYPE_NAMES = {
    0x00: "Computer generated F0 (user)",
    0x01: "Computer generated F1 (TMATS)",
    0x02: "Computer generated F2 (events)",
    0x03: "Computer generated F3 (index)",
    0x04: "Computer generated F4 (streaming config)",
    0x08: "PCM F0",
    0x09: "PCM F1",
    0x11: "Time F1",
    0x12: "Time F2 (network)",
    0x19: "MIL-STD-1553 F1",
    0x1A: "MIL-STD-1553 F2 (16PP194)",
    0x21: "Analog F1",
    0x29: "Discrete F1",
    0x30: "Message F0",
    0x38: "ARINC-429 F0",
    0x40: "Video F0 (MPEG-2 TS)",
    0x41: "Video F1 (ISO 13818-1)",
    0x42: "Video F2 (ISO 14496)",
    0x43: "Video F3 (MJPEG)",
    0x44: "Video F4 (MJPEG-2000)",
    0x48: "Image F0",
    0x49: "Image F1",
    0x4A: "Image F2",
    0x50: "UART F0",
    0x58: "IEEE-1394 F0",
    0x59: "IEEE-1394 F1",
    0x60: "Parallel F0",
    0x68: "Ethernet F0",
    0x69: "Ethernet F1 (UDP payload)",
    0x6A: "Ethernet F2",
    0x70: "TSPI/CTS F0 (GPS NMEA-RTCM)",
    0x71: "TSPI/CTS F1 (EAG ACMI)",
    0x72: "TSPI/CTS F2 (ACTTS)",
    0x78: "CAN bus",
    0x79: "Fibre Channel F0",
    0x7A: "Fibre Channel F1",
}


SHORT_NAMES = {0x00: "CG F0", 0x01: "TMATS", 0x02: "events", 0x03: "index", 0x09: "PCM F1", 0x11: "time F1"}


def short_type_name(data_type: int) -> str:
    """A compact name for tables."""
    return SHORT_NAMES.get(data_type) or data_type_name(data_type).split(" (")[0]


def data_type_name(data_type: int) -> str:
    return DATA_TYPE_NAMES.get(data_type, f"unknown 0x{data_type:02X}")


@dataclass
class ChannelStats:
    channel_id: int
    data_types: dict[int, int] = field(default_factory=dict)
    packets: int = 0
    bytes: int = 0
    first_rtc: int | None = None
    last_rtc: int | None = None
    data_checksum_errors: int = 0
    other_errors: int = 0
    sequence_gaps: int = 0
    missing_packets: int = 0
    last_seq: int | None = None
    pcm: dict | None = None

    def as_dict(self, clock: RtcCorrelator | None) -> dict:
        out = {
            "channel_id": self.channel_id,
            "data_types": [
                {"type": f"0x{t:02X}", "name": data_type_name(t), "short": short_type_name(t), "packets": n} for t, n in sorted(self.data_types.items())
            ],
            "packets": self.packets,
            "bytes": self.bytes,
            "data_checksum_errors": self.data_checksum_errors,
            "other_errors": self.other_errors,
            "sequence_gaps": self.sequence_gaps,
            "missing_packets": self.missing_packets,
            "time_span_s": None,
            "first_rtc": self.first_rtc,
            "last_rtc": self.last_rtc,
        }
        if self.first_rtc is not None and self.last_rtc is not None:
            out["time_span_s"] = (self.last_rtc - self.first_rtc) / RTC_HZ
            if clock is not None and clock.is_locked:
                out["first_time_ns"] = int(clock.to_utc_ns(self.first_rtc))
                out["last_time_ns"] = int(clock.to_utc_ns(self.last_rtc))
        if self.pcm is not None:
            out["pcm"] = self.pcm
        return out


class RecordingInspector:
    """Accumulate statistics over a stream of packets and decode errors."""

    def __init__(self, *, year: int = 1970) -> None:
        self.year = year
        self.channels: dict[int, ChannelStats] = {}
        self.errors: list[DecodeError] = []
        self.total_bytes = 0
        self.packets = 0
        self.tmats: Tmats | None = None
        self.tmats_info: dict | None = None
        self.clock = RtcCorrelator()
        self.first_time: dict | None = None
        self._decoms: dict[int, Decommutator | None] = {}
        self._pcm_notes: dict[int, str] = {}
        self.bus = BusMonitor()
        self._bus_problems: dict[int, dict] = {}  # channel -> {"count": n, "first": [str, ...]}

    def feed(self, events) -> None:
        for ev in events:
            if isinstance(ev, DecodeError):
                self._error(ev)
            else:
                self._packet(ev)

    def _chan(self, channel_id: int) -> ChannelStats:
        ch = self.channels.get(channel_id)
        if ch is None:
            ch = self.channels[channel_id] = ChannelStats(channel_id)
        return ch

    def _error(self, err: DecodeError) -> None:
        self.errors.append(err)
        self.total_bytes += err.length
        if err.channel_id is not None:
            ch = self._chan(err.channel_id)
            if "data checksum" in err.reason:
                ch.data_checksum_errors += 1
            else:
                ch.other_errors += 1

    def _packet(self, p: Packet) -> None:
        h = p.header
        damage = checksum_error_of(p)
        if damage is not None:  # decoded all the same, and reported
            self.errors.append(damage)
            self._chan(h.channel_id).data_checksum_errors += 1
        self.packets += 1
        self.total_bytes += h.packet_length
        ch = self._chan(h.channel_id)
        ch.packets += 1
        ch.bytes += h.packet_length
        ch.data_types[h.data_type] = ch.data_types.get(h.data_type, 0) + 1
        ch.first_rtc = h.rtc if ch.first_rtc is None else min(ch.first_rtc, h.rtc)
        ch.last_rtc = h.rtc if ch.last_rtc is None else max(ch.last_rtc, h.rtc)
        if ch.last_seq is not None:
            missing = (h.sequence_number - ch.last_seq - 1) % 256
            if missing:
                ch.sequence_gaps += 1
                ch.missing_packets += missing
        ch.last_seq = h.sequence_number
        if h.data_type == DATA_TYPE_TMATS:
            self._tmats(p)
        elif h.data_type == DATA_TYPE_TIME_F1:
            self._time(p)
        elif h.data_type == DATA_TYPE_PCM_F1:
            self._pcm(p, ch)
        elif h.data_type in (DATA_TYPE_1553_F1, DATA_TYPE_ARINC429_F0):
            self._bus(p)

    MAX_BUS_PROBLEMS = 20  # problems listed per channel (all are counted)

    def _bus(self, p: Packet) -> None:
        batch = decode_1553(p) if p.data_type == DATA_TYPE_1553_F1 else decode_429(p)
        self.bus.feed(batch)
        if batch.errors:
            probs = self._bus_problems.setdefault(p.channel_id, {"count": 0, "first": []})
            probs["count"] += len(batch.errors)
            room = self.MAX_BUS_PROBLEMS - len(probs["first"])
            probs["first"] += [str(e) for e in batch.errors[:max(room, 0)]]

    def _tmats(self, p: Packet) -> None:
        try:
            pkt = parse_tmats_packet(p.body)
        except Exception as exc:  # noqa: BLE001 - any construct failure is a reportable error
            self._error(DecodeError(p.offset, f"undecodable TMATS packet: {exc}", 0, p.channel_id, kind="tmats"))
            return
        t = parse_tmats(pkt.text)
        if p.checksum_error is not None:
            unclean = unclean_reason(pkt.text, t)
            if unclean is not None:
                self.errors.append(DecodeError(p.offset, f"TMATS with a bad data checksum not used: {unclean}", 0,
                                               p.channel_id, kind="tmats"))
                return
        self.tmats = t
        self._decoms.clear()
        self.tmats_info = {
            "irig106_version_csdw": pkt.version,
            "irig106_version": t.irig106_version,
            "program": t.program_name,
            "xml": pkt.xml,
            "attributes": len(t.attributes),
            "recorder_channels": len(t.channels),
            "pcm_links": [
                {
                    "name": link.name,
                    "bit_rate": link.bit_rate,
                    "word_length": link.word_length,
                    "words_per_minor": link.words_per_minor,
                    "bits_per_minor": link.bits_per_minor,
                    "minor_frames": link.minor_frames,
                    "sync": link.sync_pattern,
                }
                for link in t.pcm_links.values()
            ],
            "measurements": len(t.measurements),
            "conversions": len(t.conversions),
            "problems": t.problems[:20],
            # set when the setup record in use came in a packet whose data checksum failed
            "data_checksum_error": p.checksum_error,
            "offset": p.offset,
        }

    def _time(self, p: Packet) -> None:
        try:
            tf = parse_time_f1(p)
            utc = tf.utc_ns(tf.year if tf.year is not None else self.year)
        except (TimeDataError, ValueError, TypeError) as exc:
            self._error(DecodeError(p.offset, f"bad time packet: {exc}", 0, p.channel_id, kind="time"))
            return
        self.clock.observe(p.header.rtc, utc)
        if self.first_time is None:
            self.first_time = {
                "rtc": p.header.rtc,
                "day_of_year": tf.day_of_year,
                "time_of_day": f"{tf.hours:02d}:{tf.minutes:02d}:{tf.seconds:02d}.{tf.milliseconds:03d}",
                "year": tf.year,
            }

    def _decom_for(self, channel_id: int) -> Decommutator | None:
        if channel_id in self._decoms:
            return self._decoms[channel_id]
        dec = None
        if self.tmats is None:
            self._pcm_notes[channel_id] = "no TMATS yet: frame format unknown"
        else:
            try:
                db, _ = from_tmats(self.tmats, channel_id)
                dec = Decommutator(db, assemble_major=True)
                self._pcm_notes.pop(channel_id, None)
            except ConfigError as exc:
                self._pcm_notes[channel_id] = str(exc)
        self._decoms[channel_id] = dec
        return dec

    def _pcm(self, p: Packet, ch: ChannelStats) -> None:
        dec = self._decom_for(p.channel_id)
        if dec is None:
            ch.pcm = {"note": self._pcm_notes.get(p.channel_id, "")}
            return
        res = dec.feed(p)
        s = dec.stats
        mode = self.tmats.channel(p.channel_id).pcm_packing if self.tmats and self.tmats.channel(p.channel_id) else ""
        ch.pcm = {
            "link": dec.frame.name,
            "packing": mode,
            "minor_frames": s.frames,
            "major_frames": s.major_frames if dec.frame.minor_frames > 1 else s.frames,
            "sync_errors": s.sync_errors,
            "sync_losses": s.sync_losses,
            "unlocked_frames": s.unlocked_frames,
            "unsynced_bits": s.unsynced_bits,
            "decode_errors": s.errors,
        }
        for e in res.errors:
            self.errors.append(DecodeError(e.offset, e.reason, 0, e.channel_id, kind="pcm"))

    def _channel_report(self, ch: ChannelStats, tables: dict[int, dict]) -> dict:
        out = ch.as_dict(self.clock)
        t = tables.get(ch.channel_id, {"mil1553": [], "arinc429": [], "undecoded": []})
        probs = self._bus_problems.get(ch.channel_id, {"count": 0, "first": []})
        for kind, data_type, bus, rows_key in (("mil1553", DATA_TYPE_1553_F1, "1553", "messages"),
                                               ("arinc429", DATA_TYPE_ARINC429_F0, "429", "labels")):
            if data_type in ch.data_types:
                out[kind] = _bus_section(t[kind], [u for u in t["undecoded"] if u["bus"] == bus], rows_key, probs)
        return out

    def report(self) -> dict:
        """Everything seen so far as a JSON-ready dict."""
        tables = self.bus.channels()
        return {
            "bytes": self.total_bytes,
            "packets": self.packets,
            "channels": [self._channel_report(c, tables) for _, c in sorted(self.channels.items())],
            "errors": [
                {"offset": e.offset, "channel_id": e.channel_id, "length": e.length, "reason": e.reason,
                 "kind": e.kind}
                for e in self.errors
            ],
            "data_checksum_errors": sum(c.data_checksum_errors for c in self.channels.values()),
            "error_count": len(self.errors),
            "tmats": self.tmats_info,
            "time": {
                "first": self.first_time,
                "correlated": self.clock.is_locked,
                "time_jumps": self.clock.time_jumps,
            },
        }


def _bus_section(rows: list[dict], undecoded: list[dict], rows_key: str, problems: dict) -> dict:
    """One bus channel's part of the report: totals, errors by reason, the table, the first problems."""
    errors: dict[str, int] = {}
    for r in [*rows, *undecoded]:
        for reason, n in (r["errors"].items() if "errors" in r else [(r["reason"], r["count"])]):
            errors[reason] = errors.get(reason, 0) + n
    return {
        "count": sum(r["count"] for r in rows) + sum(u["count"] for u in undecoded),
        "errors": dict(sorted(errors.items())),
        rows_key: rows,
        "problem_count": problems["count"],
        "problems": problems["first"],
    }
