"""The analyst's reader: a recording (one segment file or a whole session) by parameter and time.

``recorder.open(path)`` takes a segment file (``*.h5``), a session index
(``*.index.json``) or a folder (its newest session) and returns a
``Recording``::

    rec = recorder.open("flight-42/")
    rec.parameters                       # names, units, where each is recorded
    s = rec.read("ALT", start, end)      # Samples: t_ns, time (datetime64), values, raw, limit
    df = rec.read("ALT", as_="pandas")   # DataFrame with a DatetimeIndex
    da = rec.read("ALT", as_="xarray")   # DataArray with a time coordinate
    rec.refresh()                        # see what a running writer appended since
    rec.report()                         # rows per dataset, last time, problems
    for p in rec.iter_packets(): ...     # the raw Chapter 10 packets, byte for byte

Files still being written are opened as SWMR readers (``swmr=True``). A file
whose writer died opens the same way; only what the writer flushed is there. A
truncated file is opened through a view padded to the length its superblock
claims, and each dataset is cut at its first chunk beyond the real end of the
file; a file HDF5 cannot open at all is scanned for Chapter 10 packets. What
was recovered, and what was not, is in ``report()``.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import json
import os
import struct
from collections.abc import Iterator
from datetime import datetime, timezone

import h5py
import numpy as np

from .layout import FORMAT

__all__ = ["open_recording", "Recording", "Segment", "Samples", "RecordedPacket", "ParameterInfo"]


@dataclasses.dataclass(frozen=True)
class ParameterInfo:
    name: str
    units: str
    group: str
    description: str
    rate_hz: float | None
    rate_group: str  # the HDF5 group: rates/<rate_group>
    column: int


@dataclasses.dataclass
class Samples:
    """One parameter over a time range."""

    name: str
    t_ns: np.ndarray  # int64 ns since 1970 (UTC)
    values: np.ndarray  # float64 engineering units
    raw: np.ndarray
    limit: np.ndarray  # int8
    units: str = ""

    @property
    def time(self) -> np.ndarray:
        return self.t_ns.astype("datetime64[ns]")

    def __len__(self) -> int:
        return len(self.t_ns)

    def to_pandas(self, *, raw: bool = False, limit: bool = False):
        import pandas as pd

        cols = {self.name: self.values}
        if raw:
            cols[f"{self.name}.raw"] = self.raw
        if limit:
            cols[f"{self.name}.limit"] = self.limit
        return pd.DataFrame(cols, index=pd.DatetimeIndex(self.time, name="time"))

    def to_xarray(self):
        import xarray as xr

        return xr.DataArray(self.values, coords={"time": self.time}, dims=("time",), name=self.name,
                            attrs={"units": self.units})


@dataclasses.dataclass(frozen=True)
class RecordedPacket:
    raw: bytes  # the whole Chapter 10 packet as received
    channel: int
    data_type: int
    rtc: int
    arrival_ns: int


def _to_ns(t) -> int | None:
    """ns since 1970 from int ns, numpy datetime64, datetime, pandas Timestamp or ISO text."""
    if t is None:
        return None
    if isinstance(t, (int, np.integer)):
        return int(t)
    if isinstance(t, datetime):
        if t.tzinfo is not None:
            t = t.astimezone(timezone.utc).replace(tzinfo=None)
        return int(np.datetime64(t, "ns").astype(np.int64))
    if hasattr(t, "value") and hasattr(t, "tz"):  # pandas Timestamp
        return int(t.tz_convert("UTC").value if t.tz is not None else t.value)
    if isinstance(t, str):
        s = t.strip()
        if s.endswith("Z"):
            s = s[:-1]
        if "+" in s[10:]:
            return _to_ns(datetime.fromisoformat(t.replace("Z", "+00:00")))
        return int(np.datetime64(s, "ns").astype(np.int64))
    return int(np.datetime64(t, "ns").astype(np.int64))


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return str(np.datetime64(int(ns), "ns")) + "Z"


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum of HDF5 metadata (``H5_checksum_lookup3``)."""
    m = 0xFFFFFFFF
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & m
    k = 0
    while length > 12:
        a = (a + int.from_bytes(data[k:k + 4], "little")) & m
        b = (b + int.from_bytes(data[k + 4:k + 8], "little")) & m
        c = (c + int.from_bytes(data[k + 8:k + 12], "little")) & m
        a = ((a - c) & m) ^ _rot(c, 4); c = (c + b) & m  # noqa: E702
        b = ((b - a) & m) ^ _rot(a, 6); a = (a + c) & m  # noqa: E702
        c = ((c - b) & m) ^ _rot(b, 8); b = (b + a) & m  # noqa: E702
        a = ((a - c) & m) ^ _rot(c, 16); c = (c + b) & m  # noqa: E702
        b = ((b - a) & m) ^ _rot(a, 19); a = (a + c) & m  # noqa: E702
        c = ((c - b) & m) ^ _rot(b, 4); b = (b + a) & m  # noqa: E702
        length -= 12
        k += 12
    if length == 0:
        return c
    tail = data[k:k + length] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - _rot(b, 14)) & m  # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & m  # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & m  # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & m  # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & m  # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & m  # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & m  # noqa: E702
    return c


