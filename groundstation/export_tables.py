"""Export tables: reading the selected samples of a recording in time-ordered blocks, and the csv/parquet writers."""

from __future__ import annotations

import json
import os

import numpy as np

from .export_progress import Progress
from .export_select import ExportError

# -- reading ---------------------------------------------------------------------------------------


class _Part:
    """The selected columns of one rate group in one segment, and the rows that may be in range."""

    def __init__(self, seg, group: str, names: list[str], cols: list[int], offsets: np.ndarray,
                 units: list[str], a: int, b: int) -> None:
        self.seg, self.group, self.names, self.cols = seg, group, names, cols
        self.offsets, self.units, self.a, self.b = offsets, units, a, b
        self.time = seg.file[f"rates/{group}/time"]

    def rows(self, w0: int | None, w1: int | None) -> tuple[int, int]:
        from recorder.reader import _bisect

        n = self.seg.rate_rows(self.group)
        a = self.a if w0 is None else max(self.a, _bisect(self.time, n, w0))
        b = self.b if w1 is None else min(self.b, _bisect(self.time, n, w1))
        return a, max(a, b)

    def read(self, a: int, b: int):
        base = f"rates/{self.group}"
        t = self.time[a:b]
        lo, hi = min(self.cols), max(self.cols) + 1
        vals = self.seg.file[f"{base}/values"][a:b, lo:hi]
        return t, vals[:, [c - lo for c in self.cols]]


def _parts(rec, names: list[str], t0: int | None, t1: int | None) -> list[_Part]:
    from recorder.reader import _bisect

    parts = []
    wanted = set(names)
    for s in rec.segments:
        if s.file is None:
            continue
        by_group: dict[str, list] = {}
        for p in s.parameters():
            if p.name in wanted:
                by_group.setdefault(p.rate_group, []).append(p)
        for g, ps in by_group.items():
            try:
                n = s.rate_rows(g)
                all_off = s.file[f"rates/{g}/values"].attrs["time_offset_ns"]
            except Exception as exc:
                raise ExportError(f"{os.path.basename(s.path)}: rates/{g} unreadable: {exc}") from None
            if not n:
                continue
            ps = sorted(ps, key=lambda p: p.column)
            cols = [p.column for p in ps]
            offs = np.asarray([int(all_off[c]) for c in cols], np.int64)
            tds = s.file[f"rates/{g}/time"]
            a = 0 if t0 is None else _bisect(tds, n, t0 - int(offs.max()))
            b = n if t1 is None else _bisect(tds, n, t1 - int(offs.min()))
            if b > a:
                parts.append(_Part(s, g, [p.name for p in ps], cols, offs, [p.units for p in ps], a, b))
    return parts


