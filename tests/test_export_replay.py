"""`groundstation export` and `groundstation replay`.

A recording is made with the real recorder from the vehicle simulator decoded by
the real ``Ingest`` (no sockets, simulated clock); exports are compared with
``recorder.open().read()`` / ``iter_packets()`` and read back with pandas,
pyarrow and pychapter10 (independent of our code). The replay schedule is tested
without sockets; then pcm.c10 is replayed through a real ``groundstation serve
--record`` and the recording's .c10 export is compared with the input.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import recorder
from groundstation.cli import main
from groundstation.export import Progress, parse_time, sample_span, select_parameters
from groundstation.ingest.core import Ingest
from groundstation.replay import (
    ReplayPacket,
    ReplaySchedule,
    Timeline,
    build_marker,
    c10_packets,
    is_replay_marker,
    open_source,
    parse_marker,
    send_schedule,
)
from groundstation.simulator.vehicle import Vehicle
from recorder.service import RecorderService
from telemetry_formats.ch10.reader import iter_packets
from telemetry_formats.ch10.udp import PacketReceived, UdpReceiver

S = 1_000_000_000
T0 = 1_700_000_000 * S + 300_000_000
STEP = 20_000_000
PCM_C10 = Path(__file__).resolve().parent / "data/ch10/pcm.c10"


def iso(ns: int) -> str:
    return str(np.datetime64(ns, "ns")) + "Z"


def times_ns(col) -> np.ndarray:
    """A CSV's ISO text or a Parquet timestamp column as int64 ns."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return col.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64)
    assert all(str(v).endswith("Z") for v in col[:10])
    return np.array([np.datetime64(str(v).rstrip("Z"), "ns") for v in col]).astype(np.int64)


class _Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> int:
        return self.t


@pytest.fixture(scope="module")
def flight(tmp_path_factory) -> Path:
    """2 s of simulated flight recorded by the real recorder on a simulated clock."""
    folder = tmp_path_factory.mktemp("flight")
    clock = _Clock()
    svc = RecorderService(folder, clock_ns=clock, flush_interval_s=0.5)
    v, ing = Vehicle(start_ns=T0, bit_rate=1_000_000, seed=3), Ingest()
    t = T0
    while t < T0 + 2 * S:
        t += STEP
        for dg in v.advance(t):
            res = ing.receive(dg, t)
            clock.t = t
            svc.on_ingest(res, t)
            svc.flush_due(t)
            svc.wait()
    svc.close()
    return folder


def offsets(rec) -> dict[str, int]:
    """Each parameter's time offset in its rate group, read with h5py."""
    out = {}
    with h5py.File(rec.files[0], "r", swmr=True) as f:
        for p in rec.parameters:
            out[p.name] = int(f[f"rates/{p.rate_group}/values"].attrs["time_offset_ns"][p.column])
    return out


def check_wide(df, rec, names, t0, t1) -> None:
    """Each column's non-empty cells, at time + offset, are exactly what read() gives."""
    off = offsets(rec)
    t = times_ns(df["time"])
    assert np.all(np.diff(t) >= 0)
    assert list(df.columns) == ["time", *names]
    for name in names:
        s = rec.read(name, t0, t1)
        col = df[name].to_numpy(float)
        have = ~np.isnan(col)
        want = ~np.isnan(s.values)
        assert have.sum() == want.sum() > 0, name
        assert np.array_equal(t[have] + off[name], s.t_ns[want]), name
        assert np.array_equal(col[have].astype(s.values.dtype), s.values[want]), name  # float32 prints as such
    groups = {p.rate_group for p in rec.parameters if p.name in names}
    assert len(groups) > 1  # several rate groups in one table: rows of one group leave the others empty


def check_long(df, rec, names, t0, t1) -> None:
    t = times_ns(df["time"])
    assert np.all(np.diff(t) >= 0)
    params = df["parameter"].astype(str).to_numpy()
    assert set(params) == set(names)
    for name in names:
        s = rec.read(name, t0, t1)
        sel = params == name
        assert np.array_equal(t[sel], s.t_ns), name
        got = df["value"].to_numpy(float)[sel].astype(s.values.dtype)  # as recorded: float32 where it holds
        assert np.array_equal(got, s.values, equal_nan=True), name


