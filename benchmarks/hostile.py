"""Hostile users within their limits, beside a quiet baseline in the same run (issue #15).

    flock /tmp/gs-bench.lock python -m benchmarks.hostile --runs 3 --json /tmp/hostile.json

One recording server asking for tokens (``benchmarks.load.servers``, ``ours-record``,
``open_mode=False``) and the simulator. The fast consoles (``--fast`` engineers in one
``benchmarks.load.loadgen`` process through ``pool.run_pool``) subscribe to every
parameter at 50 Hz. Phase after phase, each ``--duration`` s, the attacker process
(``benchmarks.hostile_attacks``) runs one attack (``globs``, ``piling``, ``backfill``,
``http-unauth``, ``http-rejected``, ``garbage``) while the fast consoles are measured,
with a ``quiet`` phase (no attack) before each attack and after the last: each attack
is compared with the mean of the quiet phases beside it, so other work on a shared
machine drifting during the run does not pass for an effect. Per phase: the fast
consoles' p99 latency (read time - ``ingest_ns``) and bundle rate (per console),
``/healthz`` p99 (polled every 50 ms), server CPU and peak RSS, and what the attacker
sent and got back. Target: every attack within 1.5x of the quiet p99 and >= 90 % of the
quiet bundle rate. Figures: docs/security.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

from groundstation.auth import TokenIssuer

from .hostile_attacks import KINDS
from .load import common, servers
from .load.common import HOST, ROOT, CpuWindow, child_env, rss_bytes, stop_proc
from .load.pool import run_pool
from .load.servers import server, simulator

FAST_RATE = 50


def tokens() -> TokenIssuer:
    return TokenIssuer(child_env()["GROUNDSTATION_SECRET"])


class Probe:
    """``/healthz`` latency (ms) and the server's RSS, every 50 ms, in a thread, between start and stop."""

    def __init__(self, port: int, pid: int) -> None:
        self.url, self.pid = f"http://{HOST}:{port}/healthz", pid
        self.health_ms: list[float] = []
        self.rss: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Probe":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as r:
                    r.read()
                self.health_ms.append((time.perf_counter() - t) * 1e3)
            except OSError:
                self.health_ms.append(float("inf"))
            self.rss.append(rss_bytes(self.pid))
            self._stop.wait(0.05)


def wait_configured(port: int, admin: str, timeout: float = 15.0) -> None:
    """Until the server has read the TMATS (``/healthz`` details, asked as an admin)."""
    req = urllib.request.Request(f"http://{HOST}:{port}/healthz", headers={"Authorization": f"Bearer {admin}"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(req, timeout=5) as r:
            if json.loads(r.read()).get("configured"):
                return
        time.sleep(0.1)
    raise RuntimeError("the server did not configure itself from the stream")


def _pct(values: list[float], q: float) -> float:
    vals = sorted(values)
    if not vals:
        return float("nan")
    return round(vals[min(len(vals) - 1, int(q / 100 * len(vals)))], 2)


def phase(srv, name: str, args, toks: dict) -> dict:
    """One phase: the attacker (if any) over the fast console's measurement window."""
    attacker = None
    if name != "quiet":
        attacker = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.hostile_attacks", name, "--http-port", str(srv.http_port),
             "--udp-port", str(srv.udp_port), "--token", toks["mallory"], "--director", toks["dan"],
             "--garbage-rate", str(args.garbage_rate)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), cwd=ROOT)
    cpu = CpuWindow({"server": srv.pid})
    probe = Probe(srv.http_port, srv.pid)
    marks: dict = {}

    def on_measure() -> None:
        cpu.start()
        probe.start()
        marks["rss0"] = rss_bytes(srv.pid)
        if attacker is not None:
            attacker.stdin.write(f"GO {time.time_ns() + int(args.duration * 1e9)}\n")
            attacker.stdin.flush()

    def on_done() -> None:
        cpu.stop()
        probe.stop()

    try:
        fast = run_pool([srv.ws_url + "?token=" + toks["eve"]], mode="ours", consoles=args.fast, rate=FAST_RATE,
                        duration=args.duration, warmup=args.warmup, on_measure=on_measure, on_done=on_done)
        attack = {}
        if attacker is not None:
            out, err = attacker.communicate(timeout=args.duration + 30)
            line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
            attack = json.loads(line[7:]) if line else {"error": err[-500:]}
    finally:
        if attacker is not None:
            stop_proc(attacker, 5)
    return {
        "phase": name,
        "p99_ms": fast["latency_ms"]["p99"], "p50_ms": fast["latency_ms"]["p50"],
        "bundles_per_s": fast["per_console_data_per_s"], "seq_gaps": fast["seq_gaps"], "errors": fast["errors"],
        "healthz_p99_ms": _pct(probe.health_ms, 99), "healthz_max_ms": round(max(probe.health_ms, default=0), 1),
        "server_cpu_pct": cpu.result.get("server"),
        "rss_mb": round(marks.get("rss0", 0) / 2**20, 1), "rss_peak_mb": round(max(probe.rss, default=0) / 2**20, 1),
        "attack_per_s": attack.get("per_s"), "attack_replies": attack.get("replies"),
    }


