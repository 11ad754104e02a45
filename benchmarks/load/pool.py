"""Several load-generator processes as one: start them, open one common window, merge their figures.

``run_pool(urls, consoles=2000, procs=4, ...)`` splits the consoles over
``procs`` processes of ``benchmarks.load.loadgen`` (each spreads its share over
``urls``: one URL per server, or one per edge of a cluster), waits until every
process has its consoles connected, sends them all the same wall-clock window
(``GO start end``), and merges: latency percentiles from the merged samples
(not an average of percentiles), gaps and deliveries summed, the worst
console's p99, CPU per process and in total.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import numpy as np

from .common import ROOT, child_env, stop_proc


def _pct(a: np.ndarray, q: float) -> float:
    return round(float(np.percentile(a, q)) / 1e6, 2) if len(a) else float("nan")


def _ms(a: np.ndarray) -> dict:
    return {"p50": _pct(a, 50), "p90": _pct(a, 90), "p99": _pct(a, 99),
            "max": round(float(a.max()) / 1e6, 2) if len(a) else float("nan")}


def split(n: int, parts: int) -> list[int]:
    """``n`` consoles over ``parts`` processes, as even as possible (no empty process)."""
    parts = max(1, min(parts, n)) if n else 1
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _readline(proc: subprocess.Popen, prefix: str, deadline: float) -> str:
    """The next stdout line of ``proc`` starting with ``prefix`` (a reader thread keeps the deadline)."""
    box: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            if line.startswith(prefix):
                box.append(line)
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(max(0.1, deadline - time.monotonic()))
    if not box:
        raise RuntimeError(f"load generator gave no {prefix.strip()} (rc={proc.poll()}): {_err(proc)}")
    return box[0]


def _err(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        return "(still running)"
    return (proc.stderr.read() or "")[-2000:] if proc.stderr else ""


def run_pool(urls: list[str], *, mode: str, consoles: int, rate: int, duration: float, warmup: float,
             procs: int = 1, params: int = 0, on_measure: Callable[[], None] | None = None,
             on_done: Callable[[], None] | None = None, connect_timeout: float | None = None) -> dict:
    """Run the load generators and return the merged figures (same keys as one process gave before)."""
    connect_timeout = connect_timeout or (30 + consoles * 0.05)
    tmp = tempfile.mkdtemp(prefix="gs-loadgen-")
    shares = split(consoles, procs)
    children: list[tuple[subprocess.Popen, str]] = []
    try:
        for i, share in enumerate(shares):
            out = os.path.join(tmp, f"lg{i}.npz")
            args = [sys.executable, "-m", "benchmarks.load.loadgen", "--url", *urls, "--mode", mode,
                    "--consoles", str(share), "--rate", str(rate), "--params", str(params), "--out", out,
                    "--connect-timeout", str(connect_timeout)]
            if os.environ.get("GS_LOADGEN_LOOP"):  # uvloop / asyncio (default: uvloop when installed)
                args += ["--loop", os.environ["GS_LOADGEN_LOOP"]]
            p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=child_env(), cwd=ROOT)
            children.append((p, out))
        deadline = time.monotonic() + connect_timeout + 15
        t0 = time.monotonic()
        connected = [_readline(p, "CONNECTED ", deadline).split() for p, _ in children]
        connect_s = time.monotonic() - t0
        start = time.time_ns() + int(warmup * 1e9)
        end = start + int(duration * 1e9)
        for p, _ in children:
            p.stdin.write(f"GO {start} {end}\n")
            p.stdin.flush()
        time.sleep(max(0.0, (start - time.time_ns()) / 1e9))
        if on_measure:
            on_measure()
        time.sleep(max(0.0, (end - time.time_ns()) / 1e9))
        if on_done:
            on_done()
        deadline = time.monotonic() + 30 + consoles * 0.01
        results = [json.loads(_readline(p, "RESULT ", deadline)[7:]) for p, _ in children]
        data = [dict(np.load(out)) for _, out in children]
    finally:
        for p, _ in children:
            stop_proc(p, 5)
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    return merge(results, data, mode=mode, rate=rate, consoles=consoles, connect_s=connect_s,
                 connected_lines=connected)


def merge(results: list[dict], data: list[dict], *, mode: str, rate: int, consoles: int, connect_s: float,
          connected_lines: list[list[str]]) -> dict:
    """One result from the processes' results and samples."""
    cat = lambda k: np.concatenate([d[k] for d in data])  # noqa: E731
    lat, fan, counts, per_p99, lag = cat("lat"), cat("fan"), cat("counts"), cat("per_p99"), cat("lag")
    age = cat("age")
    seconds = results[0]["seconds"]
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    nominal = rate * seconds if mode == "ours" else None  # ours: one bundle per console per tick
    connected = sum(r["connected"] for r in results)
    median = float(np.median(counts)) if len(counts) else 0.0
    cpus = [r["cpu_pct"] for r in results]
    return {
        "mode": mode, "consoles": consoles, "connected": connected, "connect_s": round(connect_s, 2),
        "loadgen_procs": len(results), "rate_hz": rate, "seconds": round(seconds, 3),
        "messages": sum(r["messages"] for r in results),
        "data_messages": int(counts.sum()),
        "deliveries_per_s": round(float(counts.sum()) / seconds, 1),
        "mbytes_per_s": round(sum(r["bytes"] for r in results) / seconds / 1e6, 2),
        "per_console_data_per_s": round(median / seconds, 1),
        "groups": max(r["groups"] for r in results),
        "delivered_fraction": round(median / nominal, 3) if nominal else None,
        "min_console_fraction": round(float(counts.min()) / nominal, 3) if nominal and len(counts) else None,
        "latency_ms": {**_ms(lat), "worst_console_p99": round(float(per_p99.max()) / 1e6, 2)
                       if len(per_p99) else float("nan")},
        "tick_to_console_ms": _ms(fan) if len(fan) else None,
        "vehicle_age_ms": _ms(age),  # read time - newest sample's vehicle time stamp (sampled: 1 data message in 8)
        "seq_gaps": sum(r["seq_gaps"] for r in results),
        "consoles_with_gaps": sum(r["consoles_with_gaps"] for r in results),
        "closed_in_window": sum(r["closed_in_window"] for r in results),
        "errors": errors,
        "loadgen_cpu_pct": round(sum(cpus), 1),
        "loadgen_cpu_max_proc_pct": max(cpus),
        "loadgen_loop_lag_ms": {"p50": _pct(lag, 50), "p99": _pct(lag, 99)},
    }
