"""PCM format 1 build/parse and decommutation against known truth, in every mode."""

from __future__ import annotations

import numpy as np
import pytest

from telemetry_formats.ch10.packet import build_packet, parse_packet
from telemetry_formats.ch10.pcm import (
    DATA_TYPE_PCM_F1,
    PcmCsdw,
    PcmLayout,
    PcmMode,
    build_pcm_body,
    split_pcm_body,
)
from telemetry_formats.decom import Decommutator
from telemetry_formats.paramdb import (
    Calibration,
    Fragment,
    FrameFormat,
    Limits,
    Parameter,
    ParameterDatabase,
    Sfid,
)

MODES = [PcmMode.UNPACKED, PcmMode.PACKED, PcmMode.THROUGHPUT]


def make_frames(frame: FrameFormat, n: int, seed: int = 0, first_count: int = 0) -> np.ndarray:
    """Random minor frames with a valid SFID counter in word ``frame.sfid.word``."""
    rng = np.random.default_rng(seed)
    widths = frame.widths()
    words = np.zeros((n, frame.words_per_minor), np.uint64)
    for j in range(1, frame.words_per_minor):
        words[:, j] = rng.integers(0, 1 << int(widths[j]), n, dtype=np.uint64)
    if frame.sfid:
        counts = (np.arange(n) % frame.minor_frames) + first_count
        words[:, frame.sfid.word] = counts.astype(np.uint64)
    # Keep data words from imitating the sync pattern at a frame boundary.
    return words


def packet_for(layout: PcmLayout, words: np.ndarray, rtc0: int = 1_000_000, seq: int = 0) -> bytes:
    frame = layout.frame
    frame_ticks = round(frame.bits_per_minor / (frame.bit_rate or 1e6) * 10_000_000)  # 10 MHz RTC
    times = rtc0 + frame_ticks * np.arange(len(words), dtype=np.uint64)
    body = build_pcm_body(layout, words, times)
    return build_packet(channel_id=7, data_type=DATA_TYPE_PCM_F1, body=body, rtc=rtc0, sequence_number=seq)


FRAME_16 = FrameFormat(
    name="f16", words_per_minor=16, word_length=16, sync_pattern=0xFE6B2840, sync_length=32,
    minor_frames=4, bit_rate=1_000_000, sfid=Sfid(word=1, first_count=0),
)
FRAME_12 = FrameFormat(
    name="f12", words_per_minor=20, word_length=12, sync_pattern=0xFAF320, sync_length=24,
    minor_frames=8, bit_rate=2_000_000, word_lengths={5: 8, 6: 16}, sfid=Sfid(word=2, first_count=1),
)
FRAME_8 = FrameFormat(name="f8", words_per_minor=10, word_length=8, sync_pattern=0xEB90, sync_length=16)


@pytest.mark.parametrize("frame", [FRAME_16, FRAME_12, FRAME_8], ids=lambda f: f.name)
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("align32", [False, True], ids=["a16", "a32"])
def test_raw_words_round_trip(frame, mode, align32):
    layout = PcmLayout(frame=frame, mode=mode, align32=align32)
    n = 64
    words = make_frames(frame, n, seed=3)
    pkt = parse_packet(packet_for(layout, words))
    csdw = PcmCsdw.parse(bytes(pkt.body[:4]))
    assert csdw.throughput == (mode is PcmMode.THROUGHPUT)
    assert csdw.align32 == align32
    dec = Decommutator(ParameterDatabase(frame=frame))
    res = dec.feed(pkt)
    assert not res.errors
    got = res.frames.words
    if mode is PcmMode.THROUGHPUT:
        # The synchronizer holds the last frame until the next packet confirms it.
        res2 = dec.feed(parse_packet(packet_for(layout, words, rtc0=2_000_000)))
        got = np.concatenate([got, res2.frames.words])[:n]
    assert got.shape == (n, frame.words_per_minor)
    np.testing.assert_array_equal(got[:, 1:], words[:, 1:].astype(np.uint32))
    assert np.all(got[:, 0] == (frame.sync_pattern & 0xFFFFFFFF))


def test_packed_pads_frame_end_and_unpacked_right_justifies():
    frame = FrameFormat(name="p", words_per_minor=3, word_length=12, sync_pattern=0xABC, sync_length=12)
    words = np.array([[0, 0x123, 0x456]], np.uint64)
    packed = build_pcm_body(PcmLayout(frame, PcmMode.PACKED), words)[4 + 10 :]
    # 36 bits -> 48 bits (3 units); transmission order ABC 123 456 then 12 pad bits
    units = np.frombuffer(packed, "<u2")
    assert list(units) == [0xABC1, 0x2345, 0x6000]
    unpacked = build_pcm_body(PcmLayout(frame, PcmMode.UNPACKED), words)[4 + 10 :]
    assert list(np.frombuffer(unpacked, "<u2")) == [0x0ABC, 0x0123, 0x0456]


