"""UDP ingest under load: datagrams sent vs received, frames, CPU of server and simulator.

    python -m benchmarks.load.ingest                          # 10 and 20 Mb/s, 10 s each
    python -m benchmarks.load.ingest --bitrates 20e6 --duration 5 --runs 3 --json /tmp/ingest.json

For each bit rate: a fresh ``groundstation serve --open`` process and a
``groundstation simulate --to ... --bitrate R --duration D`` process, both on
127.0.0.1. Sent = the simulator's own count; received, lost and frames = the
server's ``/healthz`` (``ingest.datagrams``, ``udp.lost``, ``ingest.frames``).
Server CPU is sampled over the simulator's lifetime (plus a short drain), the
simulator's CPU comes from ``wait4``. No consoles are connected. Target: 0 lost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from . import common, servers
from .common import CpuWindow, MachineWindow, rss_bytes, wait_rusage
from .servers import parse_sim_output, server, simulator


def run_ingest(bitrate: float, duration: float = 10.0, kind: str = "ours", quiet: dict | None = None) -> dict:
    before = common.wait_for_quiet(**quiet) if quiet is not None else None
    with server(kind) as srv:
        h0 = srv.health()
        box = MachineWindow().start()
        cpu = CpuWindow({"server": srv.pid}).start()
        t0 = time.monotonic()
        with simulator(srv.udp_port, bitrate, duration) as sim:
            sim_cpu_s = wait_rusage(sim, duration + 30)
            wall = time.monotonic() - t0
            out = sim.stdout.read()
        time.sleep(0.3)  # let the server drain its socket
        cpu.stop()
        box.stop()
        h1 = srv.health()
        rss = rss_bytes(srv.pid)
    sent = parse_sim_output(out)
    recv = h1["ingest"]["datagrams"] - h0["ingest"]["datagrams"]
    return {
        "bitrate": bitrate,
        "seconds": round(wall, 2),
        "sent_datagrams": sent.get("datagrams"),
        "received_datagrams": recv,
        "udp_lost": h1["udp"]["lost"] - h0["udp"]["lost"],
        "udp_gaps": h1["udp"]["gaps"] - h0["udp"]["gaps"],
        "missing": (sent.get("datagrams") or 0) - recv,
        "sent_frames": sent.get("frames"),
        "frames": h1["ingest"]["frames"] - h0["ingest"]["frames"],
        "samples": h1["ingest"]["samples"] - h0["ingest"]["samples"],
        "decode_errors": h1["ingest"]["decode_errors"] - h0["ingest"]["decode_errors"],
        "mbytes": round((sent.get("bytes") or 0) / 1e6, 2),
        "server_cpu_pct": cpu.result["server"],
        "simulator_cpu_pct": round(100 * sim_cpu_s / wall, 1),
        "server_rss_mb": round(rss / 2**20, 1),
        "irq_pct": box.irq_pct,
        "foreign_cpu_pct": round(box.busy_pct - cpu.result["server"] - 100 * sim_cpu_s / wall, 1),
        "quiet_before": before,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.ingest", description=__doc__.split("\n")[0])
    p.add_argument("--bitrates", type=float, nargs="+", default=[10e6, 20e6])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--json")
    common.add_noise_args(p)
    servers.add_tree_arg(p)
    args = p.parse_args(argv)
    tree = servers.apply_tree_arg(args)
    rows, runs = [], []
    for br in args.bitrates:
        rs = []
        for i in range(args.runs):
            r = common.measure_with_retries(lambda br=br: run_ingest(br, args.duration, quiet=common.quiet_kwargs(args)), args,
                                            f"{br / 1e6:g} Mb/s")
            rs.append(r)
            print(f"{br / 1e6:g} Mb/s run {i + 1}: sent {r['sent_datagrams']} received {r['received_datagrams']} "
                  f"lost {r['udp_lost']} frames {r['frames']}/{r['sent_frames']} server CPU {r['server_cpu_pct']} % "
                  f"simulator CPU {r['simulator_cpu_pct']} % (other work {r['foreign_cpu_pct']} %)", flush=True)
        runs += rs
        med = {k: statistics.median(r[k] for r in rs) for k in ("server_cpu_pct", "simulator_cpu_pct")}
        rows.append({"Mb/s": br / 1e6, "runs": len(rs), "sent": sum(r["sent_datagrams"] or 0 for r in rs),
                     "received": sum(r["received_datagrams"] for r in rs), "lost": sum(r["udp_lost"] for r in rs),
                     "frames": sum(r["frames"] for r in rs), "frames sent": sum(r["sent_frames"] or 0 for r in rs),
                     "decode errors": sum(r["decode_errors"] for r in rs),
                     "server CPU % (median)": med["server_cpu_pct"], "simulator CPU % (median)": med["simulator_cpu_pct"]})
    print(common.fmt_table(rows, list(rows[0])))
    lost = sum(r["udp_lost"] + max(r["missing"], 0) for r in runs)
    print(f"target 0 lost: {'MET' if lost == 0 else f'NOT MET ({lost} datagrams)'}")
    common.write_json(args.json, args, tree=tree, summary=rows, runs=runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
