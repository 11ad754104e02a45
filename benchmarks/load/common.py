"""Shared plumbing of the load benchmarks: CPU/RSS meters, machine-noise checks, tables, JSON.

The processes under test are in ``servers``; the load generators in ``pool``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

try:  # psutil if installed (test extras); /proc otherwise
    import psutil
except ImportError:  # pragma: no cover - depends on the environment
    psutil = None

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("GROUNDSTATION_SECRET", "bench-secret-" + "x" * 40)
    return env


# -- CPU and memory of a process ---------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (its own, not its children's)."""
    if psutil is not None:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_bytes(pid: int) -> int:
    if psutil is not None:
        return psutil.Process(pid).memory_info().rss
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class CpuWindow:
    """CPU % of some processes between ``start()`` and ``stop()`` (100 % = one core)."""

    pids: dict[str, int]
    _t0: float = 0.0
    _c0: dict[str, float] = field(default_factory=dict)
    result: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def start(self) -> "CpuWindow":
        self._t0 = time.monotonic()
        self._c0 = {k: cpu_seconds(p) for k, p in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.seconds = time.monotonic() - self._t0
        for k, p in self.pids.items():
            try:
                self.result[k] = round(100.0 * (cpu_seconds(p) - self._c0[k]) / self.seconds, 1)
            except Exception:  # noqa: BLE001 - the process is gone (psutil.Error or OSError)
                self.result[k] = float("nan")
        return self.result


def _cpu_jiffies() -> tuple[int, int, int]:
    """(busy, irq + softirq, total) jiffies of the whole machine, from /proc/stat (steal counted as busy)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    idle = v[3] + v[4]
    return sum(v) - idle, v[5] + v[6], sum(v)


class MachineWindow:
    """Whole-machine CPU busy % (100 % = one core) between ``start()`` and ``stop()``.

    Other work on a shared VM (other sessions' servers, browsers, test runs)
    shows up as ``busy - ours``: the benchmarks report it as ``foreign_cpu_pct``.
    ``irq_pct`` (interrupts and softirqs, e.g. loopback TCP, accounted to no
    process) is reported apart and left out of ``foreign_cpu_pct``.
    """

    def __init__(self) -> None:
        self.busy_pct = float("nan")
        self.irq_pct = float("nan")
        self._b0 = self._i0 = self._t0 = 0

    def start(self) -> "MachineWindow":
        self._b0, self._i0, self._t0 = _cpu_jiffies()
        return self

    def stop(self) -> float:
        b1, i1, t1 = _cpu_jiffies()
        if t1 > self._t0:
            k = 100.0 * (os.cpu_count() or 1) / (t1 - self._t0)
            self.busy_pct = round(k * (b1 - self._b0), 1)
            self.irq_pct = round(k * (i1 - self._i0), 1)
        return self.busy_pct


def wait_for_quiet(max_busy_pct: float = 30.0, timeout: float = 60.0, sample_s: float = 1.0) -> dict:
    """Wait (bounded) until the whole machine is below ``max_busy_pct`` of one core.

    Returns what was seen; ``quiet`` is False if the timeout passed first (the
    run then goes ahead and its ``foreign_cpu_pct`` tells how noisy it was).
    """
    t0 = time.monotonic()
    busy = float("nan")
    while True:
        w = MachineWindow().start()
        time.sleep(sample_s)
        busy = w.stop()
        if busy <= max_busy_pct:
            return {"quiet": True, "busy_pct": busy, "waited_s": round(time.monotonic() - t0, 1)}
        if time.monotonic() - t0 > timeout:
            return {"quiet": False, "busy_pct": busy, "waited_s": round(time.monotonic() - t0, 1)}


def wait_rusage(proc: subprocess.Popen, timeout: float) -> float:
    """Wait for a child and return its user + system CPU seconds (from wait4)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return ru.ru_utime + ru.ru_stime
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            return ru.ru_utime + ru.ru_stime
        time.sleep(0.02)


def stop_proc(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def add_quiet_args(p) -> None:
    p.add_argument("--quiet-below", type=float, default=40.0,
                   help="before each run, wait until the machine is below this CPU %% (100 = one core)")
    p.add_argument("--quiet-timeout", type=float, default=30.0, help="longest wait for quiet, s (0: don't wait)")


def add_noise_args(p) -> None:
    add_quiet_args(p)
    p.add_argument("--max-foreign", type=float, default=60.0,
                   help="repeat a run if other work on the machine used more than this CPU %% during it")
    p.add_argument("--retries", type=int, default=2, help="repeats of a noisy run (the last one counts)")


def add_run_args(p, *, duration: float, bitrate: float, procs: int) -> None:
    """The options every live run takes: console rate, bit rate, window, load generators, noise, JSON."""
    p.add_argument("--rate", type=int, default=20, help="console update rate, Hz")
    p.add_argument("--bitrate", type=float, default=bitrate, help="simulator PCM bit rate, b/s")
    p.add_argument("--duration", type=float, default=duration, help="measurement window, s")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--loadgen-procs", type=int, default=procs, help="load-generator processes (consoles split over them)")
    p.add_argument("--json", help="write every run, the machine and the commit here")
    p.add_argument("--node-cpu", type=float, metavar="FRACTION",
                   help="cap every server process (each node) at this fraction of one core, each in its own "
                        "cgroup of the v1 cpu controller (budget.py); unbudgeted where cgroups cannot be written")
    add_noise_args(p)


def measure_with_retries(fn, args, label: str = "") -> dict:
    """``fn()`` again (up to ``args.retries`` times) while other work disturbed it; keeps the retries' count."""
    tries = 0
    while True:
        r = fn()
        tries += 1
        f = r.get("foreign_cpu_pct")
        if f is None or f != f or f <= args.max_foreign or tries > args.retries:
            r["attempts"] = tries
            r["noisy"] = bool(f is not None and f == f and f > args.max_foreign)
            return r
        print(f"  {label}: other work used {f} % CPU during the run (> {args.max_foreign} %): repeating", flush=True)


def quiet_kwargs(args) -> dict | None:
    if not args.quiet_timeout:
        return None
    return {"max_busy_pct": args.quiet_below, "timeout": args.quiet_timeout}


def fmt_table(rows: list[dict], cols: list[str]) -> str:
    """A small Markdown table."""
    out = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 or v == 0 else f"{v:.2f}"
    return str(v)


def machine() -> dict:
    import platform

    info = {"python": platform.python_version(), "cores": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        import msgpack
        import numpy
        import tornado
        import websockets

        info.update(tornado=tornado.version, websockets=websockets.__version__, numpy=numpy.__version__,
                    msgpack=".".join(map(str, msgpack.version)))
    except ImportError:
        pass
    try:
        git = ["git", "-C", str(ROOT)]
        info["commit"] = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        timeout=10).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--", "groundstation", "telemetry_formats"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["server_code_modified"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def write_json(path: str | None, args, **sections) -> None:
    """Write a benchmark's figures with the machine and the arguments, if ``path`` is given."""
    if path:
        with open(path, "w") as f:
            json.dump({"machine": machine(), "args": vars(args), **sections}, f, indent=1)
