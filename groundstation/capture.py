"""Reading pcap and pcapng captures of Chapter 10 UDP streams: the I/O shell around the sans-I/O parts.

``CaptureReader(path).packets()`` yields ``CapturePacket``s (the Chapter 10
packet bytes as the transfer format carried them, the capture time of the frame
that completed them); ``report()`` then says what the capture held and what went
wrong, with frame numbers (1-based, as Wireshark counts). The file is read with
dpkt's pcap and pcapng readers; frames become UDP datagrams in
``telemetry_formats.netcap`` (IP fragments reassembled) and datagrams become
packets in ``telemetry_formats.ch10.udp.UdpReceiver`` (transfer format 1, 2 or
3 detected per datagram; segmented packets reassembled), one receiver per flow
(source address and port -> destination address and port).

A flow none of whose datagrams was a Chapter 10 transfer message (other UDP
traffic on the network) is reported once, as a flow, not datagram by datagram.
A pcapng file is read through its first interface's link type (dpkt's reader).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from telemetry_formats.ch10.udp import DatagramError, PacketReceived, PartialDropped, SequenceGap, UdpReceiver
from telemetry_formats.filetype import PCAP, PCAPNG, SNIFF_BYTES, sniff
from telemetry_formats.netcap import Datagram, UdpExtractor, link_type_name

__all__ = ["CaptureError", "CapturePacket", "CaptureReader", "is_capture", "MAX_LISTED_ERRORS"]

MAX_LISTED_ERRORS = 200  # problems kept with their frame number; all are counted
READ_BUFFER = 4 << 20


class CaptureError(Exception):
    """The file cannot be read as a capture (one line, for the user)."""


@dataclass(frozen=True, slots=True)
class CapturePacket:
    raw: bytes
    time_ns: int  # capture time of the frame that completed the packet
    frame: int


@dataclass
class _Flow:
    receiver: UdpReceiver
    datagrams: int = 0
    packets: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # kept until the flow proves to be Ch10


def is_capture(path: str | os.PathLike) -> bool:
    """True when the file's content is a pcap or pcapng capture."""
    with open(path, "rb") as fh:
        return sniff(fh.read(64)).kind in (PCAP, PCAPNG)


