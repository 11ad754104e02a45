"""The decommutator: one PCM packet in, minor frames and parameter samples out.

Sans-I/O and never raising on bad data: every problem becomes a ``DecomError``
in the result and a counter in ``DecomStats``. One call per packet; all work on
the frames of a packet is vectorized.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from construct import ConstructError

from ..bits import to_bitstream
from ..ch10.ipts import IPTS_RTC, ipts_format, time_stamps_ns
from ..ch10.packet import Packet
from ..ch10.pcm import DATA_TYPE_PCM_F1, PcmCsdw, PcmLayout, PcmMode, PcmRecords, split_pcm_body
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
        self._run_keys: dict[tuple, tuple | None] = {}  # feed_many: (CSDW, body length, time key) -> run key
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
        errors: list[DecomError] = []
        return self._result(self._checked_frames(packet, errors), errors)

    def feed_many(self, packets: Sequence[Packet]) -> DecomResult:
        """Decode several PCM packets (a datagram burst, a file chunk) in one pass.

        The same frames, samples and errors as ``feed`` on each packet in turn, in
        one result: consecutive packets whose records can be read back to back (same
        CSDW and time-stamp format, whole records only) are decoded together, so the
        fixed cost of a call is paid once per run instead of once per packet.
        """
        parts: list[MinorFrames] = []
        errors: list[DecomError] = []
        run: list[Packet] = []
        run_key = None
        for p in packets:
            self.stats.packets += 1
            self.stats.bytes += p.header.packet_length
            key = self._run_key(p)
            if run and (key is None or key != run_key):
                parts.append(self._run_frames(run, run_key, errors))
                run = []
            if key is None:
                parts.append(self._checked_frames(p, errors))
            else:
                run.append(p)
                run_key = key
        if run:
            parts.append(self._run_frames(run, run_key, errors))
        if not parts:
            return DecomResult(frames=MinorFrames.empty(self.frame.words_per_minor))
        return self._result(MinorFrames.concat(parts), errors)

    def _run_key(self, packet: Packet) -> tuple | None:
        """What packets must share to be decoded back to back; None: decode it alone."""
        body = packet.body
        if packet.data_type != DATA_TYPE_PCM_F1 or len(body) < 4:
            return None
        raw = body[:4].tobytes()
        key = (raw, len(body), self._time_key(packet))
        hit = self._run_keys.get(key, False)
        if hit is False:
            layout, iph = self._csdw(raw)
            n = len(body) - 4
            whole = layout is not None and iph and layout.mode is not PcmMode.THROUGHPUT \
                and n > 0 and n % layout.record_bytes == 0
            if len(self._run_keys) > 256:
                self._run_keys.clear()
            hit = self._run_keys[key] = (raw, key[2]) if whole else None
        return hit

    def _run_frames(self, run: list[Packet], key: tuple, errors: list[DecomError]) -> MinorFrames:
        if len(run) == 1:
            return self._checked_frames(run[0], errors)
        layout = self._csdw(key[0])[0]
        recs = split_pcm_body(layout, b"".join([p.data for p in run]))
        rec = layout.record_bytes
        counts = [(len(p.body) - 4) // rec for p in run]
        try:
            return self._record_frames(run, counts, layout, recs, errors)
        except (ConstructError, ValueError, IndexError) as exc:  # defensive: never escape
            errors.append(self._err(run[0], f"undecodable PCM data in {len(run)} packets: {exc}"))
            return MinorFrames.empty(self.frame.words_per_minor)

    def _checked_frames(self, packet: Packet, errors: list[DecomError]) -> MinorFrames:
        """``_frames`` of one packet, never raising; its errors appended to ``errors``."""
        try:
            frames, errs = self._frames(packet)
        except (ConstructError, ValueError, IndexError) as exc:  # defensive: never escape
            frames, errs = MinorFrames.empty(self.frame.words_per_minor), [self._err(packet, f"undecodable PCM data: {exc}")]
        errors.extend(errs)
        return frames

    def _result(self, frames: MinorFrames, errors: list[DecomError]) -> DecomResult:
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
        return self._record_frames([packet], [len(recs.times)], layout, recs, errors), errors

    def _record_frames(self, packets: list[Packet], counts: list[int], layout: PcmLayout, recs: PcmRecords,
                       errors: list[DecomError]) -> MinorFrames:
        """Minor frames of packed/unpacked ``recs``: the records of ``packets`` back to back,
        ``counts[i]`` of them from ``packets[i]`` (errors are reported per packet)."""
        n_words = self.frame.words_per_minor
        if len(recs.times) == 0:
            return MinorFrames.empty(n_words)
        units = self._unit_reader(layout)
        good_sync = units.sync_ok(recs.units16) if units else sync_ok(recs.stream, recs.frame_start_bits, layout)
        keep = recs.locked()
        n, n_good = len(keep), int(np.count_nonzero(good_sync))
        np.logical_and(keep, good_sync, out=keep)
        n_keep = int(np.count_nonzero(keep))
        if n_good < n:
            self.stats.sync_errors += n - n_good
            self._sync_errors(packets, counts, good_sync, errors)
        self.stats.unlocked_frames += n_good - n_keep
        times = recs.times if n_keep == n else recs.times[keep]
        # _ipts_ns reads only the header fields of _time_key, which the packets of a run share
        t_ns = self._ipts_ns(packets[0], times)
        if units is not None:
            u = recs.units16 if n_keep == n else recs.units16[keep]
            return MinorFrames(t_ns, None, units.frame_numbers(u), units=u, layout=layout)
        words = read_words(recs.stream, recs.frame_start_bits[keep], layout)
        return MinorFrames(t_ns, words, self._frame_numbers(words))

    def _sync_errors(self, packets: list[Packet], counts: list[int], good_sync: np.ndarray,
                     errors: list[DecomError]) -> None:
        starts = np.cumsum([0] + counts[:-1])
        good = np.add.reduceat(good_sync.astype(np.int64), starts) if len(packets) > 1 else [np.count_nonzero(good_sync)]
        for p, n, g in zip(packets, counts, good):
            if g < n:
                errors.append(self._err(p, f"{n - int(g)} of {n} minor frames without sync"))

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

    @staticmethod
    def _time_key(packet: Packet) -> tuple:
        """The header fields ``_ipts_ns`` depends on (packets that share them share one call)."""
        h = packet.header
        return (h.ipts_source, h.secondary_time_format if h.ipts_source else None)

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
