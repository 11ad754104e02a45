"""Bus parameters out of decoded 1553 messages and ARINC-429 words: one call per packet, batched.

Each channel's definitions become sample slots (``slots.SlotSet``, the PCM slot
evaluation) and a key table: 1553 messages are keyed by RT address, T/R bit and
subaddress (11 bits, as in the command word), ARINC words by label and SDI (10
bits). A packet's rows are matched through that table in one gather, whatever the
number of definitions; word count, bus number and data length are then checked
with per-slot constants, bits pulled, encodings decoded (BCD digits, BNR sign),
calibrated and limit-checked as one flat selection.

Invalid samples (a 1553 message with block-status error bits; an ARINC word whose
SSM says failure warning or no computed data for its encoding, with a parity or
format error, or a BCD digit above 9) stay in the batch with ``eu`` NaN and limit
state 0, so they are counted, recorded and shown as "no value", never as a number
and never alarmed. Rows no definition matches are counted per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..ch10.arinc429 import Words429
from ..ch10.mil1553 import Messages1553
from ..paramdb.bus import FRAME_429, FRAME_1553, SSM_INVALID, SSM_RULES, Parameter429, Parameter1553
from ..paramdb.mission import MissionDatabase
from .decommutator import RtcClock, rtc_ns
from .params import SampleBatch
from .slots import SlotSet

__all__ = ["BusExtractor", "BusStats", "extract_1553", "extract_429"]

_COLS_1553 = np.arange(-1, 32)  # word position p (1 = first data word) -> column p - 1 of ``data``
_COLS_429 = np.zeros(2, np.int64)  # the one 32-bit word
_INVALID_SSM = np.array([[s in SSM_INVALID[rule] for s in range(4)] for rule in SSM_RULES])  # (rule, ssm)


@dataclass
class BusStats:
    """Counters of one channel's extraction."""

    rows: int = 0  # messages or words seen
    matched: int = 0  # rows a definition matches
    unmatched: int = 0  # rows no definition matches
    samples: int = 0
    invalid: int = 0  # samples marked invalid (eu NaN)
    short: int = 0  # 1553: a definition's word past the message's data words (no sample)
    unknown: dict[str, int] = field(default_factory=dict)  # unmatched rows by "RT1-T-SA3" / "bus 0 label 203"

    def as_dict(self) -> dict:
        return {**self.__dict__, "unknown": dict(self.unknown)}


