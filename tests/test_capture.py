"""pcap and pcapng captures of Chapter 10 UDP streams: inspect and replay read them, other files are named.

The captures are made from the real sample recording (tests/data/ch10/pcm.c10) by
``groundstation capture`` (the same UdpSender the simulator and replay use), in
each transfer format, segmented and IP-fragmented; others are built frame by
frame with dpkt (Linux cooked, raw IP, IPv6) or byte by byte (a minimal pcapng).
"""

from __future__ import annotations

import gzip
import io
import socket
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import dpkt
import pytest

from groundstation.capture import CaptureReader
from groundstation.capture_writer import frames_for, write_capture
from groundstation.cli import inspect_file, main, print_report
from groundstation.replay_sources import c10_packets
from telemetry_formats.ch10.reader import DecodeError, iter_packets
from telemetry_formats.ch10.udp import UdpSender
from telemetry_formats.filetype import sniff

DATA = Path(__file__).resolve().parent / "data/ch10"
PCM_C10 = DATA / "pcm.c10"

# name -> (transfer format, max datagram, IP MTU or None, file suffix)
CAPTURES = {
    "f1-full": (1, 65000, None, "pcap"),
    "f1-segmented": (1, 1472, None, "pcap"),
    "f2-fragmented": (2, 65000, 1500, "pcapng"),
    "f3-fragmented": (3, 8972, 1500, "pcap"),
}


def pcm_packets() -> list[bytes]:
    return [bytes(p.raw) for p in iter_packets(PCM_C10.read_bytes()) if not isinstance(p, DecodeError)]


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("captures")
    out = {}
    for name, (fmt, md, mtu, suffix) in CAPTURES.items():
        path = folder / f"pcm-{name}.{suffix}"
        res = write_capture(PCM_C10, path, transfer_format=fmt, max_datagram=md, mtu=mtu)
        assert res["packets"] == 53 and res["skipped_spans"] == 0
        out[name] = path
    return out


def per_channel(report: dict) -> dict[int, tuple]:
    return {c["channel_id"]: (c["packets"], c["bytes"], c.get("pcm", {}).get("minor_frames"))
            for c in report["channels"]}


# -- what a file is ----------------------------------------------------------------------------------


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "x")
    return buf.getvalue()


OTHER_FILES = {
    "hdf5": (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "HDF5"),
    "gzip": (gzip.compress(b"telemetry" * 100), "gzip"),
    "zip": (_zip(), "zip"),
    "text": (b"time,value\n1,2\n3,4\n" * 50, "text file"),
    "elf": (Path(sys.executable).resolve().read_bytes()[:4096], "ELF"),
    "unknown": (bytes(range(256)) * 16, "not a Chapter 10 file or a capture"),
    "empty": (b"", "empty"),
}


@pytest.mark.parametrize("name", OTHER_FILES)
def test_other_file_types_get_an_error_naming_them(name, tmp_path, capsys):
    content, words = OTHER_FILES[name]
    path = tmp_path / "flight.c10"  # the name says .c10; the content decides
    path.write_bytes(content)
    assert words.lower() in sniff(content).description.lower()
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert words.lower() in err.lower() and "Traceback" not in err
    assert main(["replay", str(path), "--to", "127.0.0.1:9"]) == 2
    assert words.lower() in capsys.readouterr().err.lower()


def test_content_decides_not_the_name(captures, tmp_path):
    renamed = tmp_path / "capture.c10"
    renamed.write_bytes(captures["f1-full"].read_bytes())
    assert inspect_file(renamed, 1970)["input"] == "pcap"
    c10_named_pcap = tmp_path / "rec.pcap"
    c10_named_pcap.write_bytes(PCM_C10.read_bytes())
    assert inspect_file(c10_named_pcap, 1970)["input"] == "c10"
    damaged_start = tmp_path / "junk-first.c10"
    damaged_start.write_bytes(b"\x17" * 100 + PCM_C10.read_bytes())
    assert sniff(damaged_start.read_bytes()).kind == "c10"
    assert inspect_file(damaged_start, 1970)["packets"] == 53


