"""The HDF5 writer: the thin shell that puts blocks into segment files.

``HDF5Writer.write(section)`` assembles a buffered section (``buffer.assemble``)
and appends it to the open segment, opening, rotating or starting a new segment
as the section, the size or the age asks; ``flush()`` makes what was written
visible to SWMR readers and durable against a crash of this process (and with
``fsync=True`` against a crash of the machine). Files follow ``layout``: created
with ``libver=("v110", "v110")``, every object made before ``swmr_mode = True``,
datasets chunked and uncompressed (see docs/recording.md for why).

The writer never raises into its caller on a disk problem: an unwritable folder,
a full disk or any HDF5 error puts it in the ``error`` state with a message
(``status()``), the data of the failed write is dropped and counted, and after
``retry_s`` it tries again in a new segment file. The session's files are listed
in ``<session>.index.json`` beside them, replaced atomically on every change.

With ``compress=True`` every segment it closes is compressed in the background
(``compress.Compressor``: a child process, polled on each ``flush``; the index
entry gets ``"compressed": true`` once the compressed copy replaced the file),
and segments of the folder left closed but uncompressed (a crash, a kill, a stop
before the child finished) are compressed when the writer starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import h5py
import numpy as np

from .buffer import Block, Section, assemble
from .compress import Compressor, mark_compressed, pending_segments
from .layout import SegmentLayout, segment_file_name
from .segfile import abandon, create_segment_file, describe
from .sessionindex import SessionIndex, find_resumable

__all__ = ["HDF5Writer", "new_session_name"]


def new_session_name(now_ns: int | None = None) -> str:
    t = datetime.fromtimestamp((now_ns if now_ns is not None else time.time_ns()) / 1e9, tz=timezone.utc)
    return "rec-" + t.strftime("%Y%m%dT%H%M%S") + f"{t.microsecond // 1000:03d}Z"


@dataclass
class _Segment:
    number: int
    path: str
    file: h5py.File
    layout: SegmentLayout
    opened_ns: int
    rows: dict[str, int] = field(default_factory=dict)  # rows appended per growing dataset
    datasets: dict = field(default_factory=dict)  # growing datasets, kept open for the segment's life
    bytes: int = 0
    packets: int = 0
    samples: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    entry: dict = field(default_factory=dict)  # its entry in the session index


def _with_held(held: list[Section], section: Section) -> Section:
    """``section`` with the events and command records of the ``held`` ones before its own."""
    events = [e for h in held for e in h.events] + section.events
    commands = [c for h in held for c in h.commands] + section.commands
    return replace(section, events=events, commands=commands)


class HDF5Writer:
    """Append sections to the segment files of one recording session in ``folder``.

    ``rotate_bytes`` / ``rotate_seconds`` start a new segment when the open one
    holds that many bytes or is that old. ``piece_bytes`` caps one dataset write
    (h5py holds the GIL during a write: small pieces keep other threads, i.e. the
    event loop, running); ``pause_s`` sleeps between pieces to hand the GIL over.
    """

    INDEX_EVERY_NS = 5_000_000_000  # the index's running counts are refreshed at most this often

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        session: str | None = None,
        fsync: bool = False,
        rotate_bytes: int | None = None,
        rotate_seconds: float | None = None,
        piece_bytes: int = 256 << 10,
        pause_s: float = 0.0,
        retry_s: float = 5.0,
        resume_within_s: float | None = None,
        compress: bool = False,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.folder = os.fspath(folder)
        self.clock_ns = clock_ns
        resumed = None
        if session is None and resume_within_s is not None and os.path.isdir(self.folder):
            resumed = find_resumable(self.folder, resume_within_s, clock_ns() / 1e9)
        self.session = session or resumed or new_session_name(clock_ns())
        self.fsync = fsync
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.piece_bytes = max(int(piece_bytes), 1)
        self.pause_s = pause_s
        self.retry_s = retry_s
        self.state = "idle"  # idle, recording, error, closed
        self.error: str | None = None
        self.errors: list[str] = []  # the latest problems, newest last
        self.dropped_blocks = 0
        self.dropped_samples = 0
        self.dropped_packets = 0
        self.unplaced_samples = 0
        self.written_bytes = 0
        self.written_samples = 0
        self.written_packets = 0
        self.flushes = 0
        self.last_flush_ns: int | None = None
        self.last_write_s = 0.0
        self.longest_call_s = 0.0  # the longest single append or flush: h5py holds the GIL that long
        self._seg: _Segment | None = None
        self._retry_at_ns = 0
        self._layouts: dict[int, SegmentLayout] = {}
        self._pending_reason: str | None = None
        self._held: list[Section] = []  # events before any data and configuration: for the first segment
        self._closing = False
        kw = dict(fsync=fsync, clock_ns=clock_ns, on_problem=self._note)
        self.index = SessionIndex(self.folder, self.session, clock_ns(), **kw)
        self.resumed = False  # True: this writer goes on with a session a stopped writer left open
        if resumed is not None:
            try:
                self.index = SessionIndex.resume(self.folder, resumed, **kw)
                self.resumed = True
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._note(f"cannot resume session {resumed}: {describe(exc)}")
        self._next_number = self.index.next_number()
        self.compressor: Compressor | None = None
        if compress:
            self.compressor = Compressor()
            for path in pending_segments(self.folder) if os.path.isdir(self.folder) else ():
                self.compressor.submit(path)

    # -- paths ------------------------------------------------------------------------------
    @property
    def index_path(self) -> str:
        return self.index.path

    @property
    def files(self) -> list[str]:
        return self.index.files

    @property
    def current_file(self) -> str | None:
        return None if self._seg is None else self._seg.path

    # -- writing -----------------------------------------------------------------------------
    def write_all(self, sections: list[Section]) -> None:
        for s in sections:
            self.write(s)

    def write(self, section: Section) -> None:
        """Append one section (never raises; problems go to ``status()``)."""
        if self.state == "closed":
            return
        t0 = time.perf_counter()
        if self.state == "error" and self.clock_ns() < self._retry_at_ns:
            self._drop(section)
            return
        try:
            if section.new_segment is not None:
                self._pending_reason = section.new_segment
            if section.empty():
                return  # a new segment is opened only when there is something to put in it
            if self._seg is None and section.config is None and not (section.packets or section.samples
                                                                      or self._closing):
                self._held.append(section)  # events alone (link state at start): not a segment of their own
                return
            if self._held:
                section = _with_held(self._held, section)
                self._held = []
            layout = self._layout(section.config)
            seg = self._seg
            reason = self._pending_reason
            if seg is None:
                reason = reason or "start"
            elif reason is None and seg.layout is not layout:
                reason = "configuration"
            elif reason is None and self.rotate_bytes is not None and seg.bytes >= self.rotate_bytes:
                reason = "size"
            elif reason is None and self.rotate_seconds is not None \
                    and self.clock_ns() - seg.opened_ns >= self.rotate_seconds * 1e9:
                reason = "time"
            if reason is not None:
                self._close_segment(reason)
                self._open_segment(layout)
                self._pending_reason = None
            blk = assemble(section, layout)
            self._append(blk)
            if self.state == "error":
                self.state, self.error = "recording", None
        except Exception as exc:  # disk full, permissions, HDF5 errors: report, never raise
            self._fail(f"cannot write {self.current_file or self.folder}: {describe(exc)}")
            self._drop(section)
        finally:
            self.last_write_s = time.perf_counter() - t0

    def _layout(self, config) -> SegmentLayout:
        version = 0 if config is None else int(config.version)
        layout = self._layouts.get(version)
        if layout is None:
            layout = SegmentLayout.from_configuration(config)
            self._layouts = {version: layout}  # keep only the latest
        return layout

    def _drop(self, section: Section) -> None:
        self.dropped_blocks += 1
        self.dropped_samples += sum(len(b) for b in section.samples)
        self.dropped_packets += len(section.packets)

    def _open_segment(self, layout: SegmentLayout) -> None:
        os.makedirs(self.folder, exist_ok=True)
        while True:
            number = self._next_number
            self._next_number += 1
            name = segment_file_name(self.session, number)
            path = os.path.join(self.folder, name)
            if not os.path.exists(path):
                break
        now = self.clock_ns()
        previous = self.index.segments[-1]["file"] if self.index.segments else ""
        f, rows = create_segment_file(path, layout, layout.root_attrs(session=self.session, segment=number,
                                                                      created_ns=now, previous=previous))
        entry = {"file": name, "segment": number, "config_version": layout.config_version,
                 "config_source": layout.config_source, "opened_ns": now, "closed_ns": None, "end": None,
                 "first_ns": None, "last_ns": None, "bytes": 0, "packets": 0, "samples": 0}
        self._seg = _Segment(number, path, f, layout, now, rows, entry=entry)
        self.index.add(entry)
        self.state, self.error = "recording", None

    def _close_segment(self, reason: str) -> None:
        seg, self._seg = self._seg, None
        if seg is None:
            return
        try:
            seg.file.flush()
            if self.fsync:
                os.fsync(seg.file.id.get_vfd_handle())
        finally:
            seg.datasets.clear()
            try:
                seg.file.close()
            finally:
                self._update_entry(seg)
                seg.entry["closed_ns"] = self.clock_ns()
                seg.entry["end"] = reason
                self.index.save()
                if self.compressor is not None:
                    self.compressor.submit(seg.path)

    def _append(self, blk: Block) -> None:
        seg = self._seg
        if len(blk.packet_index):
            base = seg.rows["packets/data"]
            idx = blk.packet_index.copy()
            idx[:, 0] += base
            self._extend("packets/data", blk.packet_data)
            self._extend("packets/status", blk.packet_status)  # before the index: a reader trusts index rows
            self._extend("packets/index", idx)
        for name, r in blk.rates.items():
            p = f"rates/{name}"
            self._extend(f"{p}/values", r.values)
            self._extend(f"{p}/raw", r.raw)
            self._extend(f"{p}/limit", r.limit)
            self._extend(f"{p}/time", r.time)
        for grp, tb in (("events", blk.events), ("commands", blk.commands)):
            if tb is not None and len(tb):
                base = seg.rows[f"{grp}/text"]
                self._extend(f"{grp}/text", tb.text)
                self._extend(f"{grp}/end", tb.end + base)
                self._extend(f"{grp}/time", tb.time)
        seg.bytes += blk.nbytes
        seg.samples += blk.samples
        seg.packets += len(blk.packet_index)
        if blk.first_ns is not None:
            seg.first_ns = blk.first_ns if seg.first_ns is None else min(seg.first_ns, blk.first_ns)
            seg.last_ns = blk.last_ns if seg.last_ns is None else max(seg.last_ns, blk.last_ns)
        self.written_bytes += blk.nbytes
        self.written_samples += blk.samples
        self.written_packets += len(blk.packet_index)
        self.unplaced_samples += blk.unplaced_samples
        self.index.dirty = True

    def _extend(self, path: str, arr: np.ndarray) -> None:
        n = len(arr)
        if not n:
            return
        seg = self._seg
        ds = seg.datasets.get(path)
        if ds is None:
            ds = seg.datasets[path] = seg.file[path]
        if arr.dtype != ds.dtype:  # values stored as float32, raw at the word's width (layout)
            arr = arr.astype(ds.dtype)
        start = seg.rows[path]
        row_bytes = max(arr[:1].nbytes, 1)
        step = max(1, self.piece_bytes // row_bytes)
        for a in range(0, n, step):
            b = min(a + step, n)
            c0 = time.perf_counter()
            ds.resize(start + b, axis=0)
            ds[start + a:start + b] = arr[a:b]
            self.longest_call_s = max(self.longest_call_s, time.perf_counter() - c0)
            seg.rows[path] = start + b
            if self.pause_s and b < n:
                time.sleep(self.pause_s)

    # -- flushing, closing -------------------------------------------------------------------
    def flush(self) -> bool:
        """Make everything written so far visible to readers and crash-safe (never raises)."""
        if self.compressor is not None:
            self._compression_results(self.compressor.poll())
        seg = self._seg
        if seg is None:
            return self.state != "error"
        try:
            c0 = time.perf_counter()
            seg.file.flush()
            self.longest_call_s = max(self.longest_call_s, time.perf_counter() - c0)
            if self.fsync:
                os.fsync(seg.file.id.get_vfd_handle())
            self.flushes += 1
            self.last_flush_ns = self.clock_ns()
            if self.index.dirty and self.last_flush_ns - self.index.saved_ns >= self.INDEX_EVERY_NS:
                self._update_entry(seg)
                self.index.save()
            return True
        except Exception as exc:
            self._fail(f"cannot flush {seg.path}: {describe(exc)}")
            return False

    def close(self) -> None:
        """Close the open segment and mark the session closed in the index (never raises)."""
        if self.state == "closed":
            return
        if self._held:  # nothing else came: the events still go to a segment
            held, self._held = self._held, []
            self._closing = True
            self.write(_with_held(held[:-1], held[-1]))
        try:
            self._close_segment("closed")
        except Exception as exc:
            self._note(f"closing {self.folder}: {describe(exc)}")
        self.index.close(self.clock_ns())
        self.state = "closed"
        if self.compressor is not None:  # the child in progress finishes on its own; the rest waits
            self._compression_results(self.compressor.poll())  # for the next start (pending_segments)
            self.compressor.detach()

    def wait_compression(self, timeout: float | None = None) -> bool:
        """Block until every closed segment submitted is compressed (tests, tools); True if idle."""
        if self.compressor is None:
            return True
        self._compression_results(self.compressor.wait(timeout))
        return not self.compressor.busy

    def _compression_results(self, results: list[dict]) -> None:
        for res in results:
            name = os.path.basename(str(res.get("file", "")))
            entry = next((e for e in self.index.segments if e.get("file") == name), None)
            if not res.get("compressed"):
                self._note(f"cannot compress {name}: {res.get('error')} (kept uncompressed)")
            elif entry is not None:
                entry["compressed"], entry["stored_bytes"] = True, res.get("after")
                self.index.save()
            else:  # a segment of an earlier session in the folder
                mark_compressed(self.folder, name, res.get("after"))

    # -- health ---------------------------------------------------------------------------------
    def status(self) -> dict:
        seg = self._seg
        return {
            "state": self.state,
            "error": self.error,
            "folder": self.folder,
            "session": self.session,
            "index": self.index_path,
            "file": None if seg is None else seg.path,
            "segments": len(self.index.segments),
            "resumed": self.resumed,
            "segment_bytes": 0 if seg is None else seg.bytes,
            "written_bytes": self.written_bytes,
            "written_samples": self.written_samples,
            "written_packets": self.written_packets,
            "dropped_samples": self.dropped_samples,
            "dropped_packets": self.dropped_packets,
            "unplaced_samples": self.unplaced_samples,
            "flushes": self.flushes,
            "last_flush_ns": self.last_flush_ns,
            "last_write_s": round(self.last_write_s, 6),
            "longest_call_ms": round(self.longest_call_s * 1e3, 3),
            "compression": None if self.compressor is None else self.compressor.status(),
            "errors": list(self.errors),
        }

    # -- internals ------------------------------------------------------------------------------
    def _note(self, message: str) -> None:
        self.errors = (self.errors + [message])[-10:]

    def _fail(self, message: str) -> None:
        self._note(message)
        self.state, self.error = "error", message
        self._retry_at_ns = self.clock_ns() + int(self.retry_s * 1e9)
        seg, self._seg = self._seg, None
        if seg is not None:
            seg.datasets.clear()
            abandon(seg.file)
            seg.entry["closed_ns"] = self.clock_ns()
            seg.entry["end"] = "error: " + message
            self._update_entry(seg)
            self.index.save()

    def _update_entry(self, seg: _Segment) -> None:
        seg.entry.update(first_ns=seg.first_ns, last_ns=seg.last_ns, bytes=seg.bytes, packets=seg.packets,
                         samples=seg.samples)
        self.index.dirty = True
