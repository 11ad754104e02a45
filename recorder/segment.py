"""One HDF5 segment file opened for reading (SWMR, padded if truncated, scanned if unreadable)."""

from __future__ import annotations

import dataclasses
import os

import h5py
import numpy as np

from .recovery import _PaddedFile, _superblock_eoa

__all__ = ["Segment", "ParameterInfo", "RecordedPacket"]


@dataclasses.dataclass(frozen=True)
class ParameterInfo:
    name: str
    units: str
    group: str
    description: str
    rate_hz: float | None
    rate_group: str  # the HDF5 group: rates/<rate_group>
    column: int


@dataclasses.dataclass(frozen=True)
class RecordedPacket:
    raw: bytes  # the whole Chapter 10 packet as received
    channel: int
    data_type: int
    rtc: int
    arrival_ns: int
    status: int = 0  # telemetry_formats.ch10.packet.STATUS_*: ok, data checksum error, truncated, header error


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return str(np.datetime64(int(ns), "ns")) + "Z"


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
                        found.append(RecordedPacket(bytes(ev.raw), h.channel_id, h.data_type, h.rtc, 0, ev.status))
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
        if n and "packets/status" in self.file:  # files before the status dataset have none
            n = min(n, self._rows("packets/status"))
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
