"""The load generator: N WebSocket consoles in ONE asyncio process (the ``websockets`` library).

    python -m benchmarks.load.loadgen --url ws://127.0.0.1:PORT/ws/telemetry --consoles 100 \
        --rate 20 --duration 10 --warmup 2 [--mode ours|naive]

Each console connects, (``ours``) waits for the hello and subscribes to all
parameters (``globs: ["*"]``) at ``--rate`` Hz, then counts messages. Data
messages carry ``ingest_ns`` (arrival time of the newest datagram at the
server) and ``seq``; latency = local receive time - ``ingest_ns`` (same clock,
same machine). Only the msgpack map is unpacked: array blobs stay ``bytes``.

Protocol on stdout (for the orchestrator): ``MEASURE <ns>`` when the window
opens, ``DONE <ns>`` when it closes, then ``RESULT <json>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from array import array

import msgpack
import numpy as np
import websockets

_unpackb = msgpack.unpackb


class Stats:
    __slots__ = ("lat", "fan", "msgs", "data", "gaps", "last_seq", "bytes", "errors", "closed", "groups", "flowing")

    def __init__(self) -> None:
        self.lat = array("q")  # receive - ingest_ns: datagram arrival at the server to this console
        self.fan = array("q")  # receive - t (ours): tick (frame encoded) to this console
        self.msgs = 0  # every message in the window
        self.data = 0  # data messages in the window
        self.gaps = 0  # missing seq numbers (in the window)
        self.last_seq = None
        self.bytes = 0
        self.errors: list[str] = []
        self.closed = None
        self.groups = 0
        self.flowing = False  # a data message has arrived (before that, replies are checked for errors)


class Progress:
    """Connection progress shared by all consoles: ``ready`` is set once every console is in or failed."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.connected: list = []
        self.failed = 0
        self.ready = asyncio.Event()

    def check(self) -> None:
        if len(self.connected) + self.failed >= self.target:
            self.ready.set()


class Window:
    """The measurement window, shared by all consoles."""

    open = False
    start_ns = 0
    end_ns = 0


async def console(url: str, mode: str, rate: int, st: Stats, win: Window, progress: Progress,
                  sem: asyncio.Semaphore, stop: asyncio.Event) -> None:
    try:
        async with sem:
            ws = await websockets.connect(url, compression=None, max_size=None, ping_interval=None,
                                          open_timeout=60, close_timeout=2)
            if mode == "ours":  # the naive peer sends no hello and ignores the subscription
                hello = _unpackb(await ws.recv())
                st.groups = len(hello.get("catalog", {}).get("groups", []))
            await ws.send(msgpack.packb({"type": "subscribe", "id": 1, "rate": rate, "globs": ["*"]}))
        progress.connected.append(ws)
        progress.check()
        now = time.time_ns
        lat_append = st.lat.append
        fan_append = st.fan.append
        async for data in ws:
            t = now()
            if not win.open:
                if stop.is_set():
                    break
                if not st.flowing:
                    m = _unpackb(data)
                    if "ingest_ns" in m:
                        st.flowing = True
                    elif m.get("type") == "error":
                        st.errors.append(f"{m.get('code')}: {m.get('message')}")
                continue
            m = _unpackb(data)
            st.msgs += 1
            st.bytes += len(data)
            seq = m.get("seq")
            if seq is not None:
                if st.last_seq is not None and seq > st.last_seq + 1:
                    st.gaps += seq - st.last_seq - 1
                st.last_seq = seq
            ing = m.get("ingest_ns")
            if ing is not None:
                st.data += 1
                lat_append(t - ing)
                tick = m.get("t")
                if tick.__class__ is int:
                    fan_append(t - tick)
            elif m.get("type") == "error":
                st.errors.append(str(m.get("code")))
    except websockets.ConnectionClosed as exc:
        st.closed = f"{exc.rcvd.code if exc.rcvd else None} {exc.rcvd.reason if exc.rcvd else ''}".strip()
    except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as exc:
        st.errors.append(f"{type(exc).__name__}: {exc}")
        progress.failed += 1
        progress.check()


async def loop_lag(win: Window, out: array, stop: asyncio.Event) -> None:
    """How late a 10 ms sleep wakes up: the load generator's own saturation."""
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.01)
        if win.open:
            out.append(int((time.perf_counter() - t0 - 0.01) * 1e9))


def _pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) / 1e6 if len(a) else float("nan")


