"""``groundstation export``: a recording's parameters to CSV or Parquet, its raw packets to Chapter 10.

::

    groundstation export flight-42/ --params ALT,IAS,'EGT*' --start +60 --end +120 --format csv -o alt.csv
    groundstation export rec_000.h5 --params 'PITCH_*' --format parquet --long -o pitch.parquet
    groundstation export rec.index.json --start 2026-05-14T10:20:00Z --end +300 --format c10 -o part.c10

The source is what ``recorder.open`` takes: a segment file (``*.h5``), a session
index (``*.index.json``) or a folder (its newest session).

Times (``--start`` inclusive, ``--end`` exclusive) are ISO-8601 (UTC unless an
offset is given) or seconds after the start of the recording, ``+12.5``. For
csv/parquet the start is the first decoded sample; for c10 it is the first
packet's arrival, because packets are selected by arrival time.

Formats:

- ``csv`` / ``parquet`` (wide, the default): one row per sample time per rate
  group. ``time`` is the time of the group's first parameter (ISO-8601 with ns
  and a ``Z`` in CSV; ``timestamp[ns, UTC]`` in Parquet), then one column per
  parameter, empty (NaN) where that parameter has no sample in the row (another
  rate group, a missing sample, or outside the time range). A parameter whose
  word comes later in the minor frame was sampled ``time_offset_ns`` later than
  ``time``; Parquet keeps ``units`` and ``time_offset_ns`` in each column's field
  metadata. Rows of different rate groups are not merged, and are ordered by time.
- ``--long``: one row per sample, ``time`` (the exact sample time), ``parameter``,
  ``value`` -- exactly what ``recorder.open(...).read(name, start, end)`` returns.
- ``c10``: every recorded Chapter 10 packet that arrived in the range, byte for
  byte, back to back (a ``.c10`` file; pychapter10 reads it). ``--channels``
  selects channel IDs. Packets are not re-timed or re-numbered.

The output is written next to ``-o`` as ``OUT.part`` and renamed when complete.
A progress bar goes to stderr when stderr is a terminal. User errors (unknown
parameters, empty range, unreadable recording, bad times) print one message and
exit with status 2.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import json
import os
import re
import sys
import time
from collections.abc import Iterable

import numpy as np

__all__ = [
    "ExportError", "Progress", "parse_time", "select_parameters", "sample_span", "packet_span",
    "export_table", "export_c10", "cmd_export", "register_export_command",
]

ROWS_PER_WINDOW = 200_000  # group rows read per step (bounds memory; one progress step)


class ExportError(Exception):
    """A user error: printed as one line, exit status 2."""


# -- progress ------------------------------------------------------------------------------------


class Progress:
    """A small progress bar on a stream (stderr); silent unless the stream is a terminal."""

    def __init__(self, total: int, unit: str = "", *, label: str = "export", stream=None,
                 enabled: bool | None = None, min_interval_s: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = bool(enabled)
        self.total = max(int(total), 0)
        self.unit = unit
        self.label = label
        self.done = 0
        self.min_interval_s = min_interval_s
        self._t0 = time.monotonic()
        self._last = 0.0
        self._shown = False

    def update(self, n: int) -> None:
        self.done += int(n)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= self.min_interval_s or (self.total and self.done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        width = 30
        frac = min(self.done / self.total, 1.0) if self.total else 0.0
        bar = "#" * int(frac * width)
        rate = self.done / max(now - self._t0, 1e-6)
        text = (f"\r{self.label} {frac * 100:5.1f}% |{bar:<{width}}| {_human(self.done, self.unit)}"
                f"/{_human(self.total, self.unit)} {_human(rate, self.unit)}/s ")
        try:
            self.stream.write(text)
            self.stream.flush()
            self._shown = True
        except (OSError, ValueError):
            self.enabled = False

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            if self._shown:
                try:
                    self.stream.write("\n")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
        self.enabled = False


def _human(n: float, unit: str) -> str:
    if unit == "B":
        for suffix in ("B", "kB", "MB", "GB", "TB"):
            if abs(n) < 1000 or suffix == "TB":
                return f"{n:.0f} {suffix}" if suffix == "B" else f"{n:.1f} {suffix}"
            n /= 1000
    if abs(n) >= 1e6:
        return f"{n / 1e6:.1f}M {unit}".rstrip()
    if abs(n) >= 1e3:
        return f"{n / 1e3:.1f}k {unit}".rstrip()
    return f"{n:.0f} {unit}".rstrip()


# -- times, names ----------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^\+\s*(\d+(\.\d*)?|\.\d+)(s)?$")


def parse_time(text: str | None, origin_ns: int | None) -> int | None:
    """``+SECONDS`` after ``origin_ns``, or ISO-8601 (UTC unless it has an offset) -> ns since 1970."""
    if text is None or text == "":
        return None
    s = text.strip()
    m = _RELATIVE.match(s)
    if m:
        if origin_ns is None:
            raise ExportError(f"cannot use relative time {text!r}: the recording has no data")
        return origin_ns + round(float(m.group(1)) * 1e9)
    from recorder.reader import _to_ns

    if not re.match(r"^\d{4}-\d{2}-\d{2}", s):
        raise ExportError(f"bad time {text!r}: expected ISO-8601 (2026-05-14T10:20:00Z) or +SECONDS")
    try:
        return _to_ns(s)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ExportError(f"bad time {text!r}: {exc}") from None


def _range(t0: int | None, t1: int | None) -> str:
    if t0 is not None and t1 is not None:
        return f"between {_iso(t0)} and {_iso(t1)}"
    if t0 is not None:
        return f"at or after {_iso(t0)}"
    if t1 is not None:
        return f"before {_iso(t1)}"
    return "at all"


def _iso(ns: int | None) -> str:
    if ns is None:
        return "-"
    return str(np.datetime64(int(ns), "ns")) + "Z"


def _split(values: Iterable[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or ():
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def select_parameters(names: list[str], patterns: list[str]) -> tuple[list[str], list[str]]:
    """Names matching ``patterns`` (exact names or globs), in pattern order; and the patterns that matched none."""
    chosen: dict[str, None] = {}
    unknown: list[str] = []
    for pat in patterns:
        if any(c in pat for c in "*?["):
            hits = [n for n in names if fnmatch.fnmatchcase(n, pat)]
        else:
            hits = [pat] if pat in names else []
        if not hits:
            unknown.append(pat)
        for h in hits:
            chosen.setdefault(h, None)
    return list(chosen), unknown


def _unknown_message(unknown: list[str], names: list[str]) -> str:
    parts = []
    upper = {n.upper(): n for n in names}
    for u in unknown:
        guess = upper.get(u.upper()) or next(iter(difflib.get_close_matches(u, names, 1)), None)
        parts.append(f"{u} (did you mean {guess}?)" if guess else u)
    shown = ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40 else "")
    return (f"unknown parameter{'s' if len(unknown) > 1 else ''}: {', '.join(parts)}\n"
            f"  parameters in this recording: {shown or '(none)'}")


# -- what the recording holds -------------------------------------------------------------------------


def _readable(rec) -> None:
    """Raise ExportError when nothing of the recording can be read."""
    if any(s.file is not None for s in rec.segments):
        return
    if any(s._scanned for s in rec.segments):
        return
    problems = "; ".join(f"{os.path.basename(s.path)}: {p}" for s in rec.segments for p in s.problems)
    raise ExportError(f"not a readable recording ({problems or 'no segment files'})")


def sample_span(rec, names: list[str] | None = None) -> tuple[int | None, int | None]:
    """(first, last) group sample time, ns, over the rate groups holding ``names`` (all if None)."""
    lo = hi = None
    for s in rec.segments:
        if s.file is None:
            continue
        groups = {p.rate_group for p in s.parameters() if names is None or p.name in names}
        for g in groups:
            try:
                n = s.rate_rows(g)
                a, b = s.time_bounds(f"rates/{g}/time", n)
            except Exception:
                continue
            if a is None:
                continue
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    return lo, hi


def _packet_indexes(rec):
    """(segment, index rows (N, 6)) of every readable segment."""
    for s in rec.segments:
        if s.file is None:
            continue
        try:
            n, _ = s.packet_rows()
            idx = s.file["packets/index"][:n] if n else np.zeros((0, 6), np.int64)
        except Exception:
            continue
        yield s, idx


def packet_span(rec) -> tuple[int | None, int | None]:
    """(first, last) packet arrival time, ns (scanned packets have none)."""
    lo = hi = None
    for _, idx in _packet_indexes(rec):
        arr = idx[:, 5]
        arr = arr[arr > 0]
        if len(arr):
            lo = int(arr.min()) if lo is None else min(lo, int(arr.min()))
            hi = int(arr.max()) if hi is None else max(hi, int(arr.max()))
    return lo, hi


# -- tables -----------------------------------------------------------------------------------------


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


def _windows(parts: list[_Part]) -> list[tuple[int | None, int | None]]:
    """Group-time windows [w0, w1) that each hold about ROWS_PER_WINDOW rows."""
    total = sum(p.b - p.a for p in parts)
    if total <= ROWS_PER_WINDOW:
        return [(None, None)]
    lo = min(int(p.time[p.a]) for p in parts)
    hi = max(int(p.time[p.b - 1]) for p in parts) + 1
    k = -(-total // ROWS_PER_WINDOW)
    edges = [lo + (hi - lo) * i // k for i in range(k + 1)]
    return [(None if i == 0 else edges[i], None if i == k - 1 else edges[i + 1]) for i in range(k)]


def _iter_blocks(parts: list[_Part], names: list[str], t0: int | None, t1: int | None, long: bool,
                 progress: Progress):
    """Blocks of output rows, in time order: (time ns, {column: values}) or long (time, name idx, value)."""
    col_of = {n: i for i, n in enumerate(names)}
    for w0, w1 in _windows(parts):
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


def _iso_ns(t: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(t.astype("datetime64[ns]"), unit="ns"), "Z")


class _CsvSink:
    def __init__(self, path: str, names: list[str], long: bool) -> None:
        self.fh = open(path, "w", newline="", encoding="utf-8")
        self.names, self.long = names, long
        self.header = True

    def write(self, block) -> int:
        import pandas as pd

        if self.long:
            t, pid, v = block
            df = pd.DataFrame({"time": _iso_ns(t), "parameter": np.asarray(self.names, object)[pid], "value": v})
        else:
            t, vals = block
            df = pd.DataFrame(vals, columns=self.names)
            df.insert(0, "time", _iso_ns(t))
        df.to_csv(self.fh, header=self.header, index=False, na_rep="", lineterminator="\n")
        self.header = False
        return len(df)

    def close(self) -> None:
        if self.header:  # nothing written: still a valid (empty) table
            cols = ["time", "parameter", "value"] if self.long else ["time", *self.names]
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


def export_table(rec, names: list[str], t0: int | None, t1: int | None, out: str, fmt: str, *,
                 long: bool = False, progress: Progress | None = None, source: str = "") -> int:
    """Write ``names`` between ``t0`` and ``t1`` to ``out`` (csv or parquet); returns the row count."""
    parts = _parts(rec, names, t0, t1)
    total = sum(p.b - p.a for p in parts)
    if not total:
        lo, hi = sample_span(rec, names)
        raise ExportError(f"no samples of the selected parameters {_range(t0, t1)} "
                          f"(they span {_iso(lo)} .. {_iso(hi)})")
    progress = progress or Progress(total, "rows", enabled=False)
    progress.total = total
    progress.unit = "rows"
    field_meta: dict[str, dict] = {}
    for p in parts:
        for n, off, u in zip(p.names, p.offsets.tolist(), p.units):
            field_meta.setdefault(n, {"units": u, "time_offset_ns": off})
    meta = {"source": source, "start": _iso(t0) if t0 is not None else None,
            "end": _iso(t1) if t1 is not None else None, "format": "long" if long else "wide",
            "time": ("exact sample time" if long else
                     "time of the rate group's first parameter; a parameter's exact time is time + time_offset_ns")}
    part_path = out + ".part"
    sink = _CsvSink(part_path, names, long) if fmt == "csv" else _ParquetSink(part_path, names, long, meta,
                                                                               field_meta)
    rows = 0
    try:
        try:
            for block in _iter_blocks(parts, names, t0, t1, long, progress):
                rows += sink.write(block)
        finally:
            sink.close()
            progress.close()
        if not rows:
            raise ExportError(f"no samples of the selected parameters {_range(t0, t1)}")
        os.replace(part_path, out)
    except BaseException:
        _remove(part_path)
        raise
    return rows


# -- Chapter 10 --------------------------------------------------------------------------------------


def export_c10(rec, t0: int | None, t1: int | None, out: str, *, channels: list[int] | None = None,
               progress: Progress | None = None) -> tuple[int, int]:
    """Write the raw packets that arrived in [t0, t1) to ``out``; returns (packets, bytes)."""
    total_n = total_b = 0
    for _, idx in _packet_indexes(rec):
        sel = np.ones(len(idx), bool)
        if t0 is not None:
            sel &= idx[:, 5] >= t0
        if t1 is not None:
            sel &= idx[:, 5] < t1
        if channels is not None:
            sel &= np.isin(idx[:, 2], channels)
        total_n += int(sel.sum())
        total_b += int(idx[sel, 1].sum())
    for s in rec.segments:  # packets recovered from a damaged file have no arrival time: all of them
        for p in s._scanned or ():
            if channels is None or p.channel in channels:
                total_n += 1
                total_b += len(p.raw)
    if not total_n:
        lo, hi = packet_span(rec)
        what = f" on channel(s) {', '.join(map(str, channels))}" if channels is not None else ""
        raise ExportError(f"no packets{what} arrived {_range(t0, t1)} "
                          f"(packets arrived {_iso(lo)} .. {_iso(hi)})")
    progress = progress or Progress(total_b, "B", enabled=False)
    progress.total, progress.unit = total_b, "B"
    part_path = out + ".part"
    n = nbytes = 0
    try:
        with open(part_path, "wb") as fh:
            try:
                for p in rec.iter_packets(t0, t1, channels=channels):
                    fh.write(p.raw)
                    n += 1
                    nbytes += len(p.raw)
                    progress.update(len(p.raw))
            finally:
                progress.close()
        os.replace(part_path, out)
    except BaseException:
        _remove(part_path)
        raise
    return n, nbytes


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


# -- the command -------------------------------------------------------------------------------------


def _format(args) -> str:
    if args.format:
        return args.format
    ext = os.path.splitext(args.output)[1].lower()
    fmt = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".c10": "c10", ".ch10": "c10"}.get(ext)
    if fmt is None:
        raise ExportError("give --format csv|parquet|c10 (cannot tell it from the output name)")
    return fmt


def _channels(values) -> list[int] | None:
    items = _split(values)
    if not items:
        return None
    try:
        return [int(x, 0) for x in items]
    except ValueError:
        raise ExportError(f"bad --channels {','.join(items)!r}: expected channel IDs, e.g. 3,4") from None


def run_export(args: argparse.Namespace, *, stderr=None) -> str:
    """Do the export; returns the summary line. Raises ExportError for user errors."""
    import recorder

    stderr = stderr if stderr is not None else sys.stderr
    fmt = _format(args)
    if fmt not in ("csv", "parquet", "c10"):
        raise ExportError(f"unknown format {fmt!r}")
    patterns = _split(args.params)
    if fmt == "c10" and patterns:
        raise ExportError("--params does not apply to --format c10 (it exports the raw packets; "
                          "use --channels to select channels)")
    if fmt != "c10" and args.channels:
        raise ExportError("--channels applies to --format c10 only")
    if fmt == "c10" and args.long:
        raise ExportError("--long applies to csv and parquet only")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise ExportError(f"{args.output}: folder {out_dir} does not exist")
    try:
        rec = recorder.open(args.recording)
    except FileNotFoundError as exc:
        raise ExportError(f"{args.recording}: no such recording ({exc})") from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"{args.recording}: cannot read it: {exc}") from None
    try:
        _readable(rec)
        problems = rec.report()["problems"]
        for p in problems:
            print(f"groundstation export: warning: {p}", file=stderr)
        source = os.path.basename(os.path.normpath(args.recording))
        if fmt == "c10":
            origin = packet_span(rec)[0]
            t0, t1 = parse_time(args.start, origin), parse_time(args.end, origin)
            _check_range(t0, t1)
            progress = Progress(0, "B", stream=stderr)
            n, nbytes = export_c10(rec, t0, t1, args.output, channels=_channels(args.channels), progress=progress)
            return f"wrote {args.output}: {n:,} packets, {nbytes:,} bytes"
        names_all = rec.names
        if not names_all:
            raise ExportError("no decoded parameters in this recording (--format c10 exports its raw packets)")
        if patterns:
            names, unknown = select_parameters(names_all, patterns)
            if unknown:
                raise ExportError(_unknown_message(unknown, names_all))
        else:
            names = list(names_all)
        origin = sample_span(rec)[0]
        t0, t1 = parse_time(args.start, origin), parse_time(args.end, origin)
        _check_range(t0, t1)
        progress = Progress(0, "rows", stream=stderr)
        rows = export_table(rec, names, t0, t1, args.output, fmt, long=args.long, progress=progress,
                            source=source)
        return f"wrote {args.output}: {rows:,} rows, {len(names)} parameter{'s' if len(names) != 1 else ''}"
    finally:
        rec.close()


def _check_range(t0: int | None, t1: int | None) -> None:
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ExportError(f"empty time range: --end {_iso(t1)} is not after --start {_iso(t0)}")


def cmd_export(args: argparse.Namespace) -> int:
    try:
        summary = run_export(args)
    except ExportError as exc:
        print(f"groundstation export: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("groundstation export: interrupted (no output written)", file=sys.stderr)
        return 130
    except OSError as exc:  # the output: permissions, disk full
        print(f"groundstation export: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def register_export_command(sub) -> None:
    p = sub.add_parser(
        "export", help="export a recording to CSV, Parquet or Chapter 10",
        description="Export parameters of a recording to CSV or Parquet, or its raw packets to a .c10 file.",
        epilog="Times: ISO-8601 UTC (2026-05-14T10:20:00Z) or seconds after the recording's start (+12.5).")
    p.add_argument("recording", help="a segment file (.h5), a session index (.index.json) or a folder")
    p.add_argument("--params", action="append", metavar="NAME[,NAME...]",
                   help="parameters to export; globs allowed (quote them: 'EGT*'); default: all")
    p.add_argument("--start", help="first time (inclusive): ISO-8601 or +SECONDS")
    p.add_argument("--end", help="end time (exclusive): ISO-8601 or +SECONDS")
    p.add_argument("--format", choices=["csv", "parquet", "c10"], help="default: from the output name")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the file to write")
    p.add_argument("--long", action="store_true", help="csv/parquet: one row per sample (time, parameter, value)")
    p.add_argument("--channels", action="append", metavar="ID[,ID...]", help="c10: only these channel IDs")
    p.set_defaults(func=cmd_export)