class _PaddedFile(io.RawIOBase):
    """A read-only view of a damaged file: ``size`` bytes long, zeros past the real end, and
    the superblock's "open for writing" flags cleared (what ``h5clear -s`` does, in memory only)."""

    def __init__(self, path: str, size: int) -> None:
        self._f = open(path, "rb")
        self.real = os.fstat(self._f.fileno()).st_size
        self.size = max(size, self.real)
        self._pos = 0
        head = bytearray(self._f.read(48))
        if len(head) == 48 and head[8] in (2, 3) and head[11]:
            head[11] = 0
            head[44:48] = lookup3(bytes(head[:44])).to_bytes(4, "little")
        self._head = bytes(head)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else (self._pos + offset if whence == 1 else self.size + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b) -> int:
        n = min(len(b), max(self.size - self._pos, 0))
        self._f.seek(self._pos)
        got = self._f.readinto(memoryview(b)[:n]) or 0
        if got < n:
            memoryview(b)[got:n] = bytes(n - got)
        if self._pos < len(self._head):
            k = min(n, len(self._head) - self._pos)
            memoryview(b)[:k] = self._head[self._pos:self._pos + k]
        self._pos += n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def _superblock_eoa(path: str) -> int | None:
    """End-of-file address a version 2/3 superblock records (None if not one)."""
    with open(path, "rb") as fh:
        head = fh.read(48)
    if head[:8] != b"\x89HDF\r\n\x1a\n" or len(head) < 36 or head[8] not in (2, 3) or head[9] != 8:
        return None
    return struct.unpack_from("<Q", head, 28)[0]


