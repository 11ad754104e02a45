"""Computer-generated data format 1 (data type 0x01): the TMATS setup record packet.

CSDW (IRIG 106 Chapter 11): bits 7-0 the IRIG 106 version of the setup record,
bit 8 SRCC (setup record configuration changed), bit 9 format (0 = ASCII
``CODE:value;`` attributes, 1 = XML), bits 31-10 reserved. The data is the
setup record text.
"""

from __future__ import annotations

from dataclasses import dataclass

from construct import BitsInteger, BitStruct, ByteSwapped, Flag, GreedyBytes, Padding, Struct

__all__ = ["DATA_TYPE_TMATS", "TmatsCsdw", "TmatsBody", "TmatsPacket", "parse_tmats_packet", "build_tmats_body"]

DATA_TYPE_TMATS = 0x01

TmatsCsdw = ByteSwapped(
    BitStruct(
        Padding(22),
        "xml" / Flag,  # bit 9
        "srcc" / Flag,  # bit 8
        "version" / BitsInteger(8),  # bits 7-0
    )
)

TmatsBody = Struct("csdw" / TmatsCsdw, "text" / GreedyBytes)


@dataclass(frozen=True, slots=True)
class TmatsPacket:
    """A decoded TMATS packet: its CSDW fields and the setup record text."""

    version: int
    srcc: bool
    xml: bool
    text: str


def parse_tmats_packet(body: bytes | memoryview) -> TmatsPacket:
    """Decode a TMATS packet body (CSDW + text). Bytes that are not ASCII are replaced."""
    if len(body) < 4:
        raise ValueError(f"TMATS packet body of {len(body)} bytes has no CSDW")
    c = TmatsBody.parse(bytes(body))
    text = c.text.decode("ascii", errors="replace").rstrip("\x00")
    return TmatsPacket(version=c.csdw.version, srcc=c.csdw.srcc, xml=c.csdw.xml, text=text)


def build_tmats_body(text: str, *, version: int = 0x0B, srcc: bool = False, xml: bool = False) -> bytes:
    """Build a TMATS packet body (CSDW + ASCII text) for ``build_packet(data_type=0x01)``."""
    return TmatsBody.build(dict(csdw=dict(version=version, srcc=srcc, xml=xml), text=text.encode("ascii")))
