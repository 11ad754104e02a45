"""Recorder benchmarks: sustained samples/s into HDF5, and the event-loop stall recording causes.

1. Throughput. The same blocks are written (a) by ``HDF5Writer`` (assembly from
   long-format sample batches + HDF5 appends + a flush per block, SWMR,
   uncompressed) and (b) as raw bytes with numpy ``tofile`` appends to a fresh
   file (the peer: the disk's rate for the same bytes, in the same run).
   Targets: >= 0.5x the raw rate and >= 5 M samples/s.
2. Stall. An asyncio loop runs a 1 ms heartbeat task and feeds ``RecorderService``
   in real time (vehicle simulator at ``--bitrate``, decoded beforehand) with
   ``flush_due`` every 100 ms; the heartbeat's worst lateness is measured with the
   recorder on and off (same feeding). Target: <= 5 ms caused by recording.
   A third run adds console backfills: every 2 s, every parameter since the start is
   read back (files + memory) and bucketed at 50 Hz in the recorder's thread.

    python benchmarks/bench_recorder.py [--seconds 8] [--bitrate 5000000]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from groundstation.console.backfill import Buckets  # noqa: E402
from groundstation.ingest.core import Ingest  # noqa: E402
from groundstation.simulator.vehicle import Vehicle  # noqa: E402
from recorder.buffer import RecordBuffer, Section, assemble  # noqa: E402
from recorder.layout import SegmentLayout  # noqa: E402
from recorder.service import RecorderService  # noqa: E402
from recorder.writer import HDF5Writer  # noqa: E402
from telemetry_formats.decom import SampleBatch  # noqa: E402
from telemetry_formats.paramdb import Fragment, FrameFormat, Parameter, ParameterDatabase  # noqa: E402

S = 1_000_000_000
T0 = 1_700_000_000 * S


class Cfg:
    def __init__(self, db, version=1):
        self.db, self.version, self.source, self.channel_id, self.problems = db, version, "bench", 3, []


def wide_blocks(n_params: int, frames_per_block: int, blocks: int) -> tuple[Cfg, list[Section]]:
    """A frame of ``n_params`` 16-bit words, every parameter once per minor frame (one rate group)."""
    frame = FrameFormat(name="WIDE", words_per_minor=n_params + 1, word_length=16, bit_rate=20_000_000.0)
    db = ParameterDatabase(frame, [Parameter(f"P{i:04d}", (Fragment(i + 1),)) for i in range(n_params)])
    lay = SegmentLayout.from_database(db)
    off = np.array([int(g) for g in lay.groups[0].time_offset_ns])
    frame_ns = int(frame.bits_per_minor * 1e9 / frame.bit_rate)
    rng = np.random.default_rng(0)
    sections = []
    for b in range(blocks):
        t_frame = T0 + (b * frames_per_block + np.arange(frames_per_block)) * frame_ns
        pid = np.tile(np.arange(n_params, dtype=np.int32), frames_per_block)
        t = (t_frame[:, None] + off[None, :]).ravel()
        raw = rng.integers(0, 1 << 16, pid.size).astype(np.uint32)
        sec = Section(config=Cfg(db))
        sec.samples = [SampleBatch(pid, t, raw, raw.astype(np.float64) * 0.5, np.zeros(pid.size, np.int8))]
        sections.append(sec)
    return Cfg(db), sections


def vehicle_results(seconds: float, bit_rate: float, step_ns: int = 10_000_000):
    v, ing = Vehicle(start_ns=T0, bit_rate=bit_rate, seed=1), Ingest()
    out, t = [], T0
    while t < T0 + seconds * S:
        t += step_ns
        out.append((t, [ing.receive(dg, t) for dg in v.advance(t)]))
    return out


def vehicle_sections(results, per_block_s: float) -> list[Section]:
    buf = RecordBuffer(max_bytes=1 << 34)
    sections, next_cut = [], T0 + per_block_s * S
    for t, rs in results:
        for r in rs:
            buf.add(r, t)
        if t >= next_cut:
            sections += buf.take()
            next_cut += per_block_s * S
    return sections + buf.take()


def _hdf5_once(sections, cfg, path: str, repeat: int) -> float:
    w = HDF5Writer(path, session="bench", rotate_bytes=None)
    w.write(Section(config=cfg, events=[(T0, b'{"type":"start"}')]))  # the file exists first: sustained rate
    # (a segment opens once per GiB in a flight; the timed part appends to the open one)
    sections = [dataclasses.replace(s, new_segment=None) for s in sections]
    t0 = time.perf_counter()
    for _ in range(repeat):
        for s in sections:
            w.write(s)
            w.flush()
    w.close()
    dt = time.perf_counter() - t0
    assert w.state == "closed" and not w.errors, w.errors
    for f in w.files:
        os.remove(f)
    return dt


def _raw_once(blocks, path: str, repeat: int) -> float:
    t0 = time.perf_counter()
    with open(path, "wb") as fh:
        for _ in range(repeat):
            for b in blocks:
                for r in b.rates.values():
                    r.time.tofile(fh)
                    r.values.tofile(fh)
                    r.raw.tofile(fh)
                    r.limit.tofile(fh)
                b.packet_data.tofile(fh)
                b.packet_index.tofile(fh)
                fh.flush()
    dt = time.perf_counter() - t0
    os.remove(path)
    return dt


def bench_throughput(label: str, sections: list[Section], folder: str, repeat: int = 1, rounds: int = 3) -> dict:
    """(a) HDF5Writer: assembly from sample batches + HDF5 appends + a flush per block;
    (b) numpy tofile of the same arrays' bytes to a fresh file, a flush per block.
    Alternating rounds (each pays for the other's page-cache writeback in turn); medians."""
    cfg = next(s.config for s in sections if s.config is not None)
    lay = SegmentLayout.from_configuration(cfg)
    blocks = [assemble(s, lay) for s in sections if not s.empty()]
    samples = sum(b.samples for b in blocks) * repeat
    nbytes = sum(b.nbytes for b in blocks) * repeat
    t_rec, t_raw = [], []
    for i in range(rounds):
        t_raw.append(_raw_once(blocks, os.path.join(folder, f"{label[:4]}-{i}.raw"), repeat))
        t_rec.append(_hdf5_once(sections, cfg, os.path.join(folder, f"{label[:4]}-{i}"), repeat))
    tr, tw = float(np.median(t_rec)), float(np.median(t_raw))
    return {"label": label, "samples": samples, "MB": nbytes / 1e6,
            "hdf5_Msps": samples / tr / 1e6, "raw_Msps": samples / tw / 1e6,
            "hdf5_MBps": nbytes / tr / 1e6, "raw_MBps": nbytes / tw / 1e6, "ratio": tw / tr}


async def stall_run(results, record: bool, folder: str, step_ns: int, backfill: bool = False) -> dict:
    svc = RecorderService(folder, flush_interval_s=1.0) if record else None
    backfilled = []
    lateness: list[float] = []
    stop = False

    async def heartbeat():
        while not stop:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            lateness.append(time.perf_counter() - t0 - 0.001)

    async def flusher():
        next_backfill = time.perf_counter() + 2.0
        while not stop:
            if svc is not None:
                svc.flush_due()
                if backfill and time.perf_counter() >= next_backfill:
                    next_backfill += 2.0
                    names = {p.name: i for i, p in enumerate(Vehicle(start_ns=T0).database.parameters)}
                    b = Buckets(50, T0)
                    svc.read_recent(names, T0, b.add).add_done_callback(lambda f, b=b: backfilled.append(b.samples))
            await asyncio.sleep(0.1)

    hb, fl = asyncio.create_task(heartbeat()), asyncio.create_task(flusher())
    start = time.perf_counter()
    for i, (t, rs) in enumerate(results):  # in real time, as the UDP endpoint would deliver
        delay = start + (i + 1) * step_ns / 1e9 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if svc is not None:
            for r in rs:
                svc.on_ingest(r, t)
    stop = True
    await asyncio.gather(hb, fl)
    status = None
    if svc is not None:
        await svc.aclose()
        status = svc.status()
    lat = np.array(lateness) * 1e3
    return {"max_ms": float(lat.max()), "p99_ms": float(np.percentile(lat, 99)), "p999_ms": float(np.percentile(lat, 99.9)),
            "beats": len(lat), "status": status, "backfilled": backfilled}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0, help="stall run length (flight seconds, real time)")
    ap.add_argument("--bitrate", type=float, default=5_000_000, help="vehicle PCM bit rate for the stall run")
    ap.add_argument("--rounds", type=int, default=3, help="stall rounds (off, on, on+backfill each)")
    ap.add_argument("--folder", default=None, help="where to write (default: a temporary folder)")
    args = ap.parse_args()
    folder = args.folder or tempfile.mkdtemp(prefix="bench-recorder-")
    os.makedirs(folder, exist_ok=True)
    print(f"writing in {folder}")

    print("\n== sustained samples/s into HDF5 vs numpy tofile of the same bytes (same run) ==")
    print(f"{'case':34s} {'samples':>10s} {'MB':>7s} {'HDF5 Msps':>10s} {'raw Msps':>9s} {'HDF5 MB/s':>10s} "
          f"{'raw MB/s':>9s} {'ratio':>6s}")
    cases = []
    _, wide = wide_blocks(500, 2000, 20)  # 500 parameters x 2000 frames: 1 M samples per block
    cases.append(bench_throughput("wide frame: 500 params, 1 group", wide, folder))
    t0 = time.perf_counter()
    res = vehicle_results(4.0, 10_000_000)
    gen = time.perf_counter() - t0
    cases.append(bench_throughput("vehicle 10 Mb/s: 29 params, 9 grp", vehicle_sections(res, 1.0), folder, repeat=3))
    for c in cases:
        print(f"{c['label']:34s} {c['samples']:>10d} {c['MB']:>7.1f} {c['hdf5_Msps']:>10.1f} {c['raw_Msps']:>9.1f} "
              f"{c['hdf5_MBps']:>10.0f} {c['raw_MBps']:>9.0f} {c['ratio']:>6.2f}")
    print(f"(vehicle stream simulated and decoded beforehand in {gen:.1f} s; bytes = values f8 + raw + limit i1 "
          "+ time + raw packets + index)")

    print(f"\n== event-loop stall: 1 ms heartbeat, vehicle at {args.bitrate / 1e6:g} Mb/s fed in real time ==")
    step = 10_000_000
    res = vehicle_results(args.seconds, args.bitrate, step)
    n_samples = sum(len(b) for _, rs in res for r in rs for b in r.samples)
    print(f"{n_samples / args.seconds / 1e3:.0f} k samples/s, {len(res) / args.seconds:.0f} datagram batches/s")
    modes = (("off", False, False), ("on", True, False), ("on+backfill", True, True))
    runs: dict[str, list[dict]] = {m[0]: [] for m in modes}
    for i in range(args.rounds):  # alternating: other load on the machine hits every mode alike
        for label, record, backfill in modes:
            sub = os.path.join(folder, f"{label}-{i}")
            runs[label].append(asyncio.run(stall_run(res, record, sub, step, backfill=backfill)))
    med = {label: {k: float(np.median([r[k] for r in rs])) for k in ("max_ms", "p999_ms", "p99_ms")}
           for label, rs in runs.items()}
    print(f"{'recorder':12s} {'max ms':>8s} {'p99.9 ms':>9s} {'p99 ms':>8s}   (medians of {args.rounds} rounds; "
          "max of each round)")
    for label, r in med.items():
        each = " ".join(f"{x['max_ms']:.2f}" for x in runs[label])
        print(f"{label:12s} {r['max_ms']:>8.2f} {r['p999_ms']:>9.2f} {r['p99_ms']:>8.2f}   [{each}]")
    print(f"backfills read per round: {[len(r['backfilled']) for r in runs['on+backfill']]}, samples each (last "
          f"round): {runs['on+backfill'][-1]['backfilled']}")
    st = runs["on"][-1]["status"]
    print(f"recorder: {st['written_samples']} samples, {st['written_packets']} packets, {st['flushes']} flushes, "
          f"dropped {st['dropped_samples']}, state {st['state']}, errors {st['errors']}")
    calls = [r["status"]["longest_call_ms"] for r in runs["on"] + runs["on+backfill"]]
    print(f"longest single HDF5 append or flush (the GIL held in one go): median {np.median(calls):.2f} ms, "
          f"max {max(calls):.2f} ms")
    for label in ("on", "on+backfill"):
        print(f"longest stall caused by {label}: {max(med[label]['max_ms'] - med['off']['max_ms'], 0):.2f} ms over "
              f"the loop's own {med['off']['max_ms']:.2f} ms (target <= 5 ms)")

if __name__ == "__main__":
    main()
