"""Closed segments compressed in the background: copied with gzip + shuffle, verified, then swapped in.

Live segments stay uncompressed (docs/recording.md: gzip on live SWMR datasets lost
flushed data after SIGKILL). Once the writer has closed a segment nothing writes it
again, so ``compress_segment`` copies it into ``<file>.compressing`` beside it with
every growing dataset chunked as before and filtered with shuffle + gzip (filters
every HDF5 reader has: h5py, h5netcdf/xarray, h5dump, MATLAB), re-reads the copy
and compares every dataset and attribute with the original, and only then replaces
the original with ``os.replace`` (atomic: a reader opens either the old file or the
new one under the same name, and the session index stays valid throughout). A
compressed file carries the root attribute ``compression``.

``Compressor`` runs ``python -m recorder.compress FILE`` as a child process at low
priority, one segment at a time: HDF5 calls in a thread of the writer's process
would hold h5py's global lock and delay the live writer's flushes. A crash or a
kill of the child leaves the uncompressed segment as it was (the temporary copy is
removed by the next run); ``pending_segments`` finds closed-but-uncompressed
segments of a folder so a restarted writer compresses them. Compressors of one
folder take turns on its ``.compress.lock`` file (``flock``), so a restarted
writer never works on a segment a child of the previous one is still compressing.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import glob
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import h5py
import numpy as np

try:  # ISA-L's deflate: the same zlib streams as zlib.compress at 4x its speed (docs/benchmarks.md)
    from isal.isal_zlib import compress as _deflate
except ImportError:  # pragma: no cover - isal is a dependency; zlib gives the same format, slower
    from zlib import compress as _deflate

__all__ = ["compress_segment", "is_compressed", "pending_segments", "mark_compressed", "Compressor", "CompressionError",
           "LEVEL", "TMP_SUFFIX"]

LEVEL = 1  # deflate level (ISA-L: 0-3; higher levels cost more CPU for a few per cent, docs/benchmarks.md)
TMP_SUFFIX = ".compressing"
LOCK_NAME = ".compress.lock"  # in each recording folder: held by the compressor at work
ATTR = "compression"
SLAB_BYTES = 16 << 20  # copied and compared this many bytes at a time
_DETACHED: list[subprocess.Popen] = []  # children left to finish by a closed writer (kept referenced)
_SCALE_ATTRS = {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid"}


class CompressionError(RuntimeError):
    """The copy differs from the original (the original is kept)."""


def _open(path: str) -> h5py.File:
    """A segment for reading: as a SWMR reader, which also opens one whose writer was killed
    (its superblock still says "open for writing")."""
    return h5py.File(path, "r", swmr=True)


def is_compressed(path: str) -> bool:
    """Whether the segment file at ``path`` is a compressed copy."""
    with _open(path) as f:
        return ATTR in f.attrs


def _copy_attrs(src, dst) -> None:
    for k in src.attrs:
        if k in _SCALE_ATTRS:
            continue
        aid = src.attrs.get_id(k)
        dst.attrs.create(k, src.attrs[k], shape=aid.shape, dtype=aid.dtype)


def _slabs(ds):
    rows = max(1, SLAB_BYTES // max(ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64)), 1))
    for a in range(0, ds.shape[0], rows):
        yield slice(a, min(a + rows, ds.shape[0]))


def _copy_chunks(src: h5py.Dataset, dst: h5py.Dataset, level: int) -> None:
    """Copy the stored chunks of an unfiltered dataset into ``dst`` (shuffle + gzip), filtering
    them here: shuffle is the byte transpose HDF5's filter does, gzip a zlib stream as HDF5's
    deflate filter writes and reads it (made by ISA-L, a fifth of HDF5's own pipeline's CPU);
    ``_verify`` reads the result back through HDF5's filters."""
    size = src.dtype.itemsize
    for i in range(src.id.get_num_chunks()):
        offset = src.id.get_chunk_info(i).chunk_offset
        _, raw = src.id.read_direct_chunk(offset)
        if size > 1 and len(raw) > size:
            raw = np.frombuffer(raw, np.uint8).reshape(-1, size).T.tobytes()
        dst.id.write_direct_chunk(offset, _deflate(raw, level), filter_mask=0)


def _copy(src: h5py.File, dst: h5py.File, level: int) -> None:
    datasets: list[str] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group):
            _copy_attrs(obj, dst.require_group(name))
            return
        datasets.append(name)
        if obj.chunks is not None:  # the growing datasets: same chunks and shape, filtered
            out = dst.create_dataset(name, shape=obj.shape, maxshape=obj.maxshape, dtype=obj.dtype,
                                     chunks=obj.chunks, compression="gzip", compression_opts=level,
                                     shuffle=True)
            if obj.compression is None and not obj.shuffle and obj.dtype.kind in "biuf":
                _copy_chunks(obj, out, level)
            else:
                for s in _slabs(obj):
                    out[s] = obj[s]
        else:
            out = dst.create_dataset(name, data=obj[()], dtype=obj.dtype)
        _copy_attrs(obj, out)

    _copy_attrs(src, dst)
    src.visititems(visit)
    for name in datasets:
        if src[name].is_scale:
            dst[name].make_scale(h5py.h5ds.get_scale_name(src[name].id).decode())
    for name in datasets:
        for axis, dim in enumerate(src[name].dims):
            for scale in dim.values():
                dst[name].dims[axis].attach_scale(dst[scale.name])


