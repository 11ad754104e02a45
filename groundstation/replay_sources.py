"""Replay sources: opening a .c10 file, a pcap/pcapng capture or a recording and reading its Chapter 10 packets
with their times. What a file is comes from its content (``telemetry_formats.filetype``); recordings are also
recognized by name (``.h5``, ``.hdf5``, ``.index.json``, a folder)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator

from telemetry_formats.ch10.rtc import NS_PER_TICK, rtc_delta

from .replay_schedule import ReplayPacket

__all__ = ["NS_PER_RTC", "ReplayError", "SourceStats", "c10_packets", "capture_packets", "recording_packets", "Source",
           "open_source"]

NS_PER_RTC = NS_PER_TICK  # 10 MHz


class ReplayError(Exception):
    """A user error: printed as one line, exit status 2."""


# -- packet sources -----------------------------------------------------------------------------------


MAX_LISTED_SPANS = 20  # garbage spans listed (with offsets) in the summary; all are counted


@dataclasses.dataclass
class SourceStats:
    decode_errors: int = 0  # spans of the file that are not packets at all (garbage): left out
    skipped_bytes: int = 0
    skipped: list = dataclasses.field(default_factory=list)  # (offset, length, reason) of the first few
    checksum_errors: int = 0  # packets with a bad data checksum: sent as they are
    damaged_packets: int = 0  # truncated packets, packets with inconsistent lengths: sent as they are


def c10_packets(path: str | os.PathLike, stats: SourceStats | None = None, *,
                chunk: int = 4 << 20) -> Iterator[ReplayPacket]:
    """Every packet of a .c10 file, damaged ones included, byte for byte, timed by their RTC (unwrapped).

    A packet is a span that starts with a valid header: one whose data checksum fails, that is cut
    short or whose lengths disagree is still sent, as it is, with its status. Only spans that are no
    packet at all (garbage without a valid header) are left out, and counted with their offsets.
    """
    from telemetry_formats.ch10.header import HeaderError, parse_header
    from telemetry_formats.ch10.reader import DecodeError, PacketReader

    stats = stats if stats is not None else SourceStats()
    reader = PacketReader()
    t = last = None
    with open(path, "rb") as fh:
        while True:
            data = fh.read(chunk)
            for ev in reader.feed(data, final=not data):
                if isinstance(ev, DecodeError):
                    if not ev.is_packet:
                        stats.decode_errors += 1
                        stats.skipped_bytes += ev.length
                        if len(stats.skipped) < MAX_LISTED_SPANS:
                            stats.skipped.append((ev.offset, ev.length, ev.reason))
                        continue
                    try:
                        rtc = parse_header(ev.data).rtc
                    except HeaderError:  # not reached: a packet span has a valid header
                        rtc = last or 0
                    stats.damaged_packets += 1
                    raw, status = ev.data, ev.status
                else:
                    rtc, raw, status = ev.header.rtc, bytes(ev.raw), ev.status
                    stats.checksum_errors += ev.checksum_error is not None
                t = 0 if t is None or last is None else t + rtc_delta(rtc, last) * NS_PER_RTC
                last = rtc
                yield ReplayPacket(raw, t, rtc, status)
            if not data:
                return


def capture_packets(path: str | os.PathLike, stats: SourceStats | None = None) -> Iterator[ReplayPacket]:
    """The Chapter 10 packets of a pcap/pcapng capture, timed by the capture time of the frame that completed
    each; capture problems (damaged frames, bad datagrams, dropped partial packets) are counted as skipped spans."""
    from telemetry_formats.ch10.header import HEADER_SIZE

    from .capture import CaptureReader

    reader = CaptureReader(path)
    for p in reader.packets():
        rtc = int.from_bytes(p.raw[16:22], "little") if len(p.raw) >= HEADER_SIZE else 0
        yield ReplayPacket(p.raw, p.time_ns, rtc)
    if stats is not None:
        stats.decode_errors += reader.problem_count


def recording_packets(rec) -> Iterator[ReplayPacket]:
    """The packets of a recording (``recorder.open``), timed by their recorded arrival.

    Packets recovered from a damaged file have no arrival time: they are timed by RTC from the previous one.
    """
    t = last_rtc = None
    for p in rec.iter_packets():
        if p.arrival_ns > 0:
            t = p.arrival_ns
        elif t is None or last_rtc is None:
            t = 0
        else:
            t += rtc_delta(p.rtc, last_rtc) * NS_PER_RTC
        last_rtc = p.rtc
        yield ReplayPacket(p.raw, t, p.rtc, p.status)


# -- opening a source ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Source:
    name: str
    kind: str  # "c10", "capture" or "recording"
    packets: Callable[[], Iterable[ReplayPacket]]
    stats: SourceStats
    close: Callable[[], None]


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def open_source(path: str) -> Source:
    """A .c10 file, a pcap/pcapng capture or a recording, ready to replay. Raises ReplayError when it cannot be."""
    from telemetry_formats.filetype import C10, PCAP, PCAPNG, SNIFF_BYTES, sniff

    if not os.path.exists(path):
        raise ReplayError(f"{path}: no such file or folder")
    name = os.path.basename(os.path.normpath(path))
    head = b""
    if os.path.isfile(path):
        try:
            with open(path, "rb") as fh:
                head = fh.read(SNIFF_BYTES)
        except OSError as exc:
            raise ReplayError(f"{path}: cannot read it: {exc}") from None
    kind = sniff(head) if head else None
    stats = SourceStats()
    is_recording = (os.path.isdir(path) or head.startswith(_HDF5_MAGIC)
                    or path.lower().endswith((".h5", ".hdf5", ".json")))
    if is_recording:
        import recorder

        try:
            rec = recorder.open(path)
        except (OSError, ValueError) as exc:
            raise ReplayError(f"{path}: cannot read the recording: {exc}") from None
        n = 0
        for s in rec.segments:
            if s.file is not None:
                try:
                    n += s.packet_rows()[0]
                except Exception:
                    pass
            n += len(s._scanned or ())
        if not n:
            problems = "; ".join(rec.report()["problems"])
            rec.close()
            raise ReplayError(f"{path}: no Chapter 10 packets recorded" + (f" ({problems})" if problems else ""))
        return Source(name, "recording", lambda: recording_packets(rec), stats, rec.close)
    if kind is not None and kind.kind in (PCAP, PCAPNG):
        return _capture_source(path, name)
    if kind is None or kind.kind != C10:
        what = kind.description if kind is not None else "an empty file"
        raise ReplayError(f"{path}: {what}, not a Chapter 10 file, a pcap/pcapng capture or a recording")
    # A Chapter 10 file: at least one packet must decode.
    try:
        first = next(iter(c10_packets(path, SourceStats(), chunk=1 << 20)), None)
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read it: {exc}") from None
    if first is None:
        raise ReplayError(f"{path}: not a Chapter 10 file (no valid packet found)")
    return Source(name, "c10", lambda: c10_packets(path, stats), stats, lambda: None)



def _capture_source(path: str, name: str) -> Source:
    """A capture: at least one Chapter 10 packet must come out of it."""
    from .capture import CaptureError

    stats = SourceStats()
    try:
        first = next(iter(capture_packets(path)), None)
    except CaptureError as exc:
        raise ReplayError(str(exc)) from None
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read it: {exc}") from None
    if first is None:
        raise ReplayError(f"{path}: a capture without Chapter 10 UDP transfer messages (no packet found)")
    return Source(name, "capture", lambda: capture_packets(path, stats), stats, lambda: None)
