"""How latency and server CPU grow: with the bit rate and with the parameters each console subscribes to.

    python -m benchmarks.load.curves bitrate --servers ours naive naive-node --consoles 100 \
        --bitrates 1e6 5e6 10e6 20e6 --runs 3 --json /tmp/curve-bitrate.json
    python -m benchmarks.load.curves params --consoles 200 --params 1 4 9 27 --runs 3 --json /tmp/curve-params.json

Each point is ``latency.run_latency`` (fresh server and simulator, the pool
of load generators) repeated ``--runs`` times, the servers taking turns at
each point; the point's figures are the medians (``latency.summarize``). The
"vs consoles" curve comes from ``capacity`` (each ladder step). ``plots``
draws them all into docs/bench/*.png.
"""

from __future__ import annotations

import argparse
import sys

from . import common, servers
from .latency import run_latency, summarize


def sweep(axis: str, values: list, kinds: list[str], args: argparse.Namespace) -> list[dict]:
    """One point per (server, value): medians over ``args.runs`` runs."""
    points = []
    for v in values:
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        for i in range(args.runs):
            for kind in kinds:
                kw = dict(consoles=args.consoles, rate=args.rate, bitrate=args.bitrate, duration=args.duration,
                          warmup=args.warmup, kind=kind, quiet=common.quiet_kwargs(args), procs=args.loadgen_procs,
                          node_cpu=args.node_cpu)
                kw[axis] = v
                try:
                    r = common.measure_with_retries(lambda kw=kw: run_latency(**kw), args, f"{kind} {axis}={v}")
                except RuntimeError as exc:
                    print(f"{kind} {axis}={v} run {i + 1}: {exc}"[:300], flush=True)
                    continue
                runs[kind].append(r)
                print(f"{kind:10s} {axis}={v:g} run {i + 1}: p99 {r['latency_ms']['p99']} ms, "
                      f"server CPU {r['server_cpu_pct']} %, {r['deliveries_per_s']} deliveries/s, "
                      f"loadgen CPU {r['loadgen_cpu_pct']} %, other work {r['foreign_cpu_pct']} %", flush=True)
        for kind, rs in runs.items():
            if rs:
                points.append({"server": kind, axis: v, **summarize(rs)})
    return points


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.curves", description=__doc__.split("\n")[0])
    p.add_argument("axis", choices=["bitrate", "params"])
    p.add_argument("--servers", nargs="+", choices=servers.KINDS, default=["ours"])
    p.add_argument("--consoles", type=int, default=100)
    p.add_argument("--bitrates", type=float, nargs="+", default=[1e6, 5e6, 10e6, 20e6])
    p.add_argument("--params", type=int, nargs="+", default=[1, 4, 9, 27],
                   help="parameters per console subscription (the catalog's first K)")
    p.add_argument("--runs", type=int, default=3)
    common.add_run_args(p, duration=5.0, bitrate=10e6, procs=2)  # --bitrate: of the params sweep
    servers.add_tree_arg(p)
    args = p.parse_args(argv)
    tree = servers.prepare(args)
    values = args.bitrates if args.axis == "bitrate" else args.params
    points = sweep(args.axis, values, args.servers, args)
    cols = ["server", args.axis, "runs", "p50_ms", "p99_ms", "server_cpu_pct", "deliveries_per_s",
            "delivered_fraction", "seq_gaps", "loadgen_cpu_pct", "foreign_cpu_pct"]
    print(common.fmt_table(points, cols))
    common.write_json(args.json, args, tree=tree, axis=args.axis, points=points)
    return 0


if __name__ == "__main__":
    sys.exit(main())