# -- captures of the sample recording --------------------------------------------------------------------


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_inspects_like_the_recording_it_was_made_from(captures, name):
    ref = inspect_file(PCM_C10, 1970)
    got = inspect_file(captures[name], 1970)
    assert per_channel(got) == per_channel(ref)
    assert got["packets"] == ref["packets"] == 53 and got["bytes"] == ref["bytes"]
    assert got["error_count"] == 0 and got["tmats"] == ref["tmats"]
    cap = got["capture"]
    fmt, md, mtu, suffix = CAPTURES[name]
    assert cap["container"] == suffix and cap["transfer_formats"] == {str(fmt): cap["udp_datagrams"]}
    assert cap["problem_count"] == 0 and cap["sequence_gaps"] == 0 and cap["packets"] == 53
    assert (cap["ip_reassembled"] > 0) == (mtu is not None)
    assert [f["source"] for f in cap["flows"]] == ["10.0.0.1:5510"]


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_gives_back_the_packets_byte_for_byte(captures, name):
    assert [p.raw for p in CaptureReader(captures[name]).packets()] == pcm_packets()


def test_capture_text_report_names_the_capture(captures):
    buf = io.StringIO()
    print_report(inspect_file(captures["f2-fragmented"], 1970), out=buf)
    out = buf.getvalue()
    assert "Capture (pcapng, Ethernet)" in out and "transfer format 2" in out and "PFS 884 frames" in out


def test_capture_command_writes_a_readable_capture(tmp_path, capsys):
    out = tmp_path / "f3.pcapng"
    assert main(["capture", str(PCM_C10), "-o", str(out), "--format", "3", "--max-datagram", "4000"]) == 0
    assert "53 packets" in capsys.readouterr().out
    assert sniff(out.read_bytes()[:64]).kind == "pcapng"
    assert [p.raw for p in CaptureReader(out).packets()] == pcm_packets()
    text = tmp_path / "t.txt"
    text.write_text("hello\n")
    assert main(["capture", str(text), "-o", str(tmp_path / "x.pcap")]) == 2
    assert "text file" in capsys.readouterr().err


# -- link types, IPv6, hand-built pcapng, other traffic ---------------------------------------------------


def _udp_ip(payload: bytes, *, v6: bool = False, sport: int = 5510, dport: int = 5510):
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(udp)
    if v6:
        ip = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, "fd00::1"),
                          dst=socket.inet_pton(socket.AF_INET6, "fd00::2"), nxt=dpkt.ip.IP_PROTO_UDP, hlim=64,
                          data=udp)
        ip.plen = len(udp)
        return ip
    ip = dpkt.ip.IP(src=socket.inet_aton("192.168.1.5"), dst=socket.inet_aton("192.168.1.9"),
                    p=dpkt.ip.IP_PROTO_UDP, data=udp)
    ip.len = len(ip)
    return ip


def _write_pcap(path: Path, frames: list[bytes], linktype: int) -> None:
    with path.open("wb") as fh:
        w = dpkt.pcap.Writer(fh, snaplen=262_144, linktype=linktype)
        for i, f in enumerate(frames):
            w.writepkt(f, ts=1_700_000_000 + i * 0.001)


def _datagrams(fmt: int = 1) -> list[bytes]:
    return UdpSender(transfer_format=fmt, max_datagram=8000).pack(pcm_packets())


def test_linux_cooked_and_ipv6_frames(tmp_path):
    sll = [bytes(dpkt.sll.SLL(type=0, hrd=1, hlen=6, hdr=b"\x02\0\0\0\0\x01\0\0", ethtype=dpkt.ethernet.ETH_TYPE_IP,
                              data=_udp_ip(d))) for d in _datagrams(2)]
    path = tmp_path / "cooked.pcap"
    _write_pcap(path, sll, 113)
    r = CaptureReader(path)
    assert [p.raw for p in r.packets()] == pcm_packets()
    assert r.report()["link_type"] == "Linux cooked"
    v6 = [bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP6, data=_udp_ip(d, v6=True)))
          for d in _datagrams(3)]
    path6 = tmp_path / "v6.pcap"
    _write_pcap(path6, v6, 1)
    r6 = CaptureReader(path6)
    assert [p.raw for p in r6.packets()] == pcm_packets()
    assert r6.report()["flows"][0]["source"] == "fd00::1:5510"


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


