"""The uplink command packet (ours, documented in docs/commanding.md).

Big-endian, one packet per UDP datagram::

    sync      u16  0x4753 ("GS")
    version   u8   1
    flags     u8   bit 0: the command was armed (hazardous, arm-then-execute)
    sequence  u32  uplink sequence number, increasing per ground station
    opcode    u8
    argc      u8
    args      argc x (tag u8: 1 u32, 2 i32, 3 f32; value 4 bytes)
    crc       u16  CRC-16/CCITT-FALSE over every byte before it

The construct definition below builds and parses it; the CRC is computed on
build and verified on parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from construct import (
    Byte,
    Checksum,
    ChecksumError,
    Const,
    ConstructError,
    Enum,
    Float32b,
    Int16ub,
    Int32sb,
    Int32ub,
    PrefixedArray,
    RawCopy,
    Struct,
    Switch,
    this,
)

from .checksum import crc16_ccitt

__all__ = ["UPLINK_SYNC", "UplinkPacket", "UplinkCommand", "UplinkError", "encode_uplink", "decode_uplink"]

UPLINK_SYNC = 0x4753
UPLINK_VERSION = 1
MAX_UPLINK_BYTES = 2 + 1 + 1 + 4 + 1 + 1 + 255 * 5 + 2

Arg = Struct(
    "kind" / Enum(Byte, u32=1, i32=2, f32=3),
    "value" / Switch(this.kind, {"u32": Int32ub, "i32": Int32sb, "f32": Float32b}),
)

_Body = Struct(
    "sync" / Const(UPLINK_SYNC, Int16ub),
    "version" / Const(UPLINK_VERSION, Byte),
    "flags" / Byte,
    "sequence" / Int32ub,
    "opcode" / Byte,
    "args" / PrefixedArray(Byte, Arg),
)

UplinkPacket = Struct(
    "body" / RawCopy(_Body),
    "crc" / Checksum(Int16ub, crc16_ccitt, this.body.data),
)


class UplinkError(ValueError):
    """An uplink packet that does not decode: bad sync, version, length or CRC."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class UplinkCommand:
    sequence: int
    opcode: int
    args: tuple[tuple[str, int | float], ...]
    armed: bool = False


def encode_uplink(sequence: int, opcode: int, args: list[tuple[str, int | float]], armed: bool = False) -> bytes:
    """Build one uplink packet; ``args`` are (kind, value) with kind u32, i32 or f32."""
    body = dict(flags=1 if armed else 0, sequence=sequence & 0xFFFFFFFF, opcode=opcode,
                args=[dict(kind=k, value=v) for k, v in args])
    return UplinkPacket.build(dict(body=dict(value=body)))


def decode_uplink(data: bytes) -> UplinkCommand:
    """Parse and verify one uplink packet; raises ``UplinkError`` with a reason code."""
    if len(data) > MAX_UPLINK_BYTES:
        raise UplinkError("too_long", f"{len(data)} bytes is longer than any uplink packet")
    try:
        c = UplinkPacket.parse(data)
    except ChecksumError:
        raise UplinkError("bad_crc", "CRC mismatch") from None
    except ConstructError as exc:
        raise UplinkError("malformed", f"malformed uplink packet: {exc.__class__.__name__}") from None
    b = c.body.value
    bad = [a.kind for a in b.args if str(a.kind) not in ("u32", "i32", "f32")]
    if bad:
        raise UplinkError("malformed", f"unknown argument type tag {int(bad[0])}")
    if len(data) != c.body.length + 2:
        raise UplinkError("malformed", f"{len(data) - c.body.length - 2} trailing bytes")
    return UplinkCommand(b.sequence, b.opcode, tuple((str(a.kind), a.value) for a in b.args), bool(b.flags & 1))
