"""The corpus invariants under a junk flood: the simulator at 20 Mb/s, 200,000 junk datagrams on the same port.

    flock /tmp/gs-bench.lock python -m benchmarks.junk_flood --runs 3 --json /tmp/junk.json

Each run: a fresh ``groundstation serve --open --record DIR`` on 127.0.0.1, then
``groundstation simulate --bitrate 20e6`` for ``--duration`` seconds; a second
after it starts, a junk process sends ``--junk`` datagrams from ``--junk-ports``
source ports round-robin at ``--junk-rate`` per second: random bytes, transfer
format 1 headers with random sequence numbers over random payloads, and the
Chapter 10 sync pattern followed by garbage (the kinds a hostile or broken
sender produces). Then the recording is exported with ``export --format c10``.

Checks (all must hold; the figures are printed and written with ``--json``):

- the simulator's datagrams: sent = taken by the station from the simulator's
  address (``/healthz`` ``udp.recent``), 0 lost, 0 duplicates, its epoch 0
  (never restarted or pushed out by the flood);
- decoded: minor frames = the simulator's own count;
- archived: the bytes of status-0 packets in the recording = the simulator's
  packet bytes (its datagram bytes less the 4-byte transfer headers), and
  ``export --format c10`` gives back every archived packet, byte for byte;
- the junk: every junk datagram counted (``ingest.datagrams``), decode errors by
  reason in ``/metrics``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

from .load.common import CpuWindow, MachineWindow
from .load.servers import parse_sim_output, server, simulator

HOST = "127.0.0.1"


def junk_datagrams(rng: np.random.Generator, n: int) -> list[bytes]:
    out = []
    for k in rng.integers(0, 3, n):
        size = int(rng.integers(0, 1400))
        body = rng.bytes(size)
        if k == 0:
            out.append(body)
        elif k == 1:
            out.append(bytes([0x01]) + rng.bytes(3) + body)  # format 1, full packets, any sequence number
        else:
            out.append(bytes([0x01]) + rng.bytes(3) + b"\x25\xeb" + body)  # a sync pattern, then garbage
    return out


def send_junk(port: int, count: int, rate: float, ports: int, seed: int, result) -> None:
    rng = np.random.default_rng(seed)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(ports)]
    sent = 0
    t0 = time.monotonic()
    try:
        while sent < count:
            batch = junk_datagrams(rng, min(500, count - sent))
            for dg in batch:
                socks[sent % ports].sendto(dg, (HOST, port))
                sent += 1
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    finally:
        for s in socks:
            s.close()
    result.put({"sent": sent, "seconds": time.monotonic() - t0})


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^gs_decode_errors_by_reason_total\{reason="(\w+)"\} (\S+)', text, re.M)}


def _archive(folder: str) -> dict:
    import recorder

    rec = recorder.open(folder)
    ok_bytes = n = 0
    status = {}
    raws = []
    for p in rec.iter_packets():
        n += 1
        status[p.status] = status.get(p.status, 0) + 1
        if p.status == 0:
            ok_bytes += len(p.raw)
        raws.append(p.raw)
    rec.close()
    out = os.path.join(folder, "export.c10")
    subprocess.run([sys.executable, "-m", "groundstation.cli", "export", folder, "--format", "c10", "-o", out],
                   check=True, capture_output=True, timeout=300)
    with open(out, "rb") as fh:
        exported = fh.read()
    return {"packets": n, "ok_bytes": ok_bytes, "status": status, "export_identical": exported == b"".join(raws)}


def run_once(args, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="gs-junk-") as folder:
        rec_dir = os.path.join(folder, "rec")
        with server("ours", *(() if args.no_record else ("--record", rec_dir))) as srv:
            queue: multiprocessing.Queue = multiprocessing.Queue()
            t0 = time.monotonic()
            cpu, box = CpuWindow({"server": srv.pid}).start(), MachineWindow().start()
            with simulator(srv.udp_port, args.bitrate, args.duration) as sim:
                time.sleep(1.0)
                junk = multiprocessing.Process(target=send_junk, args=(srv.udp_port, args.junk, args.junk_rate,
                                                                       args.junk_ports, seed, queue))
                junk.start()
                junk_result = queue.get(timeout=args.duration + 120)
                junk.join(10)
                sim_out, _ = sim.communicate(timeout=args.duration + 60)
            wall = time.monotonic() - t0
            cpu.stop()
            box.stop()
            time.sleep(0.5)
            health = srv.health()
            reasons = _metrics(srv.http_port)
        archive = (_archive(rec_dir) if not args.no_record
                   else {"packets": 0, "ok_bytes": None, "status": {}, "export_identical": None})
    sim = parse_sim_output(sim_out)
    me = health["udp"]["recent"][0]  # the simulator sends last
    row = {
        "seconds": round(wall, 1),
        "server_cpu_pct": cpu.result["server"], "machine_busy_pct": round(box.busy_pct, 1),
        "load_after": round(os.getloadavg()[0], 2),
        "sim_datagrams": sim.get("datagrams"), "sim_frames": sim.get("frames"), "sim_bytes": sim.get("bytes"),
        "junk_sent": junk_result.get("sent"), "junk_seconds": round(junk_result.get("seconds", 0), 1),
        "station_datagrams": health["ingest"]["datagrams"],
        "sim_taken": me["datagrams"], "sim_lost": me["lost"], "sim_duplicates": me["duplicates"],
        "sim_epoch": me["epoch"], "sim_sender": me["sender"],
        "frames": health["ingest"]["frames"],
        "senders": {k: health["udp"][k] for k in ("senders", "new_senders", "restarts", "evicted")},
        "decode_errors_by_reason": {k: int(v) for k, v in reasons.items() if v},
        "archived_packets": archive["packets"], "archived_status": archive["status"],
        "archived_ok_bytes": archive["ok_bytes"], "export_identical": archive["export_identical"],
    }
    expected_packet_bytes = (sim.get("bytes") or 0) - 4 * (sim.get("datagrams") or 0)
    row["checks"] = {
        "all junk counted": health["ingest"]["datagrams"] == (sim.get("datagrams") or 0) + (row["junk_sent"] or 0),
        "0 sim datagrams lost": me["datagrams"] == sim.get("datagrams") and me["lost"] == 0
        and me["duplicates"] == 0 and me["epoch"] == 0,
        "0 mis-decoded (frames)": health["ingest"]["frames"] == sim.get("frames"),
    }
    if not args.no_record:
        row["checks"]["archived = sent"] = archive["ok_bytes"] == expected_packet_bytes
        row["checks"]["exported = archived"] = archive["export_identical"]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.junk_flood", description=__doc__.split("\n")[0])
    p.add_argument("--bitrate", type=float, default=20e6)
    p.add_argument("--duration", type=float, default=14.0, help="simulator seconds (the junk starts after 1 s)")
    p.add_argument("--junk", type=int, default=200_000)
    p.add_argument("--junk-rate", type=float, default=20_000.0, help="junk datagrams per second")
    p.add_argument("--junk-ports", type=int, default=64, help="source ports the junk comes from")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-record", action="store_true", help="diagnosis: no recording (no archive checks)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    rows = []
    for i in range(args.runs):
        row = run_once(args, seed=i)
        rows.append(row)
        print(json.dumps(row), flush=True)
    ok = all(all(r["checks"].values()) for r in rows)
    summary = {
        "runs": len(rows), "all_checks_hold": ok,
        "sim_datagrams_median": statistics.median(r["sim_datagrams"] or 0 for r in rows),
        "junk_median": statistics.median(r["junk_sent"] or 0 for r in rows),
        "junk_seconds_median": statistics.median(r["junk_seconds"] for r in rows),
        "sim_lost_total": sum(r["sim_lost"] + (r["sim_datagrams"] or 0) - r["sim_taken"] for r in rows),
    }
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "summary": summary, "args": vars(args)}, fh, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