def test_real_layout_intra_packet_headers():
    layout = PcmLayout(FRAME_16, PcmMode.UNPACKED)
    words = make_frames(FRAME_16, 5)
    body = build_pcm_body(layout, words, times=np.arange(5, dtype=np.uint64) + 42)
    recs = split_pcm_body(layout, body[4:])
    assert list(recs.times) == [42, 43, 44, 45, 46]
    assert list(recs.minor_status) == [3] * 5 and recs.trailing_bytes == 0


def test_parameters_supercom_subcom_fragments_encodings():
    frame = FRAME_16
    params = [
        Parameter("ALT", (Fragment(3),), calibration=Calibration(polynomial=(-1000.0, 2.0)), units="ft",
                  limits=Limits(warning_high=100_000.0, critical_high=120_000.0)),
        Parameter("VIB", (Fragment(4),), encoding="signed", word_interval=4),  # words 4, 8, 12
        Parameter("SLOW", (Fragment(5),), frame_position=2, frame_interval=4),  # minor frame 2 only
        Parameter("FLAG", (Fragment(6, mask=0x00F0),)),
        Parameter("F32", (Fragment(9), Fragment(10)), encoding="float"),
        Parameter("TAB", (Fragment(11),), calibration=Calibration(pairs=((0.0, 0.0), (65535.0, 10.0)))),
        Parameter("NEG", (Fragment(13),), encoding="signed", limits=Limits(critical_low=-100.0)),
    ]
    db = ParameterDatabase(frame=frame, parameters=params)
    n = 32
    words = make_frames(frame, n, seed=5)
    f32 = np.linspace(-5, 5, n).astype(np.float32)
    u32 = f32.view(np.uint32).astype(np.uint64)
    words[:, 9], words[:, 10] = u32 >> np.uint64(16), u32 & np.uint64(0xFFFF)
    words[:, 13] = np.where(np.arange(n) % 2 == 0, 0xFF00, 5)  # -256 or 5
    layout = PcmLayout(frame, PcmMode.UNPACKED)
    dec = Decommutator(db)
    res = dec.feed(parse_packet(packet_for(layout, words)))
    by = {name: res.samples.column(name) for name in db.names}

    t, raw, eu, lim = by["ALT"]
    np.testing.assert_array_equal(raw, words[:, 3])
    np.testing.assert_allclose(eu, -1000.0 + 2.0 * words[:, 3])
    assert np.all(lim[eu > 120_000] == 2) and np.all(lim[eu <= 100_000] == 0)

    t, raw, eu, lim = by["VIB"]
    expect = words[:, [4, 8, 12]].reshape(-1).astype(np.int64)
    expect = np.where(expect >= 32768, expect - 65536, expect)
    np.testing.assert_array_equal(eu, expect)
    assert np.all(np.diff(t) > 0), "supercommutated samples are in time order"

    t, raw, eu, lim = by["SLOW"]
    rows = np.flatnonzero(words[:, 1] == 1)  # SFID count 1 -> minor frame 2
    np.testing.assert_array_equal(raw, words[rows, 5])

    t, raw, eu, lim = by["FLAG"]
    np.testing.assert_array_equal(raw, (words[:, 6] >> np.uint64(4)) & np.uint64(0xF))

    t, raw, eu, lim = by["F32"]
    np.testing.assert_array_equal(eu.astype(np.float32), f32)

    t, raw, eu, lim = by["TAB"]
    np.testing.assert_allclose(eu, words[:, 11] / 65535.0 * 10.0)

    t, raw, eu, lim = by["NEG"]
    assert set(eu) == {-256.0, 5.0}
    np.testing.assert_array_equal(lim, np.where(eu < -100, -2, 0))

    # time of a sample = minor frame time + the word's bit offset at the bit rate
    t_alt = by["ALT"][0]
    assert t_alt[0] == 1_000_000 * 100 + (32 + 2 * 16) * 1000


