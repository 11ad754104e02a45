"""Closed segments compressed in the background: verified, swapped in atomically, readable by every reader.

A session is recorded uncompressed (the live format) from the vehicle simulator
through the real ``Ingest``; copies of it are then compressed by a writer starting
in the folder (``pending_segments``), by a child process killed half-way, and by a
compressor whose output is corrupted on purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import recorder
from recorder.compress import TMP_SUFFIX, CompressionError, Compressor, compress_segment, is_compressed
from recorder.layout import SegmentLayout, float32_holds
from recorder.writer import HDF5Writer
from telemetry_formats.paramdb import Calibration, Fragment, FrameFormat, Parameter, ParameterDatabase
from tests.test_recorder import record


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A 3 s flight in uncompressed segments (rotation by size), and what it holds."""
    folder = tmp_path_factory.mktemp("live")
    flight = record(folder, 3.0, rotate_bytes=600_000, flush_interval_s=0.5)
    rec = recorder.open(folder)
    assert len(rec.files) >= 2 and not any(is_compressed(f) for f in rec.files)
    flight.folder, flight.content = folder, _content(rec)
    rec.close()
    return flight


def _content(rec) -> dict:
    """Everything an analyst reads from a recording."""
    out = {name: rec.read(name) for name in rec.names}
    out["packets"] = [(p.raw, p.channel, p.arrival_ns) for p in rec.iter_packets()]
    out["events"] = rec.events()
    return out


def _same_content(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k in ("packets", "events"):
            assert a[k] == b[k], k
            continue
        for field in ("t_ns", "values", "raw", "limit"):
            x, y = getattr(a[k], field), getattr(b[k], field)
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), (k, field)


def _copy_session(session, tmp_path):
    folder = tmp_path / "rec"
    shutil.copytree(session.folder, folder)
    return folder


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_closed_segments_are_compressed_verified_and_replaced(session, tmp_path) -> None:
    folder = _copy_session(session, tmp_path)
    before = {f: os.path.getsize(f) for f in recorder.open(folder).files}
    w = HDF5Writer(folder, compress=True)  # a writer starting here finds them closed and uncompressed
    assert w.wait_compression(120)
    assert w.status()["compression"]["done"] == len(before) and w.status()["compression"]["failed"] == 0
    index = json.load(open(next(folder.glob("*.index.json"))))
    assert all(e["compressed"] for e in index["segments"])
    for path, size in before.items():
        assert is_compressed(path) and os.path.getsize(path) < size / 2
        assert not os.path.exists(path + TMP_SUFFIX)
        with h5py.File(path, "r") as f:
            for name in ("packets/data", "packets/index", "rates/rate_00/values", "rates/rate_00/time"):
                assert f[name].compression == "gzip" and f[name].shuffle, name
            assert f["rates/rate_00/time"].maxshape == (None,)
    rec = recorder.open(folder)
    _same_content(session.content, _content(rec))
    assert rec.report()["problems"] == []
    rec.close()
    w.close()


def test_writer_compresses_each_segment_it_closes_and_keeps_the_live_one_uncompressed(tmp_path) -> None:
    flight = record(tmp_path, 2.0, rotate_bytes=600_000, flush_interval_s=0.5, compress=True)
    # record() closed the service: the last child may still run detached; the others are done
    live = HDF5Writer(tmp_path, compress=True)  # picks up whatever the first writer left
    assert live.wait_compression(120)
    rec = recorder.open(tmp_path)
    assert len(rec.files) >= 2 and all(is_compressed(f) for f in rec.files)
    vib = rec.read("VIB")
    sel = flight.cat["pid"] == flight.ids["VIB"]
    assert np.array_equal(vib.raw, flight.cat["raw"][sel])
    assert np.array_equal(vib.values, flight.cat["eu"][sel].astype(vib.values.dtype))
    rec.close()
    live.close()


def test_readers_read_compressed_files_unchanged(session, tmp_path) -> None:
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    folder = _copy_session(session, tmp_path)
    plain = recorder.open(session.folder).files[0]
    path = str(folder / os.path.basename(plain))
    compress_segment(path)
    for p in (plain, path):
        ds = xr.open_dataset(p, engine="h5netcdf", group="rates/rate_01")
        try:
            assert ds.time.dtype == np.dtype("datetime64[ns]")
            got = ds["values"].sel(param="PITCH_RATE").values
        finally:
            ds.close()
        want = session.content["PITCH_RATE"]
        assert np.array_equal(got, want.values[: len(got)]) and len(got) > 100
    if shutil.which("h5dump") is None:
        pytest.skip("h5dump is not installed (Debian package hdf5-tools)")
    outs = [subprocess.run(["h5dump", "-A", "0", "-d", "/rates/rate_01/values", "-d", "/packets/index", p],
                           capture_output=True, text=True, timeout=60) for p in (plain, path)]
    assert all(o.returncode == 0 for o in outs), outs[1].stderr
    data = [o.stdout[o.stdout.index("DATA {"):] for o in outs]  # the file names differ, the data not
    assert data[0] == data[1] and "(100,0)" in data[0]
    header = subprocess.run(["h5dump", "-H", "-p", path], capture_output=True, text=True, timeout=60).stdout
    assert "DEFLATE" in header and "SHUFFLE" in header