class Segment:
    """One segment file, opened for reading (SWMR when possible)."""

    def __init__(self, path: str, index_entry: dict | None = None) -> None:
        self.path = path
        self.entry = index_entry or {}
        self.file: h5py.File | None = None
        self.mode = "swmr"  # swmr, padded (truncated file), scanned (not HDF5-readable), missing
        self.problems: list[str] = []
        self._limits: dict[str, int] = {}  # dataset -> rows usable (from chunk positions)
        self._padded: _PaddedFile | None = None
        self._scanned: list[RecordedPacket] | None = None
        self._params: list[ParameterInfo] | None = None
        self._open()

    # -- opening -------------------------------------------------------------------------------
    def _open(self) -> None:
        if not os.path.exists(self.path):
            self.mode = "missing"
            self.problems.append("file missing")
            return
        eoa = None
        try:
            eoa = _superblock_eoa(self.path)
        except OSError:
            pass
        real = os.path.getsize(self.path)
        truncated = eoa is not None and eoa > real
        first = ""
        if not truncated:  # (a SWMR reader retries unreadable metadata for a long time: not on a cut file)
            try:
                self.file = h5py.File(self.path, "r", swmr=True)
                return
            except Exception as exc:
                first = f"HDF5 cannot open it: {exc}"
        else:
            first = f"truncated: {real} of {eoa} bytes present"
        if truncated:
            try:
                self._padded = _PaddedFile(self.path, eoa)
                self.file = h5py.File(self._padded, "r")
                self.mode = "padded"
                self.problems.append(f"truncated: {real} of {eoa} bytes present; data past the end is lost")
                return
            except Exception as exc:
                first += f"; HDF5 cannot open what is left: {exc}"
                if self._padded is not None:
                    self._padded.close()
                    self._padded = None
                self.file = None
        self.problems.append(first)
        self._scan()

    def _chunk_limit(self, name: str) -> int:
        """Rows of a growing dataset whose chunks lie wholly inside the real (cut) file."""
        try:
            ds = self.file[name]
            limit = ds.shape[0]
            real = self._padded.real
            for i in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(i)
                if info.byte_offset + info.size > real:
                    limit = min(limit, info.chunk_offset[0])
            return limit
        except Exception as exc:
            self.problems.append(f"{name}: unreadable ({exc})")
            return 0

    def _scan(self) -> None:
        """Last resort: find Chapter 10 packets in the file's bytes."""
        from telemetry_formats.ch10.reader import PacketReader

        self.mode = "scanned"
        found: list[RecordedPacket] = []
        reader = PacketReader()
        with open(self.path, "rb") as fh:
            while True:
                data = fh.read(8 << 20)
                final = not data
                for ev in reader.feed(data, final=final):
                    if hasattr(ev, "header"):
                        h = ev.header
                        found.append(RecordedPacket(bytes(ev.raw), h.channel_id, h.data_type, h.rtc, 0))
                if final:
                    break
        self._scanned = found
        self.problems.append(f"recovered {len(found)} Chapter 10 packets by scanning the file's bytes "
                             "(no arrival times, decoded values lost)")

    # -- structure -----------------------------------------------------------------------------
    @property
    def readable(self) -> bool:
        return self.file is not None

    @property
    def attrs(self) -> dict:
        if self.file is None:
            return {}
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self.file.attrs.items()}

    def _rows(self, name: str) -> int:
        """Rows of a growing dataset that can be read (0 if it cannot be read at all)."""
        if self.mode == "padded":
            if name not in self._limits:
                self._limits[name] = self._chunk_limit(name)
            return self._limits[name]
        return self.file[name].shape[0]

    def rate_rows(self, group: str) -> int:
        base = f"rates/{group}"
        return min(self._rows(f"{base}/{d}") for d in ("time", "values", "raw", "limit"))

    def packet_rows(self) -> tuple[int, int]:
        """(usable packet index rows, usable data bytes)."""
        n = self._rows("packets/index")
        nbytes = self._rows("packets/data")
        if n:
            idx = self.file["packets/index"]
            last = idx[n - 1]
            if last[0] + last[1] > nbytes:  # the index got ahead of the data: drop those rows
                offs = idx[:n, 0] + idx[:n, 1]
                n = int(np.searchsorted(offs, nbytes, side="right"))
        return n, nbytes

    def parameters(self) -> list[ParameterInfo]:
        if self._params is None:
            try:
                self._params = self._read_catalog()
            except Exception as exc:
                self.problems.append(f"catalog: unreadable ({exc})")
                self._params = []
        return self._params

    def _read_catalog(self) -> list[ParameterInfo]:
        if self.file is None or "catalog" not in self.file or "name" not in self.file["catalog"]:
            return []
        c = self.file["catalog"]

        def strs(k):
            return [x.decode() if isinstance(x, bytes) else str(x) for x in c[k][()]]
        names, units, groups, descs, rgs = strs("name"), strs("units"), strs("group"), strs("description"), \
            strs("rate_group")
        cols, rates = c["column"][()], c["rate_hz"][()]
        return [ParameterInfo(n, u, g, d, None if np.isnan(r) else float(r), rg, int(col))
                for n, u, g, d, rg, col, r in zip(names, units, groups, descs, rgs, cols, rates)]

    def refresh(self) -> None:
        if self.file is None or self.mode != "swmr":
            return
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.maxshape and obj.maxshape[0] is None:
                obj.refresh()
        self.file.visititems(visit)

    def time_bounds(self, ds: str, n: int) -> tuple[int | None, int | None]:
        if not n:
            return None, None
        d = self.file[ds]
        return int(d[0]), int(d[n - 1])

    def report(self) -> dict:
        out = {"file": self.path, "mode": self.mode, "datasets": {}}
        if self.entry:
            out["closed"] = self.entry.get("closed_ns") is not None
            out["end"] = self.entry.get("end")
        last = None
        if self.file is None:
            if self._scanned is not None:
                out["packets"] = len(self._scanned)
        else:
            try:
                groups = list(self.file["rates"]) if "rates" in self.file else []
            except Exception as exc:
                groups = []
                self.problems.append(f"rates: unreadable ({exc})")
            for g in groups:
                try:
                    n = self.rate_rows(g)
                    first_t, last_t = self.time_bounds(f"rates/{g}/time", n)
                except Exception as exc:
                    self.problems.append(f"rates/{g}: unreadable ({exc})")
                    n, first_t, last_t = 0, None, None
                out["datasets"][f"rates/{g}"] = {"rows": n, "first_ns": first_t, "last_ns": last_t}
                if last_t is not None:
                    last = last_t if last is None else max(last, last_t)
            try:
                n, nbytes = self.packet_rows()
                lp = int(self.file["packets/index"][n - 1, 5]) if n else None
            except Exception as exc:
                self.problems.append(f"packets: unreadable ({exc})")
                n, nbytes, lp = 0, 0, None
            out["datasets"]["packets"] = {"rows": n, "bytes": nbytes, "last_arrival_ns": lp}
            if lp is not None:
                last = lp if last is None else max(last, lp)
            for grp in ("events", "commands"):
                try:
                    out["datasets"][grp] = {"rows": min(self._rows(f"{grp}/time"), self._rows(f"{grp}/end"))}
                except Exception as exc:
                    self.problems.append(f"{grp}: unreadable ({exc})")
        out["problems"] = list(dict.fromkeys(self.problems))
        out["last_ns"] = last
        out["last_time"] = _iso(last)
        return out

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except Exception:
                pass
            self.file = None
        if self._padded is not None:
            self._padded.close()
            self._padded = None


