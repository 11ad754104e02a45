"""Keeps the load-benchmark harness (benchmarks/load/) from rotting: short runs, few consoles.

Real processes on 127.0.0.1 (servers, simulator, load generators), as in
``python -m benchmarks.load.latency`` / ``capacity``; asserts that figures come
out, not what they are (the performance targets belong to the benchmarks).
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil

import msgpack
import pytest

from benchmarks.load import capacity, plots
from benchmarks.load.latency import run_latency
from benchmarks.load.loadgen import head
from benchmarks.load.pool import split
from benchmarks.load.wsclient import WSClient, mask_frame


def test_latency_harness_produces_figures():
    r = run_latency(consoles=5, rate=20, bitrate=1e6, duration=3.0, warmup=0.5)
    assert r["connected"] == 5, r["errors"]
    assert r["groups"] > 0
    assert r["data_messages"] > 5 * 20, r  # ~5 consoles x 20 bundles/s x 3 s
    lat = r["latency_ms"]
    for k in ("p50", "p99", "max", "worst_console_p99"):
        assert math.isfinite(lat[k]) and lat[k] >= 0, lat
    assert lat["p50"] <= lat["p99"] <= lat["max"]
    assert r["tick_to_console_ms"] is not None
    assert r["seq_gaps"] >= 0 and r["deliveries_per_s"] > 0
    assert 0 < r["delivered_fraction"] <= 1.1
    for k in ("server_cpu_pct", "simulator_cpu_pct", "loadgen_cpu_pct"):
        assert math.isfinite(r[k]) and r[k] >= 0, (k, r[k])
    assert r["server_rss_mb"] > 0
    assert r["udp_lost_in_window"] is not None and r["datagrams_in_window"] > 0


def test_pool_splits_consoles_and_merges_processes():
    assert split(10, 3) == [4, 3, 3] and split(2, 4) == [1, 1] and sum(split(2000, 3)) == 2000
    r = run_latency(consoles=6, rate=20, bitrate=1e6, duration=2.0, warmup=0.5, procs=2, params=3)
    assert r["loadgen_procs"] == 2 and r["connected"] == 6, r["errors"]
    assert r["data_messages"] > 6 * 20, (r["messages"], r["errors"], r["latency_ms"])
    assert r["loadgen_cpu_max_proc_pct"] <= r["loadgen_cpu_pct"]
    assert r["latency_ms"]["p50"] <= r["latency_ms"]["p99"]
    assert math.isfinite(r["vehicle_age_ms"]["p99"])  # sampled: 1 data message in 8


def test_capacity_ladder_with_both_peers_and_plots(tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not installed: no naive-node peer")
    pytest.importorskip("matplotlib")
    out = tmp_path / "cap.json"
    capacity.main(["--servers", "ours", "naive", "naive-node", "--steps", "4", "--duration", "2", "--warmup", "0.5",
                   "--loadgen-procs", "2", "--quiet-timeout", "0", "--retries", "0", "--json", str(out)])
    ladders = json.loads(out.read_text())["ladders"]
    for kind in ("ours", "naive", "naive-node"):
        step = ladders[kind]["steps"][0]
        assert "error" not in step, step.get("error")
        assert step["connected"] == 4 and step["deliveries_per_s"] > 0, step
        assert step["server_cpu_pct"] > 0 and step["server_rss_mb"] > 0
    assert "feeder" in ladders["naive-node"]["steps"][0]["server_cpu_by_process"]
    plots.main(["--capacity", str(out), "--out", str(tmp_path)])
    assert (tmp_path / "p99-vs-consoles.png").stat().st_size > 1000
    assert json.loads((tmp_path / "curves.json").read_text())["consoles"]


def test_lean_client_parses_frames_and_answers_pings():
    got: list[bytes] = []

    class Transport:
        def __init__(self):
            self.sent = b""

        def write(self, b):
            self.sent += b

    async def feed():
        ws = WSClient("ws://127.0.0.1:1/ws/telemetry", lambda p, t: got.append(p))
        ws.transport = Transport()
        ws.opened.set_result(True)
        big = msgpack.packb({"seq": 7, "type": "bundle", "t": 5, "ingest_ns": 3, "frames": [{"x": b"y" * 70000}]})
        stream = (bytes((0x82, 3)) + b"abc" + bytes((0x89, 1)) + b"p"  # binary, ping
                  + bytes((0x02, 2)) + b"de" + bytes((0x80, 1)) + b"f"  # fragmented binary
                  + bytes((0x82, 127)) + len(big).to_bytes(8, "big") + big)
        for i in range(0, len(stream), 1000):  # in pieces, as TCP delivers them
            ws.data_received(stream[i:i + 1000])
        return ws

    ws = asyncio.run(feed())
    assert got[:2] == [b"abc", b"def"]
    assert head(got[2]) == {"seq": 7, "type": "bundle", "t": 5, "ingest_ns": 3}
    pong = ws.transport.sent
    assert pong[0] == 0x8A and pong[1] == 0x80 | 1 and len(pong) == 2 + 4 + 1
    assert bytes(b ^ pong[2 + i % 4] for i, b in enumerate(pong[6:])) == b"p"  # masked payload
    assert len(mask_frame(0x2, b"x" * 200)) == 2 + 2 + 4 + 200