def run_once(args) -> list[dict]:
    """A fresh server and simulator; every phase in turn."""
    iss = tokens()
    toks = {u: iss.issue(u, role, 3600) for u, role in
            (("eve", "engineer"), ("mallory", "viewer"), ("dan", "director"), ("ops", "admin"))}
    if args.quiet_timeout:
        common.wait_for_quiet(args.quiet_below, args.quiet_timeout)
    with server("ours-record", open_mode=False) as srv, simulator(srv.udp_port, args.bitrate):
        wait_configured(srv.http_port, toks["ops"])
        time.sleep(1.0)
        out = []
        for name in [x for a in args.attacks for x in ("quiet", a)] + ["quiet"]:
            r = phase(srv, name, args, toks)
            out.append(r)
            print(f"  {name:>13}: p99 {r['p99_ms']} ms, {r['bundles_per_s']} bundles/s, healthz p99 "
                  f"{r['healthz_p99_ms']} ms, server CPU {r['server_cpu_pct']} %, RSS {r['rss_peak_mb']} MB, "
                  f"attack {r['attack_per_s']}/s {r['attack_replies'] or ''}", flush=True)
    return out


def _beside(run: list[dict], i: int, key: str) -> float:
    """The mean of ``key`` over the quiet phases just before and after phase ``i``."""
    return statistics.mean(run[j][key] for j in (i - 1, i + 1) if 0 <= j < len(run) and run[j]["phase"] == "quiet")


def summarize(runs: list[list[dict]]) -> list[dict]:
    """Per phase kind, medians over runs (and over the quiet phases of a run) and each attack's ratios
    to the quiet phases beside it in the same run."""
    rows = []
    for name in dict.fromkeys(p["phase"] for p in runs[0]):
        at = [(r, i) for r in runs for i, p in enumerate(r) if p["phase"] == name]

        def med(k, at=at):
            vals = [r[i][k] for r, i in at if isinstance(r[i].get(k), (int, float))]
            return round(statistics.median(vals), 2) if vals else None

        row = {"phase": name, "p99_ms": med("p99_ms"), "p99_x_quiet": 1.0, "bundles_per_s": med("bundles_per_s"),
               "bundles_x_quiet": 1.0, "healthz_p99_ms": med("healthz_p99_ms"),
               "server_cpu_pct": med("server_cpu_pct"), "rss_peak_mb": med("rss_peak_mb"),
               "attack_per_s": med("attack_per_s")}
        if name != "quiet":
            row["p99_x_quiet"] = round(statistics.median(r[i]["p99_ms"] / _beside(r, i, "p99_ms") for r, i in at), 2)
            row["bundles_x_quiet"] = round(statistics.median(
                r[i]["bundles_per_s"] / _beside(r, i, "bundles_per_s") for r, i in at), 3)
        row["target_met"] = row["p99_x_quiet"] <= 1.5 and row["bundles_x_quiet"] >= 0.9
        rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hostile", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3, help="fresh processes each; figures are medians")
    p.add_argument("--duration", type=float, default=6.0, help="seconds measured per phase")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--bitrate", type=float, default=1e6)
    p.add_argument("--garbage-rate", type=float, default=20_000.0, help="garbage datagrams per second")
    p.add_argument("--attacks", nargs="+", default=KINDS, choices=KINDS, help="in this order, each between quiet phases")
    p.add_argument("--fast", type=int, default=4, help="fast consoles measured (one load-generator process)")
    p.add_argument("--json", help="write every run and the summary here")
    common.add_quiet_args(p)
    servers.add_tree_arg(p)
    args = p.parse_args(argv)
    tree = servers.prepare(args)
    runs = []
    for i in range(args.runs):
        print(f"run {i + 1}:", flush=True)
        runs.append(run_once(args))
    rows = summarize(runs)
    print(common.fmt_table(rows, list(rows[0])))
    common.write_json(args.json, args, tree=tree, summary=rows, runs=runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