def _same(a, b) -> bool:
    """Equal shape, type and bytes (NaN equals NaN of the same bits)."""
    if a.dtype.kind == "O" or b.dtype.kind == "O":
        return a.shape == b.shape and a.tolist() == b.tolist()
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(np.ascontiguousarray(a).reshape(-1).view(np.uint8),
                               np.ascontiguousarray(b).reshape(-1).view(np.uint8)))


def _verify(original: str, copy: str) -> None:
    """Raise ``CompressionError`` unless ``copy`` holds exactly what ``original`` holds."""
    with _open(original) as a, h5py.File(copy, "r") as b:
        names: list[str] = []
        a.visit(names.append)
        other: list[str] = []
        b.visit(other.append)
        if sorted(names) != sorted(other):
            raise CompressionError("the copy has other objects than the original")
        for name in [""] + names:
            x, y = (a[name], b[name]) if name else (a, b)
            keys = [k for k in x.attrs if k not in _SCALE_ATTRS]
            if sorted(keys) != sorted(k for k in y.attrs if k not in _SCALE_ATTRS and k != ATTR):
                raise CompressionError(f"{name or '/'}: attributes differ")
            for k in keys:
                if not _same(np.asarray(x.attrs[k]), np.asarray(y.attrs[k])):
                    raise CompressionError(f"{name or '/'}: attribute {k} differs")
            if not isinstance(x, h5py.Dataset):
                continue
            if x.shape != y.shape or x.dtype != y.dtype or x.is_scale != y.is_scale:
                raise CompressionError(f"{name}: shape, type or scale differs")
            if [[s.name for s in d.values()] for d in x.dims] != [[s.name for s in d.values()] for d in y.dims]:
                raise CompressionError(f"{name}: dimension scales differ")
            slabs = list(_slabs(x)) if x.shape and x.shape[0] else [()]
            for s in slabs:
                if not _same(x[s], y[s]):
                    raise CompressionError(f"{name}: data differs")


def compress_segment(path: str, *, level: int = LEVEL, fsync: bool = True) -> dict:
    """Compress the closed segment file ``path`` in place (copy, verify, atomic replace).

    Returns what was done: ``before`` / ``after`` bytes, ``cpu_s`` of this process.
    A file that is already compressed is left alone. On any failure the original is
    untouched and the temporary copy removed.
    """
    with _folder_lock(os.path.dirname(os.path.abspath(path))):
        return _compress_locked(path, level, fsync)


@contextlib.contextmanager
def _folder_lock(folder: str, *, wait: bool = True) -> Iterator[bool]:
    """One compressor at a time per folder: an exclusive ``flock`` on its ``LOCK_NAME`` file
    (yields False if ``wait`` is False and another holds it). Not the segment files themselves:
    HDF5 locks those for its own readers."""
    fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _compress_locked(path: str, level: int, fsync: bool) -> dict:
    c0 = time.process_time()
    before = os.path.getsize(path)
    if is_compressed(path):  # another compressor did it while this one waited for the lock
        return {"file": path, "compressed": True, "before": before, "after": before, "skipped": True, "cpu_s": 0.0}
    found = _index_entry(os.path.dirname(os.path.abspath(path)), os.path.basename(path))
    if found is not None and found[2].get("end") is None:  # a replaced file would lose the writer's appends
        raise CompressionError("its session index says it is still being written")
    tmp = path + TMP_SUFFIX
    try:
        with _open(path) as src, h5py.File(tmp, "w", libver=("v110", "v110")) as dst:
            _copy(src, dst, level)
            dst.attrs[ATTR] = f"gzip level {level} with shuffle on every chunked dataset"
        _verify(path, tmp)
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if fsync:
            dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return {"file": path, "compressed": True, "before": before, "after": os.path.getsize(path),
            "cpu_s": round(time.process_time() - c0, 3)}


def pending_segments(folder: str) -> list[str]:
    """Closed (or interrupted) segments of every session in ``folder`` whose index does not list
    them as compressed, oldest first; leftover temporary copies are removed."""
    try:
        with _folder_lock(folder, wait=False) as idle:
            for tmp in glob.glob(os.path.join(folder, "*" + TMP_SUFFIX)) if idle else ():
                os.unlink(tmp)  # left by a compressor that was killed (none runs now)
    except OSError:
        pass
    out = []
    for index in sorted(glob.glob(os.path.join(folder, "*.index.json"))):
        try:
            with open(index) as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            continue
        for e in doc.get("segments", []):
            path = os.path.join(folder, str(e.get("file", "")))
            if e.get("end") is not None and not e.get("compressed") and os.path.exists(path):
                out.append(path)
    return out