def _kill_half_way(path: str) -> bool:
    """Start a compressor child on ``path`` and SIGKILL it once its copy exists; False if the
    child swapped its copy in first (a loaded machine can be that slow to react)."""
    c = Compressor(nice=0)
    c.submit(path)
    tmp, deadline = path + TMP_SUFFIX, time.monotonic() + 30
    while not os.path.exists(tmp) and time.monotonic() < deadline:
        time.sleep(0.0005)
    assert os.path.exists(tmp) or c.proc.poll() is not None, "the child never started writing its copy"
    os.kill(c.proc.pid, signal.SIGKILL)
    res = c.wait(30)
    return bool(res) and not res[0]["compressed"] and not is_compressed(path)  # not already swapped in


def test_a_kill_during_compression_leaves_the_segment_intact_and_a_restart_redoes_it(session, tmp_path) -> None:
    for attempt in range(5):
        folder = _copy_session(session, tmp_path / str(attempt))
        path = recorder.open(folder).files[0]
        sha = _sha(path)
        if _kill_half_way(path):  # the copy exists, the original is not replaced yet
            break
    else:
        pytest.fail("the compressor finished before every kill")
    assert _sha(path) == sha and not is_compressed(path)
    rec = recorder.open(folder)  # the session reads as before, the leftover copy changes nothing
    _same_content(session.content, _content(rec))
    rec.close()
    w = HDF5Writer(folder, compress=True)  # a restart: the copy is removed, the segment compressed again
    assert w.wait_compression(120)
    assert is_compressed(path) and not os.path.exists(path + TMP_SUFFIX)
    rec = recorder.open(folder)
    _same_content(session.content, _content(rec))
    rec.close()
    w.close()


_KILLED_WRITER = """
import os, sys
from recorder.buffer import RecordBuffer
from recorder.writer import HDF5Writer
from tests.test_recorder import fly
buf, w = RecordBuffer(), HDF5Writer(sys.argv[1], rotate_bytes=None)
fly(1.0, on_step=lambda res, t: buf.add(res, t))
w.write_all(buf.take())
w.flush()
os._exit(0)  # killed: the segment is never closed, its superblock still says open for writing
"""


def test_a_segment_whose_writer_was_killed_is_compressed_after_the_restart(tmp_path) -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], check=True, cwd=root, timeout=120,
                   env=dict(os.environ, PYTHONPATH=root))
    before = recorder.open(tmp_path)
    content = _content(before)
    path = before.files[0]
    before.close()
    w = HDF5Writer(tmp_path, compress=True, resume_within_s=600)  # the restart: the segment becomes interrupted
    assert w.resumed and w.wait_compression(120)
    assert is_compressed(path)
    rec = recorder.open(tmp_path)
    _same_content(content, _content(rec))
    rec.close()
    w.close()


def test_a_copy_that_differs_is_refused_and_the_original_kept(session, tmp_path, monkeypatch) -> None:
    import recorder.compress as compress

    folder = _copy_session(session, tmp_path)
    path = recorder.open(folder).files[0]
    sha = _sha(path)
    real = compress._deflate
    calls = []

    def damaged(raw: bytes, level: int) -> bytes:  # flip one byte of the fifth chunk written
        calls.append(1)
        if len(calls) == 5:
            raw = bytes([raw[0] ^ 0xFF]) + raw[1:]
        return real(raw, level)

    monkeypatch.setattr(compress, "_deflate", damaged)
    with pytest.raises(CompressionError, match="data differs"):
        compress_segment(path)
    assert _sha(path) == sha and not os.path.exists(path + TMP_SUFFIX)


def test_values_are_stored_at_the_precision_their_encoding_needs() -> None:
    frame = FrameFormat(name="f", words_per_minor=8, word_length=16)

    def p(name, word=1, **kw):
        return Parameter(name, (Fragment(word),), **kw)

    assert float32_holds(p("A", calibration=Calibration(polynomial=(-40.0, 0.01))), frame)
    assert float32_holds(p("B", encoding="signed", calibration=Calibration(polynomial=(0.0, 0.001, 1e-9))), frame)
    assert float32_holds(p("C", calibration=Calibration(pairs=((0.0, 0.0), (65535.0, 10.0)))), frame)
    # A large offset leaves float32 less than a count's step: float64.
    assert not float32_holds(p("D", calibration=Calibration(polynomial=(1e7, 0.01))), frame)
    wide = Parameter("E", (Fragment(1), Fragment(2)))  # 32-bit integer
    assert not float32_holds(wide, frame)
    assert float32_holds(Parameter("F", (Fragment(1), Fragment(2)), encoding="float"), frame)
    db = ParameterDatabase(frame, [p("A", 1, calibration=Calibration(polynomial=(-40.0, 0.01))),
                                   p("D", 2, calibration=Calibration(polynomial=(1e7, 0.01))), wide])
    groups = SegmentLayout.from_database(db).groups
    assert len(groups) == 1
    g = groups[0]
    assert g.raw_dtype == np.uint32 and g.values_dtype == np.float64  # the widest member decides
    one = SegmentLayout.from_database(ParameterDatabase(frame, [db.parameters[0]])).groups[0]
    assert one.raw_dtype == np.uint16 and one.values_dtype == np.float32


def test_a_segment_its_index_lists_as_being_written_is_refused(session, tmp_path) -> None:
    folder = _copy_session(session, tmp_path)
    index_path = next(folder.glob("*.index.json"))
    doc = json.load(open(index_path))
    doc["segments"][-1]["end"] = None  # as while its writer appends to it
    index_path.write_text(json.dumps(doc))
    path = str(folder / doc["segments"][-1]["file"])
    with pytest.raises(CompressionError, match="still being written"):
        compress_segment(path)
    assert not is_compressed(path)
