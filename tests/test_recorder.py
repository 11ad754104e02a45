"""The recorder: layout, buffering, writing a simulated flight to HDF5 and reading it back.

Datagrams come from the vehicle simulator and are decoded by the real ``Ingest``
(no sockets); what the reader returns is compared with what was decoded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

import recorder
from groundstation.ingest.core import Ingest
from groundstation.simulator.flight import vehicle_database
from groundstation.simulator.vehicle import Vehicle
from recorder.buffer import RecordBuffer, assemble
from recorder.layout import SegmentLayout
from recorder.service import RecorderService
from recorder.writer import HDF5Writer
from telemetry_formats.decom import SampleBatch

S = 1_000_000_000
T0 = 1_700_000_000 * S + 300_000_000
STEP = 20_000_000  # 20 ms of flight per call, as a UDP loop would deliver it


class SimClock:
    def __init__(self, t: int = T0) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def fly(seconds: float, *, bit_rate: float = 1_000_000, seed: int = 1, start: int = T0, on_step=None,
        vehicle: Vehicle | None = None, ingest: Ingest | None = None):
    """Run the vehicle and the ingest; returns (vehicle, ingest, decoded batches, results)."""
    v = vehicle or Vehicle(start_ns=start, bit_rate=bit_rate, seed=seed)
    ing = ingest or Ingest()
    decoded, results = [], []
    t = start
    end = start + int(seconds * S)
    while t < end:
        t += STEP
        for dg in v.advance(t):
            res = ing.receive(dg, t)
            decoded += res.samples
            results.append((res, t))
            if on_step is not None:
                on_step(res, t)
    return v, ing, decoded, results


def stored(eu: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Decoded values as the recording stores them (float32 where the layout's rule allows)."""
    return eu.astype(like.dtype)


def long_format(batches):
    return {k: np.concatenate([getattr(b, k) for b in batches]) for k in ("pid", "t_ns", "raw", "eu", "limit")}


def recording_step(svc: RecorderService, clock: SimClock, *, wait: bool = True, write_until: int | None = None):
    """A ``fly`` step feeding ``svc`` on the simulated clock; with ``wait`` each interval is written
    before the flight goes on (deterministic); after ``write_until`` nothing more is written."""

    def step(res, t):
        clock.t = t
        svc.on_ingest(res, t)
        if write_until is None or t < write_until:
            svc.flush_due(t)
            if wait:
                svc.wait()

    return step


def record(folder, seconds: float = 2.0, *, clock: SimClock | None = None, **service_kwargs):
    """Fly and record through RecorderService on a simulated clock; returns what was decoded."""
    clock = clock or SimClock()
    service_kwargs.setdefault("compress", False)  # the live format; tests/test_recorder_compress.py the rest
    svc = RecorderService(folder, clock_ns=clock, **service_kwargs)
    v, ing, decoded, results = fly(seconds, on_step=recording_step(svc, clock))
    svc.close()
    return SimpleNamespace(service=svc, vehicle=v, ingest=ing, decoded=decoded, results=results,
                           ids={k: v for b in decoded for k, v in (b.ids or {}).items()}, cat=long_format(decoded))


