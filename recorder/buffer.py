"""Sans-I/O accumulation: ingest results and events in, blocks of arrays to append out.

``RecordBuffer.add(result, arrival_ns)`` is what the event loop calls for every
datagram: it only keeps references (packets as memoryviews of the datagram,
sample batches as they are), so it costs microseconds. ``take()`` hands the
pending ``Section``s over (one per configuration: a configuration change closes
a section and marks the next as starting a new segment); ``assemble(section,
layout)`` turns one into a ``Block``: rows of ``values(time, param)`` per rate
group, the packet byte stream and its index, event lines. ``assemble`` is pure
numpy and runs in the writer's thread (it lives in ``blocks``, re-exported
here). Nothing here imports HDF5.

Memory is bounded: past ``max_bytes`` pending, decoded samples are dropped first
(the raw packets still hold them), then packets; events are kept up to
``max_events``. Every drop is counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .blocks import Block, RateBlock, TextBlock, assemble

__all__ = ["RecordBuffer", "Section", "Block", "RateBlock", "TextBlock", "assemble", "BufferStats"]

SAMPLE_BYTES = 4 + 8 + 8 + 8 + 1  # pid, t, raw (as stored by the decommutator, up to 8), eu, limit
PACKET_OVERHEAD = 64


@dataclass
class Section:
    """What arrived under one configuration, between two ``take()`` calls."""

    config: object = None  # the ingest Configuration in force (None: not configured yet)
    new_segment: str | None = None  # reason to start a new segment before writing it
    packets: list = field(default_factory=list)  # (raw memoryview, channel, data_type, rtc, arrival_ns, status)
    samples: list = field(default_factory=list)  # SampleBatch
    events: list = field(default_factory=list)  # (time_ns, utf-8 JSON line without newline)
    commands: list = field(default_factory=list)
    nbytes: int = 0

    @property
    def config_version(self) -> int:
        return 0 if self.config is None else int(self.config.version)

    def empty(self) -> bool:
        return not (self.packets or self.samples or self.events or self.commands)


@dataclass
class BufferStats:
    packets: int = 0
    packet_bytes: int = 0
    samples: int = 0
    events: int = 0
    commands: int = 0
    dropped_packets: int = 0
    dropped_samples: int = 0
    dropped_events: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _json_line(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str, allow_nan=True).replace("\n", " ").encode()


class RecordBuffer:
    """Pending data between two writes, grouped into sections by configuration."""

    def __init__(self, *, max_bytes: int = 256 << 20, max_events: int = 100_000) -> None:
        self.max_bytes = max_bytes
        self.max_events = max_events
        self.stats = BufferStats()
        self.config = None
        self._sections: list[Section] = []
        self._current = Section()
        self.pending_bytes = 0
        self._pending_events = 0

    # -- in -------------------------------------------------------------------------------
    def configure(self, config, reason: str = "configuration") -> None:
        """A new configuration: what follows goes to a new segment."""
        self.config = config
        self._close_current()
        self._current = Section(config=config, new_segment=reason)

    def add(self, result, arrival_ns: int) -> None:
        """An ``IngestResult`` (``packets``, ``samples``, ``configured``) from one datagram."""
        cfg = getattr(result, "configured", None)
        samples = getattr(result, "samples", ()) or ()
        if cfg is not None:
            # samples decoded before the new configuration (same datagram) belong to the old segment:
            # under the new layout they would be rows of NaN and overlap the new segment's times
            before = getattr(result, "configured_at", 0)
            self._add_samples(samples[:before])
            samples = samples[before:]
            self.configure(cfg)
        sec = self._current
        for p in getattr(result, "packets", ()) or ():
            raw = p.raw
            n = len(raw)
            if self.pending_bytes + n + PACKET_OVERHEAD > self.max_bytes:
                self.stats.dropped_packets += 1
                continue
            # a Packet (ok or data checksum error) or an ingest ReceivedSpan (truncated, header error)
            sec.packets.append((raw, p.channel_id, p.data_type, p.rtc, arrival_ns, p.status))
            self.pending_bytes += n + PACKET_OVERHEAD
            sec.nbytes += n + PACKET_OVERHEAD
            self.stats.packets += 1
            self.stats.packet_bytes += n
        self._add_samples(samples)

    def _add_samples(self, batches) -> None:
        sec = self._current
        for batch in batches:
            m = len(batch)
            if not m:
                continue
            cost = m * SAMPLE_BYTES
            # samples give way to packets: keep a quarter of the bound for them
            if self.pending_bytes + cost > self.max_bytes * 3 // 4:
                self.stats.dropped_samples += m
                continue
            sec.samples.append(batch)
            self.pending_bytes += cost
            sec.nbytes += cost
            self.stats.samples += m

    def add_event(self, event: dict, time_ns: int, *, command: bool = False) -> None:
        """An event (alarm, link, configuration, recorder state) or a command record."""
        if self._pending_events >= self.max_events:
            self.stats.dropped_events += 1
            return
        line = _json_line(event)
        target = self._current.commands if command else self._current.events
        target.append((int(time_ns), line))
        self._pending_events += 1
        self.pending_bytes += len(line) + 16
        self._current.nbytes += len(line) + 16
        if command:
            self.stats.commands += 1
        else:
            self.stats.events += 1

    def rotate(self, reason: str) -> None:
        """Ask for a new segment from the next data on (same configuration)."""
        self._close_current()
        self._current = Section(config=self.config, new_segment=reason)

    # -- out ------------------------------------------------------------------------------
    def take(self) -> list[Section]:
        """Every pending section, oldest first; the buffer is empty after."""
        self._close_current()
        out, self._sections = self._sections, []
        self._current = Section(config=self.config)
        self.pending_bytes = 0
        self._pending_events = 0
        return out

    def peek(self) -> list[Section]:
        """What ``take()`` would return, without taking it: sections with copies of their sample lists
        (safe to read in another thread while more is added here)."""
        out = [sec for sec in self._sections]
        cur = self._current
        if cur.samples:
            out.append(Section(config=cur.config, samples=list(cur.samples)))
        return out

    def _close_current(self) -> None:
        sec = self._current
        if not sec.empty() or sec.new_segment is not None:
            self._sections.append(sec)
