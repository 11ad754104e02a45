"""``groundstation export``: a recording's parameters to CSV or Parquet, its raw packets to Chapter 10.

::

    groundstation export flight-42/ --params ALT,IAS,'EGT*' --start +60 --end +120 --format csv -o alt.csv
    groundstation export rec_000.h5 --params 'PITCH_*' --format parquet --long -o pitch.parquet
    groundstation export rec.index.json --start 2026-05-14T10:20:00Z --end +300 --format c10 -o part.c10
    groundstation export flight-42/ --params ALT,EGT,VIB --resample 10Hz --how max --start 18:19:20 -o w.csv

The source is what ``recorder.open`` takes: a segment file (``*.h5``), a session
index (``*.index.json``) or a folder (its newest session).

Times (``--start`` inclusive, ``--end`` exclusive) are ISO-8601 (UTC unless an
offset is given), a bare time of day ``18:19:20`` (that time, UTC unless an offset is
given, on the UTC day the recording starts) or seconds after the start of the
recording, ``+12.5``. For
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
  CSV headers carry the units as a suffix, ``ALT [ft]`` (a parameter without units is
  its bare name): one header row, so every CSV reader still gets numeric columns.
- ``--resample 10Hz`` (or ``100ms``; wide csv/parquet): one row per interval on a common
  time base, labelled by the interval's start, each column the ``--how`` (``last``,
  ``mean``, ``min``, ``max``) of that parameter's samples in it, instead of a join of
  every rate group's own times (mostly empty cells). Built in memory: one row per
  interval, so choose the rate for the range.
- ``--long``: one row per sample, ``time`` (the exact sample time), ``parameter``,
  ``value`` -- exactly what ``recorder.open(...).read(name, start, end)`` returns -- and,
  in CSV, ``units``.
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
import os
import sys

import numpy as np

from .export_progress import Progress
from .export_select import (
    ExportError,
    _iso,
    _packet_indexes,
    _range,
    _readable,
    _split,
    _unknown_message,
    packet_span,
    parse_time,
    sample_span,
    select_parameters,
)
from .export_tables import _CsvSink, _iter_blocks, _ParquetSink, _parts, resampled_block

__all__ = [
    "ExportError", "Progress", "parse_time", "select_parameters", "sample_span", "packet_span",
    "export_table", "export_c10", "cmd_export", "register_export_command",
]

ROWS_PER_WINDOW = 200_000  # group rows read per step (bounds memory; one progress step)


# -- tables ----------------------------------------------------------------------------------------


def export_table(rec, names: list[str], t0: int | None, t1: int | None, out: str, fmt: str, *,
                 long: bool = False, progress: Progress | None = None, source: str = "",
                 resample: str | None = None, how: str = "last") -> int:
    """Write ``names`` between ``t0`` and ``t1`` to ``out`` (csv or parquet); returns the row count.
    ``resample`` ("10Hz", "100ms"): one row per interval, each parameter's ``how`` of its samples."""
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
    if resample is not None:
        meta.update(format="resampled", resample=resample, how=how,
                    time=f"start of each {resample} interval; each column the {how} of its samples in it")
    part_path = out + ".part"
    units = {n: m["units"] for n, m in field_meta.items()}
    sink = _CsvSink(part_path, names, long, units) if fmt == "csv" else _ParquetSink(part_path, names, long, meta,
                                                                                      field_meta)
    if resample is not None:
        from recorder.reader import resample_rule

        blocks = iter([resampled_block(rec, names, t0, t1, resample_rule(resample), how)])
    else:
        blocks = _iter_blocks(parts, names, t0, t1, long, progress, ROWS_PER_WINDOW)
    rows = 0
    try:
        try:
            for block in blocks:
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
    from recorder.reader import RESAMPLE_HOW, resample_rule

    resample, how = getattr(args, "resample", None), getattr(args, "how", "last")
    if how not in RESAMPLE_HOW:
        raise ExportError(f"bad --how {how!r}: one of {', '.join(RESAMPLE_HOW)}")
    if resample is not None:
        if fmt == "c10" or args.long:
            raise ExportError("--resample applies to wide csv and parquet only")
        try:
            resample_rule(resample)
        except ValueError as exc:
            raise ExportError(f"bad --resample {resample!r}: {exc}") from None
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
                            source=source, resample=resample, how=how)
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
        epilog="Times: ISO-8601 UTC (2026-05-14T10:20:00Z), a time of day on the recording's day (18:19:20) "
               "or seconds after the recording's start (+12.5).")
    p.add_argument("recording", help="a segment file (.h5), a session index (.index.json) or a folder")
    p.add_argument("--params", action="append", metavar="NAME[,NAME...]",
                   help="parameters to export; globs allowed (quote them: 'EGT*'); default: all")
    p.add_argument("--start", help="first time (inclusive): ISO-8601, HH:MM[:SS] on the recording's day, or +SECONDS")
    p.add_argument("--end", help="end time (exclusive): ISO-8601, HH:MM[:SS] on the recording's day, or +SECONDS")
    p.add_argument("--format", choices=["csv", "parquet", "c10"], help="default: from the output name")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the file to write")
    p.add_argument("--long", action="store_true", help="csv/parquet: one row per sample (time, parameter, value)")
    p.add_argument("--channels", action="append", metavar="ID[,ID...]", help="c10: only these channel IDs")
    p.add_argument("--resample", metavar="RATE", help="wide csv/parquet: one row per interval on a common time "
                   "base (10Hz, 0.5Hz, 100ms) instead of the samples' own times")
    p.add_argument("--how", default="last", metavar="last|mean|min|max",
                   help="with --resample: each parameter's last (default), mean, min or max in the interval")
    p.set_defaults(func=cmd_export)
