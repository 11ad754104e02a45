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
import json
import os
from collections.abc import Iterator

import numpy as np

from .command_table import command_rows
from .layout import FORMAT
from .recovery import _PaddedFile, _superblock_eoa, lookup3  # noqa: F401  (re-exported: moved to recovery)
from .segment import ParameterInfo, RecordedPacket, Segment, _iso
from .times import RESAMPLE_HOW, resample_rule, utc_index
from .times import to_ns as _to_ns

__all__ = ["open_recording", "Recording", "Segment", "Samples", "RecordedPacket", "ParameterInfo", "utc_index",
           "resample_rule", "RESAMPLE_HOW"]

@dataclasses.dataclass
class Samples:
    """One parameter over a time range."""

    name: str
    t_ns: np.ndarray  # int64 ns since 1970 (UTC)
    values: np.ndarray  # engineering units, float32 or float64 as recorded (docs/recording.md)
    raw: np.ndarray
    limit: np.ndarray  # int8
    units: str = ""

    @property
    def time(self) -> np.ndarray:
        return self.t_ns.astype("datetime64[ns]")

    def __len__(self) -> int:
        return len(self.t_ns)

    def to_pandas(self, *, raw: bool = False, limit: bool = False):
        """A DataFrame on a timezone-aware UTC ``DatetimeIndex``; ``df.attrs["units"]`` maps each
        column to its units (raw bits and limit state have none)."""
        import pandas as pd

        cols = {self.name: self.values}
        units = {self.name: self.units}
        if raw:
            cols[f"{self.name}.raw"] = self.raw
            units[f"{self.name}.raw"] = ""
        if limit:
            cols[f"{self.name}.limit"] = self.limit
            units[f"{self.name}.limit"] = ""
        df = pd.DataFrame(cols, index=utc_index(self.t_ns))
        df.attrs["units"] = units
        return df

    def to_xarray(self):
        import xarray as xr

        return xr.DataArray(self.values, coords={"time": self.time}, dims=("time",), name=self.name,
                            attrs={"units": self.units})


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
        """Every parameter recorded, as the newest segment that has it records it (rate group and rate
        change with a group-rate or bit-rate change; the order is that of first appearance)."""
        seen: dict[str, ParameterInfo] = {}
        for s in self.segments:
            for p in s.parameters():
                seen[p.name] = p
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

    def dataframe(self, names: list[str], start=None, end=None, *, resample: str | None = None,
                  how: str = "last"):
        """Several parameters side by side as a pandas DataFrame (UTC index, ``attrs["units"]``).

        Without ``resample``, an outer join on the samples' own times (mostly empty when rates
        differ); with ``resample`` ("10Hz", "100ms", any pandas offset), one row per interval
        with each parameter's ``how`` ("last", "mean", "min", "max") of its samples in it.
        """
        import pandas as pd

        frames = [self.read(n, start, end).to_pandas() for n in names]
        units = {n: u for f in frames for n, u in f.attrs["units"].items()}
        if not frames:
            return pd.DataFrame()
        if resample is not None:
            if how not in RESAMPLE_HOW:
                raise ValueError(f"how must be one of {', '.join(RESAMPLE_HOW)}, not {how!r}")
            rule = resample_rule(resample)
            frames = [getattr(f.resample(rule, label="left", closed="left"), how)() for f in frames]
        df = pd.concat(frames, axis=1, sort=True)
        df.attrs["units"] = units
        return df

    def dataset(self, names: list[str], start=None, end=None, *, resample: str, how: str = "last"):
        """Several parameters on one resampled time axis as an ``xarray.Dataset``: one variable per
        parameter, each with its own ``units`` attribute."""
        import xarray as xr

        df = self.dataframe(names, start, end, resample=resample, how=how)
        ds = xr.Dataset.from_dataframe(df.tz_convert(None))
        for n in names:
            ds[n].attrs["units"] = df.attrs["units"][n]
        return ds

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
            status = s.file["packets/status"][:n] if "packets/status" in s.file else np.zeros(n, np.uint8)
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
                    off, length, ch, dt, rtc, arr = (int(x) for x in index[k][:6])
                    yield RecordedPacket(buf[off - lo:off - lo + length], ch, dt, rtc, arr, int(status[k]))
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

    def commands(self, *, per_command: bool = False, as_: str = "records"):
        """The command history: every record (one per state change), in the order recorded; with
        ``per_command`` one row per command (final state, ``<STATE>_ns`` of each state, who, why).
        ``as_="pandas"``: a DataFrame (per-command times as tz-aware UTC timestamps)."""
        rows = self._lines("commands")
        if per_command:
            rows = command_rows(rows)
        if as_ == "records":
            return rows
        if as_ != "pandas":
            raise ValueError(f"as_ must be records or pandas, not {as_!r}")
        import pandas as pd

        df = pd.DataFrame(rows)
        for c in [c for c in df.columns if c.endswith("_ns")]:
            df[c[:-3].lower() if per_command else "time"] = pd.to_datetime(df[c], unit="ns", utc=True)
        return df

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

