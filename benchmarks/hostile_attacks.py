"""The attacker process of ``benchmarks.hostile``: one attack at the highest rate its limits allow.

    python -m benchmarks.hostile_attacks globs --http-port P --udp-port U --token T --director D
    # then "GO <end_ns>" on stdin; prints "RESULT <json>" when the attack ends

Attacks (a viewer ``mallory`` on ``CONNECTIONS`` WebSockets at her user's message rate, 40/s over all):

- ``globs``: subscribes with 32 fresh globs (the most a subscribe may carry; never cached), each
  undone at once, alternating with the issue's stall: 10,000 short globs in one ~60 KB message.
- ``piling``: subscribes naming 10,000 parameters, kept, until the caps refuse more.
- ``backfill``: the whole recording again and again, on every connection.
- ``http-unauth``: ``GET /api/commands`` without a token, as fast as 4 keep-alive connections go.
- ``http-rejected``: a director without authority posting commands (each rejected), as fast.
- ``garbage``: random datagrams to the telemetry port at ``--garbage-rate`` per second.

The HTTP floods and the datagrams have no server-side limit to stay within (the
``hostile-http``/``lossless`` work adds them): they go as fast as this process
sends (datagrams paced, so the attacker does not take the whole machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import sys
import time
from collections import Counter

import msgpack
import websockets

HOST = "127.0.0.1"
CONNECTIONS = 4
USER_RATE = 40.0  # the server's default --user-message-rate
KINDS = ["globs", "piling", "backfill", "http-unauth", "http-rejected", "garbage"]


class Replies:
    """One attacking console: reads (and counts) every reply at once, so nothing backs up."""

    def __init__(self, ws, codes: Counter) -> None:
        self.ws, self.codes = ws, codes
        self.subscribed: list[int] = []
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                if len(raw) > 4096:  # telemetry bundles and backfill parts: counted, not decoded
                    self.codes["big"] += 1
                    continue
                m = msgpack.unpackb(raw, raw=False)
                kind = m.get("type")
                self.codes[m.get("code") if kind == "error" else kind] += 1
                if kind == "subscribed":
                    self.subscribed.append(m["sub"])
        except websockets.ConnectionClosed as exc:
            self.codes[f"closed {exc.rcvd.code if exc.rcvd else None}"] += 1


async def console_attack(kind: str, args, end_ns: int) -> dict:
    codes: Counter = Counter()
    url = f"ws://{HOST}:{args.http_port}/ws/telemetry?token={args.token}"
    conns = [Replies(await websockets.connect(url, max_size=None, compression=None), codes)
             for _ in range(CONNECTIONS)]
    huge = msgpack.packb({"type": "subscribe", "id": 0, "rate": 50, "globs": [f"*{k:04d}" for k in range(10_000)]})
    many = msgpack.packb({"type": "subscribe", "id": 0, "rate": 7, "names": ["ALT", "IAS", "EGT", "OAT", "N1"] * 2000})
    sent = 0

    async def one(i: int, c: Replies) -> None:
        nonlocal sent
        n = 0
        while time.time_ns() < end_ns:
            if kind == "globs":
                if n % 2:
                    await c.ws.send(huge)
                else:
                    globs = [f"*[{'AEIOU'[k % 5]}{i}{n % 1000:03d}]{'?' * (k % 3)}*" for k in range(32)]
                    await c.ws.send(msgpack.packb({"type": "subscribe", "id": n, "rate": 50, "globs": globs}))
                while c.subscribed:  # undone at once: every subscribe does its matching again
                    await c.ws.send(msgpack.packb({"type": "unsubscribe", "id": None, "sub": c.subscribed.pop()}))
                    sent += 1
            elif kind == "piling":
                await c.ws.send(many)
            elif n == 0:  # backfill
                await c.ws.send(msgpack.packb({"type": "subscribe", "id": 0, "rate": 50, "globs": ["*"],
                                               "since_ns": 1}))
            else:
                await c.ws.send(msgpack.packb({"type": "backfill", "id": n, "sub": 1, "since_ns": 1}))
            sent += 1
            n += 1
            await asyncio.sleep(CONNECTIONS / USER_RATE)

    await asyncio.gather(*(one(i, c) for i, c in enumerate(conns)))
    for c in conns:
        await c.ws.close()
    return {"sent": sent, "replies": dict(codes)}


async def http_flood(request: bytes, port: int, end_ns: int, connections: int = 4) -> dict:
    """Keep-alive HTTP/1.1 requests back to back on ``connections`` sockets; counts statuses."""
    codes: Counter = Counter()

    async def one() -> None:
        reader = writer = None
        while time.time_ns() < end_ns:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                codes[int(head.split(b" ", 2)[1])] += 1
                m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                if m:
                    await reader.readexactly(int(m.group(1)))
                if re.search(rb"connection:\s*close", head, re.I):
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                codes[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return {"sent": sum(codes.values()), "replies": {str(k): v for k, v in codes.items()}}


async def garbage(port: int, rate: float, end_ns: int) -> dict:
    """Random datagrams (20-1400 bytes) at ``rate`` per second, in 10 ms batches."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = errors = 0
    pool = [os.urandom(20 + (i * 137) % 1380) for i in range(256)]
    t0 = time.monotonic()
    while time.time_ns() < end_ns:
        due = int((time.monotonic() - t0) * rate)
        while sent < due:
            try:
                sock.sendto(pool[sent % 256], (HOST, port))
            except OSError:
                errors += 1
            sent += 1
        await asyncio.sleep(0.01)
    sock.close()
    return {"sent": sent, "replies": {"send_errors": errors}}


async def main(args) -> dict:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    go = line.split()
    if len(go) != 2 or go[0] != "GO":
        raise SystemExit(f"expected 'GO end_ns', got {line!r}")
    end_ns = int(go[1])
    t0 = time.time_ns()
    if args.kind in ("globs", "piling", "backfill"):
        r = await console_attack(args.kind, args, end_ns)
    elif args.kind == "http-unauth":
        r = await http_flood(f"GET /api/commands HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode(), args.http_port, end_ns)
    elif args.kind == "http-rejected":
        body = json.dumps({"name": "MARK_TEST_POINT", "args": {"test_point": 1}, "reason": "flood"}).encode()
        r = await http_flood(f"POST /api/commands HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {args.director}"
                             f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                             + body, args.http_port, end_ns)
    else:
        r = await garbage(args.udp_port, args.garbage_rate, end_ns)
    r["per_s"] = round(r["sent"] / max((time.time_ns() - t0) / 1e9, 1e-9), 1)
    return r


def cli(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hostile_attacks", description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--udp-port", type=int, default=0)
    p.add_argument("--token", default="", help="the attacking viewer's token")
    p.add_argument("--director", default="", help="a director's token (http-rejected)")
    p.add_argument("--garbage-rate", type=float, default=20_000.0)
    r = asyncio.run(main(p.parse_args(argv)))
    print("RESULT " + json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
