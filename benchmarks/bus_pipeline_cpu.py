"""CPU of the server process decoding the simulator's stream, with and without its buses.

Runs ``groundstation serve`` (open mode) and the simulator in this process's thread (10 Mb/s
PCM; ``--buses`` adds the 1553 and ARINC-429 channels and gives the server their ICD), and
reads the server's CPU time from /proc over ``--seconds``. Prints % of one core.

    flock /tmp/gs-bench.lock python -m benchmarks.bus_pipeline_cpu --seconds 30 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from groundstation.simulator.buses import VEHICLE_ICD_FILE
from tests.browser import SimThread
from tests.live import server


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(seconds: float, buses: bool) -> float:
    extra = ("--params", str(VEHICLE_ICD_FILE)) if buses else ()
    with server(*extra) as srv, SimThread(srv.udp_port, bit_rate=10_000_000, buses=buses):
        time.sleep(2.0)  # configured, steady
        c0, t0 = cpu_s(srv.proc.pid), time.monotonic()
        time.sleep(seconds)
        return 100.0 * (cpu_s(srv.proc.pid) - c0) / (time.monotonic() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    for buses in (False, True):
        got = [one(a.seconds, buses) for _ in range(a.runs)]
        print(f"{'with buses   ' if buses else 'without buses'}: median {statistics.median(got):.1f} % of a core "
              f"(runs: {', '.join(f'{g:.1f}' for g in got)})", flush=True)


if __name__ == "__main__":
    main()
