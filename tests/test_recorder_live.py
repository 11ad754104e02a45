"""The recorder across processes: a reader while the writer appends, SIGKILL, a full disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import recorder
from recorder.service import RecorderService
from tests.test_recorder import STEP, T0, fly, long_format

REPO = str(Path(__file__).resolve().parents[1])


def child(code: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, **kw)


READER = """
    import json, sys, time
    import recorder
    rec = recorder.open(sys.argv[1])
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        rec.refresh()
        rep = rec.report()
        seg = rep["segments"][-1]["datasets"]
        alt = rec.read("ALT")
        print(json.dumps({"rows": seg["rates/rate_02"]["rows"], "packets": seg["packets"]["rows"],
                          "alt": len(alt), "last_ns": rep["last_ns"], "ok": bool((alt.values > -3000).all())}),
              flush=True)
        time.sleep(0.15)
"""


def test_a_separate_reader_process_sees_the_file_grow(tmp_path) -> None:
    svc = RecorderService(tmp_path, flush_interval_s=0.2)
    sim_t = T0
    reader = None
    started = time.monotonic()
    try:
        from groundstation.ingest.core import Ingest
        from groundstation.simulator.vehicle import Vehicle

        v, ing = Vehicle(start_ns=T0, bit_rate=1_000_000, seed=1), Ingest()
        while time.monotonic() - started < 3.5:
            sim_t += STEP
            for dg in v.advance(sim_t):
                svc.on_ingest(ing.receive(dg, sim_t), sim_t)
            svc.flush_due()
            if reader is None and svc.status()["flushes"] >= 1:
                reader = child(READER, svc.index_path, "2.5")
            time.sleep(STEP / 1e9)
        out, err = reader.communicate(timeout=30)
    finally:
        svc.close()
        if reader is not None and reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    seen = [json.loads(line) for line in out.splitlines()]
    rows = [s["rows"] for s in seen]
    assert len(seen) >= 5 and all(s["ok"] for s in seen)
    assert rows == sorted(rows) and len(set(rows)) >= 4, rows  # it grew, step by step
    assert all(s["alt"] == s["rows"] for s in seen)  # ALT is in the 1-per-frame group
    final = recorder.open(svc.index_path)
    assert final.report()["segments"][-1]["datasets"]["rates/rate_02"]["rows"] >= rows[-1]
    final.close()


WRITER = """
    import json, sys
    from recorder.buffer import RecordBuffer
    from recorder.writer import HDF5Writer
    from tests.test_recorder import T0, fly

    folder, flush_every = sys.argv[1], int(sys.argv[2])
    w = HDF5Writer(folder, session="killed")
    buf = RecordBuffer()
    state = {"n": 0}

    def step(res, t):
        buf.add(res, t)
        state["n"] += 1
        if state["n"] % flush_every == 0:
            w.write_all(buf.take())
            w.flush()
            print(json.dumps({"flushed_ns": t, "samples": w.written_samples, "packets": w.written_packets}),
                  flush=True)

    fly(60.0, on_step=step)
"""


def test_sigkill_of_the_writer_loses_at_most_the_last_flush_interval(tmp_path) -> None:
    proc = child(WRITER, str(tmp_path), "10")  # a flush every 10 datagrams (0.2 s of flight)
    flushed = []
    try:
        for line in proc.stdout:
            flushed.append(json.loads(line))
            if len(flushed) == 8:
                time.sleep(0.037)  # somewhere in the next interval, maybe mid-write
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL and len(flushed) == 8
    last = flushed[-1]
    rec = recorder.open(tmp_path / "killed.index.json")
    rep = rec.report()
    assert rep["segments"][0]["mode"] == "swmr"
    assert "not closed" in " ".join(rep["problems"])
    # Everything flushed is there; at most one more interval was added.
    assert rep["segments"][0]["datasets"]["packets"]["rows"] >= last["packets"]
    assert rep["last_ns"] >= last["flushed_ns"] - 50_000_000
    _, _, decoded, results = fly((last["flushed_ns"] - T0) / 1e9 + 0.6)
    cat = long_format(decoded)
    got_samples = 0
    for name, pid in {k: v for b in decoded for k, v in (b.ids or {}).items()}.items():
        s = rec.read(name)
        sel = cat["pid"] == pid
        assert np.array_equal(s.values, cat["eu"][sel][:len(s)].astype(s.values.dtype), equal_nan=True), name
        assert np.array_equal(s.t_ns, cat["t_ns"][sel][:len(s)]), name
        got_samples += len(s)
    assert got_samples >= last["samples"]
    sent = [bytes(p.raw) for res, _ in results for p in res.packets]
    got = [p.raw for p in rec.iter_packets()]
    assert len(got) >= last["packets"] and got == sent[:len(got)]
    rec.close()


FULL_DISK = """
    import json, resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))
    from recorder.service import RecorderService
    from tests.test_recorder import SimClock, fly

    clock = SimClock()
    svc = RecorderService(sys.argv[1], clock_ns=clock, flush_interval_s=0.2)
    events = []

    def step(res, t):
        clock.t = t
        svc.on_ingest(res, t)  # the live path keeps going whatever the disk does
        events.extend(svc.flush_due(t))
        svc.wait()

    fly(4.0, bit_rate=2_000_000, on_step=step)
    events.extend(svc.flush_due(clock.t + 10**9))
    st = svc.status()
    svc.close()
    print(json.dumps({"events": events, "state": st["state"], "error": st["error"],
                      "dropped": st["dropped_samples"], "written": st["written_samples"]}))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE / SIGXFSZ (POSIX)")
def test_full_disk_is_reported_and_the_caller_continues(tmp_path) -> None:
    proc = child(FULL_DISK, str(tmp_path))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    res = json.loads(out.splitlines()[-1])
    assert res["state"] == "error", res
    assert "File too large" in res["error"] or "too large" in res["error"].lower(), res["error"]
    errors = [e for e in res["events"] if e["state"] == "error"]
    assert errors and errors[0]["message"].startswith("recording failed")
    assert res["dropped"] > 0 and res["written"] > 0
    rec = recorder.open(tmp_path)
    assert rec.report()["segments"][0]["datasets"]["packets"]["rows"] > 0  # what fitted is readable
    rec.close()