def test_major_frames_assembled_by_sfid():
    frame = FRAME_16
    words = make_frames(frame, 4 * 5 + 2, seed=1)
    words = words[1:]  # start mid major frame: first 3 minor frames cannot complete one
    dec = Decommutator(ParameterDatabase(frame=frame), assemble_major=True)
    res = dec.feed(parse_packet(packet_for(PcmLayout(frame, PcmMode.PACKED), words)))
    assert len(res.major) == 4
    np.testing.assert_array_equal(res.major.words[:, :, 1], np.tile(np.arange(4), (4, 1)))
    assert dec._major.incomplete_minor_frames == 3


def test_lock_status_and_sync_errors_are_honoured():
    frame = FRAME_16
    layout = PcmLayout(frame, PcmMode.UNPACKED)
    words = make_frames(frame, 8)
    raw = bytearray(packet_for(layout, words))
    rec = layout.record_bytes
    body0 = 24 + 4
    raw[body0 + 2 * rec + 10] ^= 0xFF  # break the sync of frame 2
    raw[body0 + 5 * rec + 9] = 0x00  # frame 5: minor frame status "not locked"
    from telemetry_formats.ch10.header import parse_header

    # rebuild so that checksums are valid again (the damage is inside the data)
    pkt = parse_packet(bytes(raw))
    assert parse_header(bytes(raw)).packet_length == len(raw)
    dec = Decommutator(ParameterDatabase(frame=frame))
    res = dec.feed(pkt)
    assert len(res.frames) == 6
    assert dec.stats.sync_errors == 1 and dec.stats.unlocked_frames == 1
    assert any("without sync" in e.reason for e in res.errors)


def test_throughput_sync_search_at_any_bit_offset_and_across_packets():
    frame = FRAME_12
    layout = PcmLayout(frame, PcmMode.THROUGHPUT)
    words = make_frames(frame, 40, seed=9)
    body = build_pcm_body(layout, words)
    stream = np.unpackbits(np.frombuffer(body[4:], np.uint8).reshape(-1, 2)[:, ::-1].reshape(-1))
    rng = np.random.default_rng(2)
    junk = rng.integers(0, 2, 37).astype(np.uint8)  # 37 bits of noise before the first sync
    bits = np.concatenate([junk, stream])
    bits = np.concatenate([bits, np.zeros(-len(bits) % 16, np.uint8)])
    stored = np.packbits(bits).reshape(-1, 2)[:, ::-1].reshape(-1).tobytes()
    csdw = body[:4]
    dec = Decommutator(ParameterDatabase(frame=frame))
    half = len(stored) // 2 & ~1
    got = []
    for i, chunk in enumerate((stored[:half], stored[half:])):
        pkt = parse_packet(build_packet(channel_id=3, data_type=DATA_TYPE_PCM_F1, body=csdw + chunk, rtc=i * 1000))
        got.append(dec.feed(pkt).frames.words)
    got = np.concatenate(got)
    assert len(got) >= 38
    np.testing.assert_array_equal(got[:, 1:], words[: len(got), 1:].astype(np.uint32))
    assert dec.stats.sync_losses == 0


def test_throughput_loses_and_regains_lock():
    frame = FRAME_16
    layout = PcmLayout(frame, PcmMode.THROUGHPUT)
    words = make_frames(frame, 30, seed=4)
    body = bytearray(build_pcm_body(layout, words))
    frame_bytes = layout.frame_bits // 8
    body[4 + 10 * frame_bytes] ^= 0x40  # corrupt sync of frame 10
    dec = Decommutator(ParameterDatabase(frame=frame))
    res = dec.feed(parse_packet(build_packet(channel_id=3, data_type=DATA_TYPE_PCM_F1, body=bytes(body))))
    assert dec.stats.sync_losses == 1
    expect = np.delete(words, 10, axis=0)[: len(res.frames)]
    assert len(res.frames) >= 26  # frames 0-9 and 11..28 (the last waits for confirmation)
    np.testing.assert_array_equal(res.frames.words[:, 2:], expect[:, 2:].astype(np.uint32))


def test_wrong_packet_type_and_garbage_body_are_errors_not_exceptions():
    dec = Decommutator(ParameterDatabase(frame=FRAME_16))
    res = dec.feed(parse_packet(build_packet(channel_id=1, data_type=0x11, body=b"\0" * 12)))
    assert res.errors and len(res.frames) == 0
    rng = np.random.default_rng(0)
    for _ in range(200):
        body = rng.bytes(int(rng.integers(4, 400)))
        res = dec.feed(parse_packet(build_packet(channel_id=1, data_type=DATA_TYPE_PCM_F1, body=body)))
        assert isinstance(res.errors, list)


