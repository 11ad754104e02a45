"""The mixed vehicle's avionics buses, sans I/O: 1553 and ARINC-429 packets decoded with the project's
decoders, extracted with the ICD CSV, and compared with the simulator's truth."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from groundstation.commanding import VEHICLE_COMMANDS, CommandService, State
from groundstation.simulator.buses import ARINC_SCHEDULE, MINOR_FRAME_TICKS, TIME_TAG_FIRST_BIT
from groundstation.simulator.vehicle import RESULT_REJECTED, Vehicle
from telemetry_formats.ch10.arinc429 import DATA_TYPE_ARINC429_F0, decode_429
from telemetry_formats.ch10.mil1553 import DATA_TYPE_1553_F1, decode_1553
from telemetry_formats.ch10.pcm import DATA_TYPE_PCM_F1
from telemetry_formats.ch10.tmats_packet import DATA_TYPE_TMATS, parse_tmats_packet
from telemetry_formats.decom import BusExtractor, Decommutator
from telemetry_formats.paramdb import from_tmats, load_mission
from telemetry_formats.paramdb.bus_tmats import buses_from_tmats
from telemetry_formats.tmats import parse_tmats
from telemetry_formats.uplink import encode_uplink

from .test_commanding import ALICE  # a director
from .test_simulator_core import STEP, T0, S, correlator, every, of_type, packets, run

ICD = Path(__file__).resolve().parents[1] / "examples" / "icd_mixed_vehicle.csv"
ALIGN_S = 1.0


@dataclasses.dataclass
class Decoded:
    """Everything a ground station decodes from a run: 1553 messages, ARINC words, samples by name."""

    messages: list
    words: list
    samples: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (t_ns, eu)
    extractor: BusExtractor


def decode_buses(pkts, clock) -> Decoded:
    ex = BusExtractor(load_mission([ICD]), clock=clock)
    messages, words, parts = [], [], []
    for p in pkts:
        if p.data_type == DATA_TYPE_1553_F1:
            m = decode_1553(p)
            assert m.errors == [] and not m.error.any()
            messages.append(m)
            parts.append(ex.extract_1553(m))
        elif p.data_type == DATA_TYPE_ARINC429_F0:
            w = decode_429(p)
            assert w.errors == [] and w.parity_ok.all()
            words.append(w)
            parts.append(ex.extract_429(w))
    names = {i: n for n, i in ex.ids.items()}
    pid = np.concatenate([b.pid for b in parts])
    t = np.concatenate([b.t_ns for b in parts])
    eu = np.concatenate([b.eu for b in parts])
    samples = {}
    for i in np.unique(pid):
        sel = pid == i
        order = np.argsort(t[sel], kind="stable")
        samples[names[int(i)]] = (t[sel][order], eu[sel][order])
    return Decoded(messages, words, samples, ex)


def cat(rows, field: str) -> np.ndarray:
    return np.concatenate([getattr(r, field) for r in rows])


@pytest.fixture(scope="module")
def three_seconds():
    v = Vehicle(start_ns=T0, seed=5, irs_align_s=ALIGN_S)
    pkts = packets(run(v, every(STEP, 3.0)))
    return v, pkts, decode_buses(pkts, correlator(pkts).to_utc_ns)


# -- TMATS --------------------------------------------------------------------------------------


def test_tmats_describes_the_bus_channels_and_its_b_groups_are_the_icd() -> None:
    v = Vehicle(start_ns=T0)
    tm = parse_tmats(v.tmats_text())
    assert tm.problems == []
    kinds = {c.channel_id: c.channel_type for c in tm.channels}
    assert kinds == {1: "TIMEIN", 3: "PCMIN", 5: "1553IN", 6: "429IN"}
    db, problems = from_tmats(tm, 3)
    assert problems == [] and db.names == v.database.names  # the PCM link as before
    buses, problems = buses_from_tmats(tm)
    assert problems == []
    icd = load_mission([ICD])
    assert buses.names == icd.names
    for want in (*icd.mil1553, *icd.arinc429):
        got = buses[want.name]
        same = ("channel", "encoding", "calibration", "units", "limits", "group", "description")
        assert all(getattr(got, f) == getattr(want, f) for f in same), want.name
        if want.kind == "1553":
            assert (got.rt, got.tr, got.subaddress, got.word_count, got.fragments) == \
                (want.rt, want.tr, want.subaddress, want.word_count, want.fragments)
        else:  # BNR reads bits 29..lsb whichever msb (28 or 29) the definition names
            assert (got.label, got.sdi, got.bus, got.field_bits) == (want.label, want.sdi, want.bus, want.field_bits)


def test_the_pcm_stream_is_the_pcm_only_vehicle_s_byte_for_byte() -> None:
    def pcm(buses: bool):
        v = Vehicle(start_ns=T0, seed=2, buses=buses)
        return [p.raw for p in of_type(packets(run(v, every(STEP, 1.5))), DATA_TYPE_PCM_F1)]

    assert pcm(True) == pcm(False)
    plain = packets(run(Vehicle(start_ns=T0, buses=False), every(STEP, 1.0)))
    assert {p.data_type for p in plain} == {DATA_TYPE_TMATS, 0x11, DATA_TYPE_PCM_F1}


# -- decoded output against the truth ------------------------------------------------------------


def test_every_bus_sample_decodes_to_the_truth(three_seconds) -> None:
    v, _, dec = three_seconds
    icd = load_mission([ICD])
    assert set(dec.samples) == set(icd.names)
    for name in icd.names:
        t, eu = dec.samples[name]
        t_true, eu_true = v.bus_truth(name)
        assert len(t) == len(t_true) > 0, name
        assert np.array_equal(t, t_true), name  # message / word time stamps, exactly
        assert np.array_equal(eu, eu_true, equal_nan=True), name  # the values sent, exactly
    stats = dec.extractor.stats
    assert stats[5].unmatched == stats[6].unmatched == stats[5].invalid == 0


def test_the_truth_is_the_flight_within_the_icd_resolution(three_seconds) -> None:
    v, _, _ = three_seconds
    icd = load_mission([ICD])
    for p in (*icd.mil1553, *icd.arinc429):
        t, eu = v.bus_truth(p.name)
        ok = ~np.isnan(eu)
        if p.name.startswith("BC_"):  # the bus controller's schedule report
            model = np.full(len(t), {"BC_AIRDATA_MS": 40, "BC_ANGLES_MS": 20, "BC_BARO_MS": 80}[p.name])
        else:
            model = v.avionics.values(p.name, (t - T0) / 1e9)
        if p.encoding == "float":
            assert np.allclose(eu[ok], model[ok], rtol=2**-23, atol=0), p.name
        else:
            resolution = p.calibration.polynomial[1] if p.calibration.polynomial else 1.0
            assert np.all(np.abs(eu[ok] - model[ok]) <= resolution / 2 + 1e-9), p.name


def test_bus_and_pcm_parameters_agree_where_they_measure_the_same_thing(three_seconds) -> None:
    v, _, _ = three_seconds
    pairs = [("ADC_PALT", "ALT", 0.01), ("ADC_CAS", "IAS", 1 / 64), ("ADC_MACH", "MACH", 2**-15),
             ("ADC_AOA", "AOA", 0.003), ("ADC_SAT", "OAT", 1 / 256), ("NAV_LAT", "LAT", 1e-4), ("NAV_LON", "LON", 1e-4)]
    for bus, pcm, tol in pairs:
        t, eu = v.bus_truth(bus)
        ok = ~np.isnan(eu)
        assert np.allclose(eu[ok], v.truth(pcm, t[ok]), rtol=0, atol=tol), bus
    t, hdg = v.bus_truth("NAV_HDG")
    ok = ~np.isnan(hdg)
    assert np.allclose((hdg[ok] - v.truth("HEADING", t[ok]) + 180) % 360 - 180, 0, atol=0.003)  # +-180 vs 0..360
    for angle, rate in (("NAV_PITCH", "PITCH_RATE"), ("NAV_ROLL", "ROLL_RATE")):  # attitude is the integral of rate
        t, a = v.bus_truth(angle)
        ok = ~np.isnan(a)
        t, a = t[ok], a[ok]
        mid = (t[1:] + t[:-1]) // 2
        assert np.allclose(np.diff(a) / (np.diff(t) / 1e9), v.truth(rate, mid), atol=0.6), angle


# -- 1553: the bus controller's schedule -----------------------------------------------------------


def test_1553_minor_frame_schedule_status_words_and_time_stamps(three_seconds) -> None:
    v, pkts, dec = three_seconds
    msgs = dec.messages
    mil = of_type(pkts, DATA_TYPE_1553_F1)
    assert {p.channel_id for p in mil} == {5} and len(mil) == 30  # one packet per 100 ms
    assert [p.header.sequence_number for p in mil] == list(range(30))
    assert all(m.time_tag_bits == TIME_TAG_FIRST_BIT for m in msgs)
    assert all(p.header.rtc == int(m.rtc[0]) for p, m in zip(mil, msgs))  # packet time = its first message
    rtc = cat(msgs, "rtc")
    assert np.all(np.diff(rtc) > 0)
    key = [(int(a), int(b), int(c)) for a, b, c in zip(cat(msgs, "rt"), cat(msgs, "tr"), cat(msgs, "subaddress"))]
    counts = {k: key.count(k) for k in set(key)}
    assert counts == {(1, 1, 2): 150, (1, 1, 1): 75, (1, 0, 3): 38, (2, 0, 1): 38}  # 50, 25, 12.5, 12.5 Hz
    wc = dict(zip(key, cat(msgs, "word_count").tolist()))
    assert wc == {(1, 1, 1): 8, (1, 1, 2): 4, (1, 0, 3): 1, (2, 0, 1): 3}
    # every message starts in a 20 ms minor frame, the minor frame's first message at its start
    rel = rtc - v.rtc_start
    assert np.all(rel % MINOR_FRAME_TICKS < 10_000)
    first = np.flatnonzero(np.diff(rel // MINOR_FRAME_TICKS, prepend=-1))
    assert np.all(rel[first] % MINOR_FRAME_TICKS == 0) and len(first) == 150
    status = cat(msgs, "status")
    rt = cat(msgs, "rt")
    assert np.array_equal(status >> 11, rt) and np.all(status & 0x7FF == 0)  # each RT answers, no flags
    assert not cat(msgs, "bus_b").any() and not cat(msgs, "rt_to_rt").any()
    assert np.all(cat(msgs, "gap1") == 65)  # 6.5 us RT response time


def test_set_bus_rate_changes_the_message_rate_and_the_downlink_verifies_it() -> None:
    v = Vehicle(start_ns=T0, irs_align_s=0.0)
    svc = CommandService(VEHICLE_COMMANDS, encode_uplink)
    svc.authority.take(ALICE, T0)
    datagrams = run(v, every(STEP, 1.0))
    latest = observe(svc, datagrams, v, T0 + S)
    assert latest["BC_ANGLES_MS"] == 20.0
    svc.submit(ALICE, "SET_BUS_RATE", {"message": "angles", "period": "12.5 Hz"}, now_ns=T0 + S)
    out = svc.next_to_send(T0 + S + 1)
    assert out is not None and out.packet is not None
    t_cmd = T0 + S + 35_000_000  # in the middle of a minor frame
    assert v.handle_uplink(out.packet, t_cmd) == 1
    svc.sent(out.record.id, t_cmd)
    datagrams += run(v, every(STEP, 2.0, T0 + S + STEP))
    latest = observe(svc, datagrams, v, T0 + 3 * S)
    assert latest["BC_ANGLES_MS"] == 80.0 and latest["CMD_LAST_OPCODE"] == 6
    assert svc.history.get(out.record.id).state == State.COMPLETED
    # the rate on the bus: 50 Hz up to the minor frame after the command, 12.5 Hz from it
    pkts = packets(datagrams)
    msgs = decode_buses(pkts, correlator(pkts).to_utc_ns).messages
    angles = (cat(msgs, "rt") == 1) & (cat(msgs, "subaddress") == 2)
    frame = (cat(msgs, "rtc") - v.rtc_start) // MINOR_FRAME_TICKS  # minor frame of each message
    switch = (t_cmd - T0) // (MINOR_FRAME_TICKS * 100) + 1  # the first minor frame after the command
    f = frame[angles]
    assert np.all(np.diff(f[f < switch]) == 1) and np.all(np.diff(f[f >= switch]) == 4)  # 50 Hz, then 12.5 Hz
    assert f[f >= switch][0] == switch
    assert np.count_nonzero((f >= 100) & (f < 150)) in (12, 13)  # the third second
    air = (cat(msgs, "rt") == 1) & (cat(msgs, "subaddress") == 1)
    assert np.all(np.diff(frame[air]) == 2)  # the air data message kept its 25 Hz


def observe(svc: CommandService, datagrams: list[bytes], v: Vehicle, now_ns: int) -> dict[str, float]:
    """Decode the stream as a ground station does (PCM from its TMATS, buses with the ICD) and feed the
    latest values to the command service's verifier."""
    pkts = packets(datagrams)
    corr = correlator(pkts)
    db, _ = from_tmats(parse_tmats(parse_tmats_packet(of_type(pkts, DATA_TYPE_TMATS)[-1].body).text), 3)
    dec = Decommutator(db, clock=corr.to_utc_ns)
    latest: dict[str, float] = {}
    for p in of_type(pkts, DATA_TYPE_PCM_F1):
        s = dec.feed(p).samples
        for name, i in dec.plan.id_by_name.items():
            sel = np.flatnonzero(s.pid == i)
            if len(sel):
                latest[name] = float(s.eu[sel[-1]])
    latest.update({name: float(eu[-1]) for name, (_, eu) in decode_buses(pkts, corr.to_utc_ns).samples.items()})
    svc.observe(latest, now_ns)
    return latest


