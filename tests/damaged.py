"""Real recordings with one packet damaged the way field recorders damage them (for tests)."""

from __future__ import annotations

from pathlib import Path

from telemetry_formats.ch10.packet import build_packet
from telemetry_formats.ch10.reader import iter_packets
from telemetry_formats.ch10.tmats_packet import DATA_TYPE_TMATS

__all__ = ["pcm_with_bad_tmats_checksum"]


def pcm_with_bad_tmats_checksum(sample_dir: Path) -> tuple[bytes, int]:
    """pcm.c10 whose TMATS packet has a wrong data checksum (header checksum fine, text intact).

    pcm.c10's TMATS packet carries no data checksum, so it is first given a 16-bit one (rebuilt
    with ``build_packet``, as bad.c10's TMATS has), then that checksum is made wrong; nothing
    else is recomputed and every other packet is byte for byte the original. Returns the bytes
    and the TMATS packet's offset.
    """
    data = (sample_dir / "pcm.c10").read_bytes()
    out = bytearray()
    offset = -1
    for p in iter_packets(data):
        raw = bytes(p.raw)
        if p.data_type == DATA_TYPE_TMATS and offset < 0:
            h = p.header
            raw = bytearray(build_packet(channel_id=h.channel_id, data_type=h.data_type, body=bytes(p.body),
                                         sequence_number=h.sequence_number, rtc=h.rtc,
                                         data_type_version=h.data_type_version, checksum_type=2))
            raw[-2] ^= 0xFF  # the stored 16-bit data checksum, now wrong
            raw = bytes(raw)
            offset = len(out)
        out += raw
    assert offset >= 0
    return bytes(out), offset
