"""The budgeted load harness (``--node-cpu``): every server node in its own capped v1 ``cpu`` cgroup,
throttling reported per node, every group removed afterwards. Skipped with its reason where cgroups
cannot be written (not root, no cpu controller)."""

from __future__ import annotations

import shutil

import pytest

from benchmarks.load import budget
from benchmarks.load.latency import run_latency

WHY = budget.unavailable()


def _ours() -> set[str]:
    return {p.name for p in budget.CPU_ROOT.glob("gs-bench-*")} if WHY is None else set()


@pytest.mark.skipif(WHY is not None, reason=f"per-node CPU budgets unavailable here: {WHY}")
def test_node_budgets_cap_a_process_and_are_removed(tmp_path):
    before = _ours()
    with budget.NodeBudgets(0.1) as nb:
        import subprocess
        import sys

        spin = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<1.5: pass"])
        try:
            nb.place("spin", spin.pid)
            quota = int((nb.groups["spin"] / "cpu.cfs_quota_us").read_text())
            assert quota == budget.PERIOD_US // 10 and str(spin.pid) in (nb.groups["spin"] / "cgroup.procs").read_text().split()
            spin.wait(30)
            st = nb.stats()["spin"]
        finally:
            spin.kill()
    assert st["nr_throttled"] > 0  # a busy loop at 0.1 core is throttled
    assert _ours() == before  # removed


@pytest.mark.skipif(WHY is not None, reason=f"per-node CPU budgets unavailable here: {WHY}")
def test_budgeted_smoke_run_of_two_nodes_reports_throttling_per_node():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    before = _ours()
    r = run_latency(consoles=4, rate=20, bitrate=1e6, duration=2.0, warmup=0.5, kind="cluster1", node_cpu=0.3)
    assert r["connected"] == 4, r["errors"]
    assert r["node_cpu"] == 0.3 and r["node_cpu_refused"] is None
    assert set(r["node_throttle"]) == {"server", "edge0"}  # the ingest node and its edge, each in its own group
    for t in r["node_throttle"].values():
        assert t["periods"] > 0 and 0 <= t["throttled_pct"] <= 100
    assert _ours() == before


def test_unavailable_says_why_where_there_is_no_controller(tmp_path):
    assert "no cgroup v1 cpu controller" in budget.unavailable(tmp_path)
