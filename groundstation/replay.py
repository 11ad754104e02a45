"""``groundstation replay``: send a recording into a ground station's UDP ingest, with its original timing.

::

    groundstation replay flight-42/ --to 127.0.0.1:5510 --speed 4
    groundstation replay pcm.c10 --to 10.0.0.5:5510 --speed afap --loop

The source is a recording (what ``recorder.open`` takes: ``*.h5``, ``*.index.json``
or a folder) or a Chapter 10 file (``.c10``). Its Chapter 10 packets are sent
unchanged, in file order, in IRIG 106 UDP transfer format 1 datagrams
(``telemetry_formats.ch10.udp.UdpSender``: whole packets batched up to 65,000
bytes, larger packets segmented).

Timing. Each packet has a recording time: the arrival time the ground station
recorded (``.h5``), or the packet header's 10 MHz RTC (``.c10``; 48-bit wrap
handled). Packets are sent in file order at ``time / speed`` after the start.
Recorders write packets when they are complete, so RTCs are not monotonic: a
packet whose time is earlier than one already sent goes at once. Silences longer
than ``--max-gap`` (default 60 s) are shortened to it, and a jump backwards by
more than that (a new RTC base, a clock step) counts as no time passing.
``--speed afap`` sends as fast as possible, but never faster than ``--max-rate``
(default 50 MB/s of datagrams, so loopback UDP receive buffers do not overflow);
the same bound applies at any speed. Packets due within 1 ms of each other share
a datagram.

Replay marker. So that consoles can show that they see a replay, the stream
carries, at the start and then once a second (of wall time) until the end, a
Computer-Generated Data Format 0 packet (data type 0x00) on channel 0, sent in
its own datagram. Its body is the 4-byte channel-specific data word (zero)
followed by UTF-8 JSON::

    {"groundstation_replay": {"source": "FT-042.h5", "speed": 4, "position_s": 12.0}}

``source`` is the replayed file's name, ``speed`` the speed factor (a number) or
``"afap"``, ``position_s`` the seconds into the recording at that moment. The
marker packet has no secondary header and no data checksum; its RTC is that of
the next data packet (so an ingest that takes its first RTC as a provisional time
base is not misled) and its sequence number counts the markers (mod 256). The
ground station's ingest recognizes it by the ``groundstation_replay`` key
(``groundstation.ingest.core.REPLAY_KEY``); ``is_replay_marker`` / ``parse_marker``
here do the same. The ground station records the markers like any packet;
replaying a recording skips the markers it holds (new ones are sent), and
``export --format c10`` keeps them (they are recorded packets).

Design: ``ReplaySchedule`` is sans-I/O -- packets in, ``(send_at_offset_s,
datagram)`` out, testable without sockets or clocks. ``send_schedule`` is the
thin asyncio UDP shell that waits until each offset and sends. The command stops
at the end (unless ``--loop``), on Ctrl-C or SIGTERM, and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Iterator

from telemetry_formats.ch10.header import HEADER_SIZE
from telemetry_formats.ch10.packet import build_packet, parse_packet
from telemetry_formats.ch10.udp import DEFAULT_MAX_DATAGRAM, FULL_HEADER_SIZE, UdpSender

__all__ = [
    "MARKER_KEY", "MARKER_CHANNEL", "MARKER_DATA_TYPE", "build_marker", "parse_marker", "is_replay_marker",
    "ReplayPacket", "Timeline", "ReplaySchedule", "ReplayStats", "c10_packets", "recording_packets",
    "open_source", "ReplayError", "send_schedule", "cmd_replay", "register_replay_command",
]

MARKER_KEY = "groundstation_replay"
MARKER_CHANNEL = 0
MARKER_DATA_TYPE = 0x00  # computer-generated data, format 0
DEFAULT_MAX_RATE = 50e6  # bytes/s of datagrams
RTC_MOD = 1 << 48
NS_PER_RTC = 100  # 10 MHz


class ReplayError(Exception):
    """A user error: printed as one line, exit status 2."""


# -- the marker -------------------------------------------------------------------------------------


def _speed_json(speed: float | None):
    if speed is None:
        return "afap"
    return int(speed) if float(speed).is_integer() else float(speed)


def build_marker(source: str, speed: float | None, position_s: float, *, rtc: int = 0,
                 sequence_number: int = 0) -> bytes:
    """The replay marker packet (see the module docstring); ``speed`` None means afap."""
    doc = {MARKER_KEY: {"source": source, "speed": _speed_json(speed), "position_s": round(float(position_s), 3)}}
    body = b"\0\0\0\0" + json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return build_packet(channel_id=MARKER_CHANNEL, data_type=MARKER_DATA_TYPE, body=body,
                        sequence_number=sequence_number & 0xFF, rtc=int(rtc) % RTC_MOD)


def parse_marker(raw: bytes | memoryview) -> dict | None:
    """The marker's ``{"source", "speed", "position_s"}`` if ``raw`` is a replay marker packet, else None."""
    if len(raw) < HEADER_SIZE + 4 or raw[2] != 0 or raw[3] != 0 or raw[15] != MARKER_DATA_TYPE:
        return None
    try:
        p = parse_packet(raw)
        doc = json.loads(bytes(p.body[4:]).decode("utf-8").rstrip("\x00"))
    except (ValueError, UnicodeDecodeError):
        return None
    info = doc.get(MARKER_KEY) if isinstance(doc, dict) else None
    return info if isinstance(info, dict) else None


