"""MIL-STD-1553 F1 and ARINC-429 F0 decode speed, side by side with pychapter10.

Ours: walk a stream of packets (headers verified) and decode every bus packet to
arrays (``decode_1553`` / ``decode_429``). Peer: pychapter10 walking the same
bytes and iterating every message of every bus packet, touching its words. Both
on packets built with our builders at realistic sizes and on the real bus
packets of tests/data/ch10/pcm.c10. Then the full-load case: 8 1553 buses at
about 50,000 words/s each, 100 ms packets, CPU time to decode one second's
worth. Medians of ``--runs`` runs; in each, ours and the peer take turns for
``--rounds`` rounds (three of ours per peer round) and the best of each counts.

    flock /tmp/gs-bench.lock python benchmarks/bench_bus_decode.py [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telemetry_formats.busmonitor import BusMonitor  # noqa: E402
from telemetry_formats.ch10.arinc429 import DATA_TYPE_ARINC429_F0, build_429_body, decode_429  # noqa: E402
from telemetry_formats.ch10.mil1553 import DATA_TYPE_1553_F1, decode_1553  # noqa: E402
from telemetry_formats.ch10.mil1553_build import build_1553_body  # noqa: E402
from telemetry_formats.ch10.packet import Packet, build_packet  # noqa: E402
from telemetry_formats.ch10.reader import iter_packets  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "ch10" / "pcm.c10"
BUS_WORDS_PER_S = 50_000  # a 1 Mb/s bus at full load (20 us per word)
BUSES = 8
PACKET_S = 0.1  # recorders close bus packets every 100 ms or sooner
# A minor-frame schedule: (RT, T/R, subaddress, data words), BC-to-RT and RT-to-BC mixed.
SCHEDULE = [(1, 1, 1, 32), (1, 1, 2, 32), (2, 0, 1, 16), (3, 1, 3, 8), (4, 1, 1, 4), (5, 0, 2, 2),
            (6, 1, 7, 1), (7, 1, 4, 32), (8, 0, 5, 20), (9, 1, 6, 12), (10, 1, 8, 28), (11, 0, 9, 6)]


def bus_second(channel_id: int, seed: int) -> list[bytes]:
    """One second of a fully loaded 1553 bus as 100 ms packets."""
    rng = np.random.default_rng(seed)
    per_cycle = sum(n + 2 for *_, n in SCHEDULE)  # data words plus command and status
    cycles = int(BUS_WORDS_PER_S * PACKET_S) // per_cycle
    packets = []
    t = 0
    for seq in range(int(1 / PACKET_S)):
        msgs = []
        for _ in range(cycles):
            for rt, tr, sa, n in SCHEDULE:
                t += (n + 2) * 200  # 20 us per word in 10 MHz RTC counts
                msgs.append(dict(rt=rt, tr=tr, subaddress=sa, data=rng.integers(0, 1 << 16, n).tolist(), rtc=t, gap1=40))
        packets.append(build_packet(channel_id=channel_id, data_type=DATA_TYPE_1553_F1, body=build_1553_body(msgs),
                                    sequence_number=seq, rtc=t))
    return packets


def arinc_packets(n_packets: int, words: int) -> list[bytes]:
    rng = np.random.default_rng(7)
    out = []
    for seq in range(n_packets):
        spec = [dict(label=int(lab), data=int(d), sdi=int(s), ssm=3, bus=seq % 4, gap=360)
                for lab, d, s in zip(rng.integers(0, 256, words), rng.integers(0, 1 << 19, words), rng.integers(0, 4, words))]
        out.append(build_packet(channel_id=100 + seq % 4, data_type=DATA_TYPE_ARINC429_F0, body=build_429_body(spec),
                                sequence_number=seq))
    return out


def sample_packets(data_type: int) -> bytes:
    return b"".join(bytes(p.raw) for p in iter_packets(SAMPLE.read_bytes()) if hasattr(p, "header") and p.data_type == data_type)


def ours(stream: bytes) -> int:
    n = 0
    for p in iter_packets(stream):
        if not isinstance(p, Packet):
            continue
        if p.data_type == DATA_TYPE_1553_F1:
            n += len(decode_1553(p))
        elif p.data_type == DATA_TYPE_ARINC429_F0:
            n += len(decode_429(p))
    return n


def peer(stream: bytes) -> int:
    from chapter10 import C10

    n = 0
    for packet in C10(io.BytesIO(stream)):
        if packet.data_type in (DATA_TYPE_1553_F1, DATA_TYPE_ARINC429_F0):
            for msg in packet:
                np.frombuffer(msg.data, "<u2")  # the least a user does to get at the words
                n += 1
    return n


def timed(fn, arg) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn(arg)
    return time.perf_counter() - t0, n


def compare(name: str, stream: bytes, rounds: int) -> dict:
    """Ours and the peer in alternating rounds (a shared machine's load hits both alike); the best of each."""
    t_ours, t_peer = [], []
    n_ours = n_peer = 0
    for _ in range(rounds):
        for _ in range(3):
            t, n_ours = timed(ours, stream)
            t_ours.append(t)
        t, n_peer = timed(peer, stream)
        t_peer.append(t)
    assert n_ours == n_peer, (name, n_ours, n_peer)
    to, tp = min(t_ours), min(t_peer)
    return dict(case=name, items=n_ours, bytes=len(stream), ours_items_s=n_ours / to, ours_mb_s=len(stream) / to / 1e6,
                peer_items_s=n_peer / tp, ratio=tp / to)


def full_load(repeat: int) -> dict:
    """CPU time to decode one second of 8 fully loaded buses (reader + decoder), and with the bus monitor fed too."""
    stream = b"".join(p for ch in range(BUSES) for p in bus_second(20 + ch, ch))
    cpu, cpu_mon = [], []
    for _ in range(repeat):
        t0 = time.process_time()
        n = ours(stream)
        cpu.append(time.process_time() - t0)
        mon = BusMonitor()
        t0 = time.process_time()
        for p in iter_packets(stream):
            mon.feed(decode_1553(p))
        cpu_mon.append(time.process_time() - t0)
    assert sum(r["count"] for r in mon.snapshot()["mil1553"]) == n
    words = n_words(stream)
    return dict(case="8 buses x 1 s at full load", messages=n, bus_words=words, bytes=len(stream),
                cpu_s_per_s=min(cpu), core_percent=100 * min(cpu), with_monitor_percent=100 * min(cpu_mon))


def n_words(stream: bytes) -> int:
    return sum(int(m.n_data.sum()) + 2 * len(m) for p in iter_packets(stream) if isinstance(p, Packet) for m in [decode_1553(p)])


def run_once(rounds: int) -> list[dict]:
    out = []
    sec = [p for ch in range(2) for p in bus_second(20 + ch, ch)]
    out.append(compare("1553, 100 ms packets at full load (~280 messages, 14 KB)", b"".join(sec), rounds))
    out.append(compare("1553, pcm.c10's packets (~26 messages, 2 KB)", sample_packets(DATA_TYPE_1553_F1) * 20, rounds))
    out.append(compare("ARINC-429, 256-word packets (2 KB)", b"".join(arinc_packets(200, 256)), rounds))
    out.append(compare("ARINC-429, pcm.c10's packets (~93 words)", sample_packets(DATA_TYPE_ARINC429_F0) * 20, rounds))
    out.append(full_load(rounds))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write every run's figures here")
    args = ap.parse_args()
    runs = [run_once(args.rounds) for _ in range(args.runs)]
    for i, row in enumerate(runs[0]):
        each = [r[i] for r in runs]
        if "ratio" in row:
            med = {k: statistics.median(e[k] for e in each) for k in ("ours_items_s", "ours_mb_s", "peer_items_s", "ratio")}
            print(f"{row['case']}: ours {med['ours_items_s']:,.0f}/s ({med['ours_mb_s']:.1f} MB/s), "
                  f"pychapter10 {med['peer_items_s']:,.0f}/s, ratio {med['ratio']:.1f}x "
                  f"(runs: {', '.join(format(e['ratio'], '.1f') for e in each)})")
        else:
            med = statistics.median(e["core_percent"] for e in each)
            mon = statistics.median(e["with_monitor_percent"] for e in each)
            print(f"{row['case']}: {row['messages']:,} messages, {row['bus_words']:,} bus words, "
                  f"{row['bytes'] / 1e6:.2f} MB: {med:.2f} % of a core "
                  f"(runs: {', '.join(format(e['core_percent'], '.2f') for e in each)}); "
                  f"with the bus monitor {mon:.2f} % "
                  f"(runs: {', '.join(format(e['with_monitor_percent'], '.2f') for e in each)})")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
