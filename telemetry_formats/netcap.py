"""Captured link-layer frames -> UDP datagrams: link types, IPv4/IPv6, IP fragment reassembly.

Pure: ``UdpExtractor.frame(number, frame_bytes)`` returns what the frame gave
(a ``Datagram``, a ``FrameSkipped`` saying why not, or nothing while a
fragmented datagram is incomplete). The layers are decoded with dpkt; reading
capture files (dpkt's pcap / pcapng readers) is the caller's I/O.

Link types: Ethernet (with VLAN tags), Linux cooked v1 and v2, raw IP (101,
and 228 / 229 for IPv4 / IPv6 only), BSD loopback (0, 108). IPv4 fragments and
IPv6 fragment headers are reassembled (bounded: ``max_reassemblies`` at a time,
each given up after ``max_fragment_age`` frames without a new fragment).

Hot path: the common frame -- Ethernet (or Linux cooked, or raw IP) carrying an
IPv4 header without options and UDP or an IPv4 fragment -- is read with one
``struct`` unpack instead of three dpkt objects (a profile put dpkt's decoding
at half the cost of reading a capture of 1,500-byte frames); every other frame
goes through dpkt. ``tests/test_capture.py`` checks that both paths give the
same datagrams for the same frames.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

import dpkt

__all__ = ["LINK_TYPES", "Datagram", "FrameSkipped", "ExtractStats", "UdpExtractor", "link_type_name"]

LINK_TYPES = {
    0: "BSD loopback", 1: "Ethernet", 12: "raw IP", 14: "raw IP", 101: "raw IP", 108: "OpenBSD loopback",
    113: "Linux cooked", 228: "raw IPv4", 229: "raw IPv6", 276: "Linux cooked v2",
}
_FRAG_HEADER = 44


def link_type_name(link_type: int) -> str:
    return LINK_TYPES.get(link_type, f"link type {link_type}")


class Datagram(NamedTuple):
    """One UDP datagram: payload and addresses; ``frame`` is the capture frame (1-based) it completed in."""

    frame: int
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes
    reassembled: bool = False


@dataclass(frozen=True, slots=True)
class FrameSkipped:
    """A frame (or a fragmented datagram) that gave no UDP datagram, and why."""

    frame: int
    reason: str
    error: bool = True  # False: not UDP (ARP, TCP, ...), nothing wrong with it


@dataclass(slots=True)
class ExtractStats:
    frames: int = 0
    datagrams: int = 0
    not_udp: int = 0
    errors: int = 0
    fragments: int = 0
    reassembled: int = 0
    fragments_dropped: int = 0
    not_udp_kinds: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Reassembly:
    first_frame: int
    last_frame: int
    parts: dict[int, bytes] = field(default_factory=dict)
    total: int | None = None  # known once the last fragment is in
    size: int = 0


_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_ETH_IPV4 = b"\x08\x00"
# link type -> (offset of the IPv4 header, offset and bytes of the ethertype that must precede it)
_FAST_LINKS = {1: (14, 12, _ETH_IPV4), 113: (16, 14, _ETH_IPV4), 101: (0, 0, b""), 228: (0, 0, b""),
               12: (0, 0, b""), 14: (0, 0, b"")}


class UdpExtractor:
    """Frames of one link type in, UDP datagrams out (fragments reassembled)."""

    def __init__(self, link_type: int, *, max_reassemblies: int = 256, max_fragment_age: int = 10_000,
                 fast_path: bool = True) -> None:
        if link_type not in LINK_TYPES:
            raise ValueError(f"unsupported {link_type_name(link_type)}: Ethernet, Linux cooked, raw IP or loopback")
        self.link_type = link_type
        self.stats = ExtractStats()
        self.max_reassemblies, self.max_fragment_age = max_reassemblies, max_fragment_age
        self._pending: dict[tuple, _Reassembly] = {}
        self._fast = _FAST_LINKS.get(link_type) if fast_path else None
        self._names: dict[bytes, str] = {}

    def frame(self, number: int, buf: bytes) -> list[Datagram | FrameSkipped]:
        """Decode one captured frame; returns what it gave (usually one ``Datagram``)."""
        self.stats.frames += 1
        out: list[Datagram | FrameSkipped] = []
        if self._pending and not number & 0xFF:  # every 256 frames: ages are counted in thousands
            self._expire(number, out)
        if self._fast is not None and self._frame_fast(number, buf, out):
            return out
        try:
            ip = self._network(buf)
        except (dpkt.UnpackError, ValueError, IndexError) as exc:
            return self._skip(out, number, f"undecodable {link_type_name(self.link_type)} frame: {exc}")
        if isinstance(ip, str):
            return self._not_udp(out, number, ip)
        try:
            self._ip(number, ip, out)
        except (dpkt.UnpackError, ValueError, IndexError) as exc:
            self._skip(out, number, f"undecodable IP packet: {exc}")
        return out

    def flush(self) -> list[FrameSkipped]:
        """Give up on every incomplete fragmented datagram (end of capture)."""
        out: list[Datagram | FrameSkipped] = []
        for key in list(self._pending):
            self._give_up(key, "fragmented datagram incomplete at the end of the capture", out)
        return [o for o in out if isinstance(o, FrameSkipped)]

    def _frame_fast(self, number: int, buf: bytes, out: list) -> bool:
        """Plain IPv4 (no options) with UDP or a fragment: decoded here; False sends the frame to dpkt."""
        off, type_at, ethertype = self._fast
        if len(buf) < off + 28 or (ethertype and buf[type_at : type_at + 2] != ethertype) or buf[off] != 0x45:
            return False
        _, _, total, ident, frag, _, proto, _, src, dst = _IPV4.unpack_from(buf, off)
        end = off + total
        if total < 20 or end > len(buf):
            return False  # let dpkt name what is wrong
        if frag & 0x3FFF:
            self._fragment(number, (src, dst, ident, proto), (frag & 0x1FFF) * 8, bool(frag & 0x2000),
                           buf[off + 20 : end], proto, src, dst, out)
            return True
        if proto != dpkt.ip.IP_PROTO_UDP or total < 28:
            return False
        sport, dport, ulen, _ = _UDP.unpack_from(buf, off + 20)
        if not 8 <= ulen <= total - 20:
            return False
        self.stats.datagrams += 1
        out.append(Datagram(number, (self._name(src), sport), (self._name(dst), dport), buf[off + 28 : off + 20 + ulen]))
        return True

    def _network(self, buf: bytes):
        """The IP layer of a frame (dpkt), or a string naming what else it is."""
        lt = self.link_type
        if lt == 1:
            layer = dpkt.ethernet.Ethernet(buf)
        elif lt == 113:
            layer = dpkt.sll.SLL(buf)
        elif lt == 276:
            layer = dpkt.sll2.SLL2(buf)
        elif lt in (0, 108):
            layer = dpkt.loopback.Loopback(buf)
        elif lt == 228:
            return dpkt.ip.IP(buf)
        elif lt == 229:
            return dpkt.ip6.IP6(buf)
        else:  # raw IP: the version nibble says which
            if not buf:
                raise ValueError("empty frame")
            return dpkt.ip6.IP6(buf) if buf[0] >> 4 == 6 else dpkt.ip.IP(buf)
        data = layer.data
        if isinstance(data, dpkt.ip.IP | dpkt.ip6.IP6):
            return data
        if isinstance(data, bytes):
            return f"ethertype 0x{getattr(layer, 'type', getattr(layer, 'ethtype', 0)):04x}"
        return type(data).__name__

    def _ip(self, number: int, ip, out: list) -> None:
        """A dpkt IPv4 or IPv6 packet: its UDP datagram or fragment."""
        if isinstance(ip, dpkt.ip6.IP6):
            frag = ip.extension_hdrs.get(_FRAG_HEADER) if ip.nxt == _FRAG_HEADER else None
            if frag is not None:
                self._fragment(number, (ip.src, ip.dst, frag.id, True), frag.frag_off * 8, bool(frag.m_flag),
                               bytes(ip.data), frag.nxt, ip.src, ip.dst, out)
                return
        elif ip.mf or ip.offset:
            self._fragment(number, (ip.src, ip.dst, ip.id, ip.p), ip.offset * 8, bool(ip.mf), bytes(ip.data),
                           ip.p, ip.src, ip.dst, out)
            return
        if ip.p != dpkt.ip.IP_PROTO_UDP:
            self._not_udp(out, number, f"IP protocol {ip.p}")
            return
        self._udp(number, ip.src, ip.dst, bytes(ip.data), out, reassembled=False)

    def _udp(self, number: int, src: bytes, dst: bytes, udp: bytes, out: list, *, reassembled: bool) -> None:
        """The bytes of a UDP datagram (header and payload) from ``src`` to ``dst`` (packed addresses)."""
        if len(udp) < 8:
            self._skip(out, number, "truncated UDP header")
            return
        sport, dport, ulen, _ = _UDP.unpack_from(udp)
        if ulen < 8:
            self._skip(out, number, f"bad UDP length {ulen}")
            return
        if ulen > len(udp):
            self._skip(out, number, f"truncated UDP datagram: {len(udp) - 8} of {ulen - 8} bytes captured")
            return
        self.stats.datagrams += 1
        out.append(Datagram(number, (self._name(src), sport), (self._name(dst), dport), udp[8:ulen], reassembled))

    def _name(self, addr: bytes) -> str:
        name = self._names.get(addr)
        if name is None:
            if len(self._names) > 4096:
                self._names.clear()
            name = self._names[addr] = dpkt.utils.inet_to_str(addr)
        return name

    def _fragment(self, number: int, key: tuple, offset: int, more: bool, piece: bytes, proto: int,
                  src: bytes, dst: bytes, out: list) -> None:
        st = self.stats
        st.fragments += 1
        r = self._pending.get(key)
        if r is None:
            while len(self._pending) >= self.max_reassemblies:
                self._give_up(next(iter(self._pending)), "too many fragmented datagrams at once", out)
            r = self._pending[key] = _Reassembly(number, number)
        r.last_frame = number
        if offset in r.parts:
            return  # a repeated fragment
        r.parts[offset] = piece
        r.size += len(piece)
        if not more:
            r.total = offset + len(piece)
        if r.total is None or r.size < r.total:
            return
        del self._pending[key]
        offsets = sorted(r.parts)
        ends = [o + len(r.parts[o]) for o in offsets]
        if offsets[0] != 0 or offsets[1:] != ends[:-1] or r.size != r.total:
            self._skip(out, number, f"overlapping IP fragments (frames {r.first_frame}-{number})")
            st.fragments_dropped += 1
            return
        if proto != dpkt.ip.IP_PROTO_UDP:
            self._not_udp(out, number, f"IP protocol {proto}")
            return
        st.reassembled += 1
        self._udp(number, src, dst, b"".join(r.parts[o] for o in offsets), out, reassembled=True)

    def _expire(self, number: int, out: list) -> None:
        horizon = number - self.max_fragment_age
        for key in [k for k, r in self._pending.items() if r.last_frame < horizon]:
            self._give_up(key, "fragments missing: no fragment of this datagram for too long", out)

    def _give_up(self, key: tuple, reason: str, out: list) -> None:
        r = self._pending.pop(key)
        self.stats.fragments_dropped += 1
        self._skip(out, r.first_frame, f"{reason} ({len(r.parts)} fragments, {r.size} bytes, "
                                       f"frames {r.first_frame}-{r.last_frame})")

    def _skip(self, out: list, number: int, reason: str) -> list:
        self.stats.errors += 1
        out.append(FrameSkipped(number, reason))
        return out

    def _not_udp(self, out: list, number: int, kind: str) -> list:
        st = self.stats
        st.not_udp += 1
        st.not_udp_kinds[kind] = st.not_udp_kinds.get(kind, 0) + 1
        out.append(FrameSkipped(number, f"not UDP: {kind}", error=False))
        return out
