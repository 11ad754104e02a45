"""``groundstation capture``: write a pcap (or pcapng) of the UDP stream that would carry a .c10 file.

::

    groundstation capture pcm.c10 -o pcm.pcap                       # format 1, 65,000-byte datagrams
    groundstation capture pcm.c10 -o seg.pcap --max-datagram 1472    # format 1, big packets segmented
    groundstation capture pcm.c10 -o f3.pcapng --format 3 --mtu 1500 # format 3, IP-fragmented frames

The packets of the file (read with the project's .c10 reader; undecodable spans
are skipped and counted) go through the same ``UdpSender`` the simulator and
``replay`` use, in the transfer format asked for. Consecutive packets whose RTCs
are within 1 ms share a datagram (up to ``--max-datagram`` bytes, the transfer
header included); each datagram becomes an Ethernet / IPv4 / UDP frame from
``--from`` to ``--to`` (default 10.0.0.1:5510 -> 10.0.0.2:5510), time-stamped
by the packets' RTC from 2000-01-01 00:00:00 UTC, never going backwards. With
``--mtu N`` frames are IPv4-fragmented to N bytes of IP packet, as a sender's
stack would; without it each datagram is one frame. The output is pcapng when
its name ends in ``.pcapng``, else pcap (microsecond time stamps).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Iterable, Iterator

import dpkt

from telemetry_formats.ch10.udp import DEFAULT_MAX_DATAGRAM, UdpSender

from .replay_sources import SourceStats, c10_packets

__all__ = ["CAPTURE_EPOCH_NS", "frames_for", "write_capture", "register_capture_command"]

CAPTURE_EPOCH_NS = 946_684_800 * 1_000_000_000  # 2000-01-01T00:00:00Z
BATCH_NS = 1_000_000
_MAC_SRC, _MAC_DST = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def _ip_frames(payload: bytes, src: tuple[str, int], dst: tuple[str, int], ident: int, mtu: int | None) -> list[bytes]:
    udp = dpkt.udp.UDP(sport=src[1], dport=dst[1], data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=dpkt.ip.IP_PROTO_UDP, id=ident,
                    ttl=64, data=udp)
    ip.len = len(ip)  # computes the UDP checksum with the pseudo header as well
    whole = bytes(ip)
    if mtu is None or len(whole) <= mtu:
        return [bytes(dpkt.ethernet.Ethernet(src=_MAC_SRC, dst=_MAC_DST, type=dpkt.ethernet.ETH_TYPE_IP, data=ip))]
    body = whole[ip.hl * 4:]
    step = ((mtu - ip.hl * 4) // 8) * 8
    out = []
    for off in range(0, len(body), step):
        piece = body[off : off + step]
        more = off + step < len(body)
        frag = dpkt.ip.IP(src=ip.src, dst=ip.dst, p=ip.p, id=ident, ttl=64, mf=int(more), offset=off // 8,
                          data=piece)
        frag.len = len(frag)
        out.append(bytes(dpkt.ethernet.Ethernet(src=_MAC_SRC, dst=_MAC_DST, type=dpkt.ethernet.ETH_TYPE_IP,
                                                data=frag)))
    return out


def frames_for(packets: Iterable[tuple[bytes, int]], *, transfer_format: int = 1,
               max_datagram: int = DEFAULT_MAX_DATAGRAM, mtu: int | None = None,
               src: tuple[str, int] = ("10.0.0.1", 5510),
               dst: tuple[str, int] = ("10.0.0.2", 5510)) -> Iterator[tuple[int, bytes]]:
    """``(time_ns, Ethernet frame)`` for ``(packet bytes, time_ns)`` pairs, batched as the module says."""
    sender = UdpSender(max_datagram=max_datagram, transfer_format=transfer_format)
    limit = max_datagram - 12
    group: list[bytes] = []
    group_t = size = ident = 0
    last_t = 0

    def emit() -> Iterator[tuple[int, bytes]]:
        nonlocal ident, last_t
        last_t = max(last_t, group_t)
        for dg in sender.pack(group):
            for frame in _ip_frames(dg, src, dst, ident & 0xFFFF, mtu):
                yield last_t, frame
            ident += 1

    for raw, t_ns in packets:
        if group and (t_ns - group_t > BATCH_NS or t_ns < group_t or size + len(raw) > limit):
            yield from emit()
            group, size = [], 0
        if not group:
            group_t = t_ns
        group.append(raw)
        size += len(raw)
    if group:
        yield from emit()


def write_capture(c10_path: str | os.PathLike, out_path: str | os.PathLike, *, transfer_format: int = 1,
                  max_datagram: int = DEFAULT_MAX_DATAGRAM, mtu: int | None = None,
                  src: tuple[str, int] = ("10.0.0.1", 5510), dst: tuple[str, int] = ("10.0.0.2", 5510)) -> dict:
    """Write the capture of ``c10_path``; returns counts (packets, frames, bytes, skipped spans)."""
    stats = SourceStats()
    packets = ((p.raw, p.time_ns) for p in c10_packets(c10_path, stats))
    pcapng = os.fspath(out_path).lower().endswith(".pcapng")
    n_frames = n_bytes = 0
    n_packets = 0

    def counted() -> Iterator[tuple[bytes, int]]:
        nonlocal n_packets
        for raw, t in packets:
            n_packets += 1
            yield raw, t

    with open(out_path, "wb") as fh:
        snaplen = 262_144
        writer = dpkt.pcapng.Writer(fh, snaplen=snaplen) if pcapng else dpkt.pcap.Writer(fh, snaplen=snaplen)
        for t_ns, frame in frames_for(counted(), transfer_format=transfer_format, max_datagram=max_datagram,
                                      mtu=mtu, src=src, dst=dst):
            ts = (CAPTURE_EPOCH_NS + t_ns) / 1e9
            writer.writepkt(frame, ts=ts)
            n_frames += 1
            n_bytes += len(frame)
    return {"packets": n_packets, "frames": n_frames, "frame_bytes": n_bytes,
            "skipped_spans": stats.decode_errors, "skipped_bytes": stats.skipped_bytes}


def _address(text: str) -> tuple[str, int]:
    from .run import host_port

    host, port = host_port(text)
    try:
        socket.inet_aton(host)
    except OSError:
        raise argparse.ArgumentTypeError(f"{text!r}: an IPv4 address and port (e.g. 10.0.0.2:5510)") from None
    return host, port


def cmd_capture(args: argparse.Namespace) -> int:
    from telemetry_formats.filetype import C10, SNIFF_BYTES, sniff

    try:
        with open(args.file, "rb") as fh:
            kind = sniff(fh.read(SNIFF_BYTES))
    except OSError as exc:
        print(f"groundstation capture: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if kind.kind != C10:
        print(f"groundstation capture: {args.file}: {kind.description}, not a Chapter 10 file", file=sys.stderr)
        return 2
    try:
        res = write_capture(args.file, args.output, transfer_format=args.format, max_datagram=args.max_datagram,
                            mtu=args.mtu, src=args.from_, dst=args.to)
    except (OSError, ValueError) as exc:
        print(f"groundstation capture: {exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: {res['packets']:,} packets in {res['frames']:,} frames ({res['frame_bytes']:,} bytes), "
          f"transfer format {args.format}"
          + (f"; skipped {res['skipped_spans']} undecodable spans ({res['skipped_bytes']:,} bytes)"
             if res["skipped_spans"] else ""))
    return 0


def register_capture_command(sub) -> None:
    p = sub.add_parser("capture", help="write a pcap/pcapng of the UDP stream (transfer format 1, 2 or 3) "
                                       "that carries a .c10 file")
    p.add_argument("file", help="a Chapter 10 file")
    p.add_argument("-o", "--output", required=True, help="the capture to write (.pcapng: pcapng, else pcap)")
    p.add_argument("--format", type=int, choices=(1, 2, 3), default=1, help="UDP transfer format (default 1)")
    p.add_argument("--max-datagram", type=int, default=DEFAULT_MAX_DATAGRAM,
                   help=f"bytes per UDP payload, transfer header included (default {DEFAULT_MAX_DATAGRAM}); "
                        "bigger packets are segmented (formats 1, 2) or run on (format 3)")
    p.add_argument("--mtu", type=int, help="IPv4-fragment frames to this many bytes of IP packet (e.g. 1500)")
    p.add_argument("--from", dest="from_", type=_address, default=("10.0.0.1", 5510), help="source IPv4:port")
    p.add_argument("--to", type=_address, default=("10.0.0.2", 5510), help="destination IPv4:port")
    p.set_defaults(func=cmd_capture)
