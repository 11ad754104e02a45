"""Console capacity: the most consoles at 20 Hz with p99 <= 100 ms, ours vs two naive peers, same run.

    python -m benchmarks.load.capacity                          # 100, 200, 400, 800, 1200, 1600, 2000
    python -m benchmarks.load.capacity --servers ours naive naive-node --loadgen-procs 3 --json /tmp/cap.json

Servers (``servers.py``): ``ours`` = ``groundstation serve --open``; ``naive`` =
``naive_ws`` (our ``Ingest`` decoder, then ``websockets.broadcast`` of every
decoded batch to every console); ``naive-node`` = node ``ws`` fed the same
messages by our decoder over a pipe (``feeder``), ``wss.clients.forEach(c =>
c.send(buf))``; ``cluster`` = 1 ingest + 2 edges over Redis (when ``serve``
has ``--role``), ``cluster4`` = 1 ingest + 4 edges. ``--node-cpu 0.2`` caps every
server node (each in its own cgroup, ``budget.py``) at 0.2 of a core, so the
topologies compare as a real cluster's nodes would: throttling is reported
per node beside its CPU %. At each step the servers take turns (ours N, naive N,
naive-node N, ours next N, ...) so all see the same machine; each step is a
fresh server and simulator (``--bitrate``, 1 Mb/s default) and
``--loadgen-procs`` load-generator processes holding the consoles between
them, each console subscribing to all parameters at 20 Hz. A step is
sustained when every console connected, p99 latency (receive - ``ingest_ns``)
<= ``--p99-ms`` and the median console got >= ``--min-fraction`` of the
messages it should (ours: one bundle per tick; naive: every broadcast in the
window), and p99 by the vehicle's clock (receive - newest sample time stamp,
sampled 1 message in 8) <= ``--p99-ms`` too: a server that falls behind
reading its UDP socket stamps late ``ingest_ns``; only this sees it. The first failing step ends that server's ladder; ``--budget-min``
bounds the whole run. Figures: the largest sustained step, deliveries/s,
server CPU (node peer: node + feeder) and RSS per console. Targets: ours >= 2x
the ``naive`` consoles and >= the ``naive-node`` consoles.

The load generators run on the same 2-core machine as the servers and the
simulator: their CPU % (sum and busiest process) and event-loop lag are
reported with each step, so a step limited by them is visible.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import common, servers
from .latency import run_latency, throttle_text
from .servers import KINDS, has_roles

STEPS = [100, 200, 400, 800, 1200, 1600, 2000]


def sustained(r: dict, p99_ms: float, min_fraction: float) -> tuple[bool, str]:
    if r["connected"] < r["consoles"]:
        return False, f"only {r['connected']}/{r['consoles']} connected"
    p99 = r["latency_ms"]["p99"]
    if not p99 <= p99_ms:
        return False, f"p99 {p99} ms > {p99_ms} ms"
    age = (r.get("vehicle_age_ms") or {}).get("p99")
    if age is not None and not age <= p99_ms:  # e.g. the server fell behind reading its UDP socket
        return False, f"vehicle-time p99 {age} ms > {p99_ms} ms"
    frac = r.get("delivered_fraction")
    if frac is not None and frac < min_fraction:
        return False, f"delivered {frac:.2f} < {min_fraction}"
    return True, "ok"


def _step(kind: str, n: int, args: argparse.Namespace) -> dict:
    t0 = time.monotonic()
    try:
        r = common.measure_with_retries(
            lambda: run_latency(consoles=n, rate=args.rate, bitrate=args.bitrate, duration=args.duration,
                                warmup=args.warmup, kind=kind, quiet=common.quiet_kwargs(args),
                                procs=args.loadgen_procs, node_cpu=args.node_cpu), args, f"{kind} {n}")
    except RuntimeError as exc:
        r = {"consoles": n, "connected": 0, "error": str(exc)[-800:], "latency_ms": {"p99": float("nan")}}
    ok, why = sustained(r, args.p99_ms, args.min_fraction) if "error" not in r else (False, r["error"][-120:])
    r.update(server=kind, sustained=ok, verdict=why, step_seconds=round(time.monotonic() - t0, 1))
    lat = r["latency_ms"]
    age = (r.get("vehicle_age_ms") or {}).get("p99")
    print(f"{kind:10s} {n:5d} consoles: {'PASS' if ok else 'FAIL'} ({why}); p50 {lat.get('p50')} p99 {lat.get('p99')} ms "
          f"(vehicle time p99 {age} ms, {r.get('datagrams_in_window')} datagrams), "
          f"{r.get('deliveries_per_s')} deliveries/s, fraction {r.get('delivered_fraction')}, gaps {r.get('seq_gaps')}, "
          f"server CPU {r.get('server_cpu_pct')} %, RSS {r.get('server_rss_mb')} MB "
          f"({r.get('server_rss_per_console_kb')} KB/console), loadgen CPU {r.get('loadgen_cpu_pct')} % "
          f"(busiest {r.get('loadgen_cpu_max_proc_pct')} %, lag p99 {(r.get('loadgen_loop_lag_ms') or {}).get('p99')} ms), "
          f"other work {r.get('foreign_cpu_pct')} %{' (NOISY)' if r.get('noisy') else ''}{throttle_text(r)}", flush=True)
    return r


def ladders(servers: list[str], args: argparse.Namespace) -> dict:
    """Climb all servers' ladders together (ours, naive, naive-node, ours, ...) so all see the same machine."""
    out = {s: {"server": s, "max_sustained": 0, "best": None, "steps": []} for s in servers}
    alive = list(servers)
    deadline = time.monotonic() + args.budget_min * 60
    for n in args.steps:
        for kind in list(alive):
            if time.monotonic() > deadline:
                out[kind]["stopped"] = f"time budget ({args.budget_min} min) spent before {n}"
                alive.remove(kind)
                continue
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


