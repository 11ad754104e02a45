"""`demo --events`: the simulated vehicle goes past its limits by itself, the same way for a seed."""

from __future__ import annotations

import numpy as np

from groundstation.simulator.excursions import ExcursionSchedule
from groundstation.simulator.flight import FlightModel, vehicle_database
from groundstation.simulator.vehicle import Vehicle


def test_schedule_is_deterministic_per_seed_and_spaced() -> None:
    a, b, c = ExcursionSchedule(3), ExcursionSchedule(3), ExcursionSchedule(4)
    assert a.excursions == b.excursions and a.excursions != c.excursions
    first = a.excursions[0]
    assert 20 <= first.start_s <= 40
    gaps = [n.start_s - (e.start_s + e.duration_s) for e, n in zip(a.excursions, a.excursions[1:])]
    assert min(gaps) >= 60 and max(gaps) <= 120
    assert {e.name for e in a.excursions[:20]} == {"EGT", "HYD_PRESS", "NZ"}


def test_each_excursion_crosses_its_warning_limit_and_clears() -> None:
    db = vehicle_database()
    limits = {p.name: p.limits for p in db.parameters}
    quiet, busy = FlightModel(seed=5), FlightModel(seed=5, excursions=ExcursionSchedule(5))
    for e in busy.excursions.excursions[:6]:
        t = np.linspace(e.start_s - 5, e.start_s + e.duration_s + 5, 2001)
        v = busy.values(e.name, t)
        lim = limits[e.name]
        mid = (t > e.start_s + 1) & (t < e.start_s + e.duration_s - 1)
        if lim.warning_high is not None and e.level > lim.warning_high:
            assert (v[mid] > lim.warning_high).all(), e
        else:
            assert (v[mid] < lim.warning_low).all(), e
        outside = (t < e.start_s) | (t > e.start_s + e.duration_s)
        assert np.array_equal(v[outside], quiet.values(e.name, t[outside]))  # back to the plain flight


def test_vehicle_with_events_encodes_them() -> None:
    v = Vehicle(start_ns=1_700_000_000 * 10**9, seed=2, events=True, buses=False)
    e = v.model.excursions.excursions[0]
    t = v.t0_ns + int((e.start_s + e.duration_s / 2) * 1e9)
    assert abs(float(v.truth(e.name, np.array([t]))[0]) - e.level) < 1e-3  # held at its level mid-way
    assert Vehicle(start_ns=0, seed=2).model.excursions is None  # off unless asked for