class _Plan:
    """One channel's slots, key table and per-slot match constants."""

    def __init__(self, kind: str, params: Sequence[Parameter1553] | Sequence[Parameter429],
                 ids: dict[str, int]) -> None:
        slot_params = [p.as_slot_parameter() for p in params]
        K = max((len(p.fragments) for p in slot_params), default=1)
        rows = [(0, i, np.array([f.word for f in p.fragments], np.int64)) for i, p in enumerate(slot_params)]
        pids = np.array([ids[p.name] for p in params], np.int32)
        self.slots = SlotSet(rows, slot_params, FRAME_1553 if kind == "1553" else FRAME_429, pids, K)
        by_key: dict[int, list[int]] = {}
        for i, p in enumerate(params):
            for key in (_keys_1553(p) if isinstance(p, Parameter1553) else _keys_429(p)):
                by_key.setdefault(key, []).append(i)
        width = max((len(v) for v in by_key.values()), default=1)
        self.table = np.full((1 << 11 if kind == "1553" else 1 << 10, width), -1, np.int64)
        for key, slots in by_key.items():
            self.table[key, : len(slots)] = slots
        self.raw_dtype = np.uint32 if int(self.slots.total_bits.max(initial=0)) <= 32 else np.uint64
        p1553 = [p for p in params if isinstance(p, Parameter1553)]
        p429 = [p for p in params if isinstance(p, Parameter429)]
        self.word_count = np.array([p.word_count or 0 for p in p1553], np.int64)  # 0: any
        self.last_word = np.array([p.last_word for p in p1553], np.int64)
        self.bus = np.array([-1 if p.bus is None else p.bus for p in p429], np.int64)  # -1: any
        self.rule = np.array([SSM_RULES.index(p.ssm_rule) for p in p429], np.int64)
        self.bcd = np.array([p.encoding == "bcd" for p in p429], bool)

    def match(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, slot) pairs of every definition each row's key selects, in row order."""
        t = self.table[keys]
        flat = np.flatnonzero(t >= 0)
        width = t.shape[1]
        return (flat // width if width > 1 else flat), t.ravel()[flat]


def _keys_1553(p: Parameter1553) -> list[int]:
    return [p.key]


def _keys_429(p: Parameter429) -> list[int]:
    return [(p.label << 2) | s for s in ((p.sdi,) if p.sdi is not None else range(4))]


def _bcd(raw: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value, bad digit) of BCD fields of ``bits`` bits: 4-bit digits from the least significant up."""
    value = np.zeros(len(raw), np.float64)
    bad = np.zeros(len(raw), bool)
    r = raw.astype(np.int64)
    for d in range(int(bits.max(initial=0) + 3) // 4):
        digit = (r >> (4 * d)) & 0xF
        present = bits > 4 * d
        bad |= present & (digit > 9)
        value += np.where(present, digit, 0) * 10.0**d
    return value, bad


def _invalidate(eu: np.ndarray, lim: np.ndarray, invalid: np.ndarray) -> int:
    eu[invalid] = np.nan
    lim[invalid] = 0
    return int(np.count_nonzero(invalid))


class BusExtractor:
    """Samples of a mission's 1553 and ARINC-429 parameters from decoded packets, one call per packet.

    ``clock`` maps RTC counts (int64 array) to nanoseconds, as the PCM ``Decommutator``'s
    does; ``ids`` gives catalog ids by name (default, and for names it lacks: the position in ``db.names``).
    ``stats`` holds the counters per channel.
    """

    def __init__(self, db: MissionDatabase, *, clock: RtcClock | None = None,
                 ids: dict[str, int] | None = None) -> None:
        self.db = db
        self.clock: RtcClock = clock or rtc_ns
        self.ids = {n: (ids or {}).get(n, i) for i, n in enumerate(db.names)}
        self.stats: dict[int, BusStats] = {}
        self._plans: dict[tuple[str, int], _Plan | None] = {}

    def _plan(self, kind: str, channel: int) -> _Plan | None:
        key = (kind, channel)
        if key not in self._plans:
            params = self.db.mil1553_on(channel) if kind == "1553" else self.db.arinc429_on(channel)
            self._plans[key] = _Plan(kind, params, self.ids) if params else None
        return self._plans[key]

    def _count_unknown(self, stats: BusStats, matched: np.ndarray, keys: np.ndarray, decode) -> None:
        miss = ~matched
        n_miss = int(np.count_nonzero(miss))
        stats.unmatched += n_miss
        if n_miss:
            values, counts = np.unique(keys[miss], return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist()):
                k = decode(v)
                stats.unknown[k] = stats.unknown.get(k, 0) + c

    def extract_1553(self, msgs: Messages1553) -> SampleBatch:
        """Samples of the 1553 parameters of ``msgs.channel_id`` in one packet's messages."""
        stats = self.stats.setdefault(msgs.channel_id, BusStats())
        n = len(msgs)
        stats.rows += n
        plan = self._plan("1553", msgs.channel_id)
        keys = (msgs.rt.astype(np.int64) << 6) | (msgs.tr.astype(np.int64) << 5) | msgs.subaddress.astype(np.int64)
        rows_of = np.arange(n)
        wc = msgs.word_count.astype(np.int64)
        r2r = np.flatnonzero(msgs.rt_to_rt)
        if len(r2r):  # an RT-to-RT message also carries the transmitting RT's message
            c2 = msgs.command2[r2r].astype(np.int64)
            keys = np.concatenate([keys, c2 >> 5])
            rows_of = np.concatenate([rows_of, r2r])
        if plan is None or n == 0:
            self._count_unknown(stats, np.zeros(n, bool), keys[:n], _decode_1553)
            return SampleBatch.empty(self.ids)
        rows, idx = plan.match(keys)
        rows = rows_of[rows]
        ok = (plan.word_count[idx] == 0) | (plan.word_count[idx] == wc[rows])
        rows, idx = rows[ok], idx[ok]
        matched = np.zeros(n, bool)  # defined messages, even when too short for a definition
        matched[rows] = True
        fits = plan.last_word[idx] <= msgs.n_data[rows]
        stats.short += len(fits) - int(np.count_nonzero(fits))
        rows, idx = rows[fits], idx[fits]
        self._count_unknown(stats, matched, keys[:n], _decode_1553)
        raw = plan.slots.raw_bits(msgs.data, _COLS_1553, rows, idx)
        eu, lim = plan.slots.calibrate(raw, plan.slots.numeric(raw, idx), idx)
        stats.invalid += _invalidate(eu, lim, msgs.error[rows])
        return self._done(stats, plan, matched, rows, idx, self.clock(msgs.rtc), raw, eu, lim)

    def extract_429(self, words: Words429) -> SampleBatch:
        """Samples of the ARINC-429 parameters of ``words.channel_id`` in one packet's words."""
        stats = self.stats.setdefault(words.channel_id, BusStats())
        n = len(words)
        stats.rows += n
        plan = self._plan("429", words.channel_id)
        keys = (words.label.astype(np.int64) << 2) | words.sdi.astype(np.int64)
        if plan is None or n == 0:
            self._count_unknown(stats, np.zeros(n, bool), keys | (words.bus.astype(np.int64) << 10), _decode_429)
            return SampleBatch.empty(self.ids)
        rows, idx = plan.match(keys)
        bus = plan.bus[idx]
        ok = (bus < 0) | (bus == words.bus[rows])
        rows, idx = rows[ok], idx[ok]
        matched = np.zeros(n, bool)
        matched[rows] = True
        self._count_unknown(stats, matched, keys | (words.bus.astype(np.int64) << 10), _decode_429)
        src = words.word.reshape(-1, 1)
        raw = plan.slots.raw_bits(src, _COLS_429, rows, idx)
        x = plan.slots.numeric(raw, idx)
        ssm = words.ssm[rows].astype(np.int64)
        invalid = _INVALID_SSM[plan.rule[idx], ssm] | ~words.parity_ok[rows] | words.parity_error[rows] \
            | words.format_error[rows]
        bcd = np.flatnonzero(plan.bcd[idx])
        if len(bcd):
            value, bad = _bcd(raw[bcd], plan.slots.total_bits[idx[bcd]].astype(np.int64))
            x[bcd] = np.where(ssm[bcd] == 3, -value, value)  # BCD SSM 11: minus (south, west, left, ...)
            invalid[bcd] |= bad
        eu, lim = plan.slots.calibrate(raw, x, idx)
        stats.invalid += _invalidate(eu, lim, invalid)
        return self._done(stats, plan, matched, rows, idx, self.clock(words.rtc), raw, eu, lim)

    def _done(self, stats: BusStats, plan: _Plan, matched: np.ndarray, rows: np.ndarray, idx: np.ndarray,
              t_ns: np.ndarray, raw: np.ndarray, eu: np.ndarray, lim: np.ndarray) -> SampleBatch:
        stats.matched += int(np.count_nonzero(matched))
        stats.samples += len(rows)
        return SampleBatch(plan.slots.pid[idx], t_ns[rows], raw.astype(plan.raw_dtype), eu, lim, ids=self.ids)


def _decode_1553(key: int) -> str:
    return f"RT{key >> 6}-{'T' if key & 32 else 'R'}-SA{key & 31}"


def _decode_429(key: int) -> str:
    return f"bus {key >> 10} label {(key >> 2) & 0xFF:03o}"  # SDI not kept in the count


def extract_1553(messages: Messages1553, db: MissionDatabase, *, clock: RtcClock | None = None,
                 ids: dict[str, int] | None = None) -> SampleBatch:
    """One-off: the samples of ``db``'s 1553 parameters in ``messages`` (live code keeps a ``BusExtractor``)."""
    return BusExtractor(db, clock=clock, ids=ids).extract_1553(messages)


def extract_429(words: Words429, db: MissionDatabase, *, clock: RtcClock | None = None,
                ids: dict[str, int] | None = None) -> SampleBatch:
    """One-off: the samples of ``db``'s ARINC-429 parameters in ``words`` (live code keeps a ``BusExtractor``)."""
    return BusExtractor(db, clock=clock, ids=ids).extract_429(words)
