"""Bus monitor: what is on the 1553 and ARINC-429 buses, without an ICD.

``BusMonitor`` is fed the decoders' batches (``Messages1553``, ``Words429``)
and keeps, per observed key, counts, first and last time, the mean rate and
the rate over the last second, error counts by reason and the latest raw words:

- 1553: a key per (channel, command word, transmit command word), i.e. channel,
  RT, T/R, subaddress and word count (mode code), RT-to-RT with its transmitting RT;
- ARINC-429: a key per (channel, bus, label, SDI).

Each batch costs a few numpy calls (``np.unique`` over the keys, ``bincount``
per error reason) and a Python step per distinct key in it, not per message.
``snapshot()`` returns plain rows for a table or JSON. No I/O, no clock: rates
come from the messages' own RTC time stamps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .ch10.arinc429 import Words429
from .ch10.header import RTC_HZ
from .ch10.mil1553 import BSW_ERRORS, Messages1553

__all__ = ["BusMonitor", "SSM_NAMES"]

# SSM values (bits 31-30) as BNR words name them; BCD and discrete words name 0 and 3 differently.
SSM_NAMES = {0: "failure warning", 1: "no computed data", 2: "functional test", 3: "normal"}
RECENT_S = 1.0  # ``recent_rate_hz`` is over at least the last second seen (the mean rate until then)
_RECENT_RTC = int(RECENT_S * RTC_HZ)


@dataclass(slots=True)
class _Seen:
    count: int = 0
    in_error: int = 0  # messages (words) with at least one problem
    first_rtc: int | None = None
    last_rtc: int | None = None
    errors: dict[str, int] = field(default_factory=dict)
    # (last RTC, count) after each batch, back to the newest one at least RECENT_S old
    marks: deque[tuple[int, int]] = field(default_factory=deque)

    def add(self, count: int, first_rtc: int, last_rtc: int) -> None:
        self.count += count
        if self.first_rtc is None or first_rtc < self.first_rtc:
            self.first_rtc = first_rtc
        if self.last_rtc is None or last_rtc > self.last_rtc:
            self.last_rtc = last_rtc
        marks = self.marks
        marks.append((self.last_rtc, self.count))
        horizon = self.last_rtc - _RECENT_RTC
        while len(marks) > 1 and marks[1][0] <= horizon:
            marks.popleft()

    def add_errors(self, counts: dict[str, int]) -> None:
        for reason, n in counts.items():
            if n:
                self.errors[reason] = self.errors.get(reason, 0) + n

    def common(self) -> dict:
        rate = None
        if self.count > 1 and self.first_rtc is not None and self.last_rtc is not None and self.last_rtc > self.first_rtc:
            rate = (self.count - 1) * RTC_HZ / (self.last_rtc - self.first_rtc)
        recent = rate
        if self.marks and self.last_rtc is not None:
            t0, c0 = self.marks[0]
            if t0 <= self.last_rtc - _RECENT_RTC:
                recent = (self.count - c0) * RTC_HZ / (self.last_rtc - t0)
        return {"count": self.count, "rate_hz": rate, "recent_rate_hz": recent,
                "first_rtc": self.first_rtc, "last_rtc": self.last_rtc,
                "errors": dict(sorted(self.errors.items())), "error_count": self.in_error}


@dataclass(slots=True)
class _Message(_Seen):
    bus_b: int = 0
    status: int = 0
    data: tuple[int, ...] = ()


@dataclass(slots=True)
class _Label(_Seen):
    ssm: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    word: int = 0


@dataclass(slots=True)
class _Groups:
    uniq: np.ndarray  # the distinct keys
    inv: np.ndarray  # each row's group
    counts: np.ndarray
    first: np.ndarray  # each group's first and last row
    last: np.ndarray


def _groups(keys: np.ndarray) -> _Groups:
    uniq, inv, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.argsort(inv, kind="stable")
    ends = np.cumsum(counts)
    return _Groups(uniq, inv, counts, order[ends - counts], order[ends - 1])


def _merge(table: dict, make, g: _Groups, rtc: np.ndarray, reasons: dict[str, np.ndarray] | None,
           in_error: np.ndarray) -> list:
    """Add one batch's groups to ``table`` (counts, times, errors by reason); their entries, in group order."""
    n = len(g.uniq)
    per = {name: np.bincount(g.inv, weights=v, minlength=n) for name, v in reasons.items()} if reasons else {}
    bad = np.bincount(g.inv, weights=in_error, minlength=n) if reasons else None
    out = []
    for i, key in enumerate(g.uniq.tolist()):
        s = table.get(key)
        if s is None:
            s = table[key] = make()
        s.add(int(g.counts[i]), int(rtc[g.first[i]]), int(rtc[g.last[i]]))
        if bad is not None:
            s.add_errors({name: int(v[i]) for name, v in per.items()})
            s.in_error += int(bad[i])
        out.append(s)
    return out


