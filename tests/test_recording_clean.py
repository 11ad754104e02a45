"""Analyst data that is clean (issue 18): times that only go forward, no empty rows, no overlap
between segments, time zones and units where pandas and xarray look for them.

Recordings are made by the real ingest and recorder on a simulated clock, with the network
latency of a real link (arrival times a few ms after the vehicle's), so the moment the first
time packet replaces arrival-time stamps is in every recording.
"""

from __future__ import annotations

import numpy as np
import pytest

import recorder
from groundstation.ingest.core import Ingest
from groundstation.simulator.vehicle import Vehicle
from recorder.service import RecorderService
from telemetry_formats.ch10.time import RtcCorrelator
from tests.conftest import recording_time_problems
from tests.test_recorder import STEP, T0, S, SimClock, recording_step

LATENCY_NS = 2_700_000  # arrival after the vehicle's time: what made times step back by 1.5-2.7 ms


class LateIngest(Ingest):
    """The real ingest, fed datagrams ``LATENCY_NS`` after the vehicle sent them."""

    def receive(self, datagram, arrival_ns, sender=None):
        return super().receive(datagram, arrival_ns + LATENCY_NS, sender)


def fly_with_rate_changes(folder, *, seconds: float = 1.5):
    """Fly at 1 Mb/s, change the bit rate to 2 Mb/s, then the flight-control group rate; record it."""
    clock = SimClock()
    svc = RecorderService(folder, clock_ns=clock, compress=False, flush_interval_s=0.5)
    v, ing = Vehicle(start_ns=T0, bit_rate=1_000_000, seed=1), LateIngest()
    step = recording_step(svc, clock)
    changes = [lambda: v.set_bit_rate(2_000_000), lambda: v.set_group_rate(0, 4), None]
    t = T0
    for change in changes:
        end = t + int(seconds * S)
        while t < end:
            t += STEP
            for dg in v.advance(t):
                step(ing.receive(dg, t), t + LATENCY_NS)
        if change is not None:
            change()
            v._pending["at_ns"] = t + 7 * STEP // 4  # mid-way through a later datagram, as a real uplink lands
    svc.close()
    return v


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("changes")
    v = fly_with_rate_changes(folder)
    return folder, v


def test_every_dataset_of_a_recording_with_two_rate_changes_goes_forward_in_time(changed) -> None:
    folder, _ = changed
    rec = recorder.open(folder)
    assert len(rec.segments) == 3  # one per configuration
    assert recording_time_problems(folder) == []
    for name in rec.names:
        t = rec.read(name).t_ns
        assert len(t) and (np.diff(t) > 0).all(), name


def test_rate_changes_leave_no_empty_rows_and_no_overlap(changed) -> None:
    folder, v = changed
    rec = recorder.open(folder)
    for name in ("ALT", "TEST_POINT", "FAULT", "PITCH_RATE"):
        s = rec.read(name)
        assert not np.isnan(s.values).any(), name
    alt = rec.read("ALT")
    gaps = np.diff(alt.t_ns)
    # 1 Mb/s then 2 Mb/s: one sample per minor frame, 1.04 ms then 0.52 ms apart; the change is
    # between the two (no row twice, no hole of empty rows)
    assert gaps.max() <= 1_100_000 and gaps.min() >= 500_000


def test_sample_times_agree_with_the_vehicle_after_the_first_time_packet(changed) -> None:
    folder, v = changed
    s = recorder.open(folder).read("ALT")
    lock = (T0 // S + 1) * S
    settled = s.t_ns > lock + 500_000_000  # the 2.7 ms correction is slewed in within 270 ms
    assert np.max(np.abs(s.values[settled] - v.truth("ALT", s.t_ns[settled]))) <= 0.51


def test_correlator_slews_small_corrections_and_steps_real_jumps() -> None:
    c = RtcCorrelator()
    c.provisional(0, T0 + 2_700_000)  # first packet stamped with its arrival time, 2.7 ms late
    rtc = np.arange(0, 3 * 10_000_000, 1000)  # 3 s of RTC, every 100 us
    before = c.to_utc_ns(rtc)
    c.observe(5_000_000, T0 + 500_000_000)  # the first time packet: 2.7 ms earlier than provisional
    after = c.to_utc_ns(rtc)
    assert (np.diff(after) > 0).all()  # never back
    assert (after[rtc < 5_000_000] == before[rtc < 5_000_000]).all()  # what was stamped stays as it was
    late = rtc >= 5_000_000 + 2_700_000 / 0.01 / 100
    assert (after[late] == T0 + rtc[late] * 100).all()  # the time source's line once slewed in
    assert c.steps == 0
    c.observe(20_000_000, T0 + 2 * S + 3600 * S)  # the vehicle's clock jumps an hour: stepped
    assert c.steps == 1 and c.time_jumps == 1
    assert int(c.to_utc_ns(20_000_000)) == T0 + 2 * S + 3600 * S