@pytest.mark.parametrize("mode", [PcmMode.UNPACKED, PcmMode.PACKED], ids=lambda m: m.value)
@pytest.mark.parametrize("align32", [False, True], ids=["a16", "a32"])
def test_unit_fast_path_agrees_with_bit_stream_reader_and_construct(mode, align32):
    from telemetry_formats.ch10.pcm import IntraPacketHeader
    from telemetry_formats.decom.frames import read_words, sync_ok
    from telemetry_formats.decom.units import UnitReader

    frame = FRAME_16
    layout = PcmLayout(frame, mode, align32)
    words = make_frames(frame, 12, seed=7)
    raw = bytearray(packet_for(layout, words))
    body0, rec = 24 + 4, layout.record_bytes
    raw[body0 + 3 * rec + layout.iph_bytes + 1] ^= 0x10  # frame 3: a sync bit flipped
    raw[body0 + 7 * rec + 9] = 0x40  # frame 7: minor frame status 01 (not locked)
    pkt = parse_packet(bytes(raw))
    recs = split_pcm_body(layout, pkt.data)
    for i in range(len(recs.times)):  # the strided views read what the construct definition reads
        iph = IntraPacketHeader.parse(bytes(pkt.data[i * rec : i * rec + layout.iph_bytes]), align32=align32)
        assert recs.times[i] == iph.time and recs.minor_status[i] == iph.data_header.minor_status
        assert recs.major_status[i] == iph.data_header.major_status
    units = UnitReader(layout)
    expect_sync = sync_ok(recs.stream, recs.frame_start_bits, layout)
    assert list(np.flatnonzero(~expect_sync)) == [3]
    np.testing.assert_array_equal(units.sync_ok(recs.units16), expect_sync)
    dec = Decommutator(ParameterDatabase(frame=frame, parameters=[Parameter("W", (Fragment(2),))]))
    res = dec.feed(pkt)
    keep = np.ones(12, bool)
    keep[[3, 7]] = False
    assert res.frames.units is not None, "16-bit words take the unit path"
    np.testing.assert_array_equal(res.frames.words, read_words(recs.stream, recs.frame_start_bits[keep], layout))
    np.testing.assert_array_equal(res.frames.frame_number, (np.flatnonzero(keep) % 4) + 1)
    np.testing.assert_array_equal(res.samples.column("W")[1], words[keep, 2])
    assert dec.stats.sync_errors == 1 and dec.stats.unlocked_frames == 1


