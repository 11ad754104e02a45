"""Rules that exist once: the RTC wrap, the replay marker, the CRC-16."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from groundstation.ingest.core import Ingest
from groundstation.replay_schedule import build_marker as schedule_build_marker
from telemetry_formats.ch10.packet import build_packet, parse_packet
from telemetry_formats.ch10.replay_marker import (
    MARKER_KEY,
    build_marker,
    is_replay_marker,
    packet_marker,
    parse_marker,
)
from telemetry_formats.ch10.rtc import RTC_MASK, RTC_MOD, rtc_delta

rtc = st.integers(0, RTC_MASK)


@given(rtc, st.integers(-(RTC_MOD // 2), RTC_MOD // 2 - 1))
def test_rtc_delta_inverts_a_wrapped_step(ref: int, step: int) -> None:
    later = (ref + step) & RTC_MASK
    assert rtc_delta(later, ref) == step
    assert rtc_delta(np.array([later], dtype=np.int64), ref).tolist() == [step]


def test_rtc_delta_known_values() -> None:
    assert rtc_delta(5, RTC_MASK) == 6  # forwards across the wrap
    assert rtc_delta(RTC_MASK, 5) == -6  # backwards across the wrap
    assert rtc_delta(1 << 47, 0) == -(1 << 47)  # half the range is read as backwards
    got = rtc_delta(np.array([0, 10, RTC_MASK], dtype=np.uint64).astype(np.int64), 10)
    assert got.dtype == np.int64 and got.tolist() == [-10, 0, -11]


def test_marker_round_trip_and_one_definition() -> None:
    raw = build_marker("FT-042.h5", 4.0, 12.0, rtc=RTC_MOD + 7, sequence_number=300)
    assert schedule_build_marker is build_marker
    assert parse_marker(raw) == {"source": "FT-042.h5", "speed": 4, "position_s": 12.0}
    p = parse_packet(raw)
    assert p.header.rtc == 7 and p.header.sequence_number == 300 & 0xFF
    assert packet_marker(p) == parse_marker(raw)
    assert parse_marker(build_marker("x", None, 0))["speed"] == "afap"


def test_not_a_marker() -> None:
    other = build_packet(channel_id=0, data_type=0, body=b"\0\0\0\0" + b'{"other": {}}')
    assert not is_replay_marker(other) and packet_marker(parse_packet(other)) is None
    on_channel_3 = build_packet(channel_id=3, data_type=0, body=b"\0\0\0\0" + f'{{"{MARKER_KEY}": {{}}}}'.encode())
    assert not is_replay_marker(on_channel_3)
    assert not is_replay_marker(b"\x25\xeb" + b"\0" * 10)


def test_ingest_provisional_time_uses_the_wrap() -> None:
    ing = Ingest()
    ing.clock.provisional(RTC_MASK - 4, 1_000)
    assert ing.to_utc_ns(np.array([RTC_MASK, 5])).tolist() == [1_000 + 4 * 100, 1_000 + 10 * 100]


def _crc16_bitwise(data: bytes, init: int = 0xFFFF) -> int:
    """The hand-written CRC-16/CCITT-FALSE that checksum.py used before ``binascii.crc_hqx`` (the oracle)."""
    table = []
    for byte in range(256):
        c = byte << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    crc = init
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc


@given(st.binary(max_size=2048), st.integers(0, 0xFFFF))
def test_crc16_is_crc_hqx_same_results(data: bytes, init: int) -> None:
    from telemetry_formats.checksum import crc16_ccitt

    assert crc16_ccitt(data, init) == _crc16_bitwise(data, init)
    assert crc16_ccitt(data) == _crc16_bitwise(data)


def test_crc16_random_blocks() -> None:
    from telemetry_formats.checksum import crc16_ccitt

    rng = np.random.default_rng(16)
    for n in rng.integers(0, 5000, 200):
        data = rng.bytes(int(n))
        assert crc16_ccitt(data) == _crc16_bitwise(data)


def test_redis_without_a_role_is_refused() -> None:
    import asyncio

    import pytest

    from groundstation.server.start import start_station
    from groundstation.server.station import StationConfig

    with pytest.raises(ValueError, match="needs --role ingest or edge"):
        asyncio.run(start_station(StationConfig(redis_url="redis://127.0.0.1:1/0")))


def test_blob_dtype_table_is_written_once() -> None:
    """codec.js's table, protocol.md's tables and its Python example agree with ``protocol.BLOB_DTYPES``."""
    import ast
    import re
    from pathlib import Path

    from groundstation.console.protocol import BLOB_DTYPES
    from tests.live import _BLOBS

    root = Path(__file__).resolve().parent.parent
    assert _BLOBS is BLOB_DTYPES
    js = (root / "web/app/codec.js").read_text()
    table = re.search(r"const BLOBS = \{(.*?)\};", js, re.S)
    assert table is not None, "codec.js: no BLOBS table"
    codec = {k: "<" + v for k, v in re.findall(r"(\w+):\s*\"(\w\d)\"", table[1])}
    assert codec == BLOB_DTYPES
    doc = (root / "docs/protocol.md").read_text()
    rows: dict[str, str] = {}
    for fields, dtype in re.findall(r"^\| ((?:`\w+`(?:, )?)+) \| [^|]+ \| [^|]+ \| `(<\w\d)` \| \d \|", doc, re.M):
        for f in re.findall(r"`(\w+)`", fields):
            rows[f] = dtype
    assert rows == BLOB_DTYPES
    examples = re.findall(r"BLOBS = (\{\"[^}]*\})", doc)  # the Python examples (the JS one is codec.js's)
    assert examples and all(ast.literal_eval(e) == BLOB_DTYPES for e in examples)