class BusMonitor:
    """Every 1553 message and ARINC-429 label seen, with counts, rates, errors and latest words."""

    def __init__(self) -> None:
        self._messages: dict[int, _Message] = {}
        self._labels: dict[int, _Label] = {}
        self._undecoded: dict[tuple[int, str, str], int] = {}  # (channel, bus type, reason) -> messages

    def feed(self, batch: Messages1553 | Words429) -> None:
        """Add one decoded packet."""
        if isinstance(batch, Messages1553):
            self.feed_1553(batch)
        else:
            self.feed_429(batch)

    # --- 1553 -----------------------------------------------------------------------------

    def feed_1553(self, m: Messages1553) -> None:
        for e in m.errors:
            if e.decoded:
                continue  # flagged rows are counted below from their block status words
            reason = e.reason.split(":", 1)[0]
            if e.command is not None:
                key = m.channel_id << 32 | e.command << 16
                s = self._messages.setdefault(key, _Message())
                s.add_errors({reason: 1})
                s.count += 1
                s.in_error += 1
            else:
                k = (m.channel_id, "1553", reason)
                self._undecoded[k] = self._undecoded.get(k, 0) + 1
        if not len(m):
            return
        keys = np.int64(m.channel_id) << 32 | m.command.astype(np.int64) << 16 | m.command2.astype(np.int64)
        g = _groups(keys)
        reasons = {name: (m.block_status & bit) != 0 for name, bit in BSW_ERRORS.items()} if m.error.any() else None
        entries = _merge(self._messages, _Message, g, m.rtc, reasons, m.error)
        bus_b = np.bincount(g.inv, weights=m.bus_b, minlength=len(entries))
        for s, b, k in zip(entries, bus_b.tolist(), g.last.tolist()):
            s.bus_b += int(b)
            s.status = int(m.status[k])
            s.data = tuple(m.data[k, : m.n_data[k]].tolist())

    # --- ARINC-429 ------------------------------------------------------------------------

    def feed_429(self, w: Words429) -> None:
        for e in w.errors:
            if not e.decoded:
                k = (w.channel_id, "429", e.reason.split(":", 1)[0])
                self._undecoded[k] = self._undecoded.get(k, 0) + 1
        if not len(w):
            return
        keys = (np.int64(w.channel_id) << 24 | w.bus.astype(np.int64) << 16 | w.label.astype(np.int64) << 8
                | w.sdi.astype(np.int64))
        g = _groups(keys)
        bad = w.format_error | w.parity_error | ~w.parity_ok
        reasons = None
        if bad.any():
            reasons = {"format error": w.format_error, "parity error": w.parity_error, "parity check failed": ~w.parity_ok}
        entries = _merge(self._labels, _Label, g, w.rtc, reasons, bad)
        ssm = np.bincount(g.inv * 4 + w.ssm, minlength=4 * len(entries)).reshape(-1, 4)
        for s, counts, k in zip(entries, ssm.tolist(), g.last.tolist()):
            s.ssm = [a + b for a, b in zip(s.ssm, counts)]
            s.word = int(w.word[k])

    # --- output ---------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Plain rows, sorted by channel and key: ``mil1553``, ``arinc429``, ``undecoded``."""
        rows_1553 = []
        for key, s in sorted(self._messages.items()):
            ch, cmd, cmd2 = key >> 32, (key >> 16) & 0xFFFF, key & 0xFFFF
            sa, wcf = (cmd >> 5) & 31, cmd & 31
            mode = sa in (0, 31)
            row = {"channel_id": ch, "rt": cmd >> 11, "tr": "T" if cmd >> 10 & 1 else "R", "subaddress": sa,
                   "word_count": None if mode else (wcf or 32), "mode_code": wcf if mode else None,
                   "command": cmd, "rt_to_rt": None, **s.common(), "bus_b": s.bus_b,
                   "latest": {"status": s.status, "data": list(s.data)}}
            if cmd2:
                row["rt_to_rt"] = {"rt": cmd2 >> 11, "subaddress": (cmd2 >> 5) & 31, "command": cmd2}
            rows_1553.append(row)
        rows_429 = []
        for key, s in sorted(self._labels.items()):
            label = (key >> 8) & 0xFF
            rows_429.append({"channel_id": key >> 24, "bus": (key >> 16) & 0xFF, "label": label,
                             "label_octal": f"{label:03o}", "sdi": key & 3, **s.common(),
                             "ssm": {str(v): n for v, n in enumerate(s.ssm) if n},
                             "latest": {"word": s.word, "data": (s.word >> 10) & 0x7FFFF, "ssm": (s.word >> 29) & 3}})
        undecoded = [{"channel_id": ch, "bus": bus, "reason": reason, "count": n}
                     for (ch, bus, reason), n in sorted(self._undecoded.items())]
        return {"mil1553": rows_1553, "arinc429": rows_429, "undecoded": undecoded}

    def channels(self) -> dict[int, dict]:
        """The snapshot split by channel: {channel: {"mil1553": rows, "arinc429": rows, "undecoded": rows}}."""
        out: dict[int, dict] = {}
        for kind, rows in self.snapshot().items():
            for r in rows:
                out.setdefault(r["channel_id"], {"mil1553": [], "arinc429": [], "undecoded": []})[kind].append(r)
        return out
