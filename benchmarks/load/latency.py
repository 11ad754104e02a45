"""Latency under load: server + simulator + N consoles at 20 Hz on all parameters.

    python -m benchmarks.load.latency                       # 100 consoles, 10 Mb/s, 10 s
    python -m benchmarks.load.latency --consoles 200 --runs 3 --json /tmp/latency.json
    python -m benchmarks.load.latency --profile /tmp/server.txt   # py-spy over the window

Starts ``groundstation serve --open`` (or ``--server KIND``, see ``servers``)
and ``groundstation simulate`` on free 127.0.0.1 ports, waits until the server
has read the TMATS, then runs ``--loadgen-procs`` load-generator processes
(``benchmarks.load.pool``) with N consoles between them, each subscribing to
``globs: ["*"]`` (or the first ``--params K`` parameters) at ``--rate`` Hz. Latency is receive time -
``ingest_ns`` of each data frame (datagram arrival at the server to the
console's hands, same clock); seq gaps count missing per-session sequence
numbers. Server and simulator CPU are sampled over exactly the measurement
window. Target (issue 3): p99 <= 20 ms at 100 consoles.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import budget, common, servers
from .common import CpuWindow, MachineWindow, rss_bytes
from .pool import run_pool
from .servers import KINDS, server, simulator


def run_latency(*, consoles: int = 100, rate: int = 20, bitrate: float = 10e6, duration: float = 10.0,
                warmup: float = 2.0, kind: str = "ours", profile: str | None = None,
                quiet: dict | None = None, procs: int = 1, params: int = 0, node_cpu: float | None = None) -> dict:
    """One measurement: a fresh server and simulator, ``procs`` load-generator processes.

    ``quiet``: keyword arguments for ``wait_for_quiet`` (wait, bounded, for
    other work on the machine to calm down first); None = don't wait.
    ``params``: each console subscribes to the catalog's first K parameters (0: all).
    ``node_cpu``: each server node in its own cgroup capped at this fraction of a core (``budget``).
    """
    before = common.wait_for_quiet(**quiet) if quiet is not None else None
    with server(kind) as srv, simulator(srv.udp_port, bitrate) as sim:
        srv.wait_configured()
        time.sleep(0.3)
        pids = srv.pids()
        budgets, why_not = _budgets(node_cpu, pids)
        rss0 = {k: rss_bytes(p) for k, p in pids.items()}
        cpu = CpuWindow({**pids, "simulator": sim.pid, "orchestrator": os.getpid()})
        box = MachineWindow()
        marks: dict = {}
        spy: list[subprocess.Popen] = []

        def on_measure() -> None:
            box.start()
            cpu.start()
            marks["thr0"] = budgets.stats() if budgets else {}
            marks["h0"] = srv.health()
            if profile:
                spy.append(start_py_spy(srv.pid, profile, duration))

        def on_done() -> None:
            cpu.stop()
            box.stop()
            marks["thr1"] = budgets.stats() if budgets else {}
            marks["h1"] = srv.health()
            marks["rss1"] = {k: rss_bytes(p) for k, p in pids.items()}

        mode = "naive" if kind.startswith("naive") else "ours"
        try:
            res = run_pool(srv.ws_urls, mode=mode, consoles=consoles, rate=rate, duration=duration, warmup=warmup,
                           procs=procs, params=params, on_measure=on_measure, on_done=on_done)
        finally:
            if budgets is not None:
                budgets.close()
        for p in spy:
            try:
                p.wait(duration + 30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if sim.poll() is not None:
            raise RuntimeError(f"simulator exited early (rc={sim.returncode})")
    h0, h1 = marks.get("h0", {}), marks.get("h1", {})
    rss1 = marks.get("rss1", {})
    server_cpu = {k: v for k, v in cpu.result.items() if k in pids}
    res.update(
        server=kind,
        bitrate=bitrate,
        params=params,
        server_cpu_pct=round(sum(v for v in server_cpu.values() if v == v), 1),
        server_cpu_by_process=server_cpu,
        simulator_cpu_pct=cpu.result.get("simulator"),
        server_rss_mb=round(sum(rss1.values()) / 2**20, 1),
        server_rss_per_console_kb=round((sum(rss1.values()) - sum(rss0.values())) / 1024 / max(consoles, 1), 1),
        udp_lost_in_window=_delta(h0, h1, "udp", "lost"),
        datagrams_in_window=_delta(h0, h1, "ingest", "datagrams"),
        machine_busy_pct=box.busy_pct,
        irq_pct=box.irq_pct,
        foreign_cpu_pct=round(box.busy_pct - sum(v for v in cpu.result.values() if v == v)
                              - res.get("loadgen_cpu_pct", 0), 1),
        quiet_before=before,
        node_cpu=node_cpu if budgets is not None else None,
        node_cpu_refused=why_not,
        node_throttle=budget.throttle_delta(marks.get("thr0", {}), marks.get("thr1", {})) if budgets else None,
    )
    if mode == "naive" and "broadcasts" in h1 and "broadcasts" in h0:
        # the naive peers have no nominal rate: they send every decoded batch; compare with what they broadcast
        n = h1["broadcasts"] - h0["broadcasts"]
        res["broadcasts_in_window"] = n
        if n and res["data_messages"]:
            per = res["data_messages"] / max(res["connected"], 1)
            res["delivered_fraction"] = round(per / n, 3)
    if profile:
        res["profile"] = profile
    return res


def _budgets(node_cpu: float | None, pids: dict[str, int]) -> tuple[budget.NodeBudgets | None, str | None]:
    """Every server node (``server``, ``edgeN``; the node peer's feeder with its server) in its own capped
    cgroup; (None, why) where that cannot be done, after saying so."""
    if not node_cpu:
        return None, None
    why = budget.unavailable()
    if why is not None:
        print(f"--node-cpu {node_cpu}: {why}; running unbudgeted", flush=True)
        return None, why
    nb = budget.NodeBudgets(node_cpu)
    try:
        for name, pid in pids.items():
            nb.place("server" if name == "feeder" else name, pid)
    except OSError as exc:
        nb.close()
        why = f"cannot place the server processes in their cgroups: {exc}"
        print(f"--node-cpu {node_cpu}: {why}; running unbudgeted", flush=True)
        return None, why
    return nb, None


def throttle_text(r: dict) -> str:
    """Per node: CPU % and how often the budget throttled it (empty when unbudgeted)."""
    thr = r.get("node_throttle")
    if not thr:
        return ""
    cpu = r.get("server_cpu_by_process") or {}
    return "; budget " + ", ".join(f"{n} {cpu.get(n, '?')} % CPU throttled {t['throttled_pct']} %" for n, t in thr.items())


def _delta(h0: dict, h1: dict, a: str, b: str):
    try:
        return h1[a][b] - h0[a][b]
    except (KeyError, TypeError):
        return None


def start_py_spy(pid: int, path: str, duration: float) -> subprocess.Popen:
    """py-spy record (collapsed stacks, text) of ``pid`` for ``duration`` s; needs ptrace rights."""
    fmt = "flamegraph" if path.endswith(".svg") else "raw"
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return subprocess.Popen([exe, "record", "--pid", str(pid), "-d", str(max(1, int(duration))), "-r", "200",
                             "--nonblocking", "-f", fmt, "-o", path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def summarize(all_runs: list[dict]) -> dict:
    """Median over runs of the headline figures (over the runs not disturbed by other work, if any)."""
    clean = [r for r in all_runs if not r.get("noisy")]
    runs = clean or all_runs

    def med(f):
        vals = [f(r) for r in runs if f(r) is not None]
        return round(statistics.median(vals), 2) if vals else None

    return {
        "runs": len(runs),
        "noisy_runs_left_out": len(all_runs) - len(runs),
        "consoles": runs[0]["consoles"],
        "p50_ms": med(lambda r: r["latency_ms"]["p50"]),
        "p99_ms": med(lambda r: r["latency_ms"]["p99"]),
        "max_ms": med(lambda r: r["latency_ms"]["max"]),
        "worst_console_p99_ms": med(lambda r: r["latency_ms"]["worst_console_p99"]),
        "tick_to_console_p99_ms": med(lambda r: (r.get("tick_to_console_ms") or {}).get("p99")),
        "deliveries_per_s": med(lambda r: r["deliveries_per_s"]),
        "delivered_fraction": med(lambda r: r["delivered_fraction"]),
        "seq_gaps": med(lambda r: r["seq_gaps"]),
        "server_cpu_pct": med(lambda r: r["server_cpu_pct"]),
        "simulator_cpu_pct": med(lambda r: r["simulator_cpu_pct"]),
        "loadgen_cpu_pct": med(lambda r: r["loadgen_cpu_pct"]),
        "loadgen_lag_p99_ms": med(lambda r: r["loadgen_loop_lag_ms"]["p99"]),
        "server_rss_mb": med(lambda r: r["server_rss_mb"]),
        "foreign_cpu_pct": med(lambda r: r["foreign_cpu_pct"]),
        "udp_lost": med(lambda r: r["udp_lost_in_window"]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.latency", description=__doc__.split("\n")[0])
    p.add_argument("--consoles", type=int, default=100)
    p.add_argument("--runs", type=int, default=1, help="repeat with fresh processes; figures are the median")
    p.add_argument("--server", choices=KINDS, default="ours",
                   help="ours-nodelay / ours-gcfreeze: ours with an experimental patch (benchmarks/load/serve_patched.py)")
    p.add_argument("--params", type=int, default=0, help="each console subscribes to the first K parameters (0: all)")
    p.add_argument("--profile", help="py-spy record the server over the window (.svg flamegraph, else raw)")
    p.add_argument("--target-p99-ms", type=float, default=20.0)
    common.add_run_args(p, duration=10.0, bitrate=10e6, procs=1)
    servers.add_tree_arg(p)
    args = p.parse_args(argv)
    tree = servers.prepare(args)
    runs = []
    for i in range(args.runs):
        r = common.measure_with_retries(
            lambda i=i: run_latency(consoles=args.consoles, rate=args.rate, bitrate=args.bitrate, duration=args.duration,
                                warmup=args.warmup, kind=args.server, profile=args.profile if i == 0 else None,
                                quiet=common.quiet_kwargs(args), procs=args.loadgen_procs, params=args.params,
                                node_cpu=args.node_cpu),
            args, f"run {i + 1}")
        runs.append(r)
        lat = r["latency_ms"]
        print(f"run {i + 1}: {r['connected']}/{r['consoles']} consoles, p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
              f"max {lat['max']} ms, tick->console {r.get('tick_to_console_ms')}, {r['deliveries_per_s']} deliveries/s "
              f"(fraction {r['delivered_fraction']}), gaps {r['seq_gaps']}, server CPU {r['server_cpu_pct']} %, "
              f"loadgen CPU {r['loadgen_cpu_pct']} %, other work on the machine {r['foreign_cpu_pct']} %{' (NOISY)' if r['noisy'] else ''}, errors {r['errors'] or '-'}"
              f"{throttle_text(r)}", flush=True)
    s = summarize(runs)
    ok = s["p99_ms"] is not None and s["p99_ms"] <= args.target_p99_ms
    print(common.fmt_table([s], list(s)))
    print(f"target p99 <= {args.target_p99_ms} ms at {args.consoles} consoles: {'MET' if ok else 'NOT MET'}")
    common.write_json(args.json, args, tree=tree, summary=s, runs=runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
