"""Reading a 256 MB capture: ``inspect`` and ``replay --speed afap`` of a pcap vs the same packets from a .c10.

::

    flock /tmp/gs-bench.lock .venv/bin/python -m benchmarks.bench_capture [--mb 256] [--runs 3]

Workload: the packets of tests/data/ch10/pcm.c10 (53 packets, 13 to 65 KB; the
65 KB ones are segmented) repeated to the size asked (its TMATS packet only
once, at the start, as a recorder writes it), written once as a .c10
file and as captures by ``groundstation capture``'s writer (transfer format 1):

- ``jumbo``: 65,000-byte datagrams, one frame each (a capture on loopback or a
  jumbo-frame network): segmented-packet reassembly only;
- ``mtu1500``: the same datagrams IPv4-fragmented to 1,500-byte frames (a capture
  of a standard Ethernet network): IP reassembly and segment reassembly;
- ``small``: 1,472-byte datagrams (a sender that keeps below the MTU): every big
  packet in 45 segments.

Measured, each the median of ``--runs`` runs, all in one process and run:
``inspect`` = ``groundstation.cli.inspect_file`` (the full report: per-channel
statistics, TMATS, PCM decommutation); ``read`` = the capture's packets alone
(``CaptureReader.packets``) vs ``c10_packets``; ``replay`` = ``ReplaySchedule``
at afap with no rate bound, sent by ``send_schedule`` to a loopback UDP socket
nobody reads (the kernel discards). MB/s are of capture file bytes (pcap) and
.c10 file bytes (c10).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import time
from pathlib import Path

from groundstation.capture import CaptureReader
from groundstation.capture_writer import CAPTURE_EPOCH_NS, frames_for
from groundstation.cli import inspect_file
from groundstation.replay import ReplaySchedule, send_schedule
from groundstation.replay_sources import c10_packets, capture_packets
from telemetry_formats.ch10.reader import DecodeError, iter_packets

ROOT = Path(__file__).resolve().parents[1]
PCM_C10 = ROOT / "tests/data/ch10/pcm.c10"
CASES = {"jumbo": (65000, None), "mtu1500": (65000, 1500), "small": (1472, None)}


def build(folder: Path, mb: int) -> tuple[Path, dict[str, Path]]:
    import dpkt

    folder.mkdir(parents=True, exist_ok=True)
    packets = [bytes(p.raw) for p in iter_packets(PCM_C10.read_bytes()) if not isinstance(p, DecodeError)]
    one = sum(map(len, packets))
    reps = max(1, mb * (1 << 20) // one)
    c10 = folder / f"bench-{mb}-v2.c10"
    if not c10.exists():
        later = [p for p in packets if not (p[2:4] == b"\x00\x00" and p[15] == 0x01)]  # TMATS once, as recorders write it
        with c10.open("wb") as fh:
            fh.writelines(packets)
            for _ in range(reps - 1):
                fh.writelines(later)
    caps = {}
    for name, (md, mtu) in CASES.items():
        path = folder / f"bench-{mb}-v2-{name}.pcap"
        caps[name] = path
        if path.exists():
            continue
        timed = ((p.raw, p.time_ns) for p in c10_packets(c10))
        with path.open("wb") as fh:
            w = dpkt.pcap.Writer(fh, snaplen=262_144)
            for t, frame in frames_for(timed, max_datagram=md, mtu=mtu):
                w.writepkt(frame, ts=(CAPTURE_EPOCH_NS + t) / 1e9)
    return c10, caps


def _sink() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    s.bind(("127.0.0.1", 0))
    return s


def replay(source, sink_port: int) -> int:
    schedule = ReplaySchedule(source, source="bench", speed=None, max_rate=1e12)
    res = asyncio.run(send_schedule(schedule, "127.0.0.1", sink_port))
    return schedule.stats.packets if res.sent_datagrams else 0


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a shared machine the CPU time is the steadier."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--dir", default="/tmp/gs-bench-capture")
    args = ap.parse_args()
    c10, caps = build(Path(args.dir), args.mb)
    sink = _sink()
    port = sink.getsockname()[1]
    size = {"c10": c10.stat().st_size, **{k: v.stat().st_size for k, v in caps.items()}}
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    expected = inspect_file(c10, 1970)["packets"]
    for run in range(args.runs):
        jobs = [("c10", "inspect", lambda: inspect_file(c10, 1970)),
                ("c10", "read", lambda: sum(1 for _ in c10_packets(c10))),
                ("c10", "replay", lambda: replay(lambda: c10_packets(c10), port))]
        for name in args.cases.split(","):
            cap = caps[name]
            jobs += [(name, "inspect", lambda cap=cap: _check(inspect_file(cap, 1970)["packets"], expected)),
                     (name, "read", lambda cap=cap: _check(sum(1 for _ in CaptureReader(cap).packets()), expected)),
                     (name, "replay", lambda cap=cap: replay(lambda: capture_packets(cap), port))]
        for name, what, fn in jobs:
            wall, cpu = timed(fn)
            results.setdefault((name, what), []).append((wall, cpu))
            print(f"run {run + 1} {name:8} {what:8} {size[name] / wall / 1e6:8.1f} MB/s wall, "
                  f"{size[name] / cpu / 1e6:8.1f} MB/s CPU  ({wall:.2f} s)", flush=True)
    print(f"\n{args.mb} MB workload, medians of {args.runs} runs, MB/s wall (CPU) (load {os.getloadavg()[0]:.1f}):")
    print(f"{'input':10} {'file MB':>8} {'inspect':>14} {'read':>14} {'replay':>14}")
    for name in ["c10", *args.cases.split(",")]:
        cells = []
        for w in ("inspect", "read", "replay"):
            wall = statistics.median(r[0] for r in results[(name, w)])
            cpu = statistics.median(r[1] for r in results[(name, w)])
            cells.append(f"{size[name] / wall / 1e6:.0f} ({size[name] / cpu / 1e6:.0f})")
        print(f"{name:10} {size[name] / 1e6:8.1f} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14}")
    sink.close()


def _check(got: int, expected: int) -> int:
    if got != expected:
        raise SystemExit(f"capture gave {got} packets, the .c10 file {expected}")
    return got


if __name__ == "__main__":
    main()