def summary_rows(out: dict) -> list[dict]:
    rows = []
    for s, lad in out.items():
        b = lad["best"] or {}
        fail = next((f"{r['consoles']}: {r['verdict']}" for r in lad["steps"] if not r["sustained"]),
                    lad.get("stopped", "-"))
        rows.append({"server": s, "consoles sustained": lad["max_sustained"],
                     "p99 ms": b.get("latency_ms", {}).get("p99", ""),
                     "vehicle-time p99 ms": (b.get("vehicle_age_ms") or {}).get("p99", ""),
                     "deliveries/s": b.get("deliveries_per_s", ""), "server CPU %": b.get("server_cpu_pct", ""),
                     "RSS MB": b.get("server_rss_mb", ""), "RSS KB/console": b.get("server_rss_per_console_kb", ""),
                     "loadgen CPU %": b.get("loadgen_cpu_pct", ""), "other work %": b.get("foreign_cpu_pct", ""),
                     "failed at": fail})
    return rows


def ratios(out: dict) -> dict:
    """The targets from one run: ours / naive >= 2, ours / naive-node >= 1, and the scale-out at equal
    per-node budgets (``--node-cpu``): cluster (2 edges) / ours >= 1.8, cluster4 (4 edges) / ours >= 3.5
    (each also with recording on, ``-record``, where the run has those kinds)."""
    got = {k: v["max_sustained"] for k, v in out.items()}
    res = {}
    pairs = [(a, b, t) for rec in ("", "-record") for a, b, t in
             ((f"ours{rec}", "naive", 2.0), (f"ours{rec}", "naive-node", 1.0), (f"cluster{rec}", f"ours{rec}", 1.8),
              (f"cluster4{rec}", f"ours{rec}", 3.5))]
    for a, b, target in pairs:
        name = f"{a}/{b}"
        if got.get(a) is not None and got.get(b):
            res[name] = {"ratio": round(got[a] / got[b], 2), "target": target, "met": got[a] / got[b] >= target}
    return res


def ingest_cpu(out: dict) -> dict:
    """The ingest node's CPU % at each step of every cluster ladder (flat as consoles grow, if it scales)."""
    return {k: [(r["consoles"], (r.get("server_cpu_by_process") or {}).get("server")) for r in v["steps"]]
            for k, v in out.items() if k.startswith("cluster")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.capacity", description=__doc__.split("\n")[0])
    p.add_argument("--servers", nargs="+", choices=KINDS, default=["ours", "naive", "naive-node"])
    p.add_argument("--steps", type=int, nargs="+", default=STEPS, help="console counts, climbed in order")
    p.add_argument("--p99-ms", type=float, default=100.0)
    p.add_argument("--min-fraction", type=float, default=0.9)
    p.add_argument("--budget-min", type=float, default=20.0, help="stop climbing after this many minutes")
    common.add_run_args(p, duration=6.0, bitrate=1e6, procs=2)
    servers.add_tree_arg(p)
    args = p.parse_args(argv)
    tree = servers.prepare(args)
    if any(s.startswith("cluster") for s in args.servers) and not has_roles():
        print("cluster: groundstation serve has no --role yet (Redis scale-out): left out", flush=True)
        args.servers = [s for s in args.servers if not s.startswith("cluster")]
    out = ladders(args.servers, args)
    rows = summary_rows(out)
    print(common.fmt_table(rows, list(rows[0])))
    rat = ratios(out)
    for name, r in rat.items():
        print(f"{name} consoles: {r['ratio']}x (target >= {r['target']}x: {'MET' if r['met'] else 'NOT MET'})")
    ing = ingest_cpu(out)
    for kind, steps in ing.items():
        print(f"{kind} ingest node CPU % by consoles: " + ", ".join(f"{n}: {c}" for n, c in steps))
    common.write_json(args.json, args, tree=tree, ladders=out, ratios=rat, ingest_cpu=ing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
