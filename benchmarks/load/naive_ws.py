"""The NAIVE peer for the capacity benchmark: decode, then send every decoded batch to everyone.

    python -m benchmarks.load.naive_ws --udp 127.0.0.1:0 --http 127.0.0.1:0

The same UDP endpoint and the same decoder as ours (``groundstation.ingest.core.Ingest``,
the same message as the node ``ws`` peer gets from ``feeder``),
but none of our console machinery: no subscriptions, decimation, rate tiers,
per-session sequence numbers or bounded outboxes. For each decoded packet's
``SampleBatch`` it msgpack-encodes ``{seq, ingest_ns, ids, t, eu}`` (numpy arrays
as bytes, ``feeder.encode_batch``) once and hands it to ``websockets.broadcast`` for every connected
console. In websockets 17 ``broadcast`` has no backpressure: a console that
cannot keep up piles frames up in its write buffer (latency grows, nothing is
dropped). Client messages are read and ignored. ``GET /healthz`` answers JSON
counters like ours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from http import HTTPStatus

from websockets.asyncio.server import broadcast, serve

from groundstation.ingest.core import Ingest
from groundstation.run import host_port
from groundstation.server.udp import open_udp_endpoint

from .feeder import encode_batch, health


class Naive:
    def __init__(self) -> None:
        self.ingest = Ingest()
        self.server = None
        self.seq = 0
        self.broadcasts = 0
        self.deliveries = 0
        self.started = time.time_ns()

    def on_datagram(self, data: bytes, arrival_ns: int, sender=None) -> None:
        res = self.ingest.receive(data, arrival_ns, sender)
        if self.server is None:
            return
        for b in res.samples:
            self.seq += 1
            payload = encode_batch(self.seq, arrival_ns, b)
            conns = self.server.connections
            if conns:
                broadcast(conns, payload)
                self.broadcasts += 1
                self.deliveries += len(conns)

    async def handler(self, ws) -> None:
        async for _ in ws:  # subscriptions etc. are ignored: everyone gets everything
            pass

    def process_request(self, connection, request):
        if request.path == "/healthz":
            body = {"status": "ok", "uptime_s": round((time.time_ns() - self.started) / 1e9, 3),
                    **health(self.ingest), "consoles": len(self.server.connections) if self.server else 0,
                    "broadcasts": self.broadcasts, "deliveries": self.deliveries}
            resp = connection.respond(HTTPStatus.OK, json.dumps(body) + "\n")
            resp.headers["Content-Type"] = "application/json"
            return resp
        return None


async def amain(args: argparse.Namespace) -> int:
    naive = Naive()
    udp_host, udp_port = args.udp
    http_host, http_port = args.http
    transport, udp_port = await open_udp_endpoint(udp_host, udp_port, naive.on_datagram)
    async with serve(naive.handler, http_host, http_port, compression=None, ping_interval=None,
                     max_size=64 * 1024, process_request=naive.process_request) as server:
        naive.server = server
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"naive: UDP {udp_host}:{udp_port}, WebSocket ws://{http_host}:{port}/ws/telemetry", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    transport.close()
    return 0


def cli(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.naive_ws", description=__doc__.split("\n")[0])
    p.add_argument("--udp", type=host_port, default=host_port("127.0.0.1:0"))
    p.add_argument("--http", type=host_port, default=host_port("127.0.0.1:0"))
    args = p.parse_args(argv)
    logging.getLogger("websockets").setLevel(logging.ERROR)  # one "skipped broadcast" warning per slow send
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(cli())
