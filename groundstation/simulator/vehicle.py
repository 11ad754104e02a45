"""The vehicle simulator's sans-I/O core: wall-clock time in, UDP datagrams out.

``Vehicle.advance(now_ns)`` returns every datagram the vehicle has produced up
to ``now_ns``: TMATS (at start and then periodically, so a late ground station
configures itself), Time format 1 once a second, PCM format 1 packets
(unpacked, intra-packet headers) holding every minor frame due, and, as a mixed
vehicle, MIL-STD-1553 F1 and ARINC-429 F0 packets of every complete 100 ms of
its avionics buses (``buses.BusStream``, laid out as its ICD ``vehicle_icd.csv``
says), all in UDP transfer format 1. Frame times are computed from the segment
start, never accumulated, so the stream does not drift. A bit rate change starts
a new segment at the next minor frame boundary.

Truth for tests: ``truth`` (PCM parameters, from the flight model) and
``bus_truth``/``bus_latest`` (bus parameters: the values the vehicle put in its
last bus messages, as a decoder reads them back).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from telemetry_formats.ch10.packet import build_packet
from telemetry_formats.ch10.pcm import DATA_TYPE_PCM_F1, PcmLayout, PcmMode, build_pcm_body
from telemetry_formats.ch10.time import DATA_TYPE_TIME_F1, TimeFormat, TimeSource, build_time_f1_body
from telemetry_formats.ch10.tmats_packet import DATA_TYPE_TMATS, build_tmats_body
from telemetry_formats.ch10.udp import UdpSender
from telemetry_formats.paramdb import MissionDatabase, ParameterDatabase
from telemetry_formats.tmats_writer import write_tmats
from telemetry_formats.uplink import UplinkError, decode_uplink

from .avionics import Avionics
from .bus_truth import BusTruth
from .buses import VEHICLE_ICD_FILE, BusStream, vehicle_icd
from .excursions import ExcursionSchedule
from .flight import SAMPLES_PER_FRAME, FlightModel, Spike, vehicle_database

__all__ = ["Vehicle", "VehicleState", "MIN_BIT_RATE", "MAX_BIT_RATE", "VEHICLE_ICD_FILE", "vehicle_icd"]

MIN_BIT_RATE = 10_000
MAX_BIT_RATE = 20_000_000
RTC_NS = 100  # one 10 MHz RTC count
# Uplink opcodes (docs/commanding.md) and the results the vehicle echoes in CMD_RESULT.
OP_SET_BITRATE, OP_SET_GROUP_RATE, OP_SELECT_SYSTEM, OP_MARK_TEST_POINT, OP_INJECT_FAULT = 1, 2, 3, 4, 5
OP_SET_BUS_RATE = 6
RESULT_APPLIED, RESULT_REJECTED, RESULT_BAD_PACKET, RESULT_STALE = 1, 2, 3, 4


@dataclass
class VehicleState:
    """What the vehicle echoes in its status words."""

    cmd_count: int = 0
    last_opcode: int = 0
    result: int = 0
    test_point: int = 0
    system: int = 0
    fault: int = 0


@dataclass
class _Segment:
    start_ns: float  # time of minor frame 0 of this segment, ns after the vehicle's start (t0)
    bit_rate: float
    first_index: int  # global minor frame index of frame 0 (keeps the SFID counting)
    db: ParameterDatabase
    layout: PcmLayout
    frame_ns: float = field(init=False)

    def __post_init__(self) -> None:
        self.frame_ns = self.db.frame.bits_per_minor * 1e9 / self.bit_rate  # exact for whole-ns frames


class Vehicle:
    """A flight-test vehicle streaming Chapter 10 over UDP transfer format 1.

    ``buses`` False: PCM only (no 1553/ARINC channels). ``irs_align_s``: how long the
    IRS aligns after the start (its navigation labels say no computed data). ``truth_s``:
    how much bus truth ``bus_truth`` keeps. ``events``: the vehicle goes past a limit by itself now
    and then (``simulator.excursions``, seeded by ``seed``).
    """

    def __init__(
        self,
        *,
        start_ns: int,
        bit_rate: float = 1_000_000,
        seed: int = 0,
        pcm_channel: int = 3,
        time_channel: int = 1,
        tmats_period_s: float = 1.0,
        max_datagram: int = 65000,
        spikes: list[Spike] | tuple = (),
        rtc_start: int = 0x1000_0000,
        buses: bool = True,
        irs_align_s: float = 5.0,
        truth_s: float = 60.0,
        events: bool = False,
    ) -> None:
        if not MIN_BIT_RATE <= bit_rate <= MAX_BIT_RATE:
            raise ValueError(f"bit rate {bit_rate:g} outside {MIN_BIT_RATE}..{MAX_BIT_RATE} b/s")
        self.t0_ns = start_ns
        self.model = FlightModel(seed=seed, spikes=list(spikes), excursions=ExcursionSchedule(seed) if events else None)
        self.pcm_channel = pcm_channel
        self.time_channel = time_channel
        self.tmats_period_ns = int(tmats_period_s * 1e9)
        self.rtc_start = rtc_start
        self.state = VehicleState()
        self.sender = UdpSender(max_datagram=max_datagram)
        self._seq: dict[int, int] = {}
        # Frame times are kept relative to t0: as float64 epoch nanoseconds they would be
        # rounded to 256 ns and the RTC stamps of consecutive frames would jitter.
        self._fc_spf, self._vib_spf = 2, 4
        self._segment = self._new_segment(0.0, bit_rate, 0)
        self._next_index = 0  # next minor frame to emit (segment-relative)
        self._next_tmats_ns = start_ns
        self._next_time_s = math.ceil(start_ns / 1e9)
        self._pending: dict | None = None  # format change waiting for the next frame boundary
        self.last_uplink_sequence = -1
        self.uplinks: list[tuple[int, str]] = []  # (sequence or -1, outcome) of every uplink received
        self.frames_sent = 0
        self.packets_sent = 0
        # The avionics buses (None: a PCM-only vehicle, as before issue 17).
        self.icd: MissionDatabase | None = vehicle_icd() if buses else None
        self.avionics = Avionics(self.model, irs_align_s=irs_align_s)
        self.buses = BusStream(self.icd, self.avionics, rtc_start=rtc_start) if self.icd else None
        self._bus_truth = BusTruth(self.buses.names if self.buses else [], start_ns, int(truth_s * 1e9))

    # -- configuration ------------------------------------------------------
    @property
    def database(self) -> ParameterDatabase:
        return self._segment.db

    @property
    def bit_rate(self) -> float:
        return self._segment.bit_rate

    def tmats_text(self) -> str:
        bus = self.buses.tmats_channels() if self.buses is not None else []
        return write_tmats(self.database, pcm_channel=self.pcm_channel, time_channel=self.time_channel,
                           program="FTV-1 SIMULATOR", comment="groundstation vehicle simulator", bus_channels=bus)

    def set_bit_rate(self, bit_rate: float) -> None:
        """Change the PCM bit rate from the next minor frame on (raises ValueError if out of range)."""
        if not MIN_BIT_RATE <= bit_rate <= MAX_BIT_RATE:
            raise ValueError(f"bit rate {bit_rate:g} outside {MIN_BIT_RATE}..{MAX_BIT_RATE} b/s")
        self._pending = {**(self._pending or {}), "bit_rate": float(bit_rate)}

    def set_group_rate(self, group: int, samples_per_frame: int) -> None:
        """Samples per minor frame of group 0 (flight control rates) or 1 (vibration), from
        the next minor frame on; the new map is announced in a TMATS at the switch."""
        if group not in (0, 1) or samples_per_frame not in SAMPLES_PER_FRAME:
            raise ValueError(f"group must be 0 or 1 and samples per frame one of {SAMPLES_PER_FRAME}")
        self._pending = {**(self._pending or {}), ("fc_spf" if group == 0 else "vib_spf"): samples_per_frame}

    def _new_segment(self, start_ns: float, bit_rate: float, first_index: int) -> _Segment:
        db = vehicle_database(bit_rate, self._fc_spf, self._vib_spf)
        return _Segment(start_ns, bit_rate, first_index, db, PcmLayout(db.frame, PcmMode.UNPACKED))

    def _switch_format(self) -> None:
        """Apply the pending format change at the next minor frame boundary."""
        seg, change = self._segment, self._pending
        self._pending = None
        self._fc_spf = change.get("fc_spf", self._fc_spf)
        self._vib_spf = change.get("vib_spf", self._vib_spf)
        boundary = seg.start_ns + self._next_index * seg.frame_ns
        first = seg.first_index + self._next_index
        self._segment = self._new_segment(boundary, change.get("bit_rate", seg.bit_rate), first)
        self._next_index = 0

    # -- uplink -------------------------------------------------------------------
    def handle_uplink(self, data: bytes, now_ns: int | None = None) -> int:
        """Validate and apply one uplink packet received at ``now_ns``; returns the result
        code it echoes (1 applied, 2 rejected, 3 bad CRC or format, 4 stale sequence).
        A format change takes effect at the first minor frame starting after ``now_ns``."""
        s = self.state
        s.cmd_count += 1
        try:
            cmd = decode_uplink(data)
        except UplinkError as exc:
            s.last_opcode, s.result = 0, RESULT_BAD_PACKET
            self.uplinks.append((-1, f"bad packet: {exc}"))
            return s.result
        s.last_opcode = cmd.opcode
        if cmd.sequence <= self.last_uplink_sequence:
            s.result = RESULT_STALE
            self.uplinks.append((cmd.sequence, "stale sequence"))
            return s.result
        self.last_uplink_sequence = cmd.sequence
        try:
            self._apply(cmd, now_ns)
            if self._pending is not None and now_ns is not None:
                self._pending.setdefault("at_ns", now_ns)
            s.result = RESULT_APPLIED
            self.uplinks.append((cmd.sequence, "applied"))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            s.result = RESULT_REJECTED
            self.uplinks.append((cmd.sequence, f"rejected: {exc}"))
        return s.result

    def _apply(self, cmd, now_ns: int | None = None) -> None:
        values = [v for _, v in cmd.args]
        op = cmd.opcode
        if op == OP_SET_BITRATE:
            self.set_bit_rate(int(values[0]))
        elif op == OP_SET_GROUP_RATE:
            self.set_group_rate(int(values[0]), int(values[1]))
        elif op == OP_SELECT_SYSTEM:
            if int(values[0]) not in (0, 1):
                raise ValueError("system must be 0 or 1")
            self.state.system = int(values[0])
        elif op == OP_MARK_TEST_POINT:
            if not 0 <= int(values[0]) <= 0xFFFF:
                raise ValueError("test point out of range")
            self.state.test_point = int(values[0])
        elif op == OP_INJECT_FAULT:
            if int(values[0]) not in (0, 1, 2, 3):
                raise ValueError("unknown fault")
            self.state.fault = self.model.fault = int(values[0])
        elif op == OP_SET_BUS_RATE:
            if self.buses is None:
                raise ValueError("this vehicle has no 1553 bus")
            at = -1 if now_ns is None else (now_ns - self.t0_ns) // RTC_NS
            self.buses.set_period(int(values[0]), int(values[1]), at)
        else:
            raise ValueError(f"unknown opcode {op}")

    # -- time ---------------------------------------------------------------
    def _rel_ns(self, t_ns: float | np.ndarray) -> np.ndarray:
        """Wall time ``t_ns`` as float ns since t0 (integer times are subtracted exactly)."""
        t = np.asarray(t_ns)
        if t.dtype.kind in "iu":
            return (t.astype(np.int64) - self.t0_ns).astype(np.float64)
        return t.astype(np.float64) - self.t0_ns

    def _rtc_rel(self, rel_ns: float | np.ndarray) -> np.ndarray:
        ticks = np.floor(np.asarray(rel_ns, dtype=np.float64) / RTC_NS).astype(np.int64)
        return (ticks + self.rtc_start) & ((1 << 48) - 1)

    def rtc_at(self, t_ns: float | np.ndarray) -> np.ndarray:
        """The 48-bit RTC count at wall time ``t_ns``."""
        return self._rtc_rel(self._rel_ns(t_ns))

    def truth(self, name: str, t_ns: np.ndarray) -> np.ndarray:
        """The engineering value the vehicle encodes for ``name`` at wall times ``t_ns``
        (status words: their current value)."""
        status = self.status_words()
        if name in status:
            return np.full(np.shape(t_ns), float(status[name]))
        return self.model.values(name, self._rel_ns(t_ns) / 1e9)

    def bus_truth(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(t_ns, eu) of every sample of bus parameter ``name`` sent in the last ``truth_s`` seconds:
        the message's or word's time stamp as wall time, and the engineering value a decoder reads
        from the bits sent (quantized; NaN while the word says no computed data)."""
        return self._bus_truth.samples(name)

    def bus_latest(self) -> dict[str, tuple[int, float]]:
        """``{name: (t_ns, eu)}`` of the last sample of each bus parameter sent."""
        return self._bus_truth.latest()

    # -- the stream -----------------------------------------------------------
    def advance(self, now_ns: int) -> list[bytes]:
        """Datagrams for everything due up to ``now_ns``."""
        packets: list[bytes] = []
        if now_ns >= self._next_tmats_ns:
            packets.append(self._packet(0, DATA_TYPE_TMATS, build_tmats_body(self.tmats_text()), self.rtc_at(now_ns)))
            self._next_tmats_ns = now_ns + self.tmats_period_ns
        while self._next_time_s * 1_000_000_000 <= now_ns:
            t = self._next_time_s * 1_000_000_000
            dt = datetime.fromtimestamp(self._next_time_s, tz=timezone.utc)
            body = build_time_f1_body(dt, fmt="doy", source=TimeSource.INTERNAL, time_format=TimeFormat.UTC)
            packets.append(self._packet(self.time_channel, DATA_TYPE_TIME_F1, body, self.rtc_at(t)))
            self._next_time_s += 1
        if self._pending is not None:
            # Old-format frames up to the change, then the new format, announced by a TMATS
            # ahead of its first frame.
            at = self._pending.get("at_ns")
            if at is not None:
                packets += self._pcm_packets(min(now_ns, at - 1))
            self._switch_format()
            packets.append(self._packet(0, DATA_TYPE_TMATS, build_tmats_body(self.tmats_text()), self.rtc_at(now_ns)))
            self._next_tmats_ns = now_ns + self.tmats_period_ns
        packets += self._pcm_packets(now_ns)
        if self.buses is not None:
            bus_packets, samples = self.buses.packets((now_ns - self.t0_ns) // RTC_NS)
            packets += [self._packet(ch, dt, body, rtc) for ch, dt, body, rtc in bus_packets]
            self._bus_truth.add(samples)
        return self.sender.pack(packets) if packets else []

    def _packet(self, channel: int, data_type: int, body: bytes, rtc: np.ndarray | int) -> bytes:
        seq = self._seq.get(channel, 0)
        self._seq[channel] = (seq + 1) & 0xFF
        self.packets_sent += 1
        return build_packet(channel_id=channel, data_type=data_type, body=body, sequence_number=seq,
                            rtc=int(rtc), data_type_version=0x0B)

    def _pcm_packets(self, now_ns: int) -> list[bytes]:
        seg = self._segment
        due = math.floor((now_ns - self.t0_ns - seg.start_ns) / seg.frame_ns) + 1  # frames whose start is <= now
        n = due - self._next_index
        if n <= 0:
            return []
        out = []
        # Keep one packet well under a datagram: split very long batches.
        max_frames = max(1, 60000 // seg.layout.record_bytes)
        while n > 0:
            k = min(n, max_frames)
            idx = np.arange(self._next_index, self._next_index + k)
            out.append(self._pcm_packet(idx))
            self._next_index += k
            n -= k
        return out

    def _pcm_packet(self, idx: np.ndarray) -> bytes:
        seg = self._segment
        frame = seg.db.frame
        t_frame = seg.start_ns + idx * seg.frame_ns  # relative to t0
        words = self._frame_words(t_frame, (seg.first_index + idx) % frame.minor_frames + 1)
        times = self._rtc_rel(t_frame)
        body = build_pcm_body(seg.layout, words, times.astype(np.uint64))
        self.frames_sent += len(idx)
        return self._packet(self.pcm_channel, DATA_TYPE_PCM_F1, body, times[0])

    def frame_words(self, t_frame: np.ndarray, frame_number: np.ndarray) -> np.ndarray:
        """(n, 64) words of minor frames starting at wall times ``t_frame`` with 1-based numbers."""
        return self._frame_words(self._rel_ns(t_frame), np.asarray(frame_number))

    def _frame_words(self, t_frame: np.ndarray, frame_number: np.ndarray) -> np.ndarray:
        """``frame_words`` with frame times in ns since t0."""
        seg = self._segment
        frame = seg.db.frame
        n = len(t_frame)
        words = np.zeros((n, frame.words_per_minor), np.uint64)
        words[:, frame.sfid.word] = frame_number - 1
        ns_bit = 1e9 / seg.bit_rate
        offsets = frame.bit_offsets()
        status = self.status_words()
        spiked = {sp.name for sp in self.model.spikes}
        for p in seg.db.parameters:
            if p.name in status:
                words[:, p.fragments[0].word] = status[p.name]
                continue
            if p.frame_position is None:
                interval = 1
                present = np.ones(n, bool)
            else:
                interval = p.frame_interval or frame.minor_frames
                present = (frame_number >= p.frame_position) & ((frame_number - p.frame_position) % interval == 0)
            if not present.any():
                continue
            pos = p.positions(frame)  # (k, fragments)
            t = (t_frame[present][:, None] + offsets[pos[:, 0]][None, :] * ns_bit) / 1e9  # s since t0
            neighbours = None
            if p.name in spiked:  # each sample's previous and next sample, also across packets
                period = interval * seg.frame_ns / 1e9
                prev = np.concatenate([t[:, -1:] - period, t[:, :-1]], axis=1)
                nxt = np.concatenate([t[:, 1:], t[:, :1] + period], axis=1)
                neighbours = (prev, nxt)
            eu = self.model.values(p.name, t, neighbours)
            raw = _encode(p, eu)  # (r, k) uint64 of the full bit width
            widths = p.fragment_widths(frame)
            shift = sum(widths)
            for f, w in enumerate(widths):
                shift -= w
                part = (raw >> np.uint64(shift)) & np.uint64((1 << w) - 1)
                words[np.ix_(present, pos[:, f])] = part
        return words

    def status_words(self) -> dict[str, int]:
        """The PCM status words (the command echo); the bus schedule is echoed on the 1553 bus."""
        s = self.state
        return {
            "CMD_COUNT": s.cmd_count & 0xFFFF,
            "CMD_LAST_OPCODE": s.last_opcode & 0xFFFF,
            "CMD_RESULT": s.result & 0xFFFF,
            "BITRATE_KBPS": int(round(self.bit_rate / 1000)) & 0xFFFF,
            "TEST_POINT": s.test_point & 0xFFFF,
            "SYSTEM": s.system & 0xFFFF,
            "FAULT": s.fault & 0xFFFF,
            "FC_SPF": self._fc_spf,
            "VIB_SPF": self._vib_spf,
        }


def _encode(p, eu: np.ndarray) -> np.ndarray:
    """Engineering values to raw bits (inverse of a linear calibration or a float encoding)."""
    if p.encoding == "float":
        return eu.astype(np.float32).view(np.uint32).astype(np.uint64)
    c0, c1 = p.calibration.polynomial
    raw = np.rint((eu - c0) / c1)
    if p.encoding == "signed":
        raw = np.clip(raw, -32768, 32767).astype(np.int64) & 0xFFFF
    else:
        raw = np.clip(raw, 0, 65535)
    return raw.astype(np.uint64)

