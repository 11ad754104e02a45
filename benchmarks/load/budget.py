"""Per-node CPU budgets: every server process in its own cgroup of the v1 ``cpu`` controller.

A node of a real cluster has its own cores; on one 2-core machine the way to
compare topologies is to give every server node (the single process, the
ingest node, each edge, each naive peer) the same fixed budget and leave the
rest of the machine to the load generators. ``NodeBudgets(0.25)`` makes
``/sys/fs/cgroup/cpu/gs-bench-PID/NODE`` per node with ``cpu.cfs_quota_us`` =
0.25 x ``cpu.cfs_period_us``, writes the node's PIDs into its ``cgroup.procs``
and reads ``cpu.stat`` (periods, throttled periods, throttled time) for the
throttling report; the period is 10 ms, so a node over its quota waits less
than 10 ms (with the default 100 ms a tick's burst could wait 80 ms). Everything
it made is removed on every exit path (``close`` from the context manager, and
at interpreter exit after Ctrl-C, SIGTERM or an exception): processes still
inside go back to the root group first. Where the
controller is missing or not writable (not root, a read-only cgroupfs, cgroup
v2 only) ``unavailable()`` says why and the run goes on unbudgeted.
"""

from __future__ import annotations

import atexit
import os
import signal
from pathlib import Path

__all__ = ["NodeBudgets", "unavailable", "CPU_ROOT", "throttle_delta"]

CPU_ROOT = Path(os.environ.get("GS_BENCH_CGROUP_CPU", "/sys/fs/cgroup/cpu"))
PERIOD_US = 10_000  # short periods: a node over its quota waits < 10 ms, not up to 100 ms (the default)


def unavailable(root: Path = CPU_ROOT) -> str | None:
    """Why per-node budgets cannot be applied here (None: they can)."""
    if not (root / "cpu.cfs_quota_us").exists() and not (root / "cgroup.procs").exists():
        return f"no cgroup v1 cpu controller at {root} (mount | grep cgroup)"
    if not (root / "cpu.cfs_period_us").exists():
        return f"{root} has no cpu.cfs_period_us: not the cpu controller"
    probe = root / f"gs-bench-probe-{os.getpid()}"
    try:
        probe.mkdir()
        (probe / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    except OSError as exc:
        return f"cannot create a cpu cgroup under {root}: {exc.strerror or exc}"
    finally:
        try:
            probe.rmdir()
        except OSError:
            pass
    return None


def _stat(group: Path) -> dict[str, int]:
    out = {}
    try:
        for line in (group / "cpu.stat").read_text().split("\n"):
            k, _, v = line.partition(" ")
            if v:
                out[k] = int(v)
    except OSError:
        pass
    return out


def throttle_delta(before: dict[str, dict], after: dict[str, dict]) -> dict[str, dict]:
    """Per node over a window: periods, throttled periods, throttled % of periods and throttled ms."""
    out = {}
    for node, a in after.items():
        b = before.get(node, {})
        periods = a.get("nr_periods", 0) - b.get("nr_periods", 0)
        thr = a.get("nr_throttled", 0) - b.get("nr_throttled", 0)
        out[node] = {"periods": periods, "throttled": thr,
                     "throttled_pct": round(100.0 * thr / periods, 1) if periods else 0.0,
                     "throttled_ms": round((a.get("throttled_time", 0) - b.get("throttled_time", 0)) / 1e6, 1)}
    return out


def _exit_on_term(signum, frame) -> None:
    raise SystemExit(128 + signum)


class NodeBudgets:
    """The cgroups of one run; ``place(node, pid)`` caps a node at ``fraction`` of one core."""

    def __init__(self, fraction: float, root: Path = CPU_ROOT) -> None:
        if not 0 < fraction <= 64:
            raise ValueError(f"--node-cpu {fraction}: a fraction of one core, > 0")
        self.fraction, self.root = fraction, root
        self.base = root / f"gs-bench-{os.getpid()}-{id(self):x}"
        self.groups: dict[str, Path] = {}
        self.base.mkdir()
        atexit.register(self.close)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # let ``finally`` and atexit run on SIGTERM too
            signal.signal(signal.SIGTERM, _exit_on_term)

    def place(self, node: str, pid: int) -> None:
        """Put ``pid`` (all its threads) into ``node``'s group, made on first use."""
        group = self.groups.get(node)
        if group is None:
            group = self.base / node
            group.mkdir()
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(max(1000, int(self.fraction * PERIOD_US))))
            self.groups[node] = group
        (group / "cgroup.procs").write_text(str(pid))

    def stats(self) -> dict[str, dict]:
        return {node: _stat(g) for node, g in self.groups.items()}

    def close(self) -> None:
        """Move any process still inside back to the root group and remove every group made (idempotent)."""
        for g in [*self.groups.values(), self.base]:
            try:
                pids = (g / "cgroup.procs").read_text().split()
            except OSError:
                pids = []
            for pid in pids:
                try:
                    (self.root / "cgroup.procs").write_text(pid)
                except OSError:
                    pass  # exited meanwhile
            try:
                g.rmdir()
            except OSError:
                pass
        self.groups.clear()
        atexit.unregister(self.close)

    def __enter__(self) -> "NodeBudgets":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
