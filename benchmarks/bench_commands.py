"""Command latency: submit -> Sent and submit -> Acknowledged, on loopback.

Runs a real server process (tokens, uplink to the simulator), the vehicle
simulator in this process (1 Mb/s, 10 ms datagram interval), and a director on
/ws/command submitting MARK_TEST_POINT one after the other. Times come from the
command records (server clock): QUEUED is the submit, SENT is the UDP send,
ACKNOWLEDGED is the vehicle's echo decoded from telemetry.

    python benchmarks/bench_commands.py [--commands 100] [--bitrate 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from groundstation.simulator.flight import vehicle_database  # noqa: E402
from tests.live import Director, vehicle_and_server  # noqa: E402
from tests.test_commanding_live import tok  # noqa: E402


async def main(n: int, bit_rate: float) -> dict:
    async with vehicle_and_server("--command-rate", "100000/1", vehicle={"bit_rate": bit_rate},
                                  open_mode=False) as (_, srv):
        d = await Director.connect(f"ws://127.0.0.1:{srv.http_port}/ws/command", tok("bench", "director"))
        await asyncio.sleep(1.0)
        await d.request(type="authority", action="take")
        sent, acked = [], []
        for i in range(n):
            r = await d.request(type="command", name="MARK_TEST_POINT", args={"test_point": i + 1}, client_seq=i + 1)
            rid = r["record"]["id"]
            while True:
                m = await d.recv(10)
                if m.get("type") == "command" and m["record"]["id"] == rid and m["record"]["state"] in (
                        "COMPLETED", "FAILED", "TIMED_OUT"):
                    break
            t = m["record"]["times"]
            assert m["record"]["state"] == "COMPLETED", m
            sent.append((t["SENT"] - t["QUEUED"]) / 1e6)
            acked.append((t["ACKNOWLEDGED"] - t["QUEUED"]) / 1e6)
        await d.ws.close()
    f = vehicle_database(bit_rate).frame
    major_ms = f.bits_per_minor * f.minor_frames / bit_rate * 1e3
    return {
        "commands": n,
        "submit_to_sent_ms": {"p50": statistics.median(sent), "p99": float(np.percentile(sent, 99)), "max": max(sent)},
        "submit_to_ack_ms": {"p50": statistics.median(acked), "p99": float(np.percentile(acked, 99)),
                             "max": max(acked)},
        "ack_target_ms": 2 * major_ms + 10.0,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--commands", type=int, default=100)
    ap.add_argument("--bitrate", type=float, default=1_000_000)
    a = ap.parse_args()
    r = asyncio.run(main(a.commands, a.bitrate))
    print(r)
