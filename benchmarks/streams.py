"""Synthetic Chapter 10 PCM streams for benchmarks: a simulator-like frame and parameter set."""

from __future__ import annotations

import numpy as np

from telemetry_formats.ch10.packet import build_packet
from telemetry_formats.ch10.pcm import DATA_TYPE_PCM_F1, PcmLayout, PcmMode, build_pcm_body
from telemetry_formats.paramdb import (
    Calibration,
    Fragment,
    FrameFormat,
    Limits,
    Parameter,
    ParameterDatabase,
    Sfid,
)

FRAME = FrameFormat(
    name="bench", words_per_minor=64, word_length=16, sync_pattern=0xFE6B2840, sync_length=32,
    minor_frames=16, bit_rate=10_000_000, sfid=Sfid(word=1, length=4),
)


def parameters(n_simple: int = 30) -> list[Parameter]:
    """A realistic mix: simple calibrated words, supercommutated, subcommutated, pair tables."""
    params = []
    for i in range(n_simple):
        poly = (float(i), 0.5, 1e-6)[: 2 + (i % 2)]
        lim = Limits(warning_high=20000.0, critical_high=30000.0) if i % 2 else Limits()
        cal = Calibration(pairs=((0.0, 0.0), (32768.0, 50.0), (65535.0, 200.0))) if i % 10 == 9 else Calibration(polynomial=poly)
        params.append(Parameter(f"S{i:02d}", (Fragment(2 + i),), calibration=cal, limits=lim,
                                encoding="signed" if i % 3 == 0 else "unsigned"))
    for i in range(4):
        params.append(Parameter(f"FAST{i}", (Fragment(40 + i),), word_interval=16, encoding="signed",
                                calibration=Calibration(polynomial=(0.0, 0.001))))
    for i in range(6):
        params.append(Parameter(f"SLOW{i}", (Fragment(36),), frame_position=i + 1, frame_interval=16,
                                calibration=Calibration(polynomial=(-40.0, 0.01))))
    return params


def database(n_simple: int = 30) -> ParameterDatabase:
    return ParameterDatabase(frame=FRAME, parameters=parameters(n_simple))


def pcm_stream(total_bytes: int, frames_per_packet: int, seed: int = 0) -> bytes:
    """Concatenated PCM F1 packets (unpacked, intra-packet headers) of random frames."""
    rng = np.random.default_rng(seed)
    layout = PcmLayout(FRAME, PcmMode.UNPACKED)
    ticks = round(FRAME.bits_per_minor / FRAME.bit_rate * 10_000_000)
    out, n, seq, rtc = [], 0, 0, 0
    while n < total_bytes:
        words = rng.integers(0, 1 << 16, (frames_per_packet, 64), dtype=np.uint64)
        words[:, 1] = ((np.arange(frames_per_packet) + seq * frames_per_packet) % 16) << 12  # SFID: top 4 bits
        times = rtc + ticks * np.arange(frames_per_packet, dtype=np.uint64)
        pkt = build_packet(channel_id=3, data_type=DATA_TYPE_PCM_F1, sequence_number=seq,
                           body=build_pcm_body(layout, words, times), rtc=rtc)
        out.append(pkt)
        n += len(pkt)
        seq += 1
        rtc += ticks * frames_per_packet
    return b"".join(out)