def _windows(parts: list[_Part], rows_per_window: int) -> list[tuple[int | None, int | None]]:
    """Group-time windows [w0, w1) that each hold about ``rows_per_window`` rows."""
    total = sum(p.b - p.a for p in parts)
    if total <= rows_per_window:
        return [(None, None)]
    lo = min(int(p.time[p.a]) for p in parts)
    hi = max(int(p.time[p.b - 1]) for p in parts) + 1
    k = -(-total // rows_per_window)
    edges = [lo + (hi - lo) * i // k for i in range(k + 1)]
    return [(None if i == 0 else edges[i], None if i == k - 1 else edges[i + 1]) for i in range(k)]


def _iter_blocks(parts: list[_Part], names: list[str], t0: int | None, t1: int | None, long: bool,
                 progress: Progress, rows_per_window: int):
    """Blocks of output rows, in time order: (time ns, {column: values}) or long (time, name idx, value)."""
    col_of = {n: i for i, n in enumerate(names)}
    for w0, w1 in _windows(parts, rows_per_window):
        ts, rows, long_t, long_p, long_v = [], [], [], [], []
        for p in parts:
            a, b = p.rows(w0, w1)
            if b <= a:
                continue
            t, vals = p.read(a, b)
            progress.update(b - a)
            exact = t[:, None] + p.offsets[None, :]
            inside = np.ones(exact.shape, bool)
            if t0 is not None:
                inside &= exact >= t0
            if t1 is not None:
                inside &= exact < t1
            if long:
                r, c = np.nonzero(inside)  # row-major: time, then column order
                long_t.append(exact[r, c])
                long_p.append(np.asarray([col_of[p.names[j]] for j in range(len(p.names))], np.int32)[c])
                long_v.append(vals[r, c])
                continue
            keep = inside.any(axis=1)
            if not keep.any():
                continue
            block = np.full((int(keep.sum()), len(names)), np.nan)
            sub = np.where(inside, vals, np.nan)[keep]
            block[:, [col_of[n] for n in p.names]] = sub
            ts.append(t[keep])
            rows.append(block)
        if long:
            if long_t:
                t = np.concatenate(long_t)
                order = np.argsort(t, kind="stable")
                yield t[order], np.concatenate(long_p)[order], np.concatenate(long_v)[order]
        elif ts:
            t = np.concatenate(ts)
            order = np.argsort(t, kind="stable")
            yield t[order], np.concatenate(rows)[order]


# -- writers ---------------------------------------------------------------------------------------


def _iso_ns(t: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(t.astype("datetime64[ns]"), unit="ns"), "Z")


def _as_recorded(v: np.ndarray) -> np.ndarray:
    """Values that are all float32 numbers (recorded as float32, widened by a join) as float32, so
    the text shows the value recorded ("308.83"), not its float64 expansion ("308.8299865722656")."""
    if v.dtype == np.float64 and np.array_equal(v.astype(np.float32), v, equal_nan=True):
        return v.astype(np.float32)
    return v


def csv_column(name: str, units: str) -> str:
    """A wide CSV's column header: the name with its units as a suffix, ``ALT [ft]`` (``MACH`` when none)."""
    return f"{name} [{units}]" if units else name


class _CsvSink:
    """CSV text. Wide: one header row, units as a suffix of each column name (``ALT [ft]``), so
    every CSV reader still sees one header and numeric columns. Long: a ``units`` column."""

    def __init__(self, path: str, names: list[str], long: bool, units: dict[str, str] | None = None) -> None:
        self.fh = open(path, "w", newline="", encoding="utf-8")
        self.names, self.long = names, long
        units = units or {}
        self.units = np.asarray([units.get(n, "") for n in names], object)
        self.columns = [csv_column(n, units.get(n, "")) for n in names]
        self.header = True

    def write(self, block) -> int:
        import pandas as pd

        if self.long:
            t, pid, v = block
            df = pd.DataFrame({"time": _iso_ns(t), "parameter": np.asarray(self.names, object)[pid],
                               "value": _as_recorded(v), "units": self.units[pid]})
        else:
            t, vals = block
            df = pd.DataFrame({c: _as_recorded(vals[:, j]) for j, c in enumerate(self.columns)})
            df.insert(0, "time", _iso_ns(t))
        df.to_csv(self.fh, header=self.header, index=False, na_rep="", lineterminator="\n")
        self.header = False
        return len(df)

    def close(self) -> None:
        if self.header:  # nothing written: still a valid (empty) table
            cols = ["time", "parameter", "value", "units"] if self.long else ["time", *self.columns]
            self.fh.write(",".join(cols) + "\n")
        self.fh.close()


class _ParquetSink:
    def __init__(self, path: str, names: list[str], long: bool, meta: dict, field_meta: dict) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.names, self.long = names, long
        ts = pa.timestamp("ns", tz="UTC")
        if long:
            fields = [pa.field("time", ts), pa.field("parameter", pa.dictionary(pa.int32(), pa.string())),
                      pa.field("value", pa.float64())]
        else:
            fields = [pa.field("time", ts)] + [
                pa.field(n, pa.float64(), metadata={k: str(v) for k, v in field_meta.get(n, {}).items()})
                for n in names]
        self.schema = pa.schema(fields, metadata={"groundstation": json.dumps(meta)})
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.dictionary = pa.array(names, pa.string())

    def write(self, block) -> int:
        pa = self.pa
        if self.long:
            t, pid, v = block
            cols = [pa.array(t, pa.int64()).cast(self.schema.field("time").type),
                    pa.DictionaryArray.from_arrays(pa.array(pid, pa.int32()), self.dictionary),
                    pa.array(v, pa.float64())]
        else:
            t, vals = block
            cols = [pa.array(t, pa.int64()).cast(self.schema.field("time").type)]
            cols += [pa.array(vals[:, j], pa.float64()) for j in range(len(self.names))]
        table = pa.Table.from_arrays(cols, schema=self.schema)
        self.writer.write_table(table)
        return table.num_rows

    def close(self) -> None:
        self.writer.close()



def resampled_block(rec, names: list[str], t0: int | None, t1: int | None, rule: str, how: str):
    """(interval start ns, values (T, len(names))) of ``rec.dataframe(..., resample=rule, how=how)``:
    one block for a sink (the whole range in memory: one row per interval, not per sample)."""
    df = rec.dataframe(names, t0, t1, resample=rule, how=how)
    t = df.index.tz_convert(None).as_unit("ns").asi8 if len(df) else np.zeros(0, np.int64)
    return t, df[names].to_numpy(np.float64)
