"""One load-generator process: its share of the consoles, each a lean ``asyncio.Protocol`` (``wsclient``).

    python -m benchmarks.load.loadgen --url ws://127.0.0.1:PORT/ws/telemetry --consoles 500 \
        --rate 20 --mode ours --out /tmp/lg0.npz        # then "GO <start_ns> <end_ns>" on stdin

Usually started by ``benchmarks.load.pool`` (``--loadgen-procs N`` processes,
figures merged). Each console connects (to the ``--url`` values in turn, so a
share spreads over several servers), (``ours``) reads the hello and subscribes
at ``--rate`` Hz to all parameters (``globs: ["*"]``) or to the first
``--params K`` of the catalog, then counts messages. Data messages carry
``ingest_ns`` (arrival of the newest datagram at the server) and ``seq``:
latency = local read time - ``ingest_ns`` (same clock), gaps = missing seq;
and, for every 8th data message, the vehicle-time age = read time - the
newest sample's time stamp (the simulator stamps with the same clock).

Protocol with the orchestrator: stdout ``CONNECTED <ok> <failed>`` once every
console is in (or failed, or ``--connect-timeout``); stdin ``GO <start_ns>
<end_ns>`` (the measurement window, wall clock, the same for every process);
stdout ``RESULT <json>`` after the window, with the samples in ``--out`` (npz).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from array import array

import msgpack
import numpy as np

from .wsclient import WSClient, connect

_unpackb = msgpack.unpackb
_Unpacker = msgpack.Unpacker
_WANT = frozenset(("seq", "type", "t", "ingest_ns", "code"))


def head(payload: bytes) -> dict:
    """The fields the load generator reads (``seq``, ``type``, ``t``, ``ingest_ns``, ``code``).

    The rest (a bundle's ``frames``, the naive peers' arrays) is skipped, not
    built: a full ``unpackb`` of a 7-group bundle costs ~14 us, this ~3 us.
    One ``Unpacker`` serves the whole process (a fresh one per message costs more
    than the parse); each message is consumed whole.
    """
    global _u
    u = _u
    u.feed(payload)
    out = {}
    try:
        for _ in range(u.read_map_header()):
            k = u.unpack()
            if k in _WANT:
                out[k] = u.unpack()
            else:
                u.skip()
    except Exception:  # not one msgpack map: start afresh (the message is counted as having no fields)
        _u = _Unpacker()
    return out


_u = _Unpacker()

AGE_EVERY = 8  # a full unpack costs ~14 us for a bundle: the vehicle-time age is sampled


def newest_sample_ns(payload: bytes) -> int:
    """The newest vehicle sample time in a data message: ours ``max(frames[].last_t)``, the naive peers' ``max(t)``.

    The simulator stamps samples with its wall clock (Chapter 10 time), so read
    time minus this is the age of the data since the vehicle sampled it: it
    includes the wait in the vehicle and any backlog in the server's UDP socket
    (which ``ingest_ns``, taken when the server reads the datagram, cannot see).
    """
    m = _unpackb(payload)
    frames = m.get("frames")
    arrays = [f["last_t"] for f in frames if "last_t" in f] if frames is not None else [m.get("t")]
    best = 0
    for a in arrays:
        if isinstance(a, bytes) and len(a) >= 8:
            best = max(best, int(np.frombuffer(a, "<i8").max()))
    return best


class Window:
    """The measurement window (wall clock ns), shared by all consoles of this process."""

    start_ns = 1 << 62
    end_ns = 1 << 62
    groups = 0  # parameter groups in the catalog (ours)


class Console:
    """One console's counters; ``on_message`` runs for every message it receives."""

    __slots__ = ("win", "lat", "fan", "age", "msgs", "data", "gaps", "last_seq", "bytes", "errors", "hello", "ws")

    def __init__(self, win: Window) -> None:
        self.win = win
        self.lat = array("q")  # read time - ingest_ns
        self.fan = array("q")  # read time - t (ours: the tick that encoded the bundle)
        self.age = array("q")  # read time - newest vehicle sample time (every AGE_EVERY-th data message)
        self.msgs = self.data = self.gaps = self.bytes = 0
        self.last_seq: int | None = None
        self.errors: list[str] = []
        self.hello: asyncio.Future | None = None
        self.ws: WSClient | None = None

    def on_message(self, payload: bytes, t: int) -> None:
        if self.hello is not None and not self.hello.done():
            self.hello.set_result(_unpackb(payload))
            return
        m = head(payload)
        seq = m.get("seq")
        if seq is not None:  # gaps over the whole session, counted in the window
            last = self.last_seq
            self.last_seq = seq
            if last is not None and seq > last + 1 and self.win.start_ns <= t < self.win.end_ns:
                self.gaps += seq - last - 1
        if m.get("type") == "error":
            self.errors.append(str(m.get("code")))
        if not (self.win.start_ns <= t < self.win.end_ns):
            return
        self.msgs += 1
        self.bytes += len(payload)
        ing = m.get("ingest_ns")
        if ing is not None:
            self.data += 1
            self.lat.append(t - ing)
            tick = m.get("t")
            if tick.__class__ is int:
                self.fan.append(t - tick)
            if self.data % AGE_EVERY == 1:
                newest = newest_sample_ns(payload)
                if newest:
                    self.age.append(t - newest)


