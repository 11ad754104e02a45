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
    settled = s.t_ns > lock + 500_000_000  # the 2.7 ms correction is slewed in within 14 ms
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
    late = rtc >= 5_000_000 + 2_700_000 / c.first_slew_rate / 100
    assert (after[late] == T0 + rtc[late] * 100).all()  # the time source's line once slewed in
    assert c.steps == 0
    c.observe(15_000_000, T0 + 1_500_000_000 - 40_000_000)  # 40 ms back once locked: slewed at 5 %
    assert c.steps == 0 and c.time_jumps == 1 and (np.diff(c.to_utc_ns(rtc)) > 0).all()
    c.observe(20_000_000, T0 + 2 * S + 3600 * S)  # the vehicle's clock jumps an hour: stepped
    assert c.steps == 1 and c.time_jumps == 2
    assert int(c.to_utc_ns(20_000_000)) == T0 + 2 * S + 3600 * S


# -- what pandas and xarray see -------------------------------------------------------------------


def test_pandas_index_is_utc_and_units_are_in_attrs(changed) -> None:
    folder, _ = changed
    rec = recorder.open(folder)
    df = rec.read("ALT", as_="pandas")
    assert str(df.index.tz) == "UTC" and df.index.is_monotonic_increasing
    assert df.attrs["units"] == {"ALT": "ft"}
    t1, t2 = df.index[100], df.index[200]
    assert len(df.loc[t1:t2]) == 101  # slicing works on the sorted index
    assert len(df.loc["2023-11-14 22:13:21":"2023-11-14 22:13:21.1"]) > 50  # naive text means UTC
    wide = rec.dataframe(["ALT", "EGT", "PITCH_RATE"])
    assert wide.attrs["units"] == {"ALT": "ft", "EGT": "degC", "PITCH_RATE": "deg/s"}
    assert str(wide.index.tz) == "UTC"


def test_xarray_gives_each_parameter_its_own_units(changed) -> None:
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    folder, _ = changed
    rec = recorder.open(folder)
    assert rec.read("EGT", as_="xarray").attrs["units"] == "degC"
    ds = rec.dataset(["ALT", "EGT", "MACH"], resample="10Hz")
    assert [ds[n].attrs["units"] for n in ("ALT", "EGT", "MACH")] == ["ft", "degC", ""]
    info = {p.name: p for p in rec.parameters}["ALT"]
    raw = xr.open_dataset(rec.files[-1], engine="h5netcdf", group=f"rates/{info.rate_group}")
    assert raw["values"].sel(param="ALT").units.item() == "ft"  # a string coordinate per parameter
    assert raw["values"].sel(param="IAS").units.item() == "kt"


def test_parameters_report_the_current_rate_group_and_rate(changed) -> None:
    import h5py

    folder, _ = changed
    rec = recorder.open(folder)
    first, last = rec.segments[0].parameters(), rec.segments[-1].parameters()
    alt_first = next(p for p in first if p.name == "ALT")
    alt = next(p for p in rec.parameters if p.name == "ALT")
    assert alt == next(p for p in last if p.name == "ALT")
    assert alt.rate_hz == pytest.approx(2 * alt_first.rate_hz)  # the bit rate doubled
    assert alt.rate_group != alt_first.rate_group  # the group-rate change renumbered the groups
    with h5py.File(rec.files[-1], "r") as f:  # the docs/recording.md way: find it in the catalog
        names = list(f["catalog/name"].asstr()[:])
        i = names.index("ALT")
        group, column = f["catalog/rate_group"].asstr()[i], int(f["catalog/column"][i])
        assert f[f"rates/{group}/param"].asstr()[column] == "ALT"


