"""Load benchmarks against real processes on 127.0.0.1 (run outside the test suite).

    bash benchmarks/load/setup.sh        # once: npm ci for the node ws peer, matplotlib
    python -m benchmarks.load.ingest     # UDP ingest: datagrams sent vs received, lost, CPU
    python -m benchmarks.load.latency    # N consoles at 20 Hz: latency p50/p99/max, seq gaps, CPU, RSS
    python -m benchmarks.load.capacity   # most consoles at p99 <= 100 ms: ours, naive websockets, naive node ws
    python -m benchmarks.load.curves     # p99 and CPU vs bit rate, vs parameters per console
    python -m benchmarks.load.plots      # docs/bench/*.png from the JSON files
    bash benchmarks/load/run.sh          # all of it

Parts: ``common`` (CPU/RSS meters, machine-noise checks, tables), ``servers``
(the processes under test, ``--server-tree``), ``pool`` (several load-generator
processes as one, merged samples), ``loadgen`` (one such process),
``wsclient`` (its lean WebSocket connection), ``naive_ws`` and
``naive_ws_node/`` + ``feeder`` (the naive peers, fed by our decoder),
``serve_patched`` (experiments: our server with an outside patch),
``hotspots`` (summary of a py-spy raw profile). Each command starts its own
processes on free ports and stops them by itself; ``--json PATH`` keeps every
figure. Results: docs/benchmarks.md.
"""