def test_set_bus_rate_outside_the_schedule_is_rejected_and_changes_nothing() -> None:
    v = Vehicle(start_ns=T0)
    before = v.buses.periods_ms()
    assert v.handle_uplink(encode_uplink(1, 6, [("u32", 1), ("u32", 30)]), T0) == RESULT_REJECTED
    assert v.handle_uplink(encode_uplink(2, 6, [("u32", 3), ("u32", 20)]), T0) == RESULT_REJECTED
    assert v.buses.periods_ms() == before == [40, 20, 80]
    assert v.uplinks[-1][1].startswith("rejected: message must be")
    pcm_only = Vehicle(start_ns=T0, buses=False)
    assert pcm_only.handle_uplink(encode_uplink(1, 6, [("u32", 1), ("u32", 20)]), T0) == RESULT_REJECTED


# -- ARINC-429 --------------------------------------------------------------------------------------


def test_arinc_labels_at_their_rates_with_ssm_parity_and_bus_speed(three_seconds) -> None:
    v, pkts, dec = three_seconds
    words = dec.words
    arinc = of_type(pkts, DATA_TYPE_ARINC429_F0)
    assert {p.channel_id for p in arinc} == {6} and len(arinc) == 30
    rtc = cat(words, "rtc")
    assert np.all(np.diff(rtc) >= 0) and all(p.header.rtc == int(w.rtc[0]) for p, w in zip(arinc, words))
    label, ssm, bus = cat(words, "label"), cat(words, "ssm"), cat(words, "bus")
    for lb, (b, period_ms) in ARINC_SCHEDULE.items():
        sel = label == lb
        assert np.count_nonzero(sel) == 3000 // period_ms, f"{lb:03o}"
        assert np.all(bus[sel] == b) and np.all(np.diff(rtc[sel]) == period_ms * 10_000)
    assert np.array_equal(cat(words, "bus_speed"), bus == 0)  # IRS high speed, GPS low speed
    for b, word_ticks in ((0, 3_600), (1, 28_800)):  # one word at a time on each bus: 36 bit times apart
        assert np.all(np.diff(rtc[bus == b]) >= word_ticks)
    t_s = (rtc - v.rtc_start) / 1e7
    bnr = np.isin(label, [0o310, 0o311, 0o312, 0o313, 0o314, 0o324, 0o325])
    assert np.all(ssm[bnr & (t_s < ALIGN_S)] == 0b01)  # no computed data while the IRS aligns
    assert np.all(ssm[bnr & (t_s >= ALIGN_S)] == 0b11)  # then normal operation
    assert np.all(ssm[label == 0o270] == 0) and np.all(ssm[label == 0o012] == 0)  # discrete normal, BCD plus
    assert np.all(cat(words, "sdi")[~np.isin(label, [0o310, 0o311])] == 0)  # 310/311 carry data in bits 9-10