def test_resampled_export_has_one_row_per_interval(changed, tmp_path) -> None:
    import pandas as pd

    from groundstation.cli import main

    folder, _ = changed
    rec = recorder.open(folder)
    out = tmp_path / "r.csv"
    assert main(["export", str(folder), "--params", "ALT,EGT,VIB", "--resample", "10Hz", "--how", "max",
                 "--start", "22:13:21", "--end", "22:13:23", "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["time", "ALT [ft]", "EGT [degC]", "VIB [g]"]
    assert len(df) == 20 and not df.isna().any().any()  # 2 s at 10 Hz, every cell filled
    t = pd.to_datetime(df["time"])
    assert (t.diff().dropna() == pd.Timedelta("100ms")).all() and str(t[0]) == "2023-11-14 22:13:21+00:00"
    alt = rec.read("ALT", "2023-11-14T22:13:21Z", "2023-11-14T22:13:21.1Z")
    assert df["ALT [ft]"][0] == pytest.approx(float(alt.values.max()))
    resampled = rec.dataframe(["ALT"], resample="10Hz", how="mean")
    assert resampled.index.freq is not None or (resampled.index.to_series().diff().dropna()
                                                  == pd.Timedelta("100ms")).all()


def test_bare_times_are_on_the_recordings_day_and_offsets_warn_nothing(changed) -> None:
    import warnings

    from groundstation.export_select import parse_time

    day = (T0 // (86_400 * S)) * 86_400 * S
    assert parse_time("18:19:20", T0) == day + (18 * 3600 + 19 * 60 + 20) * S
    assert parse_time("8:05", T0) == day + (8 * 3600 + 5 * 60) * S
    assert parse_time("18:19:20.5+01:00", T0) == day + (17 * 3600 + 19 * 60 + 20) * S + S // 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_time("2023-11-14T17:13:20-05:00", T0) == parse_time("2023-11-14T22:13:20Z", T0)


def test_commands_one_row_per_command(tmp_path) -> None:
    clock = SimClock()
    svc = RecorderService(tmp_path, clock_ns=clock, compress=False)
    base = {"name": "SET_BITRATE", "args": {"kbps": 2000}, "user": "dir", "role": "director",
            "reason": "test point 4"}
    life = [("QUEUED",), ("QUEUED", "RELEASED"), ("QUEUED", "RELEASED", "SENT"),
            ("QUEUED", "RELEASED", "SENT", "ACKNOWLEDGED", "COMPLETED")]
    for k, states in enumerate(life):
        times = {s: T0 + i * S for i, s in enumerate(states)}
        svc.on_command({**base, "id": 1, "state": states[-1], "times": times}, T0 + k * S)
    svc.on_command({**base, "id": 2, "user": "eng", "state": "REJECTED", "code": "authority",
                    "times": {"REJECTED": T0 + 5 * S}}, T0 + 5 * S)
    svc.flush_due(T0)
    svc.close()
    rec = recorder.open(tmp_path)
    assert len(rec.commands()) == 5  # every record, one per state change
    rows = rec.commands(per_command=True)
    assert [(r["id"], r["state"], r["user"]) for r in rows] == [(1, "COMPLETED", "dir"), (2, "REJECTED", "eng")]
    assert rows[0]["SENT_ns"] == T0 + 2 * S and rows[0]["COMPLETED_ns"] == T0 + 4 * S
    assert rows[0]["reason"] == "test point 4" and rows[1]["QUEUED_ns"] is None
    df = rec.commands(per_command=True, as_="pandas")
    assert str(df["completed"].dt.tz) == "UTC" and df["code"].tolist()[1] == "authority"


# -- a live recording ------------------------------------------------------------------------------


def test_live_recording_with_two_rate_changes_is_clean(tmp_path) -> None:
    """The real server recording the real simulator over loopback UDP, the bit rate and a group rate
    changed during the flight: every dataset goes forward, no empty rows, no empty first segment.
    (The autouse check in tests/conftest.py reads every dataset again after the test.)"""
    import asyncio

    from tests.live import Sim, server

    async def main():
        with server("--record", str(tmp_path)) as srv:
            sim = Sim(srv.udp_port, bit_rate=1_000_000).start()
            await asyncio.sleep(2.0)
            sim.vehicle.set_bit_rate(2_000_000)
            await asyncio.sleep(1.5)
            sim.vehicle.set_group_rate(0, 4)
            await asyncio.sleep(1.5)
            await sim.stop()

    asyncio.run(asyncio.wait_for(main(), 90))
    rec = recorder.open(tmp_path)
    assert recording_time_problems(tmp_path) == []
    configs = [s.attrs["config_version"] for s in rec.segments]
    assert configs == [1, 2, 3]  # no segment before the first configuration (events alone)
    for name in ("ALT", "TEST_POINT", "FAULT"):
        s = rec.read(name)
        assert len(s) > 100 and not np.isnan(s.values).any() and (np.diff(s.t_ns) > 0).all(), name