async def main(args: argparse.Namespace) -> dict:
    stats = [Stats() for _ in range(args.consoles)]
    win = Window()
    progress = Progress(args.consoles)
    sem = asyncio.Semaphore(args.connect_concurrency)
    stop = asyncio.Event()
    t_connect = time.monotonic()
    tasks = [asyncio.ensure_future(console(args.url, args.mode, args.rate, st, win, progress, sem, stop))
             for st in stats]
    lag = array("q")
    lag_task = asyncio.ensure_future(loop_lag(win, lag, stop))
    try:
        await asyncio.wait_for(progress.ready.wait(), args.connect_timeout)
    except asyncio.TimeoutError:
        pass  # measure with those that made it; "connected" tells
    connected = list(progress.connected)
    connect_s = time.monotonic() - t_connect
    await asyncio.sleep(args.warmup)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    win.start_ns = time.time_ns()
    win.open = True
    print(f"MEASURE {win.start_ns}", flush=True)
    t0 = time.monotonic()
    await asyncio.sleep(args.duration)
    win.open = False
    win.end_ns = time.time_ns()
    seconds = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    print(f"DONE {win.end_ns}", flush=True)
    stop.set()
    lag_task.cancel()
    await asyncio.gather(*(ws.close() for ws in connected), return_exceptions=True)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    lat = np.concatenate([np.frombuffer(s.lat, np.int64) for s in stats]) if stats else np.zeros(0, np.int64)
    fan = np.concatenate([np.frombuffer(s.fan, np.int64) for s in stats]) if stats else np.zeros(0, np.int64)
    per_p99 = [float(np.percentile(np.frombuffer(s.lat, np.int64), 99)) / 1e6 for s in stats if len(s.lat)]
    groups = max((s.groups for s in stats), default=0)
    # ours: one bundle per console per tick (all its groups); the naive peer has no ticks
    nominal = args.rate * seconds if args.mode == "ours" else None
    data_counts = np.array([s.data for s in stats])
    errors: dict[str, int] = {}
    for s in stats:
        for e in s.errors:
            errors[e] = errors.get(e, 0) + 1
        if s.closed:
            errors["closed " + s.closed] = errors.get("closed " + s.closed, 0) + 1
    lag_a = np.frombuffer(lag, np.int64)
    cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / seconds * 100
    return {
        "mode": args.mode,
        "consoles": args.consoles,
        "connected": len(connected),
        "connect_s": round(connect_s, 2),
        "rate_hz": args.rate,
        "seconds": round(seconds, 3),
        "messages": int(sum(s.msgs for s in stats)),
        "data_messages": int(data_counts.sum()),
        "deliveries_per_s": round(float(data_counts.sum()) / seconds, 1),
        "mbytes_per_s": round(sum(s.bytes for s in stats) / seconds / 1e6, 2),
        "per_console_data_per_s": round(float(np.median(data_counts)) / seconds, 1) if len(stats) else 0.0,
        "groups": groups,
        "delivered_fraction": (round(float(np.median(data_counts)) / nominal, 3) if nominal else None),
        "min_console_fraction": (round(float(data_counts.min()) / nominal, 3) if nominal and len(stats) else None),
        "latency_ms": {"p50": round(_pct(lat, 50), 2), "p90": round(_pct(lat, 90), 2),
                       "p99": round(_pct(lat, 99), 2), "max": round(float(lat.max()) / 1e6 if len(lat) else
                                                                   float("nan"), 2),
                       "worst_console_p99": round(max(per_p99), 2) if per_p99 else float("nan")},
        "tick_to_console_ms": ({"p50": round(_pct(fan, 50), 2), "p99": round(_pct(fan, 99), 2),
                                "max": round(float(fan.max()) / 1e6, 2)} if len(fan) else None),
        "seq_gaps": int(sum(s.gaps for s in stats)),
        "consoles_with_gaps": int(sum(1 for s in stats if s.gaps)),
        "errors": errors,
        "loadgen_cpu_pct": round(cpu, 1),
        "loadgen_loop_lag_ms": {"p50": round(_pct(lag_a, 50), 2), "p99": round(_pct(lag_a, 99), 2),
                                "max": round(float(lag_a.max()) / 1e6 if len(lag_a) else float("nan"), 2)},
        "loadgen_pid": os.getpid(),
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.loadgen", description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--mode", choices=["ours", "naive"], default="ours")
    p.add_argument("--consoles", type=int, default=100)
    p.add_argument("--rate", type=int, default=20)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connect-concurrency", type=int, default=64)
    p.add_argument("--connect-timeout", type=float, default=120.0)
    return p.parse_args(argv)


def cli(argv=None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = asyncio.run(main(args))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
