"""The vehicle's avionics buses: a MIL-STD-1553 bus controller schedule and ARINC-429 transmitters.

``BusStream.packets(until)`` returns the Chapter 10 bodies (1553 F1, ARINC-429 F0)
of every complete 100 ms window up to ``until``, time-stamped in RTC counts, with
the engineering values put on the bus (``BusSamples``, the simulator's truth).
Everything is computed in whole RTC counts (100 ns) since the vehicle's start, so
message times never drift and equal the intra-packet time stamps exactly.

1553 (the ICD's channel): a 50 Hz minor frame (20 ms); each scheduled message goes
out every ``period`` minor frames, back to back from the frame start (20 us per
word at 1 Mb/s, 6.5 us RT response time, 10 us between messages). The time stamp
marks the first bit of the command word (CSDW time-tag bits 01); the fastest messages
go first in a minor frame, as rate-grouped bus controller tables do. The messages and
their default rates are ``MIL_SCHEDULE``; ``set_period`` changes a message's rate
from a minor frame on (the uplink's ``SET_BUS_RATE``), and the bus controller reports
its schedule to the flight-test DAU (RT 2 R SA 1, ``SCHEDULE_REPORT``), which is
how the downlink verifies the change.

ARINC-429 (the ICD's channel): each label at its transmit interval
(``ARINC_SCHEDULE``), in its own slot of the bus (36 bit times per word), bus 0 the
IRS at high speed (100 kb/s), bus 1 the GPS at low speed (12.5 kb/s).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from telemetry_formats.ch10.arinc429 import DATA_TYPE_ARINC429_F0, build_429_body
from telemetry_formats.ch10.mil1553 import DATA_TYPE_1553_F1
from telemetry_formats.ch10.mil1553_build import build_1553_body
from telemetry_formats.paramdb import MissionDatabase, Parameter429, Parameter1553, load_mission
from telemetry_formats.tmats_writer import BusChannel

from .avionics import Avionics
from .bus_encode import encode_429, encode_1553

__all__ = ["BusStream", "BusSamples", "MilMessage", "MIL_SCHEDULE", "ARINC_SCHEDULE", "SCHEDULE_REPORT",
           "MINOR_FRAME_TICKS", "WINDOW_TICKS", "BUS_PERIODS_MS", "TIME_TAG_FIRST_BIT", "VEHICLE_ICD_FILE",
           "vehicle_icd"]

VEHICLE_ICD_FILE = Path(__file__).resolve().parent / "vehicle_icd.csv"  # examples/icd_mixed_vehicle.csv links here

TICK_NS = 100
MINOR_FRAME_TICKS = 200_000  # 20 ms: the 50 Hz minor frame
WINDOW_TICKS = 1_000_000  # one packet per channel per 100 ms
TIME_TAG_FIRST_BIT = 1  # CSDW time-tag bits: the stamp marks the first bit of the command word
WORD_TICKS, RESPONSE_TICKS, INTERMESSAGE_TICKS = 200, 65, 100  # 20 us, 6.5 us, 10 us
BUS_PERIODS_MS = (20, 40, 80, 160)  # the rates a message can be scheduled at: 50, 25, 12.5, 6.25 Hz


@lru_cache(maxsize=1)
def vehicle_icd() -> MissionDatabase:
    """The mixed vehicle's bus ICD (``VEHICLE_ICD_FILE``)."""
    return load_mission([VEHICLE_ICD_FILE])


@dataclass(frozen=True)
class MilMessage:
    """One message of the bus controller's schedule (the ICD gives its parameters and word count)."""

    name: str
    rt: int
    tr: str  # "T": RT-to-BC, "R": BC-to-RT
    subaddress: int
    period_ms: int  # default rate


# The first three can be rescheduled (SET_BUS_RATE codes 0, 1, 2).
MIL_SCHEDULE = (
    MilMessage("air data", 1, "T", 1, 40),
    MilMessage("angles", 1, "T", 2, 20),
    MilMessage("baro setting", 1, "R", 3, 80),
    MilMessage("schedule report", 2, "R", 1, 80),
)
# The schedule report's data words: the period in ms of each reschedulable message, by parameter name.
SCHEDULE_REPORT = {"BC_AIRDATA_MS": 0, "BC_ANGLES_MS": 1, "BC_BARO_MS": 2}
# label (octal value): (bus, transmit interval ms)
ARINC_SCHEDULE = {
    0o324: (0, 20), 0o325: (0, 20), 0o312: (0, 40), 0o313: (0, 40), 0o314: (0, 40),
    0o310: (0, 200), 0o311: (0, 200), 0o270: (0, 200), 0o012: (1, 500),
}
ARINC_HIGH_SPEED = {0: True, 1: False}  # bus number -> 100 kb/s
_ARINC_WORD_TICKS = {True: 3_600, False: 28_800}  # 36 bit times at 100 kb/s and at 12.5 kb/s


