"""``groundstation replay``: send a recording into a ground station's UDP ingest, with its original timing.

::

    groundstation replay flight-42/ --to 127.0.0.1:5510 --speed 4
    groundstation replay pcm.c10 --to 10.0.0.5:5510 --speed afap --loop

The source is a recording (what ``recorder.open`` takes: ``*.h5``, ``*.index.json``
or a folder), a Chapter 10 file, or a pcap/pcapng capture of a Chapter 10 UDP
stream (transfer format 1, 2 or 3; ``groundstation.capture``) -- files are told
apart by their content, not their names. Its Chapter 10 packets are sent
unchanged, in file order, in IRIG 106 UDP transfer format 1 datagrams
(``telemetry_formats.ch10.udp.UdpSender``: whole packets batched up to 65,000
bytes, larger packets segmented).

A replay is the vehicle's stand-in: it sends what the file holds, byte for byte,
damaged packets included -- a packet whose data checksum fails, one cut short,
one whose lengths disagree (those last two alone in a datagram, since their
length field cannot be trusted to batch them). Only spans that are no packet at
all (garbage without a valid packet header, e.g. a recorder's media error) are
left out: a vehicle never sends them, and no receiver could frame them. They
are listed with their offsets in the summary. Whether damaged packets are used
is the receiving station's choice (``serve --strict-checksums``); a recording's
damaged packets (its ``packets/status``) are replayed the same way.
``--strict-checksums`` here leaves every damaged packet out instead (counted).

Timing. Each packet has a recording time: the arrival time the ground station
recorded (``.h5``), the capture time of the frame that completed the packet (a
capture), or the packet header's 10 MHz RTC (``.c10``; 48-bit wrap handled). Packets are sent in file order at ``time / speed`` after the start.
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
marker is defined once, in ``telemetry_formats.ch10.replay_marker``: the ground
station's ingest recognizes it there by the ``groundstation_replay`` key, and
``is_replay_marker`` / ``parse_marker`` here are the same functions. The ground station records the markers like any packet;
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
import signal
import socket
import sys
from collections.abc import Iterable

from .replay_schedule import (
    DEFAULT_MAX_RATE,
    MARKER_CHANNEL,
    MARKER_DATA_TYPE,
    MARKER_KEY,
    ReplayPacket,
    ReplaySchedule,
    ReplayStats,
    Timeline,
    build_marker,
    is_replay_marker,
    parse_marker,
)
from .replay_schedule import (
    RTC_MOD as RTC_MOD,
)
from .replay_sources import (
    NS_PER_RTC as NS_PER_RTC,
)
from .replay_sources import (
    ReplayError,
    Source,
    c10_packets,
    open_source,
    recording_packets,
)
from .replay_sources import (
    SourceStats as SourceStats,
)

__all__ = [
    "MARKER_KEY", "MARKER_CHANNEL", "MARKER_DATA_TYPE", "build_marker", "parse_marker", "is_replay_marker",
    "ReplayPacket", "Timeline", "ReplaySchedule", "ReplayStats", "c10_packets", "recording_packets",
    "open_source", "ReplayError", "send_schedule", "cmd_replay", "register_replay_command",
]


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


def _packets(n: int) -> str:
    return f"{n} packet{'s' if n != 1 else ''}"


def _is(n: int) -> str:
    return "it is" if n == 1 else "they are"


def _summary(src: Source, st: ReplayStats, res: SendResult, speed: float | None, to: str) -> str:
    speed_text = "afap" if speed is None else f"{speed:g}x"
    lines = [f"replay {src.name} -> {to} ({speed_text}){' stopped' if res.interrupted else ''}: "
             f"{st.packets:,} packets, {st.packet_bytes:,} bytes in {res.sent_datagrams:,} datagrams "
             f"({st.markers} replay marker{'s' if st.markers != 1 else ''}), {res.duration_s:.2f} s; recording time {st.position_s:.2f} s"
             + (f", {st.passes} passes" if st.passes > 1 else "")]
    ss = src.stats
    if st.damaged_left_out:
        lines.append(f"  left out {_packets(st.damaged_left_out)} with a bad data checksum or otherwise damaged "
                     "(--strict-checksums)")
    elif ss.checksum_errors:
        lines.append(f"  sent {_packets(ss.checksum_errors)} with a bad data checksum as {_is(ss.checksum_errors)}")
    if ss.damaged_packets and not st.damaged_left_out:
        lines.append(f"  sent {_packets(ss.damaged_packets)} damaged otherwise (truncated, or lengths that "
                     f"disagree) as {_is(ss.damaged_packets)}")
    if st.unsendable:
        lines.append(f"  could not send {st.unsendable} truncated packets longer than one datagram")
    if ss.decode_errors and src.kind == "capture":
        lines.append(f"  {ss.decode_errors} capture problems (damaged frames or datagrams, partial packets "
                     f"dropped): groundstation inspect lists them by frame")
    elif ss.decode_errors:
        what = "span that is not a packet" if ss.decode_errors == 1 else "spans that are not packets"
        lines.append(f"  left out {ss.decode_errors} {what} ({ss.skipped_bytes:,} bytes of garbage):")
        for off, length, reason in ss.skipped:
            lines.append(f"    offset {off}: {reason} ({length:,} bytes)")
        if ss.decode_errors > len(ss.skipped):
            lines.append(f"    ... {ss.decode_errors - len(ss.skipped)} more")
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
                              max_rate=args.max_rate * 1e6, max_gap_s=args.max_gap,
                              strict_checksums=args.strict_checksums)
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
        "replay", help="send a recording (.h5), a Chapter 10 file or a pcap/pcapng capture into a ground "
                       "station's UDP ingest",
        description="Replay Chapter 10 packets in UDP transfer format 1 with their original timing, scaled.")
    p.add_argument("source", help="a recording (.h5, .index.json or folder), a .c10 file or a pcap/pcapng capture")
    p.add_argument("--to", type=_host_port, default=_host_port("127.0.0.1:5510"), metavar="HOST:PORT",
                   help="the ground station's UDP ingest HOST:PORT (default 127.0.0.1:5510)")
    p.add_argument("--speed", type=_speed, default=1.0, metavar="N|afap",
                   help="time scale (2 = twice as fast) or afap: as fast as possible (default 1)")
    p.add_argument("--loop", action="store_true", help="start again at the end until Ctrl-C")
    p.add_argument("--max-rate", type=_positive, default=DEFAULT_MAX_RATE / 1e6, metavar="MB/S",
                   help="never send faster than this many MB/s (default 50)")
    p.add_argument("--strict-checksums", action="store_true",
                   help="leave out packets whose data checksum fails and other damaged packets "
                        "(default: send the file as it is)")
    p.add_argument("--max-gap", type=_positive, default=60.0, metavar="SECONDS",
                   help="shorten silences in the recording to this (default 60)")
    p.set_defaults(func=cmd_replay)

