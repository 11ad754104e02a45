"""Bus parameter extraction: 1553 messages and ARINC-429 words to samples, against hand-computed values."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from telemetry_formats.ch10.arinc429 import Words429
from telemetry_formats.ch10.mil1553 import Messages1553
from telemetry_formats.decom import BusExtractor, extract_429, extract_1553
from telemetry_formats.paramdb import MissionDatabase, parse_icd_csv

HEADER = ("name,source,channel,bus,rt,tr,subaddress,word,label,sdi,msb,lsb,encoding,scale,offset,units,"
          "warn_low,warn_high,crit_low,crit_high,group")


def icd(*rows: str) -> MissionDatabase:
    return parse_icd_csv("\n".join((HEADER,) + rows) + "\n", "test.csv")


def messages(rows: list[dict], channel: int = 5) -> Messages1553:
    """Messages from dicts of rt, tr, sa, data (list of words), and optional rtc, error, wc, rt_to_rt, command2."""
    n = len(rows)
    data = np.zeros((n, 32), np.uint16)
    for i, r in enumerate(rows):
        data[i, : len(r["data"])] = r["data"]

    def col(key, default, dtype):
        return np.array([r.get(key, default(r)) for r in rows], dtype)

    return Messages1553(
        channel_id=channel, rtc=col("rtc", lambda r: 0, np.int64), block_status=np.zeros(n, np.uint16),
        bus_b=np.zeros(n, bool), error=col("error", lambda r: False, bool),
        rt_to_rt=col("rt_to_rt", lambda r: False, bool),
        command=np.zeros(n, np.uint16), command2=col("command2", lambda r: 0, np.uint16),
        status=np.zeros(n, np.uint16), rt=col("rt", lambda r: 0, np.uint8), tr=col("tr", lambda r: 1, np.uint8),
        subaddress=col("sa", lambda r: 0, np.uint8), word_count=col("wc", lambda r: len(r["data"]), np.uint8),
        n_data=col("n_data", lambda r: len(r["data"]), np.uint8), data=data, offset=np.zeros(n, np.int64))


def arinc_word(label_octal: str, data: int, ssm: int, sdi: int = 0) -> int:
    """A 429 word with ARINC bit 1 in the LSB: label bit-reversed in bits 1-8, SDI, data bits 11-29, SSM, parity."""
    label = int(label_octal, 8)
    rev = int(f"{label:08b}"[::-1], 2)
    w = rev | (sdi << 8) | ((data & 0x7FFFF) << 10) | (ssm << 29)
    return w | ((bin(w).count("1") + 1) % 2) << 31  # odd parity


def words(rows: list[tuple], channel: int = 10) -> Words429:
    """Words from (label octal, data bits 11-29, ssm[, sdi[, bus[, rtc]]]) tuples."""
    n = len(rows)
    full = [(r + (0, 0, 0))[:6] for r in rows]
    w = np.array([arinc_word(lab, d, ssm, sdi) for lab, d, ssm, sdi, _, _ in full], np.uint32)
    return Words429(
        channel_id=channel, rtc=np.array([r[5] for r in full], np.int64), gap=np.zeros(n, np.uint32),
        bus=np.array([r[4] for r in full], np.uint8), format_error=np.zeros(n, bool), parity_error=np.zeros(n, bool),
        word=w, label=np.array([int(r[0], 8) for r in full], np.uint8),
        sdi=((w >> 8) & 3).astype(np.uint8), data=((w >> 10) & 0x7FFFF).astype(np.uint32),
        ssm=((w >> 29) & 3).astype(np.uint8), parity_ok=np.array([bin(int(x)).count("1") % 2 == 1 for x in w]))


def values(batch, name):
    t, raw, eu, lim = batch.column(name)
    return t.tolist(), raw.tolist(), eu.tolist(), lim.tolist()


# -- 1553 ------------------------------------------------------------------------------------------------------------

def test_1553_unsigned_signed_bits_and_calibration():
    db = icd("ALT,1553,5,,1,T,1,1,,,1,16,signed,0.5,100,ft,,,,,air",
             "CAS,1553,5,,1,T,1,2,,,1,12,unsigned,0.0625,,kt,,100,,200,air",
             "FLAG,1553,5,,1,T,1,2,,,16,16,unsigned,,,,,,,,air")
    m = messages([{"rt": 1, "sa": 1, "data": [0xFFFE, 0x1234], "rtc": 10},
                  {"rt": 1, "sa": 1, "data": [0x0010, 0xFFF1], "rtc": 20}])
    b = extract_1553(m, db)
    t, raw, eu, _ = values(b, "ALT")
    assert t == [1000, 2000] and raw == [0xFFFE, 0x0010]
    assert eu == [-2 * 0.5 + 100, 16 * 0.5 + 100]  # 0xFFFE is -2
    _, raw, eu, lim = values(b, "CAS")
    assert raw == [0x123, 0xFFF] and eu == [0x123 * 0.0625, 0xFFF * 0.0625] and lim == [0, 2]
    assert values(b, "FLAG")[1] == [0, 1]


def test_1553_ieee_float_across_two_words_and_fragments():
    hi, lo = struct.unpack(">HH", struct.pack(">f", -1234.5))
    db = icd("BARO,1553,5,,1,T,2,3-4,,,1,16,float,,,ft,,,,,air",
             "SPLIT,1553,5,,1,T,2,1+5,,,9,4,unsigned,,,,,,,,air")  # low byte of word 1, then the top 4 bits of word 5
    m = messages([{"rt": 1, "sa": 2, "data": [0x00AB, 0, hi, lo, 0xC000]}])
    b = extract_1553(m, db)
    assert values(b, "BARO")[2] == [-1234.5]
    assert values(b, "SPLIT")[1] == [(0xAB << 4) | 0xC]


def test_1553_matching_by_rt_tr_subaddress_and_word_count():
    db = icd("A,1553,5,,1,T,1,1,,,1,16,unsigned,,,,,,,,g",
             "B,1553,5,,1,R,1,1,,,1,16,unsigned,,,,,,,,g",
             "C,1553,5,,2,T,1,3,,,1,16,unsigned,,,,,,,,g")
    m = messages([{"rt": 1, "tr": 1, "sa": 1, "data": [11]},
                  {"rt": 1, "tr": 0, "sa": 1, "data": [22]},
                  {"rt": 2, "tr": 1, "sa": 1, "data": [33, 0]},  # C needs word 3: too short
                  {"rt": 3, "tr": 1, "sa": 7, "data": [44]}], channel=5)
    ex = BusExtractor(db)
    b = ex.extract_1553(m)
    assert values(b, "A")[1] == [11] and values(b, "B")[1] == [22] and values(b, "C")[1] == []
    s = ex.stats[5]
    assert (s.rows, s.matched, s.unmatched, s.short, s.samples) == (4, 3, 1, 1, 2)
    assert s.unknown == {"RT3-T-SA7": 1}
    # another channel's messages match nothing and are counted there
    assert len(ex.extract_1553(messages([{"rt": 1, "sa": 1, "data": [1]}], channel=6))) == 0
    assert ex.stats[6].unmatched == 1
    # word count: a definition that names one ignores messages of another length
    db2 = parse_icd_csv(HEADER + ",word_count\nW,1553,5,,1,T,1,1,,,1,16,unsigned,,,,,,,,g,4\n", "wc.csv")
    b = extract_1553(messages([{"rt": 1, "sa": 1, "data": [1, 2, 3, 4]}, {"rt": 1, "sa": 1, "data": [9]}]), db2)
    assert values(b, "W")[1] == [1]


def test_1553_error_messages_are_invalid_not_numbers():
    db = icd("A,1553,5,,1,T,1,1,,,1,16,unsigned,,,,,,,0,g")  # crit_high 0: every valid sample is critical
    m = messages([{"rt": 1, "sa": 1, "data": [5]}, {"rt": 1, "sa": 1, "data": [6], "error": True}])
    ex = BusExtractor(db)
    _, raw, eu, lim = values(ex.extract_1553(m), "A")
    assert raw == [5, 6] and eu[0] == 5 and math.isnan(eu[1]) and lim == [2, 0]
    assert ex.stats[5].invalid == 1


def test_1553_rt_to_rt_matches_both_terminals():
    db = icd("RX,1553,5,,4,R,3,1,,,1,16,unsigned,,,,,,,,g", "TX,1553,5,,9,T,6,1,,,1,16,unsigned,,,,,,,,g")
    tx_cmd = (9 << 11) | (1 << 10) | (6 << 5) | 1
    m = messages([{"rt": 4, "tr": 0, "sa": 3, "data": [77], "rt_to_rt": True, "command2": tx_cmd}])
    b = extract_1553(m, db)
    assert values(b, "RX")[1] == [77] and values(b, "TX")[1] == [77]


# -- ARINC-429 -------------------------------------------------------------------------------------------------------

def test_429_bnr_positive_and_negative_with_resolution():
    # label 203 pressure altitude: sign bit 29, 17 bits 28..12, 1 ft; label 310 latitude: 20 bits 28..9, 180/2^20 deg
    db = icd("ALT,429,10,,,,,,203,,28,12,bnr,1,,ft,,,,,nav",
             f"LAT,429,10,,,,,,310,,28,9,bnr,{180 / 2**20!r},,deg,,,,,nav")
    alt_ft = [35000, -1000]
    alt_bits = [(a & 0x3FFFF) << 1 for a in alt_ft]  # bits 29..12 = data bits 18..1 of the 19-bit field (11..29)
    lat = -33.9461  # bits 29..9 = 21-bit two's complement
    lat_counts = round(lat / (180 / 2**20))
    lat_field = lat_counts & 0x1FFFFF  # bits 9..29
    lat_sdi, lat_data = lat_field & 3, lat_field >> 2
    w = words([("203", alt_bits[0], 3), ("203", alt_bits[1], 3), ("310", lat_data, 3, lat_sdi)])
    b = extract_429(w, db)
    assert values(b, "ALT")[2] == [35000.0, -1000.0]
    assert values(b, "LAT")[2] == pytest.approx([lat_counts * 180 / 2**20]) and abs(values(b, "LAT")[2][0] - lat) < 2e-4


def test_429_bcd_digits_and_sign_from_ssm():
    # label 012 ground speed BCD: digits in bits 29-27 (3 bits), 26-23, 22-19, 18-15; 1 kt
    db = icd("GS_BCD,429,10,,,,,,012,,29,15,bcd,1,,kt,,,,,nav",
             "TEMP_BCD,429,10,,,,,,013,,26,19,bcd,0.1,,degC,,,,,nav")

    def bcd_bits(digits: str, lsb: int) -> int:
        return int(digits, 16) << (lsb - 11)  # hex digits are BCD nibbles; data field starts at bit 11

    w = words([("012", bcd_bits("0459", 15), 0),  # 459 kt, SSM 00 plus
               ("013", bcd_bits("15", 19), 3),  # 1.5 degC, SSM 11 minus
               ("013", bcd_bits("1A", 19), 0),  # a nibble above 9: invalid
               ("012", bcd_bits("0100", 15), 1)])  # SSM 01 no computed data: invalid
    ex = BusExtractor(db)
    b = ex.extract_429(w)
    _, raw, eu, _ = values(b, "GS_BCD")
    assert raw[0] == 0x0459 and eu[0] == 459.0 and math.isnan(eu[1])
    eu = values(b, "TEMP_BCD")[2]
    assert eu[0] == pytest.approx(-1.5) and math.isnan(eu[1])
    assert ex.stats[10].invalid == 2


@pytest.mark.parametrize("ssm, valid", [(0, False), (1, False), (2, True), (3, True)])
def test_429_bnr_ssm_failure_warning_and_no_computed_data_are_invalid(ssm, valid):
    db = icd("HDG,429,10,,,,,,314,,28,14,bnr,0.0054931640625,,deg,,,,0,nav")
    b = extract_429(words([("314", 1000 << 3, ssm)]), db)
    _, raw, eu, lim = values(b, "HDG")
    assert raw == [1000 << 3 >> 3]  # bits 29..14: the field above the 3 pad bits
    assert (not math.isnan(eu[0])) == valid and lim == [2 if valid else 0]
    if valid:
        assert eu[0] == pytest.approx(1000 * 0.0054931640625)


def test_429_discrete_bits_and_discrete_ssm():
    db = icd("ALIGN,429,10,,,,,,270,,11,11,discrete,,,,,,,,nav",
             "MODE,429,10,,,,,,270,,14,12,discrete,,,,,,,,nav")
    w = words([("270", 0b1011, 0), ("270", 0b0101, 3), ("270", 0b0001, 2)])  # SSM 11 failure warning: invalid
    b = extract_429(w, db)
    _, raw, eu, _ = values(b, "ALIGN")
    assert raw == [1, 1, 1] and eu[0] == 1 and math.isnan(eu[1]) and eu[2] == 1
    assert values(b, "MODE")[1] == [0b101, 0b010, 0]


def test_429_bus_and_sdi_matching_unknown_labels_counted_parity():
    db = icd("A_L,429,10,1,,,,,203,1,28,12,bnr,1,,ft,,,,,g",
             "A_R,429,10,1,,,,,203,2,28,12,bnr,1,,ft,,,,,g",
             "ANYBUS,429,10,,,,,,206,,28,15,bnr,0.0625,,kt,,,,,g")
    w = words([("203", 10 << 1, 3, 1, 1, 5), ("203", 20 << 1, 3, 2, 1, 6), ("203", 30 << 1, 3, 1, 0, 7),
               ("206", 16 << 4, 3, 0, 7, 8), ("377", 0, 3, 0, 0, 9), ("377", 0, 3, 0, 0, 10)])
    w.parity_ok[3] = False  # a parity error marks the sample invalid
    ex = BusExtractor(db, clock=lambda rtc: rtc * 1000)
    b = ex.extract_429(w)
    assert values(b, "A_L")[:3] == ([5000], [10], [10.0])
    assert values(b, "A_R")[2] == [20.0]
    t, _, eu, _ = values(b, "ANYBUS")
    assert t == [8000] and math.isnan(eu[0])
    s = ex.stats[10]
    assert (s.rows, s.matched, s.unmatched, s.invalid) == (6, 3, 3, 1)
    assert s.unknown == {"bus 0 label 203": 1, "bus 0 label 377": 2}


def test_ids_raw_dtype_and_empty_batches():
    db = icd("A,1553,5,,1,T,1,1,,,1,16,unsigned,,,,,,,,g", "L,429,10,,,,,,203,,28,12,bnr,1,,ft,,,,,g")
    ex = BusExtractor(db, ids={"A": 7, "L": 9})
    b = ex.extract_1553(messages([{"rt": 1, "sa": 1, "data": [3]}]))
    assert b.pid.tolist() == [7] and b.raw.dtype == np.uint32 and b.ids["L"] == 9
    assert len(ex.extract_429(words([], channel=10))) == 0
    assert len(ex.extract_429(words([("203", 2, 3)], channel=11))) == 0


def test_sample_icd_of_the_mixed_vehicle():
    from pathlib import Path

    from telemetry_formats.paramdb import load_mission

    db = load_mission([Path(__file__).resolve().parents[1] / "examples" / "icd_mixed_vehicle.csv"])
    assert db.channels("1553") == [5] and db.channels("429") == [6]
    hi, lo = struct.unpack(">HH", struct.pack(">f", 12500.0))
    m = messages([{"rt": 1, "sa": 1, "data": [hi, lo, 250 * 32, 0, 13107, 0xFF38, 0, 0], "rtc": 1},
                  {"rt": 1, "sa": 2, "data": [1820, 0, 0, 0b11], "rtc": 2},
                  {"rt": 1, "tr": 0, "sa": 3, "data": [10132], "rtc": 3}])
    ex = BusExtractor(db)
    b = ex.extract_1553(m)
    assert values(b, "ADC_PALT")[2] == [12500.0] and values(b, "ADC_CAS")[2] == [250.0]
    assert values(b, "ADC_MACH")[2] == [13107 / 16384] and values(b, "ADC_MACH")[3] == [0]
    assert values(b, "ADC_ALT_RATE")[2] == [-200.0]
    assert values(b, "ADC_AOA")[2] == pytest.approx([1820 * 180 / 32768])
    assert values(b, "ADC_VALID")[2] == [1.0] and values(b, "ADC_PITOT_HEAT")[2] == [1.0]
    assert values(b, "ADC_BARO_SET")[2] == pytest.approx([1013.2])
    lat = round(47.4502 / (180 / 2**20)) & 0x1FFFFF
    hdg = round(-90.0 / (180 / 2**15)) & 0xFFFF  # bits 29..14
    w = words([("310", lat >> 2, 3, lat & 3, 0), ("314", hdg << 3, 3, 0, 0), ("270", 0b010, 0, 0, 0),
               ("012", 0x0321 << 4, 0, 0, 1), ("314", hdg << 3, 0, 0, 0)], channel=6)
    b = ex.extract_429(w)
    assert values(b, "NAV_LAT")[2] == pytest.approx([47.4502], abs=1e-4)
    hdg_eu = values(b, "NAV_HDG")[2]
    assert hdg_eu[0] == -90.0 and math.isnan(hdg_eu[1])  # SSM 00 failure warning
    assert values(b, "NAV_NAV_MODE")[2] == [1.0] and values(b, "NAV_ALIGN")[2] == [0.0]
    assert values(b, "GPS_GS_BCD")[2] == [321.0]


def test_batched_extraction_equals_a_row_by_row_reference():
    """The benchmark's per-row Python loop (a plain reading of the same definitions) agrees sample for sample."""
    from pathlib import Path

    from benchmarks.bench_bus_extract import ICD, peer_429, peer_1553
    from benchmarks.bench_bus_extract import messages as bench_messages
    from benchmarks.bench_bus_extract import words as bench_words
    from telemetry_formats.paramdb import load_mission

    db = load_mission([Path(ICD)])
    rng = np.random.default_rng(7)
    m, w = bench_messages(300, rng), bench_words(400, rng)
    by_key, by_label = {}, {}
    for p in db.mil1553:
        by_key.setdefault((p.rt, int(p.tr == "T"), p.subaddress), []).append(p)
    for p in db.arinc429:
        if p.encoding != "bcd":  # the reference does not check BCD digits
            by_label.setdefault(p.label, []).append(p)
    ex = BusExtractor(db)
    for batch, ref in ((ex.extract_1553(m), peer_1553(m, by_key)), (ex.extract_429(w), peer_429(w, by_label))):
        names = {i: n for n, i in batch.ids.items()}
        ours = sorted((names[int(p)], int(t), float(e)) for p, t, e in zip(batch.pid, batch.t_ns, batch.eu)
                      if names[int(p)] != "GPS_GS_BCD")
        theirs = sorted((n, t, float(e)) for n, t, e in ref)
        assert len(ours) == len(theirs) > 100
        for a, b in zip(ours, theirs):
            assert a[:2] == b[:2] and (a[2] == pytest.approx(b[2], rel=1e-12, nan_ok=True))