@dataclass
class BusSamples:
    """Engineering values put on the buses: one row per sample (``index`` into ``names``)."""

    names: list[str]
    index: np.ndarray  # int32
    ticks: np.ndarray  # int64: RTC counts since the vehicle's start (the message's or word's time stamp)
    eu: np.ndarray  # float64: the value a decoder reads from the bits sent (NaN: no computed data)

    @classmethod
    def concat(cls, names: list[str], parts: list[tuple[str, np.ndarray, np.ndarray]]) -> BusSamples:
        ids = {n: i for i, n in enumerate(names)}
        if not parts:
            return cls(names, np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0))
        return cls(names, np.concatenate([np.full(len(t), ids[n], np.int32) for n, t, _ in parts]),
                   np.concatenate([t for _, t, _ in parts]), np.concatenate([e for _, _, e in parts]))


@dataclass
class _Scheduled:
    message: MilMessage
    params: list[Parameter1553]
    word_count: int
    period: int  # minor frames
    next_frame: int = 0


class BusStream:
    """The 1553 and ARINC-429 packets of the vehicle described by ``icd``, over ``avionics``."""

    def __init__(self, icd: MissionDatabase, avionics: Avionics, *, rtc_start: int) -> None:
        self.icd = icd
        self.avionics = avionics
        self.rtc_start = rtc_start
        if len(icd.channels("1553")) != 1 or len(icd.channels("429")) != 1:
            raise ValueError("the vehicle's ICD must define one 1553 and one ARINC-429 channel")
        (self.mil_channel,), (self.arinc_channel,) = icd.channels("1553"), icd.channels("429")
        self.names = [p.name for p in icd.mil1553] + [p.name for p in icd.arinc429]
        self._messages = [self._scheduled(m, icd.mil1553_on(self.mil_channel)) for m in MIL_SCHEDULE]
        placed = {p.name for s in self._messages for p in s.params}
        if placed != {p.name for p in icd.mil1553}:
            raise ValueError(f"1553 parameters outside the schedule: {sorted({p.name for p in icd.mil1553} - placed)}")
        self._labels: dict[int, list[Parameter429]] = {}
        for p in icd.arinc429_on(self.arinc_channel):
            if p.label not in ARINC_SCHEDULE or p.bus != ARINC_SCHEDULE[p.label][0]:
                raise ValueError(f"ARINC label {p.label:03o} (bus {p.bus}) is not in the vehicle's schedule")
            self._labels.setdefault(p.label, []).append(p)
        self._slots = self._arinc_slots()
        self._pending: list[tuple[int, int, int]] = []  # (from minor frame, message index, period)
        self.next_window = 0

    @staticmethod
    def _scheduled(m: MilMessage, params: list[Parameter1553]) -> _Scheduled:
        mine = [p for p in params if (p.rt, p.tr, p.subaddress) == (m.rt, m.tr, m.subaddress)]
        if not mine:
            raise ValueError(f"1553 message {m.name!r}: the ICD defines no parameter in it")
        counts = {p.word_count or max(q.last_word for q in mine) for p in mine}
        if len(counts) != 1:
            raise ValueError(f"1553 message {m.name!r}: the ICD gives word counts {sorted(counts)}")
        return _Scheduled(m, mine, counts.pop(), m.period_ms // 20)

    def _arinc_slots(self) -> dict[int, tuple[int, int, int]]:
        """label -> (bus, period ticks, phase ticks): each label in its own slot of its bus."""
        slots, used = {}, {0: 0, 1: 0}
        for label in sorted(self._labels, key=lambda lb: (ARINC_SCHEDULE[lb][1], lb)):
            bus, period_ms = ARINC_SCHEDULE[label]
            slots[label] = (bus, period_ms * 10_000, used[bus])
            used[bus] += _ARINC_WORD_TICKS[ARINC_HIGH_SPEED[bus]]
        return slots

    def tmats_channels(self) -> list[BusChannel]:
        """The bus channels as the TMATS describes them (R-group entries and B-groups)."""
        mil, arinc = self.mil_channel, self.arinc_channel
        return [BusChannel(mil, "1553IN", "ADC-BUS", parameters=self.icd.mil1553_on(mil)),
                BusChannel(arinc, "429IN", "NAV-429", {0: "IRS", 1: "GPS"}, self.icd.arinc429_on(arinc))]

    # -- the bus controller's schedule ---------------------------------------------------
    def periods_ms(self) -> list[int]:
        """The current period of each reschedulable message (``MIL_SCHEDULE`` order), pending changes included."""
        periods = [s.period * 20 for s in self._messages[:len(SCHEDULE_REPORT)]]
        for _, i, period in self._pending:
            periods[i] = period * 20
        return periods

    def set_period(self, message: int, period_ms: int, from_ticks: int) -> None:
        """Send message ``message`` (0 air data, 1 angles, 2 baro setting) every ``period_ms`` from the
        first minor frame starting after ``from_ticks`` (raises ValueError if not a schedulable rate)."""
        if not 0 <= message < len(SCHEDULE_REPORT):
            raise ValueError(f"message must be 0..{len(SCHEDULE_REPORT) - 1}")
        if period_ms not in BUS_PERIODS_MS:
            raise ValueError(f"period must be one of {BUS_PERIODS_MS} ms")
        first = max(from_ticks // MINOR_FRAME_TICKS + 1, self.next_window * (WINDOW_TICKS // MINOR_FRAME_TICKS))
        self._pending.append((first, message, period_ms // 20))

    def _apply_pending(self, frame: int) -> None:
        for change in [c for c in self._pending if c[0] <= frame]:
            _, i, period = change
            s = self._messages[i]
            s.period = period
            s.next_frame = min(s.next_frame, frame)  # the new rate starts with this frame
            self._pending.remove(change)

    # -- packets ------------------------------------------------------------------------
    def packets(self, until_ticks: int) -> tuple[list[tuple[int, int, bytes, int]], BusSamples]:
        """(channel, data type, body, packet RTC) of every window complete at ``until_ticks``, and their samples."""
        out, samples = [], []
        while (self.next_window + 1) * WINDOW_TICKS <= until_ticks:
            a = self.next_window * WINDOW_TICKS
            self.next_window += 1
            for build in (self._mil_window, self._arinc_window):
                packet, parts = build(a, a + WINDOW_TICKS)
                if packet is not None:
                    out.append(packet)
                samples += parts
        return out, BusSamples.concat(self.names, samples)

    def _rtc(self, ticks: int) -> int:
        return (ticks + self.rtc_start) & ((1 << 48) - 1)

    def _mil_window(self, a: int, b: int):
        due: list[list[tuple[int, list[int]]]] = [[] for _ in self._messages]  # per message: (ticks, periods)
        for frame in range(a // MINOR_FRAME_TICKS, b // MINOR_FRAME_TICKS):
            self._apply_pending(frame)
            t = frame * MINOR_FRAME_TICKS
            for i in sorted(range(len(self._messages)), key=lambda j: self._messages[j].period):  # fastest first
                s = self._messages[i]
                if frame < s.next_frame:
                    continue
                s.next_frame = frame + s.period
                due[i].append((t, [m.period * 20 for m in self._messages[:len(SCHEDULE_REPORT)]]))
                t += (1 + s.word_count + 1) * WORD_TICKS + RESPONSE_TICKS + INTERMESSAGE_TICKS
        rows, parts = [], []
        for s, instances in zip(self._messages, due):
            if not instances:
                continue
            ticks = np.array([t for t, _ in instances], np.int64)
            periods = np.array([p for _, p in instances], np.float64)
            values = {p.name: (periods[:, SCHEDULE_REPORT[p.name]] if p.name in SCHEDULE_REPORT
                               else self.avionics.values(p.name, ticks * 1e-7)) for p in s.params}
            data, back = encode_1553(s.params, values, len(ticks), s.word_count)
            m = s.message
            rows += [(int(t), {"rt": m.rt, "tr": int(m.tr == "T"), "subaddress": m.subaddress, "data": d.tolist(),
                               "rtc": self._rtc(int(t)), "gap1": RESPONSE_TICKS}) for t, d in zip(ticks, data)]
            parts += [(name, ticks, eu) for name, eu in back.items()]
        if not rows:
            return None, parts
        rows.sort(key=lambda r: r[0])
        body = build_1553_body([m for _, m in rows], time_tag_bits=TIME_TAG_FIRST_BIT)
        return (self.mil_channel, DATA_TYPE_1553_F1, body, self._rtc(rows[0][0])), parts

    def _arinc_window(self, a: int, b: int):
        ticks_all, words_all, bus_all, parts = [], [], [], []
        for label, params in self._labels.items():
            bus, period, phase = self._slots[label]
            first = -(-(a - phase) // period)
            ticks = phase + period * np.arange(first, -(-(b - phase) // period), dtype=np.int64)
            if not len(ticks):
                continue
            t_s = ticks * 1e-7
            valid = np.all([self.avionics.valid(p.name, t_s) for p in params], axis=0)
            words, back = encode_429(label, params, {p.name: self.avionics.values(p.name, t_s) for p in params},
                                     valid)
            ticks_all.append(ticks)
            words_all.append(words)
            bus_all.append(np.full(len(ticks), bus))
            parts += [(name, ticks, eu) for name, eu in back.items()]
        if not ticks_all:
            return None, parts
        ticks, words, bus = np.concatenate(ticks_all), np.concatenate(words_all), np.concatenate(bus_all)
        order = np.argsort(ticks, kind="stable")
        ticks, words, bus = ticks[order], words[order], bus[order]
        gaps = np.diff(ticks, prepend=ticks[0])  # 0.1 us = one RTC count; the first from the packet time
        body = build_429_body({"word": int(w), "bus": int(n), "gap": int(g), "bus_speed": ARINC_HIGH_SPEED[int(n)]}
                              for w, n, g in zip(words, bus, gaps))
        return (self.arinc_channel, DATA_TYPE_ARINC429_F0, body, self._rtc(int(ticks[0]))), parts