def test_hand_built_pcapng_with_raw_ip_link_type(tmp_path):
    """A minimal pcapng written byte by byte (section header, interface, enhanced packet blocks)."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(0x00000001, struct.pack("<HHI", 101, 0, 0))  # LINKTYPE_RAW, no snap length limit
    epbs = b""
    for i, d in enumerate(_datagrams()):
        frame = bytes(_udp_ip(d))
        ts = (1_700_000_000 + i) * 1_000_000
        epbs += _block(0x00000006, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + frame)
    path = tmp_path / "raw.pcapng"
    path.write_bytes(shb + idb + epbs)
    r = CaptureReader(path)
    packets = list(r.packets())
    assert [p.raw for p in packets] == pcm_packets()
    assert r.report()["container"] == "pcapng" and r.report()["link_type"] == "raw IP"
    assert packets[0].time_ns == (1_700_000_000 + packets[0].frame - 1) * 10**9  # the frame that completed it


def test_other_traffic_is_counted_not_taken_for_errors(tmp_path):
    eth = lambda ip: bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip))  # noqa: E731
    arp = bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_ARP, data=dpkt.arp.ARP()))
    tcp = dpkt.ip.IP(src=b"\x0a\0\0\x01", dst=b"\x0a\0\0\x02", p=dpkt.ip.IP_PROTO_TCP, data=dpkt.tcp.TCP())
    tcp.len = len(tcp)
    frames = [arp, eth(tcp)]
    for i, d in enumerate(_datagrams()):
        frames.append(eth(_udp_ip(d)))
        frames.append(eth(_udp_ip(b"\x12\x34" + bytes(30), sport=53, dport=40000 + i % 3)))  # DNS-ish, not Ch10
    path = tmp_path / "mixed.pcap"
    _write_pcap(path, frames, 1)
    r = CaptureReader(path)
    assert [p.raw for p in r.packets()] == pcm_packets()
    rep = r.report()
    assert rep["not_udp_frames"] == 2 and rep["problem_count"] == 0
    assert len(rep["flows"]) == 1 and len(rep["other_udp_flows"]) == 3


def test_damaged_captures_are_reported_by_frame_not_fatal(captures, tmp_path):
    data = captures["f1-segmented"].read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])  # ends inside a frame
    r = inspect_file(cut, 1970)
    assert 0 < r["packets"] < 53 and r["capture"]["problem_count"] >= 1
    # A lost IP fragment: that datagram is given up (with its frames), the others still decode.
    frames = list(frames_for(((p, 0) for p in pcm_packets()), max_datagram=65000, mtu=1500))
    lost = tmp_path / "lost-fragment.pcap"
    _write_pcap(lost, [f for i, (_, f) in enumerate(frames) if i != 10], 1)
    rep = inspect_file(lost, 1970)
    cap = rep["capture"]
    assert cap["problem_count"] >= 1 and rep["packets"] < 53
    assert any("fragment" in p["reason"] and p["frame"] > 0 for p in cap["problems"])


# -- replay and live ingest over loopback --------------------------------------------------------------


def _export(folder: Path, out: Path) -> list[bytes]:
    assert main(["export", str(folder), "--format", "c10", "-o", str(out)]) == 0
    from groundstation.replay import is_replay_marker

    return [bytes(p.raw) for p in iter_packets(out.read_bytes()) if not is_replay_marker(bytes(p.raw))]


def test_replay_of_a_capture_into_a_server_delivers_every_packet(captures, tmp_path):
    from tests.live import server

    folder = tmp_path / "rec"
    with server("--record", str(folder)) as srv:
        proc = subprocess.run([sys.executable, "-m", "groundstation.cli", "replay", str(captures["f3-fragmented"]),
                               "--to", f"127.0.0.1:{srv.udp_port}", "--speed", "afap"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "53 packets, 1,032,988 bytes" in proc.stdout and "Traceback" not in proc.stderr
        time.sleep(0.3)  # the last datagrams reach the server before it stops
    assert _export(folder, tmp_path / "again.c10") == [p.raw for p in c10_packets(PCM_C10)]


@pytest.mark.parametrize("fmt", [2, 3])
def test_live_ingest_decodes_formats_2_and_3(fmt, tmp_path):
    from tests.live import server

    packets = pcm_packets()
    datagrams = UdpSender(transfer_format=fmt, max_datagram=1472).pack(packets)
    folder = tmp_path / "rec"
    with server("--record", str(folder)) as srv:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i, d in enumerate(datagrams):
            sock.sendto(d, ("127.0.0.1", srv.udp_port))
            if i % 50 == 49:
                time.sleep(0.005)  # paced: loopback receive buffers are small
        sock.close()

        time.sleep(0.5)
    assert _export(folder, tmp_path / "again.c10") == packets


def test_ipv6_fragments_are_reassembled():
    from telemetry_formats.netcap import Datagram, UdpExtractor

    payload = bytes(range(256)) * 20
    udp = dpkt.udp.UDP(sport=1, dport=2, data=payload)
    udp.ulen = len(udp)
    raw = bytes(udp)
    src, dst = (socket.inet_pton(socket.AF_INET6, a) for a in ("fd00::1", "fd00::2"))
    frames = []
    for off in range(0, len(raw), 1232):
        piece, more = raw[off : off + 1232], off + 1232 < len(raw)
        frag = struct.pack("!BBHI", dpkt.ip.IP_PROTO_UDP, 0, (off // 8) << 3 | more, 0x1234)
        ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(frag) + len(piece), 44, 64, src, dst)
        frames.append(b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x86\xdd" + ip6 + frag + piece)
    ex = UdpExtractor(1)
    out = [o for i, f in enumerate(frames[::-1]) for o in ex.frame(i + 1, f)]  # last fragment first
    assert len(out) == 1 and isinstance(out[0], Datagram) and out[0].payload == payload and out[0].reassembled
    assert out[0].src == ("fd00::1", 1) and ex.stats.fragments == len(frames) > 4


@pytest.mark.parametrize("name", CAPTURES)
def test_struct_fast_path_and_dpkt_agree_frame_for_frame(captures, name):
    from telemetry_formats.netcap import UdpExtractor

    with captures[name].open("rb") as fh:
        reader = dpkt.pcap.Reader(fh) if CAPTURES[name][3] == "pcap" else dpkt.pcapng.Reader(fh)
        frames = [buf for _, buf in reader]
    fast, slow = UdpExtractor(1), UdpExtractor(1, fast_path=False)
    for i, f in enumerate(frames):
        assert fast.frame(i + 1, f) == slow.frame(i + 1, f)
    assert fast.stats == slow.stats


def test_two_senders_in_one_capture_do_not_judge_each_others_sequence_numbers(tmp_path):
    eth = lambda ip: bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip))  # noqa: E731
    a, b = _datagrams(1), _datagrams(1)  # both start at sequence number 0
    frames = [eth(_udp_ip(d, sport=p)) for pair in zip(a, b) for d, p in zip(pair, (5001, 5002))]
    path = tmp_path / "two.pcap"
    _write_pcap(path, frames, 1)
    r = CaptureReader(path)
    got = [p.raw for p in r.packets()]
    assert sorted(got) == sorted(pcm_packets() * 2)
    rep = r.report()
    assert len(rep["flows"]) == 2 and rep["sequence_gaps"] == 0 and rep["problem_count"] == 0


def test_replay_summary_counts_capture_problems(captures, tmp_path):
    data = captures["f1-segmented"].read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        proc = subprocess.run([sys.executable, "-m", "groundstation.cli", "replay", str(cut), "--to",
                               f"127.0.0.1:{sink.getsockname()[1]}", "--speed", "afap"],
                              capture_output=True, text=True, timeout=60)
    finally:
        sink.close()
    assert proc.returncode == 0, proc.stderr
    assert "capture problems" in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize("link", [0, 101, 228, 229, 276])
def test_more_link_types(link, tmp_path):
    v6 = link == 229
    ips = [_udp_ip(d, v6=v6) for d in _datagrams(1)]
    if link == 0:
        frames = [struct.pack("<I", 2) + bytes(ip) for ip in ips]  # BSD loopback: AF_INET, host byte order
    elif link == 276:
        frames = [bytes(dpkt.sll2.SLL2(ethtype=dpkt.ethernet.ETH_TYPE_IP, data=ip)) for ip in ips]
    else:
        frames = [bytes(ip) for ip in ips]
    path = tmp_path / f"link{link}.pcap"
    _write_pcap(path, frames, link)
    r = CaptureReader(path)
    assert [p.raw for p in r.packets()] == pcm_packets()
    assert r.report()["problem_count"] == 0