def test_grid_constants_follow_packet_size_and_pair_tables_switch_to_lookup(monkeypatch):
    from telemetry_formats.decom import slots

    monkeypatch.setattr(slots._PairTable, "PAYBACK", 0)  # switch after the first packet
    frame = FRAME_16
    pairs = Calibration(pairs=((0.0, -5.0), (1000.0, 0.0), (65535.0, 100.0)))
    params = [
        Parameter("TAB_U", (Fragment(2),), calibration=pairs, limits=Limits(warning_high=50.0)),
        Parameter("TAB_S", (Fragment(3),), encoding="signed", calibration=pairs),
        Parameter("POLY", (Fragment(4),), encoding="signed", calibration=Calibration(polynomial=(1.0, 0.5, 1e-3)),
                  limits=Limits(warning_low=-10.0, critical_low=-1000.0, critical_high=1e6)),
    ]
    db = ParameterDatabase(frame=frame, parameters=params)
    dec = Decommutator(db)
    layout = PcmLayout(frame, PcmMode.UNPACKED)
    signed = lambda w: np.where(w >= 32768, w.astype(np.int64) - 65536, w.astype(np.int64)).astype(float)  # noqa: E731
    for i, n in enumerate([5, 40, 5, 3000, 7, 3000, 40]):
        words = make_frames(frame, n, seed=i)
        res = dec.feed(parse_packet(packet_for(layout, words)))
        _, raw, eu, lim = res.samples.column("TAB_U")
        np.testing.assert_array_equal(raw, words[:, 2])
        np.testing.assert_allclose(eu, pairs.apply(words[:, 2].astype(float)), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(lim, (eu > 50.0).astype(np.int8))
        np.testing.assert_allclose(res.samples.column("TAB_S")[2], pairs.apply(signed(words[:, 3])), rtol=0, atol=1e-12)
        x = signed(words[:, 4])
        eu = res.samples.column("POLY")[2]
        np.testing.assert_allclose(eu, 1.0 + 0.5 * x + 1e-3 * x * x)
        np.testing.assert_array_equal(res.samples.column("POLY")[3], (eu > 1e6) * 2 - (eu < -10.0) - (eu < -1000.0))
    assert all(t.lut is not None for _, _, t in dec.plan.grid.pair_ranges)


def _burst(frame: FrameFormat, mode: PcmMode, align32: bool) -> list[bytes]:
    """Packets of one channel as a burst: good ones, one with a broken sync and one
    unlocked frame, one with trailing bytes, a time packet and a garbage PCM body."""
    layout = PcmLayout(frame, mode, align32)
    out = []
    for i in range(6):
        words = make_frames(frame, 5 + i, seed=20 + i, first_count=i % frame.minor_frames)
        raw = bytearray(packet_for(layout, words, rtc0=1_000_000 + 100_000 * i, seq=i))
        if i == 2 and mode is not PcmMode.THROUGHPUT:
            raw[28 + layout.record_bytes + layout.iph_bytes] ^= 0x5A  # frame 1: sync broken
            raw[28 + 3 * layout.record_bytes + 9] = 0x00  # frame 3: not locked
        out.append(bytes(raw))
    body = build_pcm_body(layout, make_frames(frame, 3, seed=40))
    out.insert(4, build_packet(channel_id=7, data_type=DATA_TYPE_PCM_F1, body=body + b"\0\0\0\0"))
    out.insert(1, build_packet(channel_id=7, data_type=0x11, body=b"\0" * 12))
    out.append(build_packet(channel_id=7, data_type=DATA_TYPE_PCM_F1, body=b"\xff" * 40))
    return out


@pytest.mark.parametrize("frame", [FRAME_16, FRAME_12], ids=lambda f: f.name)
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("align32", [False, True], ids=["a16", "a32"])
def test_feed_many_equals_feeding_one_by_one(frame, mode, align32):
    """A burst decoded in one call gives each parameter the same samples, in the same
    order, and the same errors and counters as one ``feed`` per packet."""
    params = [Parameter("A", (Fragment(3),), calibration=Calibration(polynomial=(1.0, 0.5)),
                        limits=Limits(warning_high=100.0)),
              Parameter("B", (Fragment(4),), encoding="signed", word_interval=8),
              Parameter("C", (Fragment(5),), frame_position=2, frame_interval=frame.minor_frames)]
    db = ParameterDatabase(frame=frame, parameters=params)
    packets = [parse_packet(p) for p in _burst(frame, mode, align32)]
    one, many = Decommutator(db, assemble_major=True), Decommutator(db, assemble_major=True)
    singles = [one.feed(p) for p in packets]
    burst = many.feed_many(packets)
    assert one.stats.as_dict() == many.stats.as_dict()
    assert [str(e) for r in singles for e in r.errors] == [str(e) for e in burst.errors]
    np.testing.assert_array_equal(np.concatenate([r.frames.words for r in singles]), burst.frames.words)
    for name in ("A", "B", "C"):
        want = [r.samples.column(name) for r in singles if len(r.samples)]
        for a, b in zip((np.concatenate(c) for c in zip(*want)), burst.samples.column(name)):
            np.testing.assert_array_equal(a, b)
    assert len(burst.major) == sum(len(r.major) for r in singles if r.major is not None)
    assert len(many.feed_many([]).frames) == 0


def test_feed_many_of_garbage_bursts_equals_feeding_one_by_one():
    """Random records behind real CSDWs (runs of whole records, so decoded together) and random
    bodies: never an exception, and the same errors and counters as one ``feed`` per packet."""
    frame = FRAME_16
    db = ParameterDatabase(frame=frame, parameters=[Parameter("A", (Fragment(3),), frame_position=2)])
    rng = np.random.default_rng(7)
    for mode, align32 in [(PcmMode.UNPACKED, False), (PcmMode.PACKED, True)]:
        layout = PcmLayout(frame, mode, align32)
        csdw = build_pcm_body(layout, make_frames(frame, 1))[:4]
        one, many = Decommutator(db), Decommutator(db)
        for _ in range(30):
            packets = []
            for _ in range(int(rng.integers(1, 6))):
                if rng.random() < 0.8:
                    body = csdw + rng.bytes(layout.record_bytes * int(rng.integers(1, 8)))
                else:
                    body = rng.bytes(int(rng.integers(4, 300)))
                packets.append(parse_packet(build_packet(channel_id=7, data_type=DATA_TYPE_PCM_F1, body=body)))
            singles = [one.feed(p) for p in packets]
            burst = many.feed_many(packets)
            assert [str(e) for r in singles for e in r.errors] == [str(e) for e in burst.errors]
            assert sum(len(r.samples) for r in singles) == len(burst.samples)
        assert one.stats.as_dict() == many.stats.as_dict()
