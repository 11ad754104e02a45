"""Redis traffic of the scale-out does not grow with the consoles.

A private redis-server, one ingest node, one edge node, the simulator; N consoles
on the edge subscribe to every parameter at 20 Hz. For each N, over a window:
PUBLISH calls and bytes on Redis per second (``INFO commandstats``), bundles the
edge delivered per second, data messages the consoles received.

    python benchmarks/bench_bus.py --consoles 10 100 300 --seconds 5 [--json out.json]

``--outage N``: then, with the last N consoles connected, SIGKILL redis-server, start it again
(same port, empty) after ``--down`` seconds and time how long until every console has live data
again, and check that no node died.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster import redis_server  # noqa: E402
from tests.live import Console, Sim, server  # noqa: E402


def publish_stats(client) -> tuple[int, int]:
    """(PUBLISH calls, bytes received by Redis from clients so far)."""
    calls = client.info("commandstats").get("cmdstat_publish", {}).get("calls", 0)
    return int(calls), int(client.info("stats")["total_net_input_bytes"])


def metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    m = re.search(rf"^{name}(?:_total)? ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


async def measure(n: int, seconds: float, edge, client) -> dict:
    cons = [await Console.connect(edge.ws_url) for _ in range(n)]
    await cons[0].catalog()
    for c in cons:
        await c.send({"type": "subscribe", "id": 1, "rate": 20, "globs": ["*"]})
    await asyncio.sleep(1.0)  # demand reaches the ingest node, queues settle
    received = [0]

    async def drain(c: Console) -> None:
        while True:
            raw = await c.ws.recv()
            received[0] += 1 if raw else 0

    tasks = [asyncio.ensure_future(drain(c)) for c in cons]
    p0, b0 = publish_stats(client)
    d0 = metric(edge.http_url, "gs_deliveries")
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    dt = time.monotonic() - t0
    p1, b1 = publish_stats(client)
    d1 = metric(edge.http_url, "gs_deliveries")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*(c.close() for c in cons), return_exceptions=True)
    return {"consoles": n, "publishes_per_s": round((p1 - p0) / dt, 1),
            "redis_in_kB_per_s": round((b1 - b0) / dt / 1024, 1),
            "edge_bundles_per_s": round((d1 - d0) / dt, 1),
            "per_console_bundles_per_s": round((d1 - d0) / dt / n, 1)}


async def outage(n: int, down_s: float, rs, nodes, edge) -> dict:
    """Kill Redis under load, restart it, time the recovery of every console."""
    cons = [await Console.connect(edge.ws_url) for _ in range(n)]
    await cons[0].catalog()
    for c in cons:
        await c.send({"type": "subscribe", "id": 1, "rate": 20, "globs": ["*"]})
    await asyncio.sleep(2.0)
    killed = time.monotonic()
    rs.kill()
    await asyncio.sleep(down_s)
    rs.start()
    restarted = time.monotonic()

    async def back(c: Console) -> float:
        await c.until(lambda m: m["type"] == "gap", timeout=30)
        await c.until(lambda m: m["type"] == "data", timeout=30)
        return time.monotonic() - restarted

    times = sorted(await asyncio.gather(*(back(c) for c in cons)))
    alive = all(p.proc.poll() is None for p in nodes)
    await asyncio.gather(*(c.close() for c in cons), return_exceptions=True)
    return {"consoles": n, "down_s": round(restarted - killed, 2), "recovered_median_s": round(times[len(times) // 2], 2),
            "recovered_all_s": round(times[-1], 2), "nodes_alive": alive}


async def main(args: argparse.Namespace) -> list[dict]:
    rows = []
    with redis_server() as rs:
        with server("--role", "ingest", "--redis", rs.url, "--no-uplink", "--max-connections-per-address", "0") as ingest, \
                server("--role", "edge", "--redis", rs.url, "--max-connections-per-address", "0") as edge:
            sim = Sim(ingest.udp_port, bit_rate=args.bitrate).start()
            try:
                await asyncio.sleep(2.0)
                for n in args.consoles:
                    rows.append(await measure(n, args.seconds, edge, rs.client()))
                    print(json.dumps(rows[-1]), flush=True)
                if args.outage:
                    rows.append(await outage(args.outage, args.down, rs, [ingest, edge], edge))
                    print(json.dumps(rows[-1]), flush=True)
            finally:
                await sim.stop()
    return rows


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--consoles", type=int, nargs="+", default=[10, 100, 300])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--bitrate", type=float, default=1e6)
    p.add_argument("--outage", type=int, default=0, metavar="N", help="consoles for the Redis-outage run")
    p.add_argument("--down", type=float, default=2.0, help="seconds Redis stays down")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args()
    rows = asyncio.run(main(args))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
