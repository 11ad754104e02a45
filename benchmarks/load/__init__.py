"""Load benchmarks against real processes on 127.0.0.1 (run outside the test suite).

    python -m benchmarks.load.ingest     # UDP ingest: datagrams sent vs received, lost, CPU
    python -m benchmarks.load.latency    # N consoles at 20 Hz: latency p50/p99/max, seq gaps, CPU, RSS
    python -m benchmarks.load.capacity   # most consoles at p99 <= 100 ms, ours vs a naive websockets peer
    bash benchmarks/load/run.sh          # all three

Parts: ``common`` (processes, CPU/RSS meters, machine-noise checks), ``loadgen``
(the ONE load-generator process), ``naive_ws`` (the naive peer server),
``serve_patched`` (experiments: our server with an outside patch),
``hotspots`` (summary of a py-spy raw profile). Each command starts its own
processes on free ports and stops them by itself; ``--json PATH`` keeps every
figure. Results: docs/benchmarks.md.
"""