@pytest.fixture(scope="module")
def flight(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rec")
    out = record(folder, 3.0, flush_interval_s=0.5)
    out.folder = folder
    return out


# -- layout (pure) ------------------------------------------------------------------------------


def test_layout_groups_parameters_by_rate_and_frame_filter() -> None:
    db = vehicle_database(1_000_000)
    lay = SegmentLayout.from_database(db, version=3, source="TMATS", channel_id=3)
    placed = sorted(int(p) for g in lay.groups for p in g.pids)
    assert placed == list(range(len(db.parameters)))  # every parameter exactly once
    for g in lay.groups:
        ps = [db.parameters[i] for i in g.pids]
        assert len({p.samples_per_minor(db.frame) for p in ps}) == 1
        assert len({(p.frame_position, p.frame_interval) for p in ps}) == 1 or g.frame_position == 0
        assert g.time_offset_ns[0] == 0
    by_name = {n: g for g in lay.groups for n in g.names}
    assert by_name["ALT"] is by_name["IAS"]  # both once per minor frame, every frame
    assert by_name["EGT"] is not by_name["FUEL_FLOW"]  # same rate, other minor frames
    assert by_name["PITCH_RATE"] is by_name["ROLL_RATE"]
    rates = [g.rate_hz for g in lay.groups]
    assert rates == sorted(rates, reverse=True)
    names = {s.path for s in lay.datasets()}
    assert {"packets/data", "packets/index", "events/text", "commands/time", "catalog/name"} <= names
    assert lay.datasets()[0].attrs["units"] == "nanoseconds since 1970-01-01"


def test_assemble_fills_missing_samples_with_nan() -> None:
    db = vehicle_database(1_000_000)
    lay = SegmentLayout.from_database(db, version=1)
    g = next(g for g in lay.groups if {"ALT", "IAS"} <= set(g.names))
    alt, ias = int(lay.catalog["name"].index("ALT")), int(lay.catalog["name"].index("IAS"))
    off = int(g.time_offset_ns[list(g.names).index("IAS")])
    # ALT at three frame times, IAS only at the last two.
    pid = np.array([alt, alt, alt, ias, ias], np.int32)
    t = np.array([100, 200, 300, 200 + off, 300 + off], np.int64)
    batch = SampleBatch(pid, t, np.arange(5, dtype=np.uint32), np.arange(5.0), np.zeros(5, np.int8))
    buf = RecordBuffer()
    buf.add(SimpleNamespace(packets=[], samples=[batch], configured=None), 0)
    blk = assemble(buf.take()[0], lay)
    r = blk.rates[g.name]
    assert r.time.tolist() == [100, 200, 300]
    col_alt, col_ias = list(g.names).index("ALT"), list(g.names).index("IAS")
    assert r.values[:, col_alt].tolist() == [0.0, 1.0, 2.0]
    assert np.isnan(r.values[0, col_ias]) and r.values[1:, col_ias].tolist() == [3.0, 4.0]


def test_buffer_is_bounded_and_counts_what_it_drops() -> None:
    _, _, _, results = fly(0.5)
    buf = RecordBuffer(max_bytes=64 << 10)
    for res, t in results:
        buf.add(res, t)
    st = buf.stats
    assert st.dropped_samples > 0 and buf.pending_bytes <= 64 << 10
    assert st.packets > 0  # packets are kept while samples give way
    sections = buf.take()
    assert sections[0].new_segment == "configuration" and buf.pending_bytes == 0


# -- write and read back --------------------------------------------------------------------------


def test_values_read_back_equal_what_was_decoded(flight) -> None:
    rec = recorder.open(flight.folder)
    cat = flight.cat
    assert sorted(rec.names) == sorted(flight.ids)
    for name, pid in flight.ids.items():
        s = rec.read(name)
        sel = cat["pid"] == pid
        assert len(s) == int(sel.sum()) > 0, name
        assert np.array_equal(s.t_ns, cat["t_ns"][sel]), name
        assert np.array_equal(s.values, stored(cat["eu"][sel], s.values), equal_nan=True), name  # NaN: invalid bus samples
        assert np.array_equal(s.raw, cat["raw"][sel]), name
        assert np.array_equal(s.limit, cat["limit"][sel]), name
    info = {p.name: p for p in rec.parameters}
    assert info["ALT"].units == "ft" and info["ALT"].group == "air data"
    rep = rec.report()
    assert rep["problems"] == []
    assert rep["last_ns"] >= cat["t_ns"].max() - 50_000_000
    rec.close()


def test_time_range_pandas_and_xarray(flight) -> None:
    rec = recorder.open(flight.folder)
    start, end = T0 + S, T0 + 2 * S
    s = rec.read("PITCH_RATE", start, end)
    sel = (flight.cat["pid"] == flight.ids["PITCH_RATE"]) & (flight.cat["t_ns"] >= start) & \
        (flight.cat["t_ns"] < end)
    assert np.array_equal(s.values, stored(flight.cat["eu"][sel], s.values)) and len(s) > 100
    df = rec.read("PITCH_RATE", np.datetime64(start, "ns"), "2023-11-14T22:13:22.300", as_="pandas")
    assert str(df.index.dtype) == "datetime64[ns, UTC]" and list(df.columns) == ["PITCH_RATE"]
    assert df.attrs["units"] == {"PITCH_RATE": "deg/s"}
    assert np.array_equal(df["PITCH_RATE"].to_numpy(), s.values)
    da = rec.read("ALT", as_="xarray")
    assert da.time.dtype == np.dtype("datetime64[ns]") and da.attrs["units"] == "ft"
    both = rec.dataframe(["ALT", "EGT"], start, end)
    assert set(both.columns) == {"ALT", "EGT"} and both.index.is_monotonic_increasing
    with pytest.raises(KeyError):
        rec.read("NO_SUCH")
    rec.close()


def test_xarray_open_dataset_gives_datetime64_times(flight) -> None:
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    path = recorder.open(flight.folder).files[0]
    ds = xr.open_dataset(path, engine="h5netcdf", group="rates/rate_01")
    try:
        assert ds.time.dtype == np.dtype("datetime64[ns]")
        assert ds["values"].dims == ("time", "param")
        names = [str(n) for n in ds.param.values]
        assert "PITCH_RATE" in names
        got = ds["values"].sel(param="PITCH_RATE").values
        sel = flight.cat["pid"] == flight.ids["PITCH_RATE"]
        assert np.array_equal(got, stored(flight.cat["eu"][sel], got))
        assert list(ds["values"].attrs["units"])[names.index("PITCH_RATE")] == "deg/s"
    finally:
        ds.close()


def test_h5dump_reads_the_file(flight) -> None:
    if shutil.which("h5dump") is None:
        pytest.skip("h5dump is not installed (Debian package hdf5-tools)")
    path = recorder.open(flight.folder).files[0]
    out = subprocess.run(["h5dump", "-H", path], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'DATASET "values"' in out.stdout and 'GROUP "packets"' in out.stdout
    out = subprocess.run(["h5dump", "-d", "/catalog/name", path], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and '"ALT"' in out.stdout


def test_raw_packets_read_back_byte_identical_and_redecode(flight, tmp_path) -> None:
    sent = [(bytes(p.raw), p.channel_id, p.data_type, p.header.rtc, t) for res, t in flight.results
            for p in res.packets]
    rec = recorder.open(flight.folder)
    got = [(p.raw, p.channel, p.data_type, p.rtc, p.arrival_ns) for p in rec.iter_packets(batch_bytes=50_000)]
    assert got == sent
    c10 = tmp_path / "out.c10"
    assert rec.write_c10(c10) == len(sent)
    assert c10.read_bytes() == b"".join(p[0] for p in sent)
    # The export decodes to the same values.
    ing = Ingest()
    res = ing.receive_packets(c10.read_bytes(), T0)
    again = long_format(res.samples)
    sel = flight.cat["pid"] == flight.ids["ALT"]
    assert np.array_equal(again["eu"][again["pid"] == flight.ids["ALT"]], flight.cat["eu"][sel])
    only_time = list(rec.iter_packets(channels=[1]))
    assert only_time and all(p.channel == 1 for p in only_time)
    rec.close()


def test_configuration_event_and_index(flight) -> None:
    rec = recorder.open(flight.folder)
    ev = rec.events("configuration")
    assert len(ev) == 1 and ev[0]["version"] == 1 and ev[0]["parameters"] == len(flight.ids)
    index = json.loads(open(rec.index_path).read())
    assert index["state"] == "closed" and len(index["segments"]) == 1
    seg = index["segments"][0]
    assert seg["end"] == "closed" and seg["samples"] == len(flight.cat["pid"])
    with h5py.File(rec.files[0], "r") as f:
        assert f.attrs["format"] == "groundstation-recording"
        assert f.attrs["config_source"] == "TMATS"
    rec.close()


def test_events_and_commands_are_recorded(tmp_path) -> None:
    clock = SimClock()
    svc = RecorderService(tmp_path, clock_ns=clock)
    _, _, _, results = fly(0.2)
    for res, t in results:
        svc.on_ingest(res, t)
    svc.on_event({"type": "alarm", "event": "raised", "alarm": {"name": "EGT", "severity": "WARNING"}}, T0 + 5)
    svc.on_event({"type": "link", "state": "LOST", "reason": "no data for 0.5 s"}, T0 + 6)
    svc.on_command({"id": 7, "name": "SET_BITRATE", "state": "Sent", "user": "dir", "reason": "test point 4\nnext"},
                   T0 + 7)
    svc.close()
    rec = recorder.open(tmp_path)
    assert [e["type"] for e in rec.events()] == ["configuration", "alarm", "link"]
    alarm = rec.events("alarm")[0]
    assert alarm["time_ns"] == T0 + 5 and alarm["alarm"]["name"] == "EGT"
    cmds = rec.commands()
    assert cmds == [{"time_ns": T0 + 7, "id": 7, "name": "SET_BITRATE", "state": "Sent", "user": "dir",
                     "reason": "test point 4\nnext"}]
    rec.close()


def test_a_new_configuration_starts_a_new_segment(tmp_path) -> None:
    clock = SimClock()
    svc = RecorderService(tmp_path, clock_ns=clock, flush_interval_s=0.2)
    step = recording_step(svc, clock, wait=False)
    v, ing, dec1, _ = fly(1.0, on_step=step)
    v.set_bit_rate(2_000_000)  # the vehicle announces a new TMATS: a new catalog version
    _, _, dec2, _ = fly(1.5, start=T0 + S, vehicle=v, ingest=ing, on_step=step)
    svc.close()
    rec = recorder.open(tmp_path)
    assert len(rec.files) == 2
    versions = [h5py.File(f, "r", swmr=True).attrs["config_version"] for f in rec.files]
    assert versions == [1, 2]
    cat = long_format(dec1 + dec2)
    ids = dec1[0].ids
    s = rec.read("ALT")  # across both segments
    sel = cat["pid"] == ids["ALT"]
    assert np.array_equal(s.t_ns, cat["t_ns"][sel]) and np.array_equal(s.values, stored(cat["eu"][sel], s.values))
    index = json.load(open(rec.index_path))
    assert [seg["end"] for seg in index["segments"]] == ["configuration", "closed"]
    rec.close()


def test_rotation_by_size_and_by_time(tmp_path) -> None:
    by_size = record(tmp_path / "size", 2.0, rotate_bytes=200_000, flush_interval_s=0.25)
    rec = recorder.open(tmp_path / "size")
    assert len(rec.files) >= 3
    ends = [s["end"] for s in json.load(open(rec.index_path))["segments"]]
    assert set(ends[:-1]) == {"size"} and ends[-1] == "closed"
    sel = by_size.cat["pid"] == by_size.ids["VIB"]
    vib = rec.read("VIB").values
    assert np.array_equal(vib, stored(by_size.cat["eu"][sel], vib))
    assert sum(1 for _ in rec.iter_packets()) == sum(len(r.packets) for r, _ in by_size.results)
    rec.close()
    record(tmp_path / "time", 2.0, rotate_seconds=0.5, flush_interval_s=0.25)
    rec = recorder.open(tmp_path / "time")
    ends = [s["end"] for s in json.load(open(rec.index_path))["segments"]]
    assert 3 <= len(ends) <= 5 and set(ends[:-1]) == {"time"}
    rec.close()


def test_unwritable_folder_is_reported_without_exceptions(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    seen = []
    clock = SimClock()
    svc = RecorderService(blocker / "rec", clock_ns=clock, flush_interval_s=0.1, on_state=seen.append)
    _, _, _, results = fly(0.5)
    events = []
    for res, t in results:
        clock.t = t
        svc.on_ingest(res, t)  # never raises
        events += svc.flush_due(t)
        svc.wait()
    events += svc.flush_due(clock.t + S)
    st = svc.status()
    assert st["state"] == "error"
    assert "Not a directory" in st["error"] and str(blocker) in st["error"]
    assert events and events[0]["type"] == "recorder" and events[0]["state"] == "error"
    assert "recording failed" in events[0]["message"] and seen == events
    assert st["dropped_packets"] > 0
    svc.close()  # never raises either


def test_writer_recovers_when_the_folder_becomes_writable(tmp_path) -> None:
    blocker = tmp_path / "later"
    blocker.write_text("x")
    clock = SimClock()
    w = HDF5Writer(blocker, clock_ns=clock, retry_s=1.0)
    _, _, _, results = fly(0.3)
    buf = RecordBuffer()
    for res, t in results:
        buf.add(res, t)
    w.write_all(buf.take())
    assert w.state == "error"
    blocker.unlink()
    _, _, _, more = fly(0.3, start=T0 + S)
    for res, t in more:
        buf.add(res, t)
    clock.t += 2 * S
    w.write_all(buf.take())
    w.flush()
    assert w.state == "recording", w.status()
    w.close()
    rec = recorder.open(blocker)
    assert rec.report()["segments"][0]["datasets"]["packets"]["rows"] > 0
    rec.close()


# -- damaged files -----------------------------------------------------------------------------------


def test_truncated_file_reader_reports_what_it_recovered(flight, tmp_path) -> None:
    src = recorder.open(flight.folder).files[0]
    size = os.path.getsize(src)
    damaged = tmp_path / "truncated.h5"
    with open(src, "rb") as fh:
        damaged.write_bytes(fh.read(int(size * 0.7)))
    rec = recorder.open(damaged)
    rep = rec.report()
    seg = rep["segments"][0]
    assert seg["mode"] in ("padded", "scanned")
    assert any("truncated" in p or "scanning" in p for p in rep["problems"]), rep["problems"]
    if seg["mode"] == "padded":
        full = recorder.open(flight.folder)
        got = 0
        for name in ("ALT", "VIB"):
            part, whole = rec.read(name), full.read(name)
            assert len(part) <= len(whole)
            assert np.array_equal(part.values, whole.values[:len(part)])
            got += len(part)
        pk = list(rec.iter_packets())
        assert [p.raw for p in pk] == [p.raw for p in list(full.iter_packets())[:len(pk)]]
        assert got > 0 or pk
    else:
        assert seg["packets"] > 0
    rec.close()


def test_garbage_file_is_scanned_for_packets(flight, tmp_path) -> None:
    src = recorder.open(flight.folder).files[0]
    damaged = tmp_path / "garbage.h5"
    data = bytearray(open(src, "rb").read())
    data[:4096] = os.urandom(4096)  # superblock and root group gone
    damaged.write_bytes(bytes(data))
    rec = recorder.open(damaged)
    rep = rec.report()
    assert rep["segments"][0]["mode"] == "scanned"
    pk = list(rec.iter_packets())
    sent = {bytes(p.raw) for res, _ in flight.results for p in res.packets}
    assert len(pk) > len(sent) // 2 and all(p.raw in sent for p in pk)
    assert rec.names == []
    rec.close()
