"""Decommutation + calibration throughput, side by side with pychapter10 on the same packets.

Ours: parse every packet of the stream (headers and checksums verified) and
decommutate it into calibrated, limit-checked parameter blocks (40 parameters:
simple, supercommutated, subcommutated, polynomial and table calibration).

Peer: pychapter10 walking the same bytes and iterating every minor frame of
every PCM packet. pychapter10 assumes 12-byte PCM messages, so its message
length is set to this frame's 130 bytes to make it read real frames; it does
no decommutation or calibration at all, so the ratio flatters the peer.

Ours is run twice: one ``feed`` per packet (a datagram at a time), and
``feed_many`` over bursts of ``BURST`` packets (what one wake-up of the UDP
reader or one chunk of a .c10 file holds), which pays the fixed cost of a
call once per burst.
"""

from __future__ import annotations

import statistics

import pytest
from conftest import record
from streams import database, pcm_stream

from telemetry_formats.ch10.reader import iter_packets
from telemetry_formats.decom import Decommutator

STREAM_BYTES = 8 << 20
PEER_BYTES = 1 << 20  # the peer is slow: a smaller stream keeps the run short
BURST = 8  # packets per feed_many call


@pytest.fixture(scope="module", params=[100, 500], ids=["13KB-packets", "65KB-packets"])
def stream(request):
    return request.param, pcm_stream(STREAM_BYTES, request.param), pcm_stream(PEER_BYTES, request.param)


def _ours(data: bytes) -> int:
    dec = Decommutator(database())
    samples = 0
    for p in iter_packets(data):
        samples += len(dec.feed(p).samples)
    return samples


def _ours_bursts(data: bytes) -> int:
    dec = Decommutator(database())
    packets = list(iter_packets(data))  # parsed inside the timed call, as in _ours
    return sum(len(dec.feed_many(packets[i : i + BURST]).samples) for i in range(0, len(packets), BURST))


def _pychapter10_frames(data: bytes):
    """Every PCM minor frame's bytes as pychapter10 walks the stream (message length set to the real 130)."""
    from chapter10 import C10
    from chapter10.pcm import PCMF1

    PCMF1.Message.length = 130
    for packet in C10.from_string(data):
        if packet.data_type == 0x09:
            for msg in packet:
                yield msg.data  # touch the frame bytes as a user would


def _peer(data: bytes) -> int:
    return sum(1 for _ in _pychapter10_frames(data))


def _peer_words(data: bytes) -> int:
    """pychapter10 plus the least a user adds to get at the words: one numpy view per frame."""
    import numpy as np

    return sum(len(np.frombuffer(frame, "<u2")) for frame in _pychapter10_frames(data))


def _mb_s(benchmark, n_bytes: int) -> float:
    return n_bytes / statistics.median(benchmark.stats.stats.data) / 1e6


def _bench_ours(benchmark, stream, decode, label: str) -> None:
    fpp, data, _ = stream
    samples = benchmark.pedantic(decode, args=(data,), rounds=7, iterations=1)
    mbs = _mb_s(benchmark, len(data))
    benchmark.extra_info.update(mb_per_s=round(mbs, 1), samples=samples)
    record(f"decom+calibration ours{label}  ({fpp} frames/packet)", MB_s=round(mbs, 1),
           Msamples_s=round(samples / statistics.median(benchmark.stats.stats.data) / 1e6, 1))


def test_ours(benchmark, stream):
    _bench_ours(benchmark, stream, _ours, "")


def test_ours_bursts(benchmark, stream):
    _bench_ours(benchmark, stream, _ours_bursts, f", bursts of {BURST}")


def test_pychapter10(benchmark, stream):
    fpp, _, data = stream
    frames = benchmark.pedantic(_peer, args=(data,), rounds=5, iterations=1)
    mbs = _mb_s(benchmark, len(data))
    benchmark.extra_info.update(mb_per_s=round(mbs, 2), frames=frames)
    record(f"pychapter10 frame walk ({fpp} frames/packet)", MB_s=round(mbs, 2))


def test_pychapter10_words(benchmark, stream):
    fpp, _, data = stream
    benchmark.pedantic(_peer_words, args=(data,), rounds=5, iterations=1)
    mbs = _mb_s(benchmark, len(data))
    benchmark.extra_info.update(mb_per_s=round(mbs, 2))
    record(f"pychapter10 + numpy words ({fpp} frames/packet)", MB_s=round(mbs, 2))