async def open_console(url: str, args: argparse.Namespace, c: Console, sem: asyncio.Semaphore) -> None:
    async with sem:
        if args.mode == "ours":
            c.hello = asyncio.get_running_loop().create_future()
        c.ws = await connect(url, c.on_message, args.connect_timeout)
        sub: dict = {"type": "subscribe", "id": 1, "rate": args.rate}
        if args.mode == "ours":  # the naive peers send no hello and ignore subscriptions
            hello = await asyncio.wait_for(c.hello, args.connect_timeout)
            catalog = hello.get("catalog", {})
            c.win.groups = len(catalog.get("groups", []))
            params = [p["name"] for p in catalog.get("params", [])]
            if args.params and params:
                sub["names"] = params[:args.params]
            else:
                sub["globs"] = ["*"]
        else:
            sub["globs"] = ["*"]
        c.ws.send_binary(msgpack.packb(sub))


async def loop_lag(out: array, win: Window, stop: asyncio.Event) -> None:
    """How late a 10 ms sleep wakes up: this process's own saturation."""
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.01)
        if win.start_ns <= time.time_ns() < win.end_ns:
            out.append(int((time.perf_counter() - t0 - 0.01) * 1e9))


async def read_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def main(args: argparse.Namespace) -> dict:
    win = Window()
    consoles = [Console(win) for _ in range(args.consoles)]
    sem = asyncio.Semaphore(args.connect_concurrency)
    urls = args.url
    tasks = [asyncio.ensure_future(open_console(urls[i % len(urls)], args, c, sem)) for i, c in enumerate(consoles)]
    t0 = time.monotonic()
    done, pending = await asyncio.wait(tasks, timeout=args.connect_timeout) if tasks else (set(), set())
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)  # settled, so exception() below may be asked
    errors: dict[str, int] = {}
    for t in tasks:
        exc = None if t.cancelled() else t.exception()
        if exc is not None or t.cancelled():
            key = "connect timeout" if t.cancelled() else f"{type(exc).__name__}: {exc}"[:120]
            errors[key] = errors.get(key, 0) + 1
    ok = [c for c in consoles if c.ws is not None and (c.hello is None or c.hello.done()) and not c.ws.closed.done()]
    print(f"CONNECTED {len(ok)} {args.consoles - len(ok)} {time.monotonic() - t0:.2f}", flush=True)
    stop = asyncio.Event()
    lag = array("q")
    lag_task = asyncio.ensure_future(loop_lag(lag, win, stop))
    go = (await read_line()).split()
    if len(go) != 3 or go[0] != "GO":
        raise SystemExit(f"expected 'GO start end', got {go!r}")
    win.start_ns, win.end_ns = int(go[1]), int(go[2])
    await asyncio.sleep(max(0.0, (win.start_ns - time.time_ns()) / 1e9))
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(max(0.0, (win.end_ns - time.time_ns()) / 1e9))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    seconds = (win.end_ns - win.start_ns) / 1e9
    stop.set()
    lag_task.cancel()
    closed_early = sum(1 for c in ok if c.ws.closed.done())
    for c in consoles:
        if c.ws is not None:
            c.ws.close()
        for e in c.errors:
            errors[e] = errors.get(e, 0) + 1
        if c.ws is not None and c.ws.close_code is not None:
            k = f"closed {c.ws.close_code}"
            errors[k] = errors.get(k, 0) + 1
    per_p99 = [float(np.percentile(np.frombuffer(c.lat, np.int64), 99)) for c in ok if len(c.lat)]
    np.savez(args.out,
             lat=np.concatenate([np.frombuffer(c.lat, np.int64) for c in ok] or [np.zeros(0, np.int64)]),
             fan=np.concatenate([np.frombuffer(c.fan, np.int64) for c in ok] or [np.zeros(0, np.int64)]),
             age=np.concatenate([np.frombuffer(c.age, np.int64) for c in ok] or [np.zeros(0, np.int64)]),
             counts=np.array([c.data for c in ok], np.int64), per_p99=np.array(per_p99), lag=np.frombuffer(lag, np.int64))
    return {
        "consoles": args.consoles, "connected": len(ok), "closed_in_window": closed_early,
        "seconds": seconds, "messages": sum(c.msgs for c in ok), "bytes": sum(c.bytes for c in ok),
        "seq_gaps": sum(c.gaps for c in ok), "consoles_with_gaps": sum(1 for c in ok if c.gaps),
        "groups": win.groups, "errors": errors,
        "cpu_pct": round((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / seconds * 100, 1),
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.loadgen", description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, nargs="+", help="console URLs; consoles are spread over them in turn")
    p.add_argument("--mode", choices=["ours", "naive"], default="ours")
    p.add_argument("--consoles", type=int, default=100)
    p.add_argument("--rate", type=int, default=20)
    p.add_argument("--params", type=int, default=0, help="subscribe to the catalog's first K parameters (0: all)")
    p.add_argument("--out", required=True, help="npz file for the samples")
    p.add_argument("--connect-concurrency", type=int, default=64)
    p.add_argument("--connect-timeout", type=float, default=120.0)
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop" if _has_uvloop() else "asyncio",
                   help="event loop (uvloop when installed, from the bench extra: ~12 %% less CPU per message here)")
    return p.parse_args(argv)


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def cli(argv=None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.loop == "uvloop":
        import uvloop
        result = uvloop.run(main(args))
    else:
        result = asyncio.run(main(args))
    result["loop"] = args.loop
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
