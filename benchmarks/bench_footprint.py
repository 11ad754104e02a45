"""Recording footprint: bytes per flight hour at 1, 10 and 20 Mb/s of the simulator's stream, and compression CPU.

For each bit rate the vehicle simulator flies ``--seconds`` of simulated time, the
real ``Ingest`` decodes every datagram and ``HDF5Writer`` records it as the
station's recorder does (0.5 s blocks, a flush after each, rotation at 1 GiB),
uncompressed: the live format. Then, ``--repeat`` times on fresh copies of those
segments, the production compressor (``recorder.compress.Compressor``: one child
process per segment, shuffle + gzip, verified, swapped in) compresses them.

Reported per bit rate: raw packet bytes, live and compressed bytes, their ratio to
the raw packet bytes (target: compressed <= 1.2x), bytes per flight hour
(extrapolated linearly from the run), and the compressor's CPU seconds (the
children's own count, start-up included; median of the repeats) per second of
recording (target: <= 0.10 at 20 Mb/s). ``--beside`` also times the live writer's
write + flush of each block alone and with a compressor child working beside it.

    python benchmarks/bench_footprint.py [--seconds 120] [--rates 1,10,20] [--repeat 3] [--beside]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from groundstation.ingest.core import Ingest  # noqa: E402
from groundstation.simulator.vehicle import Vehicle  # noqa: E402
from recorder.buffer import RecordBuffer  # noqa: E402
from recorder.compress import Compressor  # noqa: E402
from recorder.writer import HDF5Writer  # noqa: E402

S = 1_000_000_000
T0 = 1_700_000_000 * S
HOUR = 3600


def record_flight(folder: str, seconds: float, bit_rate: float, step_ns: int = 10_000_000) -> dict:
    """Fly and record uncompressed; returns the raw packet bytes and the segment files."""
    vehicle, ingest = Vehicle(start_ns=T0, bit_rate=bit_rate, seed=1), Ingest()
    buf = RecordBuffer(max_bytes=1 << 33)
    writer = HDF5Writer(folder, session="bench", rotate_bytes=1 << 30)
    raw = samples = 0
    t, cut, end = T0, T0 + S // 2, T0 + int(seconds * S)
    while t < end:
        t += step_ns
        for dg in vehicle.advance(t):
            res = ingest.receive(dg, t)
            raw += sum(len(p.raw) for p in res.packets)
            samples += sum(len(b) for b in res.samples)
            buf.add(res, t)
        if t >= cut:
            writer.write_all(buf.take())
            writer.flush()
            cut += S // 2
    writer.write_all(buf.take())
    writer.close()
    assert writer.dropped_samples == 0 and writer.dropped_packets == 0, writer.status()
    return {"raw_bytes": raw, "samples": samples, "files": list(writer.files)}


def compress_copy(files: list[str], folder: str) -> dict:
    """Compress copies of ``files`` in ``folder`` with the production compressor."""
    os.makedirs(folder)
    copies = []
    for f in files:
        copies.append(os.path.join(folder, os.path.basename(f)))
        shutil.copyfile(f, copies[-1])
    c = Compressor(nice=0)
    t0 = time.perf_counter()
    for f in copies:
        c.submit(f)
    results = c.wait()
    wall = time.perf_counter() - t0
    assert c.failed == 0 and all(r["compressed"] for r in results), results
    return {"cpu_s": c.cpu_s, "wall_s": wall, "bytes": sum(os.path.getsize(f) for f in copies)}


def run(rate_mbps: float, seconds: float, repeat: int, tmp: str) -> dict:
    live = os.path.join(tmp, f"live-{rate_mbps:g}")
    rec = record_flight(live, seconds, rate_mbps * 1e6)
    live_bytes = sum(os.path.getsize(f) for f in rec["files"])
    runs = [compress_copy(rec["files"], os.path.join(tmp, f"z-{rate_mbps:g}-{i}")) for i in range(repeat)]
    cpu = statistics.median(r["cpu_s"] for r in runs)
    stored = runs[0]["bytes"]
    for i in range(repeat):
        shutil.rmtree(os.path.join(tmp, f"z-{rate_mbps:g}-{i}"))
    shutil.rmtree(live)
    per_hour = HOUR / seconds
    return {
        "bit_rate_mbps": rate_mbps, "seconds": seconds, "segments": len(rec["files"]), "samples": rec["samples"],
        "raw_packet_bytes": rec["raw_bytes"], "live_bytes": live_bytes, "compressed_bytes": stored,
        "live_ratio": round(live_bytes / rec["raw_bytes"], 2), "compressed_ratio": round(stored / rec["raw_bytes"], 3),
        "raw_gb_per_hour": round(rec["raw_bytes"] * per_hour / 1e9, 2),
        "live_gb_per_hour": round(live_bytes * per_hour / 1e9, 2),
        "compressed_gb_per_hour": round(stored * per_hour / 1e9, 3),
        "compress_cpu_s": [round(r["cpu_s"], 2) for r in runs],
        "cpu_per_recorded_s": round(cpu / seconds, 4),
        "compress_wall_s": [round(r["wall_s"], 2) for r in runs],
    }


def writer_beside_compressor(tmp: str, big: str, rounds: int = 2) -> list[dict]:
    """The live writer's write + flush of each 0.5 s block (10 Mb/s, 12 s of flight, as fast as it
    goes), alone and with a compressor child compressing a copy of ``big`` beside it."""
    vehicle, ingest = Vehicle(start_ns=T0, bit_rate=10e6, seed=1), Ingest()
    buf, sections = RecordBuffer(max_bytes=1 << 33), []
    t, cut = T0, T0 + S // 2
    while t < T0 + 12 * S:
        t += 10_000_000
        for dg in vehicle.advance(t):
            buf.add(ingest.receive(dg, t), t)
        if t >= cut:
            sections.append(buf.take())
            cut += S // 2
    out = []
    for beside in [False, True] * rounds:
        folder = os.path.join(tmp, "stall")
        shutil.rmtree(folder, ignore_errors=True)
        c = None
        if beside:
            shutil.copyfile(big, os.path.join(tmp, "big.h5"))
            c = Compressor()  # as the station runs it: nice 10
            c.submit(os.path.join(tmp, "big.h5"))
        w = HDF5Writer(folder, session="stall", rotate_bytes=None)
        ms = []
        for sec in sections:
            t0 = time.perf_counter()
            w.write_all(sec)
            w.flush()
            ms.append((time.perf_counter() - t0) * 1e3)
        w.close()
        still = c is not None and c.busy
        if c is not None:
            c.wait()
        out.append({"compressor_beside": beside, "compressor_busy_throughout": still,
                    "block_ms_median": round(statistics.median(ms), 1), "block_ms_max": round(max(ms), 1),
                    "longest_hdf5_call_ms": round(w.longest_call_s * 1e3, 1)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="simulated flight time per bit rate")
    ap.add_argument("--rates", default="1,10,20", help="bit rates in Mb/s")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--beside", action="store_true",
                    help="also time the live writer's blocks with a compressor child working beside it")
    args = ap.parse_args()
    out = []
    with tempfile.TemporaryDirectory(prefix="gs-footprint-") as tmp:
        for r in (float(x) for x in args.rates.split(",")):
            res = run(r, args.seconds, args.repeat, tmp)
            out.append(res)
            print(json.dumps(res), flush=True)
        if args.beside:
            big = os.path.join(tmp, "big-src")
            rec = record_flight(big, 30, 20e6)
            for res in writer_beside_compressor(tmp, rec["files"][0]):
                print(json.dumps(res), flush=True)
    print(f"\n{'Mb/s':>5} {'raw GB/h':>9} {'live GB/h':>10} {'x raw':>6} {'closed GB/h':>12} {'x raw':>6} "
          f"{'compress CPU':>13}")
    for r in out:
        print(f"{r['bit_rate_mbps']:>5g} {r['raw_gb_per_hour']:>9.2f} {r['live_gb_per_hour']:>10.2f} "
              f"{r['live_ratio']:>6.2f} {r['compressed_gb_per_hour']:>12.3f} {r['compressed_ratio']:>6.3f} "
              f"{100 * r['cpu_per_recorded_s']:>12.1f}%")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
