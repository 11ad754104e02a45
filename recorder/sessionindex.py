"""The session index: ``<session>.index.json`` beside a session's segment files.

It lists every segment of the session in order, with its running counts, and is
replaced atomically (write a temporary file, ``os.replace``) on every change.
``SessionIndex.resume(folder)`` picks up the newest session of a folder whose
writer stopped without closing it (SIGKILL, a crash, a power cut), so a restarted
ground station goes on recording into a new segment of the same session: the
interrupted segment is marked ``"end": "interrupted"`` and the restart is listed
under ``"resumed"``.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Callable

from .layout import FORMAT, index_file_name, new_index

__all__ = ["SessionIndex", "find_resumable"]

INDEX_SUFFIX = ".index.json"


def find_resumable(folder: str, within_s: float, now_s: float | None = None) -> str | None:
    """The session name of the newest index in ``folder`` still marked ``recording`` and
    updated less than ``within_s`` ago; None if there is none."""
    now_s = time.time() if now_s is None else now_s
    for path in sorted(glob.glob(os.path.join(folder, "*" + INDEX_SUFFIX)), reverse=True):
        try:
            with open(path) as fh:
                doc = json.load(fh)
            updated = doc.get("updated_ns")
            age = now_s - (updated / 1e9 if isinstance(updated, int) else os.path.getmtime(path))
        except (OSError, ValueError):
            continue
        if not str(doc.get("format", "")).startswith(FORMAT):
            continue
        if doc.get("state") == "recording" and age <= within_s and doc.get("session"):
            return str(doc["session"])
        return None  # only the newest session may be resumed
    return None


def _recover_times(path: str, entry: dict) -> None:
    """An interrupted segment's first/last data time, from what its file holds (the index lags)."""
    from .segment import Segment

    seg = Segment(path, entry)
    try:
        rep = seg.report()
    finally:
        seg.close()
    firsts = [d["first_ns"] for d in rep["datasets"].values() if d.get("first_ns") is not None]
    if firsts:
        entry["first_ns"] = min(firsts)
    if rep.get("last_ns") is not None:
        entry["last_ns"] = rep["last_ns"]


class SessionIndex:
    """The index document of one session and its atomic replacement on disk (never raises on save)."""

    def __init__(self, folder: str, session: str, created_ns: int, *, fsync: bool = False,
                 clock_ns: Callable[[], int] = time.time_ns, on_problem: Callable[[str], None] | None = None,
                 doc: dict | None = None) -> None:
        self.folder = folder
        self.session = session
        self.fsync = fsync
        self.clock_ns = clock_ns
        self.on_problem = on_problem
        self.doc = doc if doc is not None else new_index(session, created_ns)
        self.dirty = False
        self.saved_ns = 0

    @classmethod
    def resume(cls, folder: str, session: str, **kw) -> "SessionIndex":
        """Load a session's index to go on recording into it; its unclosed segments become interrupted."""
        path = os.path.join(folder, index_file_name(session))
        with open(path) as fh:
            doc = json.load(fh)
        clock = kw.get("clock_ns", time.time_ns)
        now = clock()
        for e in doc.get("segments", []):
            if e.get("end") is None:
                e["end"] = "interrupted"
                try:
                    _recover_times(os.path.join(folder, e["file"]), e)
                except Exception:  # a damaged file: its entry keeps what the index last said
                    pass
        doc.setdefault("resumed", []).append(now)
        doc["state"] = "recording"
        doc.pop("closed_ns", None)
        idx = cls(folder, session, int(doc.get("created_ns", now)), doc=doc, **kw)
        idx.save()
        return idx

    @property
    def path(self) -> str:
        return os.path.join(self.folder, index_file_name(self.session))

    @property
    def segments(self) -> list[dict]:
        return self.doc["segments"]

    @property
    def files(self) -> list[str]:
        return [os.path.join(self.folder, s["file"]) for s in self.segments]

    def next_number(self) -> int:
        return max((int(s["segment"]) for s in self.segments), default=-1) + 1

    def add(self, entry: dict) -> None:
        self.segments.append(entry)
        self.save()

    def close(self, now_ns: int) -> None:
        self.doc["state"] = "closed"
        self.doc["closed_ns"] = now_ns
        if self.segments:
            self.save()

    def save(self) -> None:
        path = self.path
        tmp = path + ".tmp"
        self.doc["updated_ns"] = self.clock_ns()
        try:
            with open(tmp, "w") as fh:
                json.dump(self.doc, fh, indent=1)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
            self.dirty = False
            self.saved_ns = self.clock_ns()
        except Exception as exc:
            if self.on_problem is not None:
                self.on_problem(f"cannot update the session index {path}: {exc}")