def _bisect(ds, n: int, value: int, right: bool = False) -> int:
    """searchsorted on a sorted 1-D dataset without reading all of it."""
    lo, hi = 0, n
    while hi - lo > 4096:
        mid = (lo + hi) // 2
        v = int(ds[mid])
        if v < value or (right and v == value):
            lo = mid + 1
        else:
            hi = mid
    part = ds[lo:hi]
    return lo + int(np.searchsorted(part, value, side="right" if right else "left"))


class Recording:
    """One or more segment files of a recording session, read as one."""

    def __init__(self, paths: list[str], index: dict | None = None, index_path: str | None = None) -> None:
        self.index = index
        self.index_path = index_path
        entries = {e["file"]: e for e in (index or {}).get("segments", [])}
        self.segments = [Segment(p, entries.get(os.path.basename(p))) for p in paths]

    # -- structure -------------------------------------------------------------------------------
    @property
    def files(self) -> list[str]:
        return [s.path for s in self.segments]

    @property
    def parameters(self) -> list[ParameterInfo]:
        """Every parameter recorded (first definition wins when segments differ)."""
        seen: dict[str, ParameterInfo] = {}
        for s in self.segments:
            for p in s.parameters():
                seen.setdefault(p.name, p)
        return list(seen.values())

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def refresh(self) -> "Recording":
        """Pick up what the writer flushed since (new rows, and new segments of a session)."""
        if self.index_path:
            try:
                with open(self.index_path) as fh:
                    self.index = json.load(fh)
            except (OSError, ValueError):
                pass
            else:
                known = {os.path.basename(s.path) for s in self.segments}
                folder = os.path.dirname(self.index_path)
                for e in self.index.get("segments", []):
                    if e["file"] not in known:
                        self.segments.append(Segment(os.path.join(folder, e["file"]), e))
                    else:
                        for s in self.segments:
                            if os.path.basename(s.path) == e["file"]:
                                s.entry = e
        for s in self.segments:
            s.refresh()
        return self

    def report(self) -> dict:
        """What can be read: per segment the rows of each dataset, the last time, problems."""
        segs = [s.report() for s in self.segments]
        lasts = [s.get("last_ns") for s in segs if s.get("last_ns") is not None]
        out = {"segments": segs, "last_ns": max(lasts) if lasts else None}
        out["last_time"] = _iso(out["last_ns"])
        out["problems"] = [f"{os.path.basename(s['file'])}: {p}" for s in segs for p in s["problems"]]
        if self.index is not None and self.index.get("state") != "closed":
            out["problems"].append("the session was not closed (still recording, or the writer stopped)")
        return out

    recovered = property(report)

    # -- parameters ----------------------------------------------------------------------------
    def read(self, name: str, start=None, end=None, *, as_: str = "numpy"):
        """One parameter between ``start`` (inclusive) and ``end`` (exclusive).

        ``as_``: "numpy" (``Samples``), "pandas" (DataFrame, DatetimeIndex) or "xarray" (DataArray).
        """
        t0, t1 = _to_ns(start), _to_ns(end)
        parts, units, found = [], "", False
        for s in self.segments:
            if s.file is None:
                continue
            info = next((p for p in s.parameters() if p.name == name), None)
            if info is None:
                continue
            found = True
            units = info.units
            try:
                part = self._read_part(s, info, t0, t1)
            except Exception as exc:  # a damaged file: what could not be read is reported
                s.problems.append(f"rates/{info.rate_group}: {name} unreadable ({exc})")
                continue
            if part is not None:
                parts.append(part)
        if not found:
            raise KeyError(f"no parameter {name!r} in this recording")
        if parts:
            t, v, r, lim = (np.concatenate(x) for x in zip(*parts))
        else:
            t, v, r, lim = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.uint32), np.zeros(0, np.int8)
        out = Samples(name, t, v, r, lim, units)
        if as_ == "numpy":
            return out
        if as_ == "pandas":
            return out.to_pandas()
        if as_ == "xarray":
            return out.to_xarray()
        raise ValueError(f"as_ must be numpy, pandas or xarray, not {as_!r}")

    @staticmethod
    def _read_part(s: Segment, info: ParameterInfo, t0: int | None, t1: int | None):
        g = f"rates/{info.rate_group}"
        n = s.rate_rows(info.rate_group)
        if not n:
            return None
        tds = s.file[f"{g}/time"]
        off = int(s.file[f"{g}/values"].attrs["time_offset_ns"][info.column])
        a = 0 if t0 is None else _bisect(tds, n, t0 - off)
        b = n if t1 is None else _bisect(tds, n, t1 - off)
        if b <= a:
            return None
        c = info.column
        return (tds[a:b] + off, s.file[f"{g}/values"][a:b, c], s.file[f"{g}/raw"][a:b, c],
                s.file[f"{g}/limit"][a:b, c])

    def dataframe(self, names: list[str], start=None, end=None):
        """Several parameters side by side (outer join on time) as a pandas DataFrame."""
        import pandas as pd

        frames = [self.read(n, start, end).to_pandas() for n in names]
        return pd.concat(frames, axis=1, sort=True) if frames else pd.DataFrame()

    # -- packets, events -------------------------------------------------------------------------
    def iter_packets(self, start=None, end=None, *, channels=None, batch_bytes: int = 4 << 20
                     ) -> Iterator[RecordedPacket]:
        """Every recorded Chapter 10 packet (by arrival time range), byte for byte as received."""
        t0, t1 = _to_ns(start), _to_ns(end)
        chans = None if channels is None else set(channels)
        for s in self.segments:
            if s.file is None:
                for p in s._scanned or ():
                    if chans is None or p.channel in chans:
                        yield p
                continue
            n, _ = s.packet_rows()
            if not n:
                continue
            index = s.file["packets/index"][:n]
            sel = np.ones(n, bool)
            if t0 is not None:
                sel &= index[:, 5] >= t0
            if t1 is not None:
                sel &= index[:, 5] < t1
            if chans is not None:
                sel &= np.isin(index[:, 2], list(chans))
            rows = np.flatnonzero(sel)
            data = s.file["packets/data"]
            i = 0
            while i < len(rows):
                first = index[rows[i]]
                j = i
                limit = first[0] + batch_bytes
                while j + 1 < len(rows) and index[rows[j + 1], 0] + index[rows[j + 1], 1] <= limit:
                    j += 1
                lo = int(first[0])
                hi = int(index[rows[j], 0] + index[rows[j], 1])
                buf = data[lo:hi].tobytes()
                for k in rows[i:j + 1]:
                    off, length, ch, dt, rtc, arr = (int(x) for x in index[k])
                    yield RecordedPacket(buf[off - lo:off - lo + length], ch, dt, rtc, arr)
                i = j + 1

    def write_c10(self, path_or_file, start=None, end=None, *, channels=None) -> int:
        """Write the recorded packets as a Chapter 10 file (.c10); returns the packet count."""
        own = isinstance(path_or_file, (str, os.PathLike))
        fh = open(path_or_file, "wb") if own else path_or_file
        n = 0
        try:
            for p in self.iter_packets(start, end, channels=channels):
                fh.write(p.raw)
                n += 1
        finally:
            if own:
                fh.close()
        return n

    def _lines(self, group: str) -> list[dict]:
        out = []
        for s in self.segments:
            if s.file is None or group not in s.file:
                continue
            n = min(s._rows(f"{group}/time"), s._rows(f"{group}/end"))
            if not n:
                continue
            times = s.file[f"{group}/time"][:n]
            ends = s.file[f"{group}/end"][:n]
            nbytes = min(int(ends[-1]), s._rows(f"{group}/text"))
            text = s.file[f"{group}/text"][:nbytes].tobytes()
            start = 0
            for t, e in zip(times.tolist(), ends.tolist()):
                if e > nbytes:
                    break
                try:
                    obj = json.loads(text[start:e])
                except ValueError:
                    obj = {"unreadable": text[start:e].decode("utf-8", "replace")}
                out.append({"time_ns": t, **obj} if isinstance(obj, dict) else {"time_ns": t, "value": obj})
                start = e
        return out

    def events(self, type: str | None = None) -> list[dict]:
        """Alarms, link, configuration and recorder events (each with ``time_ns``)."""
        ev = self._lines("events")
        return ev if type is None else [e for e in ev if e.get("type") == type]

    def commands(self) -> list[dict]:
        """The command history records, in the order they were recorded."""
        return self._lines("commands")

    # -- lifetime ---------------------------------------------------------------------------------
    def close(self) -> None:
        for s in self.segments:
            s.close()

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Recording({len(self.segments)} segment(s), {len(self.names)} parameters)"


def open_recording(path: str | os.PathLike) -> Recording:
    """Open a segment file, a session index (``*.index.json``) or a folder (its newest session)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        indexes = sorted(glob.glob(os.path.join(path, "*.index.json")))
        if indexes:
            return open_recording(indexes[-1])
        files = sorted(glob.glob(os.path.join(path, "*.h5")))
        if not files:
            raise FileNotFoundError(f"no recording in {path}")
        return Recording(files)
    if path.endswith(".json"):
        with open(path) as fh:
            index = json.load(fh)
        if not str(index.get("format", "")).startswith(FORMAT):
            raise ValueError(f"{path} is not a recording index")
        folder = os.path.dirname(path)
        return Recording([os.path.join(folder, e["file"]) for e in index.get("segments", [])], index, path)
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    return Recording([path])

