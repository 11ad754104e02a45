"""``groundstation inspect`` as a user runs it: a real process on real recordings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from groundstation.cli import inspect_file


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "groundstation.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_inspect_pcm_json_reports_every_channel_and_pcm_frames(sample_dir):
    proc = run("inspect", str(sample_dir / "pcm.c10"), "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["bytes"] == 1_032_988 and r["error_count"] == 0
    chans = {c["channel_id"]: c for c in r["channels"]}
    assert {0, 1, 43, 44, 51, 52, 53, 54, 55, 56, 59, 60, 61, 62}.issubset(chans)
    assert sum(c["packets"] for c in r["channels"]) == r["packets"] == 53
    assert chans[55]["pcm"]["minor_frames"] == 884 and chans[55]["pcm"]["packing"] == "PFS"
    assert chans[56]["pcm"]["minor_frames"] == 884 and chans[56]["pcm"]["packing"] == "UN"
    assert chans[52]["pcm"]["minor_frames"] == 511  # throughput mode, found by sync search
    assert chans[51]["pcm"]["minor_frames"] == 0 and chans[51]["pcm"]["unsynced_bits"] > 0  # PN15 noise
    assert chans[1]["data_types"][0]["name"] == "Time F1"
    assert r["tmats"]["irig106_version"] == "07" and len(r["tmats"]["pcm_links"]) == 8
    assert r["time"]["first"]["day_of_year"] == 97 and r["time"]["correlated"]


def test_inspect_text_output(sample_dir):
    proc = run("inspect", str(sample_dir / "pcm.c10"))
    assert proc.returncode == 0, proc.stderr
    assert "METS Pattern1 Packed" in proc.stdout
    assert "'METS Pattern1 Packed' PFS 884 frames" in proc.stdout  # each channel names its PCM link
    assert "PFS = packed" in proc.stdout and "TM = throughput" in proc.stdout and "UN = unpacked" in proc.stdout


def test_inspect_discrete_time_span(sample_dir):
    r = inspect_file(sample_dir / "discrete.c10", 2020)
    time_chan = next(c for c in r["channels"] if c["channel_id"] == 1)
    assert time_chan["packets"] == 61
    assert time_chan["time_span_s"] == pytest.approx(60.0, abs=1e-3)
    assert r["time"]["time_jumps"] == 0


def test_inspect_damaged_file_reports_offsets_and_reasons(sample_dir):
    proc = run("inspect", str(sample_dir / "bad.c10"), "--json")
    assert proc.returncode == 0
    r = json.loads(proc.stdout)
    reasons = {(e["offset"], e["channel_id"]): e["reason"] for e in r["errors"]}
    assert "data checksum mismatch" in reasons[(6716, 3)]
    assert any(off == 9884 for off, _ in reasons)
    assert r["packets"] == 93  # the packet with the bad data checksum is decoded, and reported
    assert r["data_checksum_errors"] == 1
    assert next(c for c in r["channels"] if c["channel_id"] == 3)["data_checksum_errors"] == 1
    # every byte is accounted for: packets plus reported bad spans (the damaged packet once)
    assert r["bytes"] == (sample_dir / "bad.c10").stat().st_size
    strict = json.loads(run("inspect", str(sample_dir / "bad.c10"), "--json", "--strict-checksums").stdout)
    assert strict["packets"] == 92 and strict["data_checksum_errors"] == 1 and strict["strict_checksums"]
    assert strict["bytes"] == r["bytes"]


def test_truncated_last_packet_is_reported_not_fatal(sample_dir, tmp_path):
    data = (sample_dir / "pcm.c10").read_bytes()
    cut = tmp_path / "cut.c10"
    cut.write_bytes(data[:-1000])
    proc = run("inspect", str(cut), "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["packets"] == 52
    assert any("truncated" in e["reason"] for e in r["errors"])
    assert r["bytes"] == len(data) - 1000


def test_missing_file_exit_code():
    proc = run("inspect", "/nonexistent.c10")
    assert proc.returncode == 2 and "no such file" in proc.stderr
