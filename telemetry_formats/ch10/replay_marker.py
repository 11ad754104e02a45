"""The replay marker: the Computer-Generated Data Format 0 packet (data type 0x00, channel 0) with which
``groundstation replay`` marks its stream, defined once for the replayer that builds it and the ingest that
recognizes it.

Its body is the 4-byte channel-specific data word (zero) followed by UTF-8 JSON::

    {"groundstation_replay": {"source": "FT-042.h5", "speed": 4, "position_s": 12.0}}

``speed`` is a number or ``"afap"``. No secondary header, no data checksum.
"""

from __future__ import annotations

import json
from typing import Any

from .header import HEADER_SIZE
from .packet import Packet, build_packet, parse_packet
from .rtc import RTC_MASK

__all__ = ["MARKER_KEY", "MARKER_CHANNEL", "MARKER_DATA_TYPE", "build_marker", "packet_marker", "parse_marker",
           "is_replay_marker"]

MARKER_KEY = "groundstation_replay"
MARKER_CHANNEL = 0
MARKER_DATA_TYPE = 0x00  # computer-generated data, format 0


def _speed_json(speed: float | None) -> int | float | str:
    if speed is None:
        return "afap"
    return int(speed) if float(speed).is_integer() else float(speed)


def build_marker(source: str, speed: float | None, position_s: float, *, rtc: int = 0,
                 sequence_number: int = 0) -> bytes:
    """The replay marker packet; ``speed`` None means afap."""
    doc = {MARKER_KEY: {"source": source, "speed": _speed_json(speed), "position_s": round(float(position_s), 3)}}
    body = b"\0\0\0\0" + json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return build_packet(channel_id=MARKER_CHANNEL, data_type=MARKER_DATA_TYPE, body=body,
                        sequence_number=sequence_number & 0xFF, rtc=int(rtc) & RTC_MASK)


def packet_marker(p: Packet) -> dict[str, Any] | None:
    """The marker's ``{"source", "speed", "position_s"}`` if the parsed packet ``p`` is a replay marker, else None."""
    if p.channel_id != MARKER_CHANNEL or p.data_type != MARKER_DATA_TYPE:
        return None
    try:
        doc = json.loads(bytes(p.body[4:]).decode("utf-8").rstrip("\x00"))
    except (UnicodeDecodeError, ValueError):
        return None
    info = doc.get(MARKER_KEY) if isinstance(doc, dict) else None
    return info if isinstance(info, dict) else None


def parse_marker(raw: bytes | memoryview) -> dict[str, Any] | None:
    """The marker's ``{"source", "speed", "position_s"}`` if the packet bytes ``raw`` are a replay marker, else None."""
    if len(raw) < HEADER_SIZE + 4 or raw[2] != MARKER_CHANNEL or raw[3] != 0 or raw[15] != MARKER_DATA_TYPE:
        return None
    try:
        p = parse_packet(raw)
    except ValueError:
        return None
    return packet_marker(p)


def is_replay_marker(raw: bytes | memoryview) -> bool:
    """True if the packet bytes ``raw`` are a replay marker."""
    return parse_marker(raw) is not None