def _index_entry(folder: str, name: str) -> tuple[str, dict, dict] | None:
    """(index path, index document, entry) of the session index listing segment ``name``."""
    path = os.path.join(folder, name.rsplit("_", 1)[0] + ".index.json")
    try:
        with open(path) as fh:
            doc = json.load(fh)
        return path, doc, next(e for e in doc.get("segments", []) if e.get("file") == name)
    except (OSError, ValueError, StopIteration, AttributeError):
        return None


def mark_compressed(folder: str, name: str, stored_bytes: int | None) -> bool:
    """Note in the index of a session no writer holds that its segment ``name`` is compressed
    (atomic replace, as the writer does); False if no index lists it."""
    found = _index_entry(folder, name)
    if found is None:
        return False
    path, doc, entry = found
    entry["compressed"], entry["stored_bytes"] = True, stored_bytes
    with open(path + ".tmp", "w") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(path + ".tmp", path)
    return True


class Compressor:
    """Compresses segment files one at a time in a child process (``python -m recorder.compress``).

    No threads: the owner calls ``poll()`` now and then (the writer does on every
    flush); it returns the results of children that ended and starts the next one.
    """

    def __init__(self, *, level: int = LEVEL, nice: int = 10) -> None:
        self.level = level
        self.nice = nice
        self.queue: collections.deque[str] = collections.deque()
        self.proc: subprocess.Popen | None = None
        self.current: str | None = None
        self.cpu_s = 0.0  # CPU seconds of every child so far
        self.done = 0
        self.failed = 0
        self._unstarted: list[dict] = []  # results of children that could not be started

    def submit(self, path: str) -> None:
        if path != self.current and path not in self.queue:
            self.queue.append(path)
        self._start()

    @property
    def busy(self) -> bool:
        return self.proc is not None or bool(self.queue)

    def poll(self) -> list[dict]:
        """Results of the children that ended since (each a dict with ``file`` and ``compressed``)."""
        out, self._unstarted = self._unstarted, []
        if self.proc is not None and self.proc.poll() is not None:
            out.append(self._harvest())
        self._start()
        return out

    def wait(self, timeout: float | None = None) -> list[dict]:
        """Poll until every submitted segment is done (or ``timeout`` seconds passed)."""
        end = None if timeout is None else time.monotonic() + timeout
        out = []
        while self.busy and (end is None or time.monotonic() < end):
            out += self.poll()
            if self.busy:
                time.sleep(0.02)
        out, self._unstarted = out + self._unstarted, []
        return out

    def _start(self) -> None:
        if self.proc is not None or not self.queue:
            return
        self.current = self.queue.popleft()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "recorder.compress", self.current, "--level", str(self.level),
                 "--nice", str(self.nice)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as exc:  # no processes or descriptors left: the segment stays as it is
            self.failed += 1
            self._unstarted.append({"file": self.current, "compressed": False, "error": f"cannot start: {exc}"})
            self.current = None

    def _harvest(self) -> dict:
        proc, path = self.proc, self.current
        self.proc = self.current = None
        out, err = proc.communicate()
        lines = out.decode(errors="replace").strip().splitlines()
        try:
            res = json.loads(lines[-1])
        except (IndexError, ValueError):
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            res = {"file": path, "compressed": False, "error": tail[0]}
        self.cpu_s += float(res.get("process_cpu_s", res.get("cpu_s", 0.0)))
        if res.get("compressed"):
            self.done += 1
        else:
            self.failed += 1
        return res

    def status(self) -> dict:
        return {"running": self.current, "queued": len(self.queue), "done": self.done, "failed": self.failed,
                "cpu_s": round(self.cpu_s, 3)}

    def detach(self) -> None:
        """Let the running child finish on its own (its owner is going away); forget the queue."""
        self.queue.clear()
        if self.proc is not None:
            _DETACHED[:] = [p for p in _DETACHED if p.poll() is None] + [self.proc]
            self.proc = self.current = None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Compress closed recording segments in place (verified).")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--level", type=int, default=LEVEL, choices=range(4), help="deflate level (ISA-L 0-3)")
    ap.add_argument("--nice", type=int, default=0)
    args = ap.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    status = 0
    for path in args.files:
        try:
            res = compress_segment(path, level=args.level)
        except Exception as exc:  # reported to the parent as a result, the original is kept
            res = {"file": path, "compressed": False, "error": f"{type(exc).__name__}: {exc}",
                   "cpu_s": round(time.process_time(), 3)}
            status = 1
        res["process_cpu_s"] = round(time.process_time(), 3)  # the whole child so far, start-up included
        print(json.dumps(res), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