def is_replay_marker(raw: bytes | memoryview) -> bool:
    return parse_marker(raw) is not None


# -- packet sources -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayPacket:
    """One Chapter 10 packet and its recording time (ns on any base; only differences matter)."""

    raw: bytes
    time_ns: int
    rtc: int = 0


@dataclasses.dataclass
class SourceStats:
    decode_errors: int = 0
    skipped_bytes: int = 0


def _signed_rtc_delta(rtc: int, last: int) -> int:
    d = (rtc - last) % RTC_MOD
    return d - RTC_MOD if d >= RTC_MOD // 2 else d


def c10_packets(path: str | os.PathLike, stats: SourceStats | None = None, *,
                chunk: int = 4 << 20) -> Iterator[ReplayPacket]:
    """The packets of a .c10 file, timed by their RTC (unwrapped); undecodable spans are counted and skipped."""
    from telemetry_formats.ch10.reader import DecodeError, PacketReader

    reader = PacketReader()
    t = last = None
    with open(path, "rb") as fh:
        while True:
            data = fh.read(chunk)
            for ev in reader.feed(data, final=not data):
                if isinstance(ev, DecodeError):
                    if stats is not None:
                        stats.decode_errors += 1
                        stats.skipped_bytes += ev.length
                    continue
                rtc = ev.header.rtc
                t = 0 if t is None else t + _signed_rtc_delta(rtc, last) * NS_PER_RTC
                last = rtc
                yield ReplayPacket(bytes(ev.raw), t, rtc)
            if not data:
                return


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
            t += _signed_rtc_delta(p.rtc, last_rtc) * NS_PER_RTC
        last_rtc = p.rtc
        yield ReplayPacket(p.raw, t, p.rtc)


# -- the schedule (sans-I/O) ----------------------------------------------------------------------------


class Timeline:
    """Recording times (ns) -> a position (ns) that never goes backwards, with long gaps shortened."""

    def __init__(self, max_gap_ns: int | None = 60_000_000_000) -> None:
        self.max_gap_ns = max_gap_ns
        self.ref: int | None = None
        self.position_ns = 0

    def advance(self, t_ns: int) -> int:
        if self.ref is None:
            self.ref = t_ns
            return 0
        d = t_ns - self.ref
        if d > 0:
            self.position_ns += d if self.max_gap_ns is None else min(d, self.max_gap_ns)
            self.ref = t_ns
        elif self.max_gap_ns is not None and d < -self.max_gap_ns:
            self.ref = t_ns  # a discontinuity (new RTC base, clock step): no time passes
        return self.position_ns


