"""Soak: a long run at a high bit rate with many consoles; memory must stay flat, nothing lost (issue #9).

    python -m benchmarks.soak --minutes 30 --consoles 200 --bitrate 10e6 --json /tmp/soak.json

One server (``groundstation serve --open``), the simulator as its own process
(``groundstation simulate``) and ``--consoles`` consoles in this process (the
independent ``websockets`` client), each subscribed to every parameter at
``--rate`` Hz and reading continuously. Every ``--sample`` seconds: server RSS
and CPU, consoles open, UDP datagrams lost, decode errors. At the end: each
console's ``seq`` gaps (a gap means the server conflated: the console fell
behind), the RSS trend over the second half (MB per 10 minutes, least squares)
and the totals. The run stops itself after ``--minutes``; Ctrl-C stops early
and still reports. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

import msgpack
import numpy as np
import websockets

from benchmarks.slow_consoles import health, rss_mb
from tests.live import pack, server


class Reader:
    """One console: subscribe to everything, read, count messages and seq gaps."""

    def __init__(self) -> None:
        self.messages = self.gaps = self.bytes = 0
        self.last_seq: int | None = None
        self.closed: str | None = None

    async def run(self, url: str, rate: int, stop: asyncio.Event) -> None:
        try:
            async with websockets.connect(url, max_size=None, compression=None) as ws:
                await ws.send(pack({"type": "subscribe", "id": 1, "rate": rate, "globs": ["*"]}))
                while not stop.is_set():
                    try:
                        frame = await asyncio.wait_for(ws.recv(), 1.0)
                    except asyncio.TimeoutError:
                        continue
                    seq = msgpack.unpackb(frame, raw=False)["seq"]
                    if self.last_seq is not None and seq != self.last_seq + 1:
                        self.gaps += 1
                    self.last_seq = seq
                    self.messages += 1
                    self.bytes += len(frame)
        except (OSError, websockets.ConnectionClosed) as exc:
            self.closed = f"{type(exc).__name__}: {exc}"[:200]


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def soak(minutes: float, consoles: int, bitrate: float, rate: int, sample_s: float) -> dict:
    with server("--max-connections-per-address", "0") as srv:
        sim = subprocess.Popen([sys.executable, "-m", "groundstation.cli", "simulate", "--to",
                                f"127.0.0.1:{srv.udp_port}", "--bitrate", str(int(bitrate)),
                                "--uplink", "127.0.0.1:0", "--duration", str(minutes * 60 + 30)],
                               stdout=subprocess.DEVNULL)
        stop = asyncio.Event()
        readers = [Reader() for _ in range(consoles)]
        tasks = []
        try:
            deadline = time.monotonic() + 15
            while not health(srv).get("configured") and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            for r in readers:
                tasks.append(asyncio.ensure_future(r.run(srv.ws_url, rate, stop)))
                await asyncio.sleep(0.005)
            await asyncio.sleep(5)  # warm-up
            samples = []
            t0, cpu0 = time.monotonic(), cpu_s(srv.proc.pid)
            end = t0 + minutes * 60
            while time.monotonic() < end:
                await asyncio.sleep(min(sample_s, max(end - time.monotonic(), 0.01)))
                h = health(srv)
                samples.append({"t_s": round(time.monotonic() - t0, 1), "rss_mb": round(rss_mb(srv.proc.pid), 1),
                                "consoles": h["consoles"], "udp_lost": h["udp"]["lost"], "udp_gaps": h["udp"]["gaps"],
                                "decode_errors": h["ingest"]["decode_errors"], "link": h["link"]["state"],
                                "messages": sum(r.messages for r in readers)})
                print(json.dumps(samples[-1]), flush=True)
            elapsed = time.monotonic() - t0
            cpu = cpu_s(srv.proc.pid) - cpu0
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            sim.terminate()
            sim.wait(10)
    t = np.array([s["t_s"] for s in samples])
    rss = np.array([s["rss_mb"] for s in samples])
    half = t >= t[-1] / 2 if len(t) else t
    slope = float(np.polyfit(t[half], rss[half], 1)[0]) * 600 if half.sum() >= 2 else float("nan")
    return {
        "minutes": round(elapsed / 60, 2), "consoles": consoles, "bitrate": bitrate, "rate_hz": rate,
        "rss_first_mb": float(rss[0]), "rss_last_mb": float(rss[-1]), "rss_max_mb": float(rss.max()),
        "rss_trend_second_half_mb_per_10min": round(slope, 2),
        "server_cpu_pct": round(100 * cpu / elapsed, 1),
        "console_messages": sum(r.messages for r in readers),
        "console_mb": round(sum(r.bytes for r in readers) / 1e6, 1),
        "console_seq_gaps": sum(r.gaps for r in readers),
        "consoles_with_gaps": sum(1 for r in readers if r.gaps),
        "consoles_closed": [r.closed for r in readers if r.closed][:5],
        "consoles_open_min": min(s["consoles"] for s in samples),
        "udp_datagrams_lost": samples[-1]["udp_lost"], "udp_gaps": samples[-1]["udp_gaps"],
        "decode_errors": samples[-1]["decode_errors"],
        "link_not_ok_samples": sum(1 for s in samples if s["link"] != "OK"),
        "load": os.getloadavg(),
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--consoles", type=int, default=200)
    p.add_argument("--bitrate", type=float, default=10e6)
    p.add_argument("--rate", type=int, default=10, help="console update rate, Hz")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)
    try:
        out = asyncio.run(soak(args.minutes, args.consoles, args.bitrate, args.rate, args.sample))
    except KeyboardInterrupt:
        return 130
    summary = {k: v for k, v in out.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
