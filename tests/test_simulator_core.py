"""The vehicle simulator's sans-I/O core: its TMATS, its Chapter 10 stream, and its truth."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timezone

import numpy as np
import pytest

from groundstation.simulator.flight import STATUS_PARAMETERS, Spike, vehicle_database
from groundstation.simulator.vehicle import MAX_BIT_RATE, MIN_BIT_RATE, Vehicle
from telemetry_formats.ch10.packet import parse_packet
from telemetry_formats.ch10.pcm import DATA_TYPE_PCM_F1
from telemetry_formats.ch10.time import DATA_TYPE_TIME_F1, RtcCorrelator, parse_time_f1
from telemetry_formats.ch10.tmats_packet import DATA_TYPE_TMATS, parse_tmats_packet
from telemetry_formats.ch10.udp import PacketReceived, UdpReceiver
from telemetry_formats.decom import Decommutator
from telemetry_formats.paramdb import from_tmats
from telemetry_formats.tmats import parse_tmats

S = 1_000_000_000
T0 = 1_700_000_000 * S + 300_000_000  # 0.3 s past a whole second (a multiple of the 100 ns RTC tick)
YEAR = datetime.fromtimestamp(T0 / S, tz=timezone.utc).year
STEP = 100_000_000
STATUS = set(STATUS_PARAMETERS) | {"FAULT"}


# -- helpers -----------------------------------------------------------------------------


def run(v: Vehicle, times) -> list[bytes]:
    out = []
    for t in times:
        out += v.advance(int(t))
    return out


def every(step: int, seconds: float, start: int = T0) -> list[int]:
    return [start + k * step for k in range(int(seconds * S) // step + 1)]


def packets(datagrams: list[bytes]) -> list:
    rx = UdpReceiver()
    events = [e for d in datagrams for e in rx.receive(d)]
    assert all(isinstance(e, PacketReceived) for e in events), [e for e in events if not isinstance(e, PacketReceived)]
    return [parse_packet(e.data) for e in events]


def of_type(pkts, data_type: int) -> list:
    return [p for p in pkts if p.data_type == data_type]


def correlator(pkts) -> RtcCorrelator:
    corr = RtcCorrelator(tolerance_ns=0)
    for p in of_type(pkts, DATA_TYPE_TIME_F1):
        assert not corr.observe(p.header.rtc, parse_time_f1(p).utc_ns(YEAR)), "no time jumps"
    assert corr.is_locked
    return corr


def decode(pkts, db=None, clock=None):
    """(frames t_ns, frame numbers, words, SampleBatch concatenated) of every PCM packet."""
    if db is None:
        db, problems = from_tmats(parse_tmats(parse_tmats_packet(of_type(pkts, DATA_TYPE_TMATS)[0].body).text), 3)
        assert problems == []
    dec = Decommutator(db, clock=clock or correlator(pkts).to_utc_ns)
    t, fn, words, samples = [], [], [], []
    for p in of_type(pkts, DATA_TYPE_PCM_F1):
        r = dec.feed(p)
        assert r.errors == []
        t.append(r.frames.t_ns)
        fn.append(r.frames.frame_number)
        words.append(r.frames.words)
        samples.append(r.samples)
    assert dec.stats.sync_errors == dec.stats.unlocked_frames == dec.stats.errors == 0
    cat = {k: np.concatenate([getattr(s, k) for s in samples]) for k in ("pid", "t_ns", "raw", "eu", "limit")}
    return np.concatenate(t), np.concatenate(fn), np.concatenate(words), cat, dec.plan.id_by_name


def column(samples: dict, ids: dict, name: str):
    sel = samples["pid"] == ids[name]
    return samples["t_ns"][sel], samples["eu"][sel]


@pytest.fixture(scope="module")
def three_seconds():
    v = Vehicle(start_ns=T0, bit_rate=1_000_000, seed=3)
    dgs = run(v, every(STEP, 3.0))
    return v, dgs, packets(dgs)


# -- TMATS ---------------------------------------------------------------------------------


def normalized_frame(frame):
    """``Sfid.length`` None means "the word length"; the TMATS states it."""
    return dataclasses.replace(frame, sfid=dataclasses.replace(frame.sfid, length=frame.sfid.length or frame.word_length))


@pytest.mark.parametrize("bit_rate", [MIN_BIT_RATE, 1_000_000, 2_500_000, MAX_BIT_RATE])
def test_tmats_parses_back_into_exactly_the_vehicle_database(bit_rate) -> None:
    v = Vehicle(start_ns=T0, bit_rate=bit_rate)
    tm = parse_tmats(v.tmats_text())
    assert tm.problems == []
    db, problems = from_tmats(tm, v.pcm_channel)
    assert problems == []
    assert db.frame == normalized_frame(v.database.frame)
    assert db.frame.bit_rate == bit_rate
    assert db.names == v.database.names
    for got, want in zip(db.parameters, v.database.parameters):
        assert got == want, want.name
    assert {p.group for p in db.parameters} == {"air data", "flight controls", "propulsion", "hydraulics",
                                                "structures", "status", "navigation"}


def test_tmats_in_the_stream_is_the_vehicle_tmats(three_seconds) -> None:
    v, _, pkts = three_seconds
    tm = of_type(pkts, DATA_TYPE_TMATS)
    assert {p.channel_id for p in tm} == {0}
    assert all(parse_tmats_packet(p.body).text == v.tmats_text() for p in tm)
    t = parse_tmats(v.tmats_text())
    assert t.program_name == "FTV-1 SIMULATOR"
    assert t.pcm_link_for_channel(3) is not None and t.channel(1) is not None


# -- the stream -----------------------------------------------------------------------------------


def test_tmats_first_call_and_every_period(three_seconds) -> None:
    v, _, pkts = three_seconds
    tm = of_type(pkts, DATA_TYPE_TMATS)
    assert [p.header.rtc for p in tm] == [int(v.rtc_at(T0 + k * S)) for k in range(4)]
    assert [p.header.sequence_number for p in tm] == [0, 1, 2, 3]
    # a shorter period, and calls that do not fall on it
    v2 = Vehicle(start_ns=T0, tmats_period_s=0.25)
    pk = packets(run(v2, every(70_000_000, 1.0)))
    rtc = [p.header.rtc for p in of_type(pk, DATA_TYPE_TMATS)]
    calls = [int(v2.rtc_at(T0 + k * 70_000_000)) for k in (0, 4, 8, 12)]  # 0, 280, 560, 840 ms
    assert rtc == calls


def test_one_time_packet_per_whole_second(three_seconds) -> None:
    v, _, pkts = three_seconds
    tp = of_type(pkts, DATA_TYPE_TIME_F1)
    seconds = [(T0 // S + k) * S for k in (1, 2, 3)]  # whole seconds in (T0, T0 + 3 s]
    assert len(tp) == 3 and {p.channel_id for p in tp} == {v.time_channel}
    assert [parse_time_f1(p).utc_ns(YEAR) for p in tp] == seconds
    assert [p.header.rtc for p in tp] == [int(v.rtc_at(t)) for t in seconds]
    assert [p.header.sequence_number for p in tp] == [0, 1, 2]


def test_pcm_minor_frames_are_contiguous_and_count_the_sfid(three_seconds) -> None:
    v, _, pkts = three_seconds
    pcm = of_type(pkts, DATA_TYPE_PCM_F1)
    assert {p.channel_id for p in pcm} == {v.pcm_channel}
    assert [p.header.sequence_number for p in pcm] == [k % 256 for k in range(len(pcm))]
    t, fn, words, _, _ = decode(pkts)
    frame = v.database.frame
    step = frame.bits_per_minor * S // 1_000_000
    assert step == 1_040_000
    assert len(t) == v.frames_sent == 3 * S // step + 1, "every frame whose start is <= now"
    assert t[0] == T0, "frame 0 starts at the vehicle's start"
    assert np.all(np.diff(t) == step), "no gaps, no overlaps, no jitter"
    assert np.array_equal(fn, np.arange(len(t)) % 16 + 1)
    assert np.all(words[:, 0] == frame.sync_pattern)
    # each packet's header RTC is its first frame's time stamp
    corr = correlator(pkts)
    firsts = [Decommutator(v.database, clock=corr.to_utc_ns).feed(p).frames.t_ns[0] for p in pcm]
    assert [int(corr.to_utc_ns(p.header.rtc)) for p in pcm] == firsts


def test_decoded_values_match_the_truth_within_half_an_lsb(three_seconds) -> None:
    v, _, pkts = three_seconds
    _, fn, _, samples, ids = decode(pkts)
    frame = v.database.frame
    for p in v.database.parameters:
        ts, eu = column(samples, ids, p.name)
        present = np.ones(len(fn), bool)
        if p.frame_position is not None:
            present = (fn >= p.frame_position) & ((fn - p.frame_position) % (p.frame_interval or 16) == 0)
        assert len(ts) == present.sum() * len(p.positions(frame)), p.name
        assert np.all(np.diff(ts) > 0), p.name
        if p.name in STATUS:
            want = {"BITRATE_KBPS": 1000.0, "FC_SPF": 2.0, "VIB_SPF": 4.0}.get(p.name, 0.0)
            assert np.all(eu == want), p.name
            continue
        truth = v.truth(p.name, ts)
        if p.encoding == "float":
            assert np.array_equal(eu, truth.astype(np.float32).astype(np.float64)), p.name
        else:
            lsb = abs(p.calibration.polynomial[1])
            err = np.max(np.abs(eu - truth))
            assert err <= lsb / 2 * (1 + 1e-9), (p.name, err, lsb)
        assert np.ptp(eu) > 0, f"{p.name} should move"


def test_set_bit_rate_changes_the_frame_rate_from_the_next_frame() -> None:
    v = Vehicle(start_ns=T0, bit_rate=1_000_000, seed=5)
    dgs = run(v, every(STEP, 1.0))
    old_frames = v.frames_sent
    v.set_bit_rate(500_000)
    assert v.bit_rate == 1_000_000, "not before the next frame"
    dgs += run(v, every(STEP, 1.0, start=T0 + S + STEP)[:-1]) + v.advance(T0 + 2 * S)
    assert v.bit_rate == 500_000 and v.database.frame.bit_rate == 500_000
    pkts = packets(dgs)
    corr = correlator(pkts)
    t, fn, words, _, _ = decode(pkts, db=vehicle_database(1_000_000), clock=corr.to_utc_ns)
    d = np.diff(t)
    assert np.all(d[:old_frames] == 1_040_000) and np.all(d[old_frames:] == 2_080_000)
    assert t[old_frames] == T0 + old_frames * 1_040_000, "the new rate starts on the old frame grid"
    assert t[-1] <= T0 + 2 * S < t[-1] + 2_080_000
    assert np.array_equal(fn, np.arange(len(t)) % 16 + 1), "the SFID keeps counting"
    kbps = words[:, v.database["BITRATE_KBPS"].fragments[0].word]
    assert np.all(kbps[:old_frames] == 1000) and np.all(kbps[old_frames:] == 500)
    # the TMATS sent after the change describes the new rate, and values still match the truth
    last_tmats = parse_tmats_packet(of_type(pkts, DATA_TYPE_TMATS)[-1].body).text
    db, _ = from_tmats(parse_tmats(last_tmats), 3)
    assert db.frame.bit_rate == 500_000
    new = [p for p in of_type(pkts, DATA_TYPE_PCM_F1) if corr.to_utc_ns(p.header.rtc) >= t[old_frames]]
    dec = Decommutator(db, clock=corr.to_utc_ns)
    for p in new:
        ts, _, eu, _ = dec.feed(p).samples.column("IAS")
        assert np.max(np.abs(eu - v.truth("IAS", ts))) <= 0.005 + 1e-9


@pytest.mark.parametrize("bad", [0, -1, MIN_BIT_RATE - 1, MAX_BIT_RATE + 1, float("nan"), float("inf")])
def test_out_of_range_bit_rates_raise(bad) -> None:
    with pytest.raises(ValueError):
        Vehicle(start_ns=T0, bit_rate=bad)
    v = Vehicle(start_ns=T0)
    with pytest.raises(ValueError, match="bit rate"):
        v.set_bit_rate(bad)
    assert v._pending is None and v.bit_rate == 1_000_000


def test_bit_rate_limits_are_accepted() -> None:
    for rate in (MIN_BIT_RATE, MAX_BIT_RATE):
        v = Vehicle(start_ns=T0, bit_rate=rate)
        v.set_bit_rate(rate)
        assert len(packets(v.advance(T0 + 10_000_000))) >= 2


SPIKES = [
    Spike("IAS", 1.5, 499.0),  # every minor frame
    Spike("VIB", 1.2003, 4.5),  # four times per minor frame
    Spike("EGT", 0.8, 999.0),  # every fourth minor frame
    Spike("OAT", 2.0012, -50.0),  # once per major frame
]


def spiked_run(steps: list[int]):
    v = Vehicle(start_ns=T0, seed=2, spikes=SPIKES)
    return v, decode(packets(run(v, steps)))


@pytest.fixture(scope="module")
def spike_runs():
    rnd = random.Random(4)
    irregular, t = [], T0
    while t < T0 + 3 * S:
        irregular.append(t)
        t += rnd.randint(1, 40) * 1_000_000 + rnd.randint(0, 999)
    irregular.append(T0 + 3 * S)
    return {
        "100 ms": spiked_run(every(STEP, 3.0)),
        "irregular": spiked_run(irregular),
        "one call": spiked_run([T0 + 3 * S]),
    }


@pytest.mark.parametrize("how", ["100 ms", "irregular", "one call"])
def test_a_spike_appears_in_exactly_one_sample(spike_runs, how) -> None:
    v, (_, _, _, samples, ids) = spike_runs[how]
    for sp in SPIKES:
        ts, eu = column(samples, ids, sp.name)
        lsb = abs(v.database[sp.name].calibration.polynomial[1])
        hits = np.flatnonzero(np.abs(eu - sp.value) <= lsb / 2)
        assert len(hits) == 1, (sp.name, len(hits))
        nearest = int(np.argmin(np.abs(ts - (T0 + sp.t_s * S))))
        assert hits[0] == nearest, sp.name
        # the truth knows the spike at the same sample
        truth = v.truth(sp.name, ts)
        assert np.flatnonzero(truth == sp.value).tolist() == [nearest]
        assert np.max(np.abs(eu - truth)) <= lsb / 2 * (1 + 1e-9)


def test_samples_do_not_depend_on_how_the_stream_is_cut(spike_runs) -> None:
    def ordered(samples):
        o = np.lexsort((samples["t_ns"], samples["pid"]))
        return {k: samples[k][o] for k in ("pid", "t_ns", "raw")}

    ref = ordered(spike_runs["100 ms"][1][3])
    for how in ("irregular", "one call"):
        got = ordered(spike_runs[how][1][3])
        for k in ("pid", "t_ns", "raw"):
            assert np.array_equal(got[k], ref[k]), (how, k)


def test_truth_with_a_spike_on_a_2d_time_grid() -> None:
    v = Vehicle(start_ns=T0, spikes=[Spike("VIB", 0.5, 4.5)])
    t = T0 + np.array([[0.49, 0.495], [0.5001, 0.51]]) * S
    got = v.truth("VIB", t.astype(np.int64))
    assert got.shape == (2, 2) and np.flatnonzero(got == 4.5).tolist() == [2]


def test_same_seed_same_datagrams() -> None:
    steps = every(50_000_000, 1.5)
    a = run(Vehicle(start_ns=T0, seed=11), steps)
    b = run(Vehicle(start_ns=T0, seed=11), steps)
    c = run(Vehicle(start_ns=T0, seed=12), steps)
    assert a == b
    assert len(a) == len(c) and a != c
    # only the measurements differ with the seed: TMATS and time packets are the same
    pa, pc = packets(a), packets(c)
    for dt in (DATA_TYPE_TMATS, DATA_TYPE_TIME_F1):
        assert [bytes(p.raw) for p in of_type(pa, dt)] == [bytes(p.raw) for p in of_type(pc, dt)]