def test_irs_alignment_then_navigation_mode(three_seconds) -> None:
    v, _, dec = three_seconds
    t, lat = dec.samples["NAV_LAT"]
    rel = (t - T0) / 1e9
    assert np.all(np.isnan(lat[rel < ALIGN_S])) and not np.isnan(lat[rel >= ALIGN_S]).any()
    _, align = dec.samples["NAV_ALIGN"]
    _, nav = dec.samples["NAV_NAV_MODE"]
    t, _ = dec.samples["NAV_ALIGN"]
    rel = (t - T0) / 1e9
    assert np.array_equal(align, (rel < ALIGN_S).astype(float)) and np.array_equal(nav, 1 - align)
    ncd = sum(3000 // ARINC_SCHEDULE[lb][1] for lb in (0o310, 0o311, 0o312, 0o313, 0o314, 0o324, 0o325)) // 3
    assert dec.extractor.stats[6].invalid == ncd  # the first second of every navigation label


def test_bus_truth_is_bounded_and_gives_the_latest_values() -> None:
    v = Vehicle(start_ns=T0, truth_s=1.0)
    run(v, every(STEP, 3.0))
    t, _ = v.bus_truth("ADC_AOA")
    assert t[-1] - t[0] < 1.2 * S and t[-1] > T0 + 2.9 * S
    latest = v.bus_latest()
    assert set(latest) == set(load_mission([ICD]).names)
    assert latest["ADC_AOA"] == (int(t[-1]), float(v.bus_truth("ADC_AOA")[1][-1]))
    with pytest.raises(KeyError):
        v.bus_truth("ALT")  # a PCM parameter: Vehicle.truth


# -- the encoders, on edge values -------------------------------------------------------------------


def test_encoders_read_back_exactly_as_the_extractor_reads_even_at_the_edges() -> None:
    from groundstation.simulator.bus_encode import encode_429, encode_1553
    from telemetry_formats.ch10.arinc429 import build_429_body
    from telemetry_formats.ch10.mil1553_build import build_1553_body
    from telemetry_formats.ch10.packet import build_packet, parse_packet
    from telemetry_formats.paramdb import parse_icd_csv
    from telemetry_formats.paramdb.icd_csv import COLUMNS

    db = parse_icd_csv("\n".join([",".join(COLUMNS),
                                  "S,1553,5,,1,T,1,1,,,1,16,signed,0.5,10,,,,,,g",
                                  "U,1553,5,,1,T,1,2,,,5,12,unsigned,2,,,,,,,g",
                                  "F,1553,5,,1,T,1,3-4,,,1,16,float,,,,,,,,g",
                                  "B,429,6,,,,,,203,,28,12,bnr,1,,,,,,,g",
                                  "D,429,6,,,,,,017,,29,11,bcd,0.1,,,,,,,g"]) + "\n")
    n = 5
    values = {"S": np.array([-100.0, 10.0, 1e6, -1e6, 10.26]), "U": np.array([0.0, 3.0, 511.0, -4.0, 255.0]),
              "F": np.array([1.1, -0.0, 3.4e38, 1e-40, -12500.0]),
              "B": np.array([-65536.0, 65535.0, 1e9, -0.4, 12.6]), "D": np.array([7999.9, -0.1, 12.34, 1e9, 0.0])}
    data, back = encode_1553(db.mil1553, values, n, 4)
    body = build_1553_body([{"rt": 1, "tr": 1, "subaddress": 1, "data": d.tolist(), "rtc": k} for k, d in enumerate(data)])
    ex = BusExtractor(db)
    b = ex.extract_1553(decode_1553(parse_packet(build_packet(channel_id=5, data_type=DATA_TYPE_1553_F1, body=body))))
    for name in ("S", "U", "F"):
        assert np.array_equal(b.eu[b.pid == ex.ids[name]], back[name]), name
    assert back["S"].tolist() == [-100.0, 10.0, 16393.5, -16374.0, 10.5] and back["U"].tolist() == [0, 4, 510, 0, 256]
    valid = np.array([True, True, True, False, True])
    bnr, back_b = encode_429(0o203, [db["B"]], values, valid)
    bcd, back_d = encode_429(0o017, [db["D"]], values, np.ones(n, bool))
    body = build_429_body({"word": int(w)} for w in np.concatenate([bnr, bcd]))
    b = ex.extract_429(decode_429(parse_packet(build_packet(channel_id=6, data_type=DATA_TYPE_ARINC429_F0, body=body))))
    assert np.array_equal(b.eu[b.pid == ex.ids["B"]], back_b["B"], equal_nan=True)
    assert np.array_equal(b.eu[b.pid == ex.ids["D"]], back_d["D"])
    assert back_b["B"][[0, 1, 2, 4]].tolist() == [-65536.0, 65535.0, 131071.0, 13.0] and np.isnan(back_b["B"][3])
    assert np.allclose(back_d["D"], [7999.9, -0.1, 12.3, 7999.9, 0.0])  # 5 BCD digits, the top one 3 bits (<= 7)
    assert ((bcd >> 29) & 3).tolist() == [0, 3, 0, 0, 0] and ((bnr >> 29) & 3).tolist() == [3, 3, 3, 1, 3]