# -- export ------------------------------------------------------------------------------------------


def test_export_csv_wide_and_long_equal_the_reader(flight, tmp_path, capsys):
    import pandas as pd

    rec = recorder.open(flight)
    t0, t1 = T0 + S // 2, T0 + 3 * S // 2
    out = tmp_path / "a.csv"
    assert main(["export", str(flight), "--params", "ALT,IAS", "--params", "EGT*,PITCH_RATE",
                 "--start", iso(t0), "--end", iso(t1), "--format", "csv", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    df = pd.read_csv(out)
    assert list(df.columns) == ["time", "ALT [ft]", "IAS [kt]", "EGT [degC]", "PITCH_RATE [deg/s]"]  # units suffix
    df = df.rename(columns=lambda c: c.split(" [")[0])
    check_wide(df, rec, ["ALT", "IAS", "EGT", "PITCH_RATE"], t0, t1)
    assert df["time"][0].endswith("Z") and len(df["time"][0]) == len("2023-11-14T22:13:20.800288000Z")
    assert not (tmp_path / "a.csv.part").exists()

    out = tmp_path / "b.csv"  # relative times, long format, format from the file name
    first = sample_span(rec)[0]
    assert main(["export", str(flight / Path(rec.index_path).name), "--params", "PITCH_*,ALT", "--long",
                 "--start", "+0.25", "--end", "+1", "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["time", "parameter", "value", "units"]
    assert set(zip(df["parameter"], df["units"])) == {("PITCH_RATE", "deg/s"), ("ALT", "ft")}
    check_long(df, rec, ["PITCH_RATE", "ALT"], first + S // 4, first + S)
    rec.close()


def test_export_parquet_wide_and_long_equal_the_reader(flight, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    import groundstation.export

    monkeypatch.setattr(groundstation.export, "ROWS_PER_WINDOW", 700)  # many read windows, row groups
    rec = recorder.open(flight)
    names = ["ALT", "EGT", "FUEL_FLOW", "ROLL_RATE"]
    out = tmp_path / "w.parquet"
    assert main(["export", rec.files[0], "--params", ",".join(names), "--format", "parquet", "-o", str(out)]) == 0
    table = pq.read_table(out)
    assert pq.ParquetFile(out).num_row_groups > 5
    assert str(table.schema.field("time").type) == "timestamp[ns, tz=UTC]"
    assert table.schema.field("EGT").metadata[b"units"] == b"degC"
    assert json.loads(table.schema.metadata[b"groundstation"])["format"] == "wide"
    check_wide(table.to_pandas(), rec, names, None, None)

    out = tmp_path / "l.parquet"
    t0, t1 = T0 + S // 3, T0 + S
    assert main(["export", str(flight), "--params", "ROLL_RATE,FUEL_FLOW", "--long", "--start", iso(t0),
                 "--end", iso(t1), "--format", "parquet", "-o", str(out)]) == 0
    check_long(pq.read_table(out).to_pandas(), rec, ["ROLL_RATE", "FUEL_FLOW"], t0, t1)
    rec.close()


def test_export_c10_is_byte_identical_and_pychapter10_reads_it(flight, tmp_path):
    rec = recorder.open(flight)
    t0, t1 = T0 + S // 2, T0 + 3 * S // 2
    want = list(rec.iter_packets(t0, t1))
    out = tmp_path / "part.c10"
    assert main(["export", str(flight), "--start", iso(t0), "--end", iso(t1), "--format", "c10",
                 "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data == b"".join(p.raw for p in want)
    ours = [p for p in iter_packets(data)]
    assert [bytes(p.raw) for p in ours] == [p.raw for p in want] and len(want) > 20

    chapter10 = pytest.importorskip("chapter10")
    theirs = list(chapter10.C10(str(out)))
    assert [(p.channel_id, p.data_type, p.rtc, p.packet_length, p.sequence_number) for p in theirs] == \
        [(p.header.channel_id, p.header.data_type, p.header.rtc, p.header.packet_length, p.header.sequence_number)
         for p in ours]

    out = tmp_path / "time.c10"  # one channel
    assert main(["export", str(flight), "--channels", "1", "-o", str(out)]) == 0
    assert out.read_bytes() == b"".join(p.raw for p in rec.iter_packets(channels=[1]))
    rec.close()


def test_export_user_errors_exit_2_with_a_clear_message(flight, tmp_path, capsys):
    def err(*argv) -> str:
        assert main(["export", *argv]) == 2
        e = capsys.readouterr().err
        assert "Traceback" not in e and e.startswith("groundstation export: ")
        return e

    out = str(tmp_path / "x.csv")
    e = err(str(flight), "--params", "ALT,ALTT,egt,NOPE*", "-o", out)
    assert "unknown parameters: ALTT (did you mean ALT?), egt (did you mean EGT?), NOPE*" in e
    assert "parameters in this recording: ALT, IAS" in e
    assert "no samples" in err(str(flight), "--params", "ALT", "--start", "+30", "-o", out)
    assert "no samples" in err(str(flight), "--params", "ALT", "--end", "2001-01-01T00:00:00Z", "-o", out)
    assert "empty time range" in err(str(flight), "--start", "+1", "--end", "+0.5", "-o", out)
    assert "bad time 'noon'" in err(str(flight), "--start", "noon", "-o", out)
    assert "no such recording" in err(str(tmp_path / "missing.h5"), "-o", out)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(bytes(range(256)) * 40)
    assert "not a readable recording" in err(str(junk), "-o", out)
    assert "no packets" in err(str(flight), "--format", "c10", "--start", "+100", "-o", str(tmp_path / "x.c10"))
    assert "--params does not apply" in err(str(flight), "--params", "ALT", "-o", str(tmp_path / "x.c10"))
    assert "does not exist" in err(str(flight), "-o", str(tmp_path / "no" / "x.csv"))
    assert not list(tmp_path.glob("x.*"))  # nothing half-written

    # the real command: exit status 2, one message, no traceback
    r = subprocess.run([sys.executable, "-m", "groundstation.cli", "export", str(flight), "--params", "NOPE",
                        "-o", out], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown parameter: NOPE" in r.stderr and "Traceback" not in r.stderr


def test_times_names_and_progress_bar():
    assert parse_time("+12.5", 1000) == 1000 + 12_500_000_000
    assert parse_time("2023-11-14T22:13:20.3Z", None) == T0
    assert parse_time("2023-11-14T23:13:20.3+01:00", None) == T0
    assert parse_time(None, 5) is None
    assert select_parameters(["ALT", "IAS", "EGT", "N1", "N2"], ["N?", "ALT", "N1"]) == (["N1", "N2", "ALT"], [])
    assert select_parameters(["ALT"], ["X*", "ALT"]) == (["ALT"], ["X*"])

    quiet = io.StringIO()  # not a TTY: nothing
    p = Progress(100, "rows", stream=quiet)
    p.update(50)
    p.close()
    assert quiet.getvalue() == ""
    tty = io.StringIO()
    p = Progress(2_000_000, "B", stream=tty, enabled=True, min_interval_s=0)
    p.update(1_000_000)
    p.close()
    assert "50.0%" in tty.getvalue() and "1.0 MB/2.0 MB" in tty.getvalue() and tty.getvalue().endswith("\n")


# -- the replay schedule (no sockets) -----------------------------------------------------------------


def _packet(channel: int, rtc: int, n: int = 100, seq: int = 0) -> bytes:
    from telemetry_formats.ch10.packet import build_packet

    return build_packet(channel_id=channel, data_type=0x09, body=bytes(4) + bytes([seq & 0xFF]) * n,
                        sequence_number=seq, rtc=rtc)


def _receive(datagrams) -> list[bytes]:
    rx = UdpReceiver()
    out = []
    for d in datagrams:
        out += [e.data for e in rx.receive(d) if isinstance(e, PacketReceived)]
    assert rx.stats.gaps == 0 and rx.stats.malformed == 0
    return out


def test_schedule_timing_batching_and_markers():
    # 5 s of packets, one every 100 ms, two per instant
    pkts = [ReplayPacket(_packet(3 + k, 0, 200, i), T0 + i * 100_000_000, 0) for i in range(50) for k in (0, 1)]
    sched = ReplaySchedule(pkts, source="FT-042.h5", speed=4)
    out = list(sched)
    times = [t for t, _ in out]
    assert times == sorted(times)
    markers = [(t, parse_marker(d[4:])) for t, d in out if is_replay_marker(d[4:])]
    data = [(t, d) for t, d in out if not is_replay_marker(d[4:])]
    assert len(data) == 50  # the two packets of an instant share a datagram
    want = [i * 0.1 / 4 for i in range(50)]
    assert np.allclose([t for t, _ in data], want, atol=1e-4)
    # markers: at the start, then once a second of wall time, before the data due then
    assert [round(t, 3) for t, _ in markers] == [0.0, 1.0]
    assert markers[0][1] == {"source": "FT-042.h5", "speed": 4, "position_s": 0.0}
    assert markers[1][1]["position_s"] == pytest.approx(4.0, abs=0.01)
    got = _receive(d for _, d in out)
    assert [p for p in got if not is_replay_marker(p)] == [p.raw for p in pkts]
    st = sched.stats
    assert (st.packets, st.markers, st.passes) == (100, 2, 1)
    assert st.position_s == pytest.approx(4.9) and st.end_offset_s == pytest.approx(4.9 / 4, abs=1e-4)


def test_schedule_afap_is_rate_bounded_and_big_packets_are_segmented():
    big = _packet(5, 0, 200_000)
    pkts = [ReplayPacket(_packet(3, 0, 60_000, i), T0 + i * S, 0) for i in range(40)] + [ReplayPacket(big, T0, 0)]
    sched = ReplaySchedule(pkts, source="x.c10", speed=None, max_rate=10e6)
    out = list(sched)
    total = sum(len(d) for _, d in out)
    last_t, last_d = out[-1]
    assert last_t + len(last_d) / 10e6 == pytest.approx(total / 10e6, rel=1e-6)  # back to back at 10 MB/s
    assert all(len(d) <= 65000 for _, d in out)
    got = [p for p in _receive(d for _, d in out) if not is_replay_marker(p)]
    assert got == [p.raw for p in pkts]
    ms = [parse_marker(d[4:]) for _, d in out if is_replay_marker(d[4:])]
    assert ms[0]["speed"] == "afap" and len(ms) == 1  # 2.6 MB at 10 MB/s: the start marker only


def test_schedule_loop_and_old_markers():
    old = build_marker("earlier.c10", 1, 3.0, rtc=7)
    pkts = [ReplayPacket(_packet(3, 0, 100, i), T0 + i * 10_000_000, 0) for i in range(10)]
    sched = ReplaySchedule(lambda: [pkts[0], ReplayPacket(old, T0, 7), *pkts[1:]], source="r.h5", speed=1,
                           loop=True)
    out = []
    for item in sched:
        out.append(item)
        if sched.stats.passes == 3:
            break
    got = [p for p in _receive(d for _, d in out) if not is_replay_marker(p)]
    assert got[:20] == [p.raw for p in pkts] * 2  # the earlier replay's marker is left out
    assert sched.stats.old_markers_skipped >= 2
    times = [t for t, _ in out]
    assert times == sorted(times) and times[10] >= 0.09  # the second pass follows the first


def test_c10_timing_by_rtc(tmp_path):
    # RTC out of order (recorders write packets when complete), a 48-bit wrap, then a jump back by a day
    m, day = 1 << 48, 864_000_000_000
    rtcs = [m - 3_000_000, m - 4_000_000, 1_000_000, 3_000_000, (3_000_000 - day) % m, (5_000_000 - day) % m]
    f = tmp_path / "t.c10"
    f.write_bytes(b"".join(_packet(3, r, 16, i) for i, r in enumerate(rtcs)) + b"\x25\xeb garbage")
    src = open_source(str(f))
    pkts = list(src.packets())
    assert len(pkts) == 6 and src.stats.decode_errors == 1
    line = Timeline(max_gap_ns=60 * S)
    pos = [line.advance(p.time_ns) / 1e9 for p in pkts]
    # 0, held (earlier), +0.4 s across the wrap, +0.2 s, no time for the jump back, +0.2 s
    assert pos == pytest.approx([0, 0, 0.4, 0.6, 0.6, 0.8])
    assert Timeline(max_gap_ns=5 * S).advance(0) == 0
    line = Timeline(max_gap_ns=5 * S)
    assert [line.advance(t) for t in (0, S, 100 * S, 101 * S)] == [0, S, 6 * S, 7 * S]  # long silence shortened


def test_replay_user_errors_exit_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing.c10"), "--to", "127.0.0.1:9"]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "text.c10"
    bad.write_text("not chapter 10\n" * 100)
    assert main(["replay", str(bad), "--to", "127.0.0.1:9"]) == 2
    assert "not a Chapter 10 file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["replay", str(bad), "--speed", "0"])
    assert e.value.code == 2


# -- replay over UDP ------------------------------------------------------------------------------------


def test_replay_at_speed_10_takes_a_tenth_of_the_recording(flight):
    rec = recorder.open(flight)
    arrivals = [p.arrival_ns for p in rec.iter_packets()]
    span = (arrivals[-1] - arrivals[0]) / 1e9
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2.0)
    got: list[tuple[float, bytes]] = []

    def receive():
        try:
            while True:
                d = rx.recv(70000)
                got.append((time.monotonic(), d))
        except (TimeoutError, OSError):
            pass

    th = threading.Thread(target=receive)
    th.start()
    src = open_source(str(flight))
    sched = ReplaySchedule(src.packets, source=src.name, speed=10)
    t_start = time.monotonic()
    res = asyncio.run(send_schedule(sched, "127.0.0.1", rx.getsockname()[1]))
    took = time.monotonic() - t_start
    th.join()
    rx.close()
    src.close()
    assert span > 1.5
    data = [(t, d) for t, d in got if not is_replay_marker(d[4:])]
    assert len(got) == res.sent_datagrams == sched.stats.datagrams
    assert [p for p in _receive(d for _, d in got) if not is_replay_marker(p)] == \
        [p.raw for p in rec.iter_packets()]
    seen = data[-1][0] - data[0][0]
    assert abs(seen - span / 10) < 0.03 + 0.1 * span / 10, (seen, span)
    assert took < span / 10 + 0.3
    rec.close()


def test_replay_of_pcm_c10_through_a_server_records_every_packet(tmp_path):
    from tests.live import Console, server

    async def replay_watched(srv) -> dict:
        console = await Console.connect(srv.ws_url)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "groundstation.cli", "replay", str(PCM_C10), "--to", f"127.0.0.1:{srv.udp_port}",
            "--speed", "afap", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        assert b"53 packets, 1,032,988 bytes" in out and b"Traceback" not in err
        seen = await console.until(lambda m: m["type"] == "source", 5)  # the consoles see a replay
        await console.close()
        return seen["source"]

    folder = tmp_path / "rec"
    with server("--record", str(folder)) as srv:
        source = asyncio.run(replay_watched(srv))
        time.sleep(0.3)  # the last datagrams reach the server before it stops (and closes the recording)
    assert source == {"replay": True, "source": "pcm.c10", "speed": "afap", "position_s": 0.0}
    out = tmp_path / "again.c10"
    assert main(["export", str(folder), "--format", "c10", "-o", str(out)]) == 0
    data = out.read_bytes()
    exported = [bytes(p.raw) for p in iter_packets(data)]
    assert not any(is_replay_marker(p) for p in exported), "the replayer's markers are not recorded"
    original = [p.raw for p in c10_packets(PCM_C10)]
    assert len(original) == 53
    assert exported == original  # packet for packet, in order