class CaptureReader:
    """One pass over a capture file: ``packets()`` then ``report()``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        with open(self.path, "rb") as fh:
            kind = sniff(fh.read(SNIFF_BYTES))
        if kind.kind not in (PCAP, PCAPNG):
            raise CaptureError(f"{self.path}: {kind.description}, not a pcap or pcapng capture")
        self.kind = kind.kind
        self.link_type: int | None = None
        self.frames = 0
        self.packets_out = 0
        self.problems: list[dict] = []
        self.problem_count = 0
        self.sequence_gaps = 0
        self.lost_datagrams = 0
        self.partials_dropped = 0
        self._flows: dict[tuple, _Flow] = {}
        self._extractor: UdpExtractor | None = None

    def _problem(self, frame: int, reason: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED_ERRORS:
            self.problems.append({"frame": frame, "reason": reason})

    def _open(self, fh):
        import dpkt

        try:
            return dpkt.pcap.Reader(fh) if self.kind == PCAP else dpkt.pcapng.Reader(fh)
        except (ValueError, dpkt.NeedData, dpkt.UnpackError) as exc:
            raise CaptureError(f"{self.path}: unreadable {self.kind} header: {exc}") from None

    def packets(self) -> Iterator[CapturePacket]:
        """The Chapter 10 packets of the capture, in the order they completed."""
        import dpkt

        with open(self.path, "rb", buffering=READ_BUFFER) as fh:  # dpkt reads twice per frame: few syscalls
            reader = self._open(fh)
            self.link_type = reader.datalink()
            try:
                self._extractor = extractor = UdpExtractor(self.link_type)
            except ValueError as exc:
                raise CaptureError(f"{self.path}: {exc}") from None
            frames = iter(reader)
            n = 0
            frame, receive = extractor.frame, self._datagram
            while True:
                try:
                    ts, buf = next(frames)
                except StopIteration:
                    break
                except (dpkt.NeedData, dpkt.UnpackError, ValueError) as exc:
                    self._problem(n + 1, f"capture file damaged after frame {n}: {exc}")
                    break
                n += 1
                for item in frame(n, buf):
                    if type(item) is Datagram:
                        out = receive(item, ts)
                        if out:
                            yield from out
                    elif item.error:
                        self._problem(item.frame, item.reason)
            self.frames = n
        for item in extractor.flush():
            self._problem(item.frame, item.reason)
        for flow in self._flows.values():
            for ev in flow.receiver.flush():
                self._event(flow, n, ev)

    def events(self) -> Iterator:
        """The packets as the .c10 reader gives them (``Packet`` or ``DecodeError``), read from the
        packets' bytes one after another: offsets are those of that virtual .c10 stream, which are
        the source file's when a capture was made from a whole .c10 file."""
        from telemetry_formats.ch10.reader import PacketReader

        reader = PacketReader()
        for p in self.packets():
            yield from reader.feed(p.raw)
        yield from reader.feed(b"", final=True)

    def _datagram(self, dg: Datagram, ts: float) -> list[CapturePacket]:
        key = (dg.src, dg.dst)
        flow = self._flows.get(key)
        if flow is None:
            flow = self._flows[key] = _Flow(UdpReceiver())
        flow.datagrams += 1
        out = []
        for ev in flow.receiver.receive(dg.payload):
            if type(ev) is PacketReceived:
                if not flow.packets:  # a Chapter 10 flow after all: its earlier problems count
                    for frame, reason in flow.problems:
                        self._problem(frame, reason)
                    flow.problems.clear()
                flow.packets += 1
                self.packets_out += 1
                out.append(CapturePacket(ev.data, int(ts * 1_000_000_000), dg.frame))
            else:
                self._event(flow, dg.frame, ev)
        return out

    def _event(self, flow: _Flow, frame: int, ev) -> None:
        if isinstance(ev, SequenceGap):
            self.sequence_gaps += 1
            if not ev.resync:
                self.lost_datagrams += ev.missing
            return
        if isinstance(ev, PartialDropped):
            self.partials_dropped += 1
            reason = (f"channel {ev.channel_id}: partial packet dropped ({ev.reason}; "
                      f"{ev.received_bytes} of {ev.packet_length or '?'} bytes)")
        elif isinstance(ev, DatagramError):
            reason = f"datagram {ev.udp_sequence_number if ev.udp_sequence_number is not None else '?'}: {ev.reason}"
        else:
            return
        if flow.packets:
            self._problem(frame, reason)
        elif len(flow.problems) < MAX_LISTED_ERRORS:
            flow.problems.append((frame, reason))

    def report(self) -> dict:
        """What the capture held (after ``packets()`` ran to its end)."""
        ex = self._extractor.stats if self._extractor else None
        flows, other = [], []
        formats: dict[int, int] = {}
        for (src, dst), f in self._flows.items():
            entry = {"source": f"{src[0]}:{src[1]}", "destination": f"{dst[0]}:{dst[1]}",
                     "datagrams": f.datagrams, "packets": f.packets}
            (flows if f.packets else other).append(entry)
            for fmt, count in f.receiver.stats.formats.items():
                if f.packets:
                    formats[fmt] = formats.get(fmt, 0) + count
        return {
            "container": self.kind,
            "link_type": None if self.link_type is None else link_type_name(self.link_type),
            "frames": self.frames,
            "udp_datagrams": ex.datagrams if ex else 0,
            "not_udp_frames": ex.not_udp if ex else 0,
            "ip_fragments": ex.fragments if ex else 0,
            "ip_reassembled": ex.reassembled if ex else 0,
            "packets": self.packets_out,
            "transfer_formats": {str(k): v for k, v in sorted(formats.items())},
            "flows": flows,
            "other_udp_flows": other,
            "sequence_gaps": self.sequence_gaps,
            "lost_datagrams": self.lost_datagrams,
            "partials_dropped": self.partials_dropped,
            "problem_count": self.problem_count,
            "problems": self.problems,
        }
