"""``inspect`` on bus channels: a 1553 message table and an ARINC-429 label table per channel, in text and JSON."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from groundstation.cli import inspect_file

chapter10 = pytest.importorskip("chapter10")


def test_json_tables_match_pychapter10_counts_per_channel(sample_dir):
    path = sample_dir / "pcm.c10"
    r = inspect_file(path, 1970)
    theirs: dict[int, int] = {}
    for p in chapter10.C10(io.BytesIO(path.read_bytes())):
        if p.data_type in (0x19, 0x38):
            theirs[p.channel_id] = theirs.get(p.channel_id, 0) + sum(1 for _ in p)
    ours = {}
    for c in r["channels"]:
        for kind, rows in (("mil1553", "messages"), ("arinc429", "labels")):
            if kind in c:
                sec = c[kind]
                assert sec["count"] == sum(row["count"] for row in sec[rows])
                assert sec["errors"] == {} and sec["problems"] == []
                ours[c["channel_id"]] = sec["count"]
    assert ours == theirs
    assert sum(v for k, v in ours.items() if k >= 87) == 411 and sum(v for k, v in ours.items() if k < 87) == 1303
    (row,) = next(c for c in r["channels"] if c["channel_id"] == 87)["mil1553"]["messages"]
    assert (row["rt"], row["tr"], row["subaddress"], row["word_count"], row["count"]) == (1, "R", 11, 31, 51)
    assert row["rate_hz"] == pytest.approx(50 / ((row["last_rtc"] - row["first_rtc"]) / 1e7))
    assert r["error_count"] == 0  # bus problems are per channel, not stream errors


def test_damaged_file_lists_bus_problems_with_offset_and_index(sample_dir):
    proc = subprocess.run([sys.executable, "-m", "groundstation.cli", "inspect", str(sample_dir / "bad.c10"), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    chans = {c["channel_id"]: c for c in json.loads(proc.stdout)["channels"]}
    m = chans[2]["mil1553"]
    assert m["errors"] == {"message_error": 3, "response_timeout": 3} and m["problem_count"] == 3
    assert m["problems"][0] == "offset 133634: 1553 message 0: block status: message error, response timeout"
    bad = [row for row in m["messages"] if row["error_count"]]
    assert [(row["rt"], row["subaddress"], row["error_count"]) for row in bad] == [(8, 1, 3)]
    assert any(row["rt_to_rt"] for row in m["messages"])  # RT-to-RT recognised without its block status bit
    assert all("arinc429" in chans[ch] for ch in range(6, 12))


def test_text_output_has_a_table_per_bus_channel(sample_dir):
    proc = subprocess.run([sys.executable, "-m", "groundstation.cli", "inspect", str(sample_dir / "pcm.c10")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("MIL-STD-1553, ") == 8 and out.count("ARINC-429, ") == 14
    assert "Channel 87: MIL-STD-1553, 51 messages, errors: none" in out
    assert "   1   R 11 31      51" in out
    assert "Channel 73: ARINC-429, 118 words, errors: none" in out
    assert "    0   114   3      50" in out
