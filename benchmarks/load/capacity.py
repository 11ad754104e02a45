"""Console capacity: the most consoles at 20 Hz with p99 <= 100 ms, ours vs a naive peer, same run.

    python -m benchmarks.load.capacity                          # steps 100, 200, 400, ... up to 2000
    python -m benchmarks.load.capacity --servers ours naive --max 2000 --duration 6 --json /tmp/cap.json

For each server (``ours`` = ``groundstation serve --open``; ``naive`` =
``benchmarks.load.naive_ws``, the same ``Ingest`` decoder feeding
``websockets.broadcast`` of every decoded batch to every console) and each
step (100, 200, 400, 800, ... doubling, capped at ``--max``; the servers take
turns at each step so both see the same machine), a fresh server
and simulator (``--bitrate``, 1 Mb/s default) and ONE load-generator process
with that many consoles subscribing to all parameters at 20 Hz. A step is
sustained when every console connected, p99 latency (receive - ``ingest_ns``)
<= ``--p99-ms`` and the median console got >= ``--min-fraction`` of the
frames it should (ours: rate x groups x seconds; naive: every broadcast in
the window). The first failing step ends that server's ladder. Figures: the
largest sustained step, deliveries/s, server CPU and RSS per console. Target:
ours >= 2x the naive server's consoles.

The load generator runs on the same 2-core machine as the server and the
simulator: its CPU % and event-loop lag are reported with each step so a step
limited by the load generator rather than the server is visible.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import common
from .latency import run_latency


def steps(start: int, maximum: int) -> list[int]:
    out, n = [], start
    while n < maximum:
        out.append(n)
        n *= 2
    out.append(maximum)
    return out


def sustained(r: dict, p99_ms: float, min_fraction: float) -> tuple[bool, str]:
    if r["connected"] < r["consoles"]:
        return False, f"only {r['connected']}/{r['consoles']} connected"
    p99 = r["latency_ms"]["p99"]
    if not p99 <= p99_ms:
        return False, f"p99 {p99} ms > {p99_ms} ms"
    frac = r.get("delivered_fraction")
    if frac is not None and frac < min_fraction:
        return False, f"delivered {frac:.2f} < {min_fraction}"
    return True, "ok"


def _step(kind: str, n: int, args: argparse.Namespace) -> dict:
    t0 = time.monotonic()
    try:
        r = common.measure_with_retries(
            lambda: run_latency(consoles=n, rate=args.rate, bitrate=args.bitrate, duration=args.duration,
                                warmup=args.warmup, kind=kind, quiet=common.quiet_kwargs(args)), args, f"{kind} {n}")
    except RuntimeError as exc:
        r = {"consoles": n, "connected": 0, "error": str(exc)[:500], "latency_ms": {"p99": float("nan")}}
    ok, why = sustained(r, args.p99_ms, args.min_fraction) if "error" not in r else (False, r["error"][:80])
    r.update(sustained=ok, verdict=why, step_seconds=round(time.monotonic() - t0, 1))
    print(f"{kind:6s} {n:5d} consoles: {'PASS' if ok else 'FAIL'} ({why}); p50 {r['latency_ms'].get('p50')} "
          f"p99 {r['latency_ms'].get('p99')} ms, {r.get('deliveries_per_s')} deliveries/s, "
          f"fraction {r.get('delivered_fraction')}, server CPU {r.get('server_cpu_pct')} %, "
          f"RSS {r.get('server_rss_mb')} MB ({r.get('server_rss_per_console_kb')} KB/console), "
          f"loadgen CPU {r.get('loadgen_cpu_pct')} % lag p99 {(r.get('loadgen_loop_lag_ms') or {}).get('p99')} ms, "
          f"other work {r.get('foreign_cpu_pct')} %{' (NOISY)' if r.get('noisy') else ''}", flush=True)
    return r


def ladders(servers: list[str], args: argparse.Namespace) -> dict:
    """Climb all servers' ladders together (ours, naive, ours, naive, ...) so both see the same machine."""
    out = {s: {"server": s, "max_sustained": 0, "best": None, "steps": []} for s in servers}
    alive = list(servers)
    for n in args.steps or steps(args.start, args.max):
        for kind in list(alive):
            r = _step(kind, n, args)
            out[kind]["steps"].append(r)
            if r["sustained"]:
                out[kind]["best"] = r
                out[kind]["max_sustained"] = n
            else:
                alive.remove(kind)
        if not alive:
            break
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.capacity", description=__doc__.split("\n")[0])
    p.add_argument("--servers", nargs="+", choices=["ours", "ours-nodelay", "ours-gcfreeze", "naive"],
                   default=["ours", "naive"])
    p.add_argument("--start", type=int, default=100)
    p.add_argument("--max", type=int, default=2000)
    p.add_argument("--steps", type=int, nargs="+", help="explicit console counts instead of doubling")
    p.add_argument("--rate", type=int, default=20)
    p.add_argument("--bitrate", type=float, default=1e6)
    p.add_argument("--duration", type=float, default=6.0, help="measurement window per step, s")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--p99-ms", type=float, default=100.0)
    p.add_argument("--min-fraction", type=float, default=0.9)
    p.add_argument("--json")
    common.add_noise_args(p)
    args = p.parse_args(argv)
    common.raise_fd_limit()
    out = ladders(args.servers, args)
    rows = []
    for s, lad in out.items():
        b = lad["best"] or {}
        rows.append({"server": s, "consoles sustained": lad["max_sustained"],
                     "p99 ms": b.get("latency_ms", {}).get("p99", ""),
                     "deliveries/s": b.get("deliveries_per_s", ""), "server CPU %": b.get("server_cpu_pct", ""),
                     "RSS MB": b.get("server_rss_mb", ""), "RSS KB/console": b.get("server_rss_per_console_kb", ""),
                     "loadgen CPU %": b.get("loadgen_cpu_pct", ""), "other work %": b.get("foreign_cpu_pct", ""),
                     "failed at": next((f"{r['consoles']}: {r['verdict']}" for r in lad["steps"] if not r["sustained"]),
                                       "-")})
    print(common.fmt_table(rows, list(rows[0])))
    if "ours" in out and "naive" in out and out["naive"]["max_sustained"]:
        ratio = out["ours"]["max_sustained"] / out["naive"]["max_sustained"]
        print(f"ours / naive consoles: {ratio:.2f}x (target >= 2x: {'MET' if ratio >= 2 else 'NOT MET'})")
    common.write_json(args.json, args, ladders=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
