"""Keeps the load-benchmark harness (benchmarks/load/) from rotting: a 3 s latency run, 5 consoles.

Real processes on 127.0.0.1 (server, simulator, one load generator), as in
``python -m benchmarks.load.latency``; asserts that figures come out, not
what they are (the performance targets belong to the benchmarks).
"""

from __future__ import annotations

import math

from benchmarks.load.latency import run_latency


def test_latency_harness_produces_figures():
    r = run_latency(consoles=5, rate=20, bitrate=1e6, duration=3.0, warmup=0.5)
    assert r["connected"] == 5, r["errors"]
    assert r["groups"] > 0
    assert r["data_messages"] > 5 * 20, r  # ~5 consoles x 20 Hz x groups x 3 s
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
