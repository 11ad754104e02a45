"""Bus monitor: every observed 1553 message key and ARINC-429 label with counts, rates, errors, latest words."""

from __future__ import annotations

import pytest

from telemetry_formats.busmonitor import BusMonitor
from telemetry_formats.ch10.arinc429 import DATA_TYPE_ARINC429_F0, build_429_body, decode_429, make_word
from telemetry_formats.ch10.mil1553 import DATA_TYPE_1553_F1, command_word, decode_1553
from telemetry_formats.ch10.mil1553_build import build_1553_body
from telemetry_formats.ch10.packet import Packet, build_packet, parse_packet
from telemetry_formats.ch10.reader import iter_packets


def p1553(msgs, channel_id=5, **kw) -> Packet:
    return parse_packet(build_packet(channel_id=channel_id, data_type=DATA_TYPE_1553_F1, body=build_1553_body(msgs, **kw)))


def p429(words, channel_id=6, rtc=0) -> Packet:
    return parse_packet(build_packet(channel_id=channel_id, data_type=DATA_TYPE_ARINC429_F0,
                                     body=build_429_body(words), rtc=rtc))


def test_1553_keys_counts_rates_errors_and_latest_words():
    mon = BusMonitor()
    for pkt in range(3):  # 3 packets of 10 ms: RT 1 SA 2 every 1 ms, RT 3 T SA 4 every 2 ms
        msgs = []
        for i in range(10):
            t = 10_000 * (pkt * 10 + i)  # 1 ms in RTC counts
            msgs.append(dict(rt=1, tr=0, subaddress=2, data=[pkt, i], rtc=t, bus_b=i % 2 == 1))
            if i % 2 == 0:
                msgs.append(dict(rt=3, tr=1, subaddress=4, data=[7] * 32, rtc=t + 1, status=3 << 11 | 1,
                                 response_timeout=(pkt, i) == (1, 4)))
        mon.feed(decode_1553(p1553(msgs)))
    mon.feed(decode_1553(p1553([dict(rt=1, subaddress=2, rt2=9, subaddress2=8, data=[5], rtc=0)])))
    mon.feed(decode_1553(p1553([dict(rt=7, subaddress=31, mode_code=17, data=[0xBEEF], tr=0, rtc=0)], channel_id=6)))
    rows = {(r["channel_id"], r["rt"], r["tr"], r["subaddress"], r["word_count"]): r for r in mon.snapshot()["mil1553"]}
    a = rows[(5, 1, "R", 2, 2)]
    assert a["count"] == 30 and a["error_count"] == 0 and a["bus_b"] == 15
    assert abs(a["rate_hz"] - 1000.0) < 1e-6
    assert a["latest"] == {"status": 1 << 11, "data": [2, 9]}
    b = rows[(5, 3, "T", 4, 32)]
    assert b["count"] == 15 and b["errors"] == {"response_timeout": 1} and abs(b["rate_hz"] - 500.0) < 1e-6
    assert b["latest"]["status"] == 3 << 11 | 1 and b["latest"]["data"] == [7] * 32
    rr = rows[(5, 1, "R", 2, 1)]
    assert rr["rt_to_rt"] == {"rt": 9, "subaddress": 8, "command": command_word(9, 1, 8, 1)} and rr["count"] == 1
    mc = rows[(6, 7, "R", 31, None)]
    assert mc["mode_code"] == 17 and mc["latest"]["data"] == [0xBEEF] and mc["rate_hz"] is None


def test_1553_undecodable_messages_are_counted_by_reason():
    mon = BusMonitor()
    good = dict(rt=1, subaddress=2, data=[1])
    body = build_1553_body([good, dict(rt=4, subaddress=5, word_count=3, data=[1]), good])
    mon.feed(decode_1553(parse_packet(build_packet(channel_id=5, data_type=DATA_TYPE_1553_F1, body=body[:-2]))))
    snap = mon.snapshot()
    rows = {(r["rt"], r["subaddress"]): r for r in snap["mil1553"]}
    assert rows[(1, 2)]["count"] == 1
    assert rows[(4, 5)]["errors"] == {"length disagrees with command word": 1} and rows[(4, 5)]["count"] == 1
    assert snap["undecoded"] == [{"channel_id": 5, "bus": "1553", "reason": "truncated message", "count": 1}]


def test_arinc_labels_ssm_and_parity_errors():
    mon = BusMonitor()
    for pkt in range(2):
        words = []
        for i in range(8):
            words.append(dict(label=0o203, data=i, sdi=1, ssm=3 if i else 1, bus=2, gap=5000))  # every 0.5 ms
            w310 = make_word(0o310, 0x40000 | i, ssm=3) ^ (1 << 31 if i == 5 else 0)  # word 5: parity flipped
            words.append(dict(word=w310, bus=2, gap=5000, parity_error=i == 3))
        mon.feed(decode_429(p429(words, rtc=pkt * 80_000)))
    mon.feed(decode_429(p429([dict(label=0o203, sdi=1, bus=3)])))
    rows = {(r["bus"], r["label_octal"], r["sdi"]): r for r in mon.snapshot()["arinc429"]}
    a = rows[(2, "203", 1)]
    assert a["count"] == 16 and a["ssm"] == {"1": 2, "3": 14} and a["error_count"] == 0
    assert abs(a["rate_hz"] - 1000.0) < 1e-6  # every 10,000 RTC counts
    assert a["latest"]["data"] == 7 and a["latest"]["ssm"] == 3
    b = rows[(2, "310", 0)]
    assert b["errors"] == {"parity check failed": 2, "parity error": 2} and b["error_count"] == 4
    assert rows[(3, "203", 1)]["count"] == 1


def test_pcm_c10_every_message_and_word_is_listed(sample_dir):
    mon = BusMonitor()
    for p in iter_packets((sample_dir / "pcm.c10").read_bytes()):
        if isinstance(p, Packet) and p.data_type == DATA_TYPE_1553_F1:
            mon.feed(decode_1553(p))
        elif isinstance(p, Packet) and p.data_type == DATA_TYPE_ARINC429_F0:
            mon.feed(decode_429(p))
    snap = mon.snapshot()
    per_channel: dict[int, int] = {}
    for r in snap["mil1553"]:
        per_channel[r["channel_id"]] = per_channel.get(r["channel_id"], 0) + r["count"]
    assert sorted(per_channel) == list(range(87, 95)) and sum(per_channel.values()) == 411
    assert sum(r["count"] for r in snap["arinc429"]) == 1303
    assert {r["channel_id"] for r in snap["arinc429"]} == set(range(73, 87))
    assert snap["undecoded"] == []
    assert set(mon.channels()) == set(range(73, 95))


def test_recent_rate_follows_a_rate_change_the_mean_rate_lags():
    mon = BusMonitor()
    t = 0
    for per_packet, step in [(100, 10_000)] * 15 + [(10, 100_000)] * 15:  # 1.5 s at 1 kHz, then 1.5 s at 100 Hz
        msgs = []
        for _ in range(per_packet):
            msgs.append(dict(rt=1, subaddress=2, data=[1], rtc=t))
            t += step
        mon.feed(decode_1553(p1553(msgs)))
    (row,) = mon.snapshot()["mil1553"]
    assert row["recent_rate_hz"] == pytest.approx(100.0, rel=0.02)
    assert 500 < row["rate_hz"] < 600  # 1,650 messages over 3 s
