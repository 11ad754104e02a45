"""Our decoder feeding a naive peer: UDP in, one msgpack message per decoded batch out, length-prefixed.

    python -m benchmarks.load.feeder --udp 127.0.0.1:0 | <a peer reading records on stdin>

The same ``Ingest`` decoder and the same per-batch message as ``naive_ws``
(``encode_batch``: ``{seq, ingest_ns, ids, t, eu}``, numpy arrays as bytes),
so the peers compare distribution, not decoding. Records on stdout:
``<u32 LE length><kind byte><body>``, kind ``D`` = a message to send to every
console as-is, ``H`` = JSON health (``udp_port``, ``pid``, ``configured`` and
the ingest counters), once at start and every 0.5 s. Exits when stdout closes
(the peer is gone) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import struct
import sys

import msgpack

from groundstation.ingest.core import Ingest
from groundstation.run import host_port
from groundstation.server.udp import open_udp_endpoint

_LEN = struct.Struct("<I")


def encode_batch(seq: int, arrival_ns: int, batch) -> bytes:
    """The naive peers' message for one decoded ``SampleBatch``."""
    return msgpack.packb({"seq": seq, "ingest_ns": arrival_ns, "ids": batch.pid.tobytes(),
                          "t": batch.t_ns.tobytes(), "eu": batch.eu.tobytes()}, use_bin_type=True)


def health(ingest: Ingest) -> dict:
    """The ``/healthz`` fields the harness reads (``configured``, ``ingest``, ``udp``)."""
    cfg = ingest.config
    return {"configured": None if cfg is None else {"channel": cfg.channel_id, "parameters": len(cfg.db.parameters)},
            "ingest": ingest.stats.as_dict(),
            "udp": {"gaps": ingest.udp.stats.gaps, "lost": ingest.udp.stats.lost_datagrams}}


class Feeder:
    def __init__(self, out) -> None:
        self.ingest = Ingest()
        self.out = out
        self.seq = 0
        self.stop = asyncio.Event()

    def write(self, kind: bytes, body: bytes) -> None:
        try:
            self.out.write(_LEN.pack(len(body) + 1) + kind + body)
            self.out.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.stop.set()

    def on_datagram(self, data: bytes, arrival_ns: int, sender=None) -> None:
        for b in self.ingest.receive(data, arrival_ns, sender).samples:
            self.seq += 1
            self.write(b"D", encode_batch(self.seq, arrival_ns, b))


async def amain(args: argparse.Namespace) -> int:
    feeder = Feeder(sys.stdout.buffer)
    host, port = args.udp
    transport, port = await open_udp_endpoint(host, port, feeder.on_datagram)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, feeder.stop.set)
    while not feeder.stop.is_set():
        feeder.write(b"H", json.dumps({"udp_port": port, "pid": os.getpid(), **health(feeder.ingest)}).encode())
        try:
            await asyncio.wait_for(feeder.stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
    transport.close()
    return 0


def cli(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.feeder", description=__doc__.split("\n")[0])
    p.add_argument("--udp", type=host_port, default=host_port("127.0.0.1:0"))
    return asyncio.run(amain(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(cli())
