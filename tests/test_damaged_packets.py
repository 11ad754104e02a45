"""Packets damaged the way field recorders damage them: decoded, reported loudly, archived as received.

The test file is pcm.c10 whose TMATS packet has a wrong data checksum (tests/damaged.py):
inspect, the sans-I/O ingest, live ingest over real UDP into a real recording server, replay
and export; then truncated packets and bad headers in datagrams, and recordings made before
the raw archive had a status.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request

import h5py
import numpy as np
import pytest

import recorder
from groundstation.cli import inspect_file, main
from groundstation.ingest.core import Ingest, ReceivedSpan
from telemetry_formats.ch10.packet import STATUS_DATA_CHECKSUM, STATUS_HEADER, STATUS_TRUNCATED, build_packet
from telemetry_formats.ch10.udp import build_datagrams, build_transfer_header
from tests.damaged import pcm_with_bad_tmats_checksum
from tests.live import Console, server

T0 = 1_763_000_000_000_000_000


@pytest.fixture(scope="module")
def bad_tmats(sample_dir, tmp_path_factory):
    data, offset = pcm_with_bad_tmats_checksum(sample_dir)
    path = tmp_path_factory.mktemp("damaged") / "pcm-bad-tmats-checksum.c10"
    path.write_bytes(data)
    return path, offset


def test_inspect_uses_the_tmats_and_says_so(bad_tmats):
    path, offset = bad_tmats
    r = inspect_file(path, 1970)
    assert r["tmats"]["data_checksum_error"].startswith("data checksum mismatch")
    assert r["data_checksum_errors"] == 1 and r["error_count"] == 1
    assert r["errors"][0]["offset"] == offset and r["errors"][0]["kind"] == "data_checksum"
    chans = {c["channel_id"]: c for c in r["channels"]}
    assert chans[55]["pcm"]["minor_frames"] == 884 and chans[0]["data_checksum_errors"] == 1
    strict = inspect_file(path, 1970, strict_checksums=True)
    assert strict["tmats"] is None and strict["packets"] == 52
    assert chans[55]["pcm"] != strict["channels"][-1] and "no TMATS yet" in next(
        c for c in strict["channels"] if c["channel_id"] == 55)["pcm"]["note"]
    text = subprocess.run([sys.executable, "-m", "groundstation.cli", "inspect", str(path)],
                          capture_output=True, text=True, timeout=60).stdout
    assert "WARNING: 1 packet with a bad data checksum" in text
    assert "TMATS packet at offset 0 has a bad data checksum" in text and "PFS 884 frames" in text
    js = json.loads(subprocess.run([sys.executable, "-m", "groundstation.cli", "inspect", str(path), "--json",
                                    "--strict-checksums"], capture_output=True, text=True, timeout=60).stdout)
    assert js["strict_checksums"] and js["tmats"] is None


def test_ingest_configures_from_it_unless_strict(bad_tmats):
    data = bad_tmats[0].read_bytes()
    ingest = Ingest()
    res = ingest.receive_packets(data, T0)
    assert res.configured is not None and ingest.stats.tmats_packets == 1
    assert "data checksum failed" in res.configured.problems[0]
    assert ingest.stats.checksum_errors == 1 and ingest.stats.unconfigured_packets == 0
    assert [e.kind for e in res.errors] == ["data_checksum"]
    strict = Ingest(strict_checksums=True)
    res = strict.receive_packets(data, T0)
    assert res.configured is None and strict.stats.tmats_packets == 0 and strict.stats.unconfigured_packets == 7
    # refused, still kept for the archive, first, with its status
    assert isinstance(res.packets[0], ReceivedSpan) and res.packets[0].status == STATUS_DATA_CHECKSUM
    assert len(res.packets) == 53


def test_a_damaged_tmats_whose_text_does_not_parse_is_not_used():
    body = b"\0\0\0\0" + b"G\\PN:X;P-1\\F1:\xff\xfe16;"
    raw = bytearray(build_packet(channel_id=0, data_type=1, body=body, checksum_type=2))
    raw[-1] ^= 1
    ingest = Ingest()
    res = ingest.receive_packets(bytes(raw), T0)
    assert res.configured is None and any("not used" in e and "not ASCII" in e for e in res.errors)


def _replay(path, port: int) -> str:
    proc = subprocess.run([sys.executable, "-m", "groundstation.cli", "replay", str(path), "--to",
                           f"127.0.0.1:{port}", "--speed", "afap"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("strict", [False, True])
def test_live_over_udp_recorded_and_exported_byte_for_byte(bad_tmats, tmp_path, strict):
    path, offset = bad_tmats
    folder = tmp_path / "rec"

    async def watch(srv) -> tuple[str, dict]:
        console = await Console.connect(srv.ws_url)
        out = await asyncio.to_thread(_replay, path, srv.udp_port)
        event = await console.until(lambda m: m["type"] == "integrity", 5)
        await console.close()
        return out, event

    extra = ["--strict-checksums"] if strict else []
    with server("--record", str(folder), *extra) as srv:
        out, event = asyncio.run(watch(srv))
        time.sleep(0.5)
        health = json.load(urllib.request.urlopen(srv.http_url + "/healthz", timeout=5))
        metrics = urllib.request.urlopen(srv.http_url + "/metrics", timeout=5).read().decode()
    assert "53 packets, 1,032,988 bytes" in out and "sent 1 packet with a bad data checksum" in out
    assert "skipped" not in out and "left out" not in out
    assert event["packets"] == 1 and event["used"] is (not strict)
    assert event["channels"] == [{"channel": 0, "data_type": "0x01", "name": "TMATS", "packets": 1}]
    assert health["integrity"] == {"checksum_errors": 1, "damaged_spans": 0, "strict_checksums": strict}
    assert 'gs_decode_errors_by_reason_total{reason="data_checksum"} 1.0' in metrics
    if strict:
        assert health["configured"] is None and health["ingest"]["unconfigured_packets"] == 7
    else:
        assert health["configured"]["source"] == "TMATS" and health["ingest"]["tmats_packets"] == 1
        assert health["ingest"]["unconfigured_packets"] == 0
    exported = tmp_path / "out.c10"
    assert main(["export", str(folder), "--format", "c10", "-o", str(exported)]) == 0
    assert exported.read_bytes() == path.read_bytes()  # the input, byte for byte
    rec = recorder.open(folder)
    statuses = [p.status for p in rec.iter_packets()]
    assert statuses[0] == STATUS_DATA_CHECKSUM and statuses.count(0) == 52
    events = [e for e in rec.events() if e.get("type") == "integrity"]
    assert events and events[0]["packets"] == 1
    rec.close()


def test_truncated_and_bad_header_packets_in_datagrams_are_archived():
    good = build_packet(channel_id=3, data_type=0x09, body=b"\0" * 40, checksum_type=3)
    cut = good[:30]
    bad_header = bytearray(good)
    bad_header[2] ^= 1  # channel ID: the header checksum no longer matches
    ingest = Ingest()
    res = ingest.receive(build_transfer_header(0, 0) + cut, T0, ("h", 1))
    (span,) = res.packets
    assert span.status == STATUS_TRUNCATED and span.raw == cut and span.channel_id == 3
    res = ingest.receive(build_transfer_header(0, 1) + bytes(bad_header), T0, ("h", 1))
    (span,) = res.packets
    assert span.status == STATUS_HEADER and span.raw == bytes(bad_header) and span.channel_id == -1
    res = ingest.receive(build_transfer_header(0, 2) + b"junk" * 10, T0, ("h", 1))
    assert not res.packets and [e.kind for e in res.errors] == ["udp"]  # not Chapter 10 bytes: counted only
    (dg,) = build_datagrams([good], seq_start=3)
    assert ingest.receive(dg, T0, ("h", 1)).packets[0].status == 0
    assert ingest.stats.damaged_spans == 2


def test_recordings_without_the_status_dataset_read_as_ok(tmp_path, sample_dir):
    from recorder.service import RecorderService

    data = (sample_dir / "bad.c10").read_bytes()
    rec = RecorderService(tmp_path / "r")
    rec.on_ingest(Ingest().receive_packets(data, T0), T0)
    rec.close()
    (h5,) = (tmp_path / "r").glob("*.h5")
    with h5py.File(h5, "r") as f:
        assert list(np.flatnonzero(f["packets/status"][:])) == [2]  # bad.c10's third packet
    with h5py.File(h5, "a") as f:  # as written before the status existed
        del f["packets/status"]
    old = recorder.open(tmp_path / "r")
    got = list(old.iter_packets())
    assert len(got) == 93 and {p.status for p in got} == {0}
    old.close()


def test_replay_sends_damaged_packets_unless_strict(sample_dir):
    from groundstation.replay import ReplaySchedule, open_source
    from telemetry_formats.ch10.reader import iter_packets as packets_of

    src = open_source(str(sample_dir / "bad.c10"))
    sent = [dg for _, dg in ReplaySchedule(src.packets, source="bad.c10", speed=None)]
    assert src.stats.checksum_errors == 1 and src.stats.decode_errors == 1
    assert src.stats.skipped == [(9884, 14298, "bad sync (expected 0xEB25)")]
    payload = b"".join(dg[4:] for dg in sent if b"groundstation_replay" not in dg)
    assert sum(1 for _ in packets_of(payload)) == 93
    strict = ReplaySchedule(src.packets, source="bad.c10", speed=None, strict_checksums=True)
    payload = b"".join(dg[4:] for _, dg in strict if b"groundstation_replay" not in dg)
    assert strict.stats.damaged_left_out == 1 and sum(1 for _ in packets_of(payload)) == 92
