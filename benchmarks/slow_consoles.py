"""Slow and dead consoles beside a fast one (issue #9).

    python -m benchmarks.slow_consoles --stalled 50 --runs 3 --json /tmp/slow.json

One server (``groundstation serve --open``) and the vehicle simulator. A fast
console (the independent ``websockets`` client) subscribes to every parameter
at 50 Hz and reads continuously. Phase 1 (baseline) measures its data age
(receive time minus the tick time ``t``); phase 2 adds ``--stalled`` consoles
that subscribe at ten rates and then never read a byte (raw TCP, a 4 KiB
receive buffer): the server must conflate them and close them (4008), keep
its memory bounded and leave the fast console's p99 within 2x its baseline.
Figures: p50/p99 per phase, the ratio, server RSS before / peak / after, how
the stalled consoles ended. ``tests/test_faults_consoles.py`` runs it short.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import socket
import statistics
import sys
import time
import urllib.request

import numpy as np

from tests.live import Console, Sim, pack, server

RATES = tuple(range(50, 40, -1))  # ten tiers: many bundles per second fill a stalled outbox fast


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def health(srv) -> dict:
    with urllib.request.urlopen(srv.http_url + "/healthz", timeout=5) as r:
        return json.loads(r.read())


def metric(srv, name: str) -> float:
    with urllib.request.urlopen(srv.http_url + "/metrics", timeout=5) as r:
        m = re.search(rf"^{name} ([\d.e+]+)$", r.read().decode(), re.M)
    return float(m.group(1)) if m else 0.0


def ws_client_frame(payload: bytes) -> bytes:
    """A masked, final, binary client frame (RFC 6455 5.2; the mask is zero, which is allowed)."""
    n = len(payload)
    head = bytes((0x82, 0x80 | n)) if n < 126 else b"\x82\xfe" + n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


def stalled_console(port: int, rcvbuf: int = 4096) -> socket.socket:
    """A console that completes the handshake, subscribes to everything at ten rates, then stops reading."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /ws/telemetry HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("handshake refused")
        reply += chunk
    if b" 101 " not in reply.split(b"\r\n", 1)[0]:
        raise ConnectionError(reply.split(b"\r\n", 1)[0].decode())
    for i, rate in enumerate(RATES):
        s.sendall(ws_client_frame(pack({"type": "subscribe", "id": i + 1, "rate": rate, "globs": ["*"]})))
    return s


async def fast_console_ages(c: Console, seconds: float) -> tuple[list[float], int]:
    """Data ages (ms) seen by a console that reads continuously for ``seconds``; and its seq gaps."""
    ages, seqs = [], []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            m = await c.recv(left)
        except (TimeoutError, asyncio.TimeoutError):
            break
        if m["type"] == "data":
            ages.append((time.time_ns() - m["t"]) / 1e6)
        if not seqs or m["seq"] != seqs[-1]:
            seqs.append(m["seq"])
    c.messages.clear()
    gaps = int(np.sum(np.diff(seqs) != 1)) if len(seqs) > 1 else 0
    return ages, gaps


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def run(stalled: int = 50, baseline_s: float = 5.0, stalled_s: float = 8.0, bitrate: float = 1e6,
              max_behind_s: float = 2.0) -> dict:
    """One run: baseline, then ``stalled`` dead consoles for ``stalled_s``; figures as a dict."""
    with server("--console-max-behind", str(max_behind_s), "--max-connections-per-address", "0") as srv:
        sim = Sim(srv.udp_port, bit_rate=bitrate).start()
        try:
            fast = await Console.connect(srv.ws_url)
            await fast.until(lambda m: m["type"] == "link" and m["state"] == "OK", 10)
            await fast.catalog()
            await fast.subscribe(50, globs=["*"])
            await fast_console_ages(fast, 1.0)  # warm-up
            rss_before = rss_mb(srv.proc.pid)
            base, base_gaps = await fast_console_ages(fast, baseline_s)
            socks = await asyncio.gather(*(asyncio.to_thread(stalled_console, srv.http_port) for _ in range(stalled)))
            peak = rss_before
            ages, gaps, open_counts = [], 0, []
            end = time.monotonic() + stalled_s
            while time.monotonic() < end:
                a, g = await fast_console_ages(fast, 0.5)
                ages += a
                gaps += g
                peak = max(peak, rss_mb(srv.proc.pid))
                open_counts.append(health(srv)["consoles"])
            for s in socks:
                s.close()
            await asyncio.sleep(1.0)
            out = {
                "stalled": stalled, "bitrate": bitrate,
                "baseline_p50_ms": _p(base, 50), "baseline_p99_ms": _p(base, 99), "baseline_seq_gaps": base_gaps,
                "stalled_p50_ms": _p(ages, 50), "stalled_p99_ms": _p(ages, 99), "stalled_seq_gaps": gaps,
                "fast_data_messages": len(base) + len(ages),
                "p99_ratio": _p(ages, 99) / _p(base, 99) if base else float("nan"),
                "rss_before_mb": rss_before, "rss_peak_mb": peak, "rss_after_mb": rss_mb(srv.proc.pid),
                "consoles_open_min": min(open_counts), "consoles_open_end": health(srv)["consoles"],
                "frames_conflated": metric(srv, "gs_console_frames_conflated_total"),
                "slow_closes": metric(srv, "gs_console_slow_closes_total"),
            }
            await fast.close()
            return out
        finally:
            await sim.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stalled", type=int, default=50)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--baseline", type=float, default=5.0, help="seconds")
    p.add_argument("--duration", type=float, default=8.0, help="seconds with the stalled consoles")
    p.add_argument("--bitrate", type=float, default=1e6)
    p.add_argument("--json", help="write the runs and medians here")
    args = p.parse_args(argv)
    runs = [asyncio.run(run(args.stalled, args.baseline, args.duration, args.bitrate)) for _ in range(args.runs)]
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    for k in keys:
        print(f"{k:>24}: median {med[k]:10.2f}   runs {[round(r[k], 2) for r in runs]}")
    print(f"load: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "median": med, "load": os.getloadavg()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
