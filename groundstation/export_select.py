"""Export selection: time ranges, parameter names, and the times a recording's samples and packets span."""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Iterable

import numpy as np

__all__ = ["ExportError", "parse_time", "select_parameters", "sample_span", "packet_span"]


class ExportError(Exception):
    """A user error: printed as one line, exit status 2."""


# -- times, names ----------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^\+\s*(\d+(\.\d*)?|\.\d+)(s)?$")
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_DAY_NS = 86_400 * 1_000_000_000


def parse_time(text: str | None, origin_ns: int | None) -> int | None:
    """``+SECONDS`` after ``origin_ns``, a bare time of day (``18:19:20``, UTC unless it has an offset)
    on the UTC day of ``origin_ns``, or ISO-8601 (UTC unless it has an offset) -> ns since 1970."""
    if text is None or text == "":
        return None
    s = text.strip()
    m = _RELATIVE.match(s)
    if m:
        if origin_ns is None:
            raise ExportError(f"cannot use relative time {text!r}: the recording has no data")
        return origin_ns + round(float(m.group(1)) * 1e9)
    from recorder.reader import _to_ns

    if _TIME_OF_DAY.match(s):
        if origin_ns is None:
            raise ExportError(f"cannot use time of day {text!r}: the recording has no data")
        day = str(np.datetime64(origin_ns // _DAY_NS * _DAY_NS, "ns"))[:10]
        s = f"{day}T{s if len(s.split(':')[0]) == 2 else '0' + s}"

    if not re.match(r"^\d{4}-\d{2}-\d{2}", s):
        raise ExportError(f"bad time {text!r}: expected ISO-8601 (2026-05-14T10:20:00Z), HH:MM[:SS] or +SECONDS")
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