@dataclasses.dataclass
class ReplayStats:
    packets: int = 0
    packet_bytes: int = 0
    datagrams: int = 0
    datagram_bytes: int = 0
    markers: int = 0
    old_markers_skipped: int = 0
    passes: int = 0
    position_s: float = 0.0  # recording position of the last packet scheduled
    end_offset_s: float = 0.0  # when the last datagram is due


class ReplaySchedule:
    """Packets in, ``(send_at_offset_s, datagram)`` out, in time order.

    ``packets``: an iterable of ``ReplayPacket`` or a callable returning one
    (needed with ``loop=True``: each pass calls it again). ``speed``: a factor,
    or None for as fast as possible. Every datagram (markers too) is due no
    earlier than the previous one plus its size / ``max_rate``. Replay markers
    are due at 0 and every ``marker_interval_s`` while there is data to send.
    """

    def __init__(
        self,
        packets: Iterable[ReplayPacket] | Callable[[], Iterable[ReplayPacket]],
        *,
        source: str,
        speed: float | None = 1.0,
        loop: bool = False,
        max_rate: float = DEFAULT_MAX_RATE,
        max_datagram: int = DEFAULT_MAX_DATAGRAM,
        marker_interval_s: float = 1.0,
        batch_window_s: float = 0.001,
        max_gap_s: float | None = 60.0,
        seq_start: int = 0,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError("speed must be > 0 (or None for as fast as possible)")
        if loop and not callable(packets) and iter(packets) is packets:
            raise ValueError("loop=True needs a callable or a re-iterable collection of packets")
        self._packets = packets
        self.source = source
        self.speed = speed
        self.loop = loop
        self.max_rate = float(max_rate)
        self.marker_interval_s = marker_interval_s
        self.batch_window_s = batch_window_s
        self.max_gap_ns = None if max_gap_s is None else int(max_gap_s * 1e9)
        self.sender = UdpSender(seq_start, max_datagram)
        self._limit = max_datagram - FULL_HEADER_SIZE
        self.stats = ReplayStats()
        self._free_at = 0.0  # earliest time the next datagram may go (rate bound)
        self._next_marker = 0.0
        self._marker_seq = 0

    def _source(self) -> Iterable[ReplayPacket]:
        return self._packets() if callable(self._packets) else self._packets

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        base = 0.0
        while True:
            sent_before = self.stats.packets
            self.stats.passes += 1
            yield from self._pass(base)
            if not self.loop or self.stats.packets == sent_before:
                return
            base = self._free_at

    def _pass(self, base: float) -> Iterator[tuple[float, bytes]]:
        timeline = Timeline(self.max_gap_ns)
        group: list[ReplayPacket] = []
        group_due = group_pos = 0.0
        size = 0
        self._last_pos = 0.0
        self._base = base
        for p in self._source():
            if len(p.raw) > HEADER_SIZE and p.raw[15] == MARKER_DATA_TYPE and is_replay_marker(p.raw):
                self.stats.old_markers_skipped += 1
                continue
            pos = timeline.advance(p.time_ns) / 1e9
            due = base + (pos / self.speed if self.speed else 0.0)
            if group and (due - group_due > self.batch_window_s or size + len(p.raw) > self._limit):
                yield from self._emit(group, group_due, group_pos)
                group, size = [], 0
            if not group:
                group_due, group_pos = due, pos
            group.append(p)
            size += len(p.raw)
        if group:
            yield from self._emit(group, group_due, group_pos)

    def _emit(self, group: list[ReplayPacket], due: float, pos: float) -> Iterator[tuple[float, bytes]]:
        st = self.stats
        # Markers due before this group go first (their UDP sequence numbers too); a group's
        # datagrams then go back to back (a group is one datagram unless a packet is segmented).
        while self._next_marker <= max(due, self._free_at):
            yield self._marker(group[0].rtc, pos)
        for dg in self.sender.pack([p.raw for p in group]):
            at = max(due, self._free_at)
            self._free_at = at + len(dg) / self.max_rate
            st.datagrams += 1
            st.datagram_bytes += len(dg)
            st.end_offset_s = at
            yield at, dg
        # counted once the consumer asks for more: an interrupted replay reports what it sent
        st.packets += len(group)
        st.packet_bytes += sum(len(p.raw) for p in group)
        st.position_s = self._last_pos = pos

    def _marker(self, rtc: int, next_pos: float) -> tuple[float, bytes]:
        at = max(self._next_marker, self._free_at)
        if self.speed:
            position = min(max((at - self._base) * self.speed, self._last_pos), next_pos)
        else:
            position = self._last_pos
        raw = build_marker(self.source, self.speed, position, rtc=rtc, sequence_number=self._marker_seq)
        self._marker_seq += 1
        (dg,) = self.sender.pack([raw])
        self._free_at = at + len(dg) / self.max_rate
        self._next_marker += self.marker_interval_s
        self.stats.markers += 1
        self.stats.datagrams += 1
        self.stats.datagram_bytes += len(dg)
        return at, dg


# -- opening a source ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Source:
    name: str
    kind: str  # "c10" or "recording"
    packets: Callable[[], Iterable[ReplayPacket]]
    stats: SourceStats
    close: Callable[[], None]


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def open_source(path: str) -> Source:
    """A .c10 file or a recording, ready to replay. Raises ReplayError when it cannot be."""
    if not os.path.exists(path):
        raise ReplayError(f"{path}: no such file or folder")
    name = os.path.basename(os.path.normpath(path))
    head = b""
    if os.path.isfile(path):
        try:
            with open(path, "rb") as fh:
                head = fh.read(8)
        except OSError as exc:
            raise ReplayError(f"{path}: cannot read it: {exc}") from None
    stats = SourceStats()
    is_recording = (os.path.isdir(path) or head == _HDF5_MAGIC
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
    # A Chapter 10 file: at least one packet must decode.
    try:
        first = next(iter(c10_packets(path, SourceStats(), chunk=1 << 20)), None)
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read it: {exc}") from None
    if first is None:
        raise ReplayError(f"{path}: not a Chapter 10 file (no valid packet found)")
    return Source(name, "c10", lambda: c10_packets(path, stats), stats, lambda: None)


# -- the asyncio shell ----------------------------------------------------------------------------------


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.refused = 0
        self.errors: list[str] = []
        self.writable = asyncio.Event()
        self.writable.set()

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.refused += 1
        elif len(self.errors) < 5:
            self.errors.append(str(exc))

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


@dataclasses.dataclass
class SendResult:
    sent_datagrams: int
    sent_bytes: int
    duration_s: float
    interrupted: bool
    refused: int
    errors: list[str]


async def send_schedule(schedule: Iterable[tuple[float, bytes]], host: str, port: int, *,
                        stop: asyncio.Event | None = None, sndbuf: int = 4 << 20) -> SendResult:
    """Send each datagram to ``host:port`` when its offset (seconds after the start) comes."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    transport, proto = await loop.create_datagram_endpoint(_Protocol, remote_addr=(host, port))
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    except (OSError, AttributeError):
        pass
    n = nbytes = 0
    busy = 0
    interrupted = False
    t0 = loop.time()
    try:
        for offset, dg in schedule:
            if stop.is_set():
                interrupted = True
                break
            delay = t0 + offset - loop.time()
            if delay > 0.002:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    interrupted = True
                    break
                except TimeoutError:
                    pass
                busy = 0
            elif busy >= 32:  # let signals and other tasks in
                await asyncio.sleep(0)
                busy = 0
            if not proto.writable.is_set():
                await proto.writable.wait()
            transport.sendto(dg)
            n += 1
            nbytes += len(dg)
            busy += 1
        else:
            # let the last datagrams leave the transport's buffer
            while transport.get_write_buffer_size() and not stop.is_set():
                await asyncio.sleep(0.001)
    finally:
        duration = loop.time() - t0
        transport.close()
    return SendResult(n, nbytes, duration, interrupted or stop.is_set(), proto.refused, proto.errors)


# -- the command -------------------------------------------------------------------------------------------


def _speed(text: str) -> float | None:
    if text.lower() == "afap":
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a factor (e.g. 1, 4, 0.5) or afap") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: the speed must be > 0")
    return v


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be > 0")
    return v


def _host_port(text: str) -> tuple[str, int]:
    from .run import host_port

    return host_port(text)


def _summary(src: Source, st: ReplayStats, res: SendResult, speed: float | None, to: str) -> str:
    speed_text = "afap" if speed is None else f"{speed:g}x"
    lines = [f"replay {src.name} -> {to} ({speed_text}){' stopped' if res.interrupted else ''}: "
             f"{st.packets:,} packets, {st.packet_bytes:,} bytes in {res.sent_datagrams:,} datagrams "
             f"({st.markers} replay marker{'s' if st.markers != 1 else ''}), {res.duration_s:.2f} s; recording time {st.position_s:.2f} s"
             + (f", {st.passes} passes" if st.passes > 1 else "")]
    if src.stats.decode_errors:
        lines.append(f"  skipped {src.stats.decode_errors} undecodable spans ({src.stats.skipped_bytes:,} bytes)")
    if st.old_markers_skipped:
        lines.append(f"  left out {st.old_markers_skipped} replay markers of an earlier replay")
    if res.refused:
        lines.append(f"  warning: {to} refused {res.refused} datagrams (is a ground station listening there?)")
    for e in res.errors:
        lines.append(f"  warning: {e}")
    return "\n".join(lines)


async def _replay(args: argparse.Namespace, src: Source) -> tuple[ReplayStats, SendResult]:
    host, port = args.to
    schedule = ReplaySchedule(src.packets, source=src.name, speed=args.speed, loop=args.loop,
                              max_rate=args.max_rate * 1e6, max_gap_s=args.max_gap)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        res = await send_schedule(schedule, host, port, stop=stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
    return schedule.stats, res


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        src = open_source(args.source)
    except ReplayError as exc:
        print(f"groundstation replay: {exc}", file=sys.stderr)
        return 2
    host, port = args.to
    to = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        try:
            stats, res = asyncio.run(_replay(args, src))
        except KeyboardInterrupt:  # before the signal handlers were in place
            print("groundstation replay: interrupted", file=sys.stderr)
            return 130
        except OSError as exc:  # cannot resolve or reach HOST
            print(f"groundstation replay: {to}: {exc}", file=sys.stderr)
            return 2
    finally:
        src.close()
    print(_summary(src, stats, res, args.speed, to), flush=True)
    return 0


def register_replay_command(sub) -> None:
    p = sub.add_parser(
        "replay", help="send a recording (.h5) or a Chapter 10 file into a ground station's UDP ingest",
        description="Replay Chapter 10 packets in UDP transfer format 1 with their original timing, scaled.")
    p.add_argument("source", help="a recording (.h5, .index.json or folder) or a .c10 file")
    p.add_argument("--to", type=_host_port, default=_host_port("127.0.0.1:5510"), metavar="HOST:PORT",
                   help="the ground station's UDP ingest HOST:PORT (default 127.0.0.1:5510)")
    p.add_argument("--speed", type=_speed, default=1.0, metavar="N|afap",
                   help="time scale (2 = twice as fast) or afap: as fast as possible (default 1)")
    p.add_argument("--loop", action="store_true", help="start again at the end until Ctrl-C")
    p.add_argument("--max-rate", type=_positive, default=DEFAULT_MAX_RATE / 1e6, metavar="MB/S",
                   help="never send faster than this many MB/s (default 50)")
    p.add_argument("--max-gap", type=_positive, default=60.0, metavar="SECONDS",
                   help="shorten silences in the recording to this (default 60)")
    p.set_defaults(func=cmd_replay)

