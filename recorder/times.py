"""Times as analysts give them and get them: ns since 1970 from ISO text, datetimes and pandas
Timestamps; tz-aware UTC pandas indexes; resample rules from rates ("10Hz")."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import numpy as np

__all__ = ["to_ns", "utc_index", "resample_rule", "RESAMPLE_HOW"]

RESAMPLE_HOW = ("last", "mean", "min", "max")


def resample_rule(text: str) -> str:
    """A pandas resample rule from "10Hz" / "0.5 Hz" (as a period in ns) or any pandas offset ("100ms")."""
    t = text.strip()
    if t.lower().endswith("hz"):
        hz = float(t[:-2])
        if not 0 < hz <= 1e9:
            raise ValueError(f"resample rate {text!r} must be above 0 Hz and at most 1 GHz")
        return f"{round(1e9 / hz)}ns"
    return t


def utc_index(t_ns: np.ndarray):
    """A pandas ``DatetimeIndex`` named ``time``, timezone-aware UTC, from int64 ns since 1970."""
    import pandas as pd

    return pd.DatetimeIndex(np.asarray(t_ns, np.int64).astype("datetime64[ns]"), name="time").tz_localize("UTC")


_UTC_OFFSET = re.compile(r"(Z|([+-])(\d{2}):?(\d{2})?)$")


def to_ns(t) -> int | None:
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
        m = _UTC_OFFSET.search(s, 10)
        offset = 0
        if m:  # numpy parses the naive part (ns precision); the offset is applied here (no numpy warning)
            s = s[:m.start()]
            if m.group(2):
                sign = 1 if m.group(2) == "+" else -1
                offset = sign * (int(m.group(3)) * 3600 + int(m.group(4) or 0) * 60) * 1_000_000_000
        return int(np.datetime64(s, "ns").astype(np.int64)) - offset
    return int(np.datetime64(t, "ns").astype(np.int64))
