"""The decommutator: one PCM packet in, minor frames and parameter samples out.

Sans-I/O and never raising on bad data: every problem becomes a ``DecomError``
in the result and a counter in ``DecomStats``. One call per packet; all work on
the frames of a packet is vectorized.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from construct import ConstructError

from ..bits import to_bitstream
from ..ch10.ipts import IPTS_RTC, ipts_format, time_stamps_ns
from ..ch10.packet import Packet
from ..ch10.pcm import DATA_TYPE_PCM_F1, PcmCsdw, PcmLayout, PcmMode, split_pcm_body
from ..paramdb.model import ParameterDatabase
from .frames import FrameSynchronizer, MinorFrames, read_words, sync_ok
from .major import MajorFrameAssembler, MajorFrames
from .params import ExtractionPlan, SampleBatch
from .units import SfidDecoder, UnitReader

__all__ = ["Decommutator", "DecomResult", "DecomStats", "DecomError"]

RtcClock = Callable[[np.ndarray], np.ndarray]


def rtc_ns(rtc: np.ndarray) -> np.ndarray:
    """Default clock: RTC counts (10 MHz) as nanoseconds, uncorrelated to UTC."""
    return np.asarray(rtc, dtype=np.int64) * 100


@dataclass(frozen=True, slots=True)
class DecomError:
    """A problem found while decommutating a packet."""

    offset: int
    channel_id: int
    reason: str

    def __str__(self) -> str:
        return f"offset {self.offset} channel {self.channel_id}: {self.reason}"


@dataclass
class DecomStats:
    packets: int = 0
    bytes: int = 0
    frames: int = 0
    sync_errors: int = 0  # packed/unpacked frames whose sync pattern did not match
    unlocked_frames: int = 0  # frames the recorder marked as not locked
    sync_losses: int = 0  # throughput mode: lock lost
    unsynced_bits: int = 0  # throughput mode: bits searched without finding a lock
    errors: int = 0
    major_frames: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class DecomResult:
    frames: MinorFrames
    samples: SampleBatch = field(default_factory=SampleBatch.empty)
    major: MajorFrames | None = None
    errors: list[DecomError] = field(default_factory=list)


class Decommutator:
    """Decommutate the PCM packets of one channel with a parameter database.

    ``clock`` maps 48-bit RTC counts (int64 array) to UTC nanoseconds; by default
    RTC counts are used as relative nanoseconds. ``ids`` gives catalog ids to the
    parameters (default: their index). With no parameters it still yields raw
    minor frames; ``assemble_major=True`` also groups them into major frames.
    """

    def __init__(
        self,
        db: ParameterDatabase,
        *,
        clock: RtcClock | None = None,
        ids: dict[str, int] | None = None,
        assemble_major: bool = False,
    ) -> None:
        self.db = db
        self.frame = db.frame
        self.clock: RtcClock = clock or rtc_ns
        self.plan = ExtractionPlan(db, ids)
        self.stats = DecomStats()
        self._sync: dict[tuple, FrameSynchronizer] = {}
        self._layouts: dict[tuple, PcmLayout] = {}
        self._csdws: dict[bytes, tuple[PcmLayout | None, bool]] = {}
        self._units: dict[tuple, UnitReader | None] = {}
        self._sfid = SfidDecoder(self.frame)
        self._major = (
            MajorFrameAssembler(self.frame.minor_frames, self.frame.words_per_minor)
            if assemble_major and self.frame.minor_frames > 1
            else None
        )

    def feed(self, packet: Packet) -> DecomResult:
        """Decode one PCM format 1 packet. Never raises on bad data."""
        self.stats.packets += 1
        self.stats.bytes += packet.header.packet_length
        try:
            frames, errors = self._frames(packet)
        except (ConstructError, ValueError, IndexError) as exc:  # defensive: never escape
            frames, errors = MinorFrames.empty(self.frame.words_per_minor), [self._err(packet, f"undecodable PCM data: {exc}")]
        self.stats.errors += len(errors)
        self.stats.frames += len(frames)
        if not len(frames):
            return DecomResult(frames=frames, errors=errors)
        result = DecomResult(frames, self.plan.extract(frames), None, errors)
        if self._major is not None:
            result.major = self._major.feed(frames)
            self.stats.major_frames += len(result.major)
        return result

    def _err(self, packet: Packet, reason: str) -> DecomError:
        return DecomError(packet.offset, packet.channel_id, reason)

    def _frames(self, packet: Packet) -> tuple[MinorFrames, list[DecomError]]:
        errors: list[DecomError] = []
        n_words = self.frame.words_per_minor
        if packet.data_type != DATA_TYPE_PCM_F1:
            return MinorFrames.empty(n_words), [self._err(packet, f"not a PCM F1 packet (type 0x{packet.data_type:02X})")]
        if len(packet.body) < 4:
            return MinorFrames.empty(n_words), [self._err(packet, "PCM packet without a CSDW")]
        layout, iph = self._csdw(bytes(packet.body[:4]))
        if layout is None:
            return MinorFrames.empty(n_words), [self._err(packet, "CSDW sets more than one PCM mode")]
        data = packet.data
        if layout.mode is PcmMode.THROUGHPUT:
            return self._throughput(packet, layout, data, errors)
        if not iph:
            errors.append(self._err(packet, f"{layout.mode.value} mode without intra-packet headers"))
            return MinorFrames.empty(n_words), errors
        recs = split_pcm_body(layout, data)
        if recs.trailing_bytes:
            errors.append(
                self._err(packet, f"{recs.trailing_bytes} bytes after the last whole minor frame "
                                  f"({layout.record_bytes}-byte records)")
            )
        if len(recs.times) == 0:
            return MinorFrames.empty(n_words), errors
        units = self._unit_reader(layout)
        good_sync = units.sync_ok(recs.units16) if units else sync_ok(recs.stream, recs.frame_start_bits, layout)
        keep = recs.locked()
        n, n_good = len(keep), int(np.count_nonzero(good_sync))
        np.logical_and(keep, good_sync, out=keep)
        n_keep = int(np.count_nonzero(keep))
        if n_good < n:
            self.stats.sync_errors += n - n_good
            errors.append(self._err(packet, f"{n - n_good} of {n} minor frames without sync"))
        self.stats.unlocked_frames += n_good - n_keep
        times = recs.times if n_keep == n else recs.times[keep]
        t_ns = self._ipts_ns(packet, times)
        if units is not None:
            u = recs.units16 if n_keep == n else recs.units16[keep]
            return MinorFrames(t_ns, None, units.frame_numbers(u), units=u, layout=layout), errors
        words = read_words(recs.stream, recs.frame_start_bits[keep], layout)
        return MinorFrames(t_ns, words, self._frame_numbers(words)), errors

    def _frame_numbers(self, words: np.ndarray) -> np.ndarray:
        sfid = self.frame.sfid
        return self._sfid.decode(words[:, sfid.word] if sfid else None, len(words))

    def _unit_reader(self, layout: PcmLayout) -> UnitReader | None:
        key = (layout.mode, layout.align32)
        if key not in self._units:
            self._units[key] = UnitReader(layout) if layout.unit_word_index is not None else None
        return self._units[key]

    def _csdw(self, raw: bytes) -> tuple[PcmLayout | None, bool]:
        """(layout, intra-packet headers present) a CSDW announces; layout None if it sets
        more than one mode. Parsed with the construct definition once per distinct value."""
        hit = self._csdws.get(raw)
        if hit is None:
            if len(self._csdws) > 256:
                self._csdws.clear()
            csdw = PcmCsdw.parse(raw)
            layout = None
            if csdw.unpacked + csdw.packed + csdw.throughput <= 1:
                key = (bool(csdw.unpacked), bool(csdw.packed), bool(csdw.align32))
                layout = self._layouts.get(key)
                if layout is None:
                    layout = self._layouts[key] = PcmLayout.from_csdw(self.frame, csdw)
            hit = self._csdws[raw] = (layout, bool(csdw.iph))
        return hit

    def _ipts_ns(self, packet: Packet, times: np.ndarray) -> np.ndarray:
        """Intra-packet time stamps as ns: RTC correlated to UTC, other formats as ``ipts`` decodes them."""
        fmt = ipts_format(packet.header.ipts_source, packet.header.secondary_time_format)
        if fmt == IPTS_RTC:
            return self.clock(time_stamps_ns(times, IPTS_RTC))
        return time_stamps_ns(times, fmt)

    def _throughput(self, packet, layout, data, errors) -> tuple[MinorFrames, list[DecomError]]:
        key = (packet.channel_id, layout.align32)
        sync = self._sync.get(key)
        if sync is None:
            sync = self._sync[key] = FrameSynchronizer(layout)
        stream = to_bitstream(data, layout.align32)
        t0 = float(self.clock(np.array([packet.header.rtc], np.int64))[0])
        res = sync.feed(stream, t0, self.frame.ns_per_bit())
        self.stats.unsynced_bits += res.skipped_bits
        if res.sync_losses:
            self.stats.sync_losses += res.sync_losses
            errors.append(self._err(packet, f"frame sync lost {res.sync_losses} time(s)"))
        words = read_words(res.stream, res.starts, layout)
        return MinorFrames(res.t_ns, words, self._frame_numbers(words)), errors
