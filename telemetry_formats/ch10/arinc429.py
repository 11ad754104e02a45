"""ARINC-429 format 0 (data type 0x38): one packet's words as arrays.

A packet decodes to one ``Words429``, one row per word. Layout (IRIG 106
Chapter 11, 11.2.8), all little-endian 32-bit words: the CSDW (bits 15-0 word
count), then per bus word an intra-packet data header (bits 31-24 bus number,
23 format error, 22 parity error, 21 bus speed (1 = high, 100 kb/s), 19-0 gap
time in 0.1 us from the preceding word, the first word's from the packet time)
and the 32-bit word, stored with ARINC bit 1 in the least significant bit:
label bits 1-8 (sent most significant bit first, so the stored byte is
bit-reversed against the octal label), SDI 9-10, data 11-29 (BNR sign bit 29),
SSM 30-31, odd parity 32. Records are fixed 8 bytes, so decoding is a handful
of numpy operations per packet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from construct import Array, BitsInteger, BitStruct, ByteSwapped, Flag, Padding, Struct, this

from .packet import Packet

__all__ = [
    "DATA_TYPE_ARINC429_F0", "Words429", "WordError", "Csdw429", "DataHeader429", "Word429", "Body429",
    "label_from_stored", "label_to_stored", "odd_parity", "decode_429", "build_429_body", "make_word",
]  # fmt: skip

DATA_TYPE_ARINC429_F0 = 0x38

Csdw429 = ByteSwapped(BitStruct(Padding(16), "word_count" / BitsInteger(16)))

DataHeader429 = ByteSwapped(
    BitStruct(
        "bus" / BitsInteger(8),  # bits 31-24
        "format_error" / Flag,  # bit 23
        "parity_error" / Flag,  # bit 22
        "bus_speed" / Flag,  # bit 21: 0 low speed (12.5 kb/s), 1 high speed (100 kb/s)
        Padding(1),  # bit 20 reserved
        "gap_time" / BitsInteger(20),  # bits 19-0, 0.1 us
    )
)

# The word as stored: ARINC bit 32 (parity) is the most significant bit.
Word429 = ByteSwapped(
    BitStruct(
        "parity" / BitsInteger(1),  # ARINC bit 32
        "ssm" / BitsInteger(2),  # 31-30
        "data" / BitsInteger(19),  # 29-11
        "sdi" / BitsInteger(2),  # 10-9
        "label_stored" / BitsInteger(8),  # 8-1, ARINC bit 1 (the label's MSB) in the LSB
    )
)

Body429 = Struct(
    "csdw" / Csdw429,
    "words" / Array(this.csdw.word_count, Struct("header" / DataHeader429, "word" / Word429)),
)

_REVERSE8 = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], np.uint8)


_BYTE = np.arange(256, dtype=np.uint8)
_FLAGS = np.stack([(_BYTE & 0x80) != 0, (_BYTE & 0x40) != 0, (_BYTE & 0x20) != 0], axis=1)  # header byte 2
_SSM = (_BYTE >> 5) & 3  # the word's top byte: bits 30-31
_PARITY16 = (np.bitwise_xor.reduce(
    (np.arange(1 << 16, dtype=np.uint32)[:, None] >> np.arange(16, dtype=np.uint32)) & 1, axis=1) == 1)


def label_from_stored(stored: int) -> int:
    """The label's value (as written in octal) from the word's low byte."""
    return int(_REVERSE8[stored & 0xFF])


label_to_stored = label_from_stored  # bit reversal is its own inverse


def odd_parity(words: np.ndarray) -> np.ndarray:
    """(n,) bool: each 32-bit word has an odd number of ones."""
    x = np.asarray(words, dtype=np.uint32)
    return _PARITY16[x & np.uint32(0xFFFF)] ^ _PARITY16[x >> np.uint32(16)]


@dataclass(frozen=True)
class WordError:
    """A word with a problem: where it is and why.

    ``decoded`` False: the word is missing (the packet is shorter than its count)
    and not in the rows. ``decoded`` True: the word is in the rows but the
    recorder flagged a format or parity error, or its parity check fails.
    """

    packet_offset: int
    index: int  # 0-based word index in the packet
    reason: str
    decoded: bool = False

    def __str__(self) -> str:
        return f"offset {self.packet_offset}: ARINC-429 word {self.index}: {self.reason}"


@dataclass
class Words429:
    """The words of one ARINC-429 F0 packet, one row per word (all arrays of length n)."""

    channel_id: int
    rtc: np.ndarray  # int64: the word's time in RTC counts (packet time plus the running sum of gap times)
    gap: np.ndarray  # uint32: gap time before the word, 0.1 us
    bus: np.ndarray  # uint8: bus (sub-channel) number of the intra-packet data header
    format_error: np.ndarray  # bool
    parity_error: np.ndarray  # bool: the recorder's parity error flag
    word: np.ndarray  # uint32: the word as stored (ARINC bit 1 = LSB)
    label: np.ndarray  # uint8: the label's value as written in octal (bit order of transmission undone)
    sdi: np.ndarray  # uint8: bits 9-10
    data: np.ndarray  # uint32: bits 11-29 (19 bits)
    ssm: np.ndarray  # uint8: bits 30-31
    parity_ok: np.ndarray  # bool: the word has odd parity over its 32 bits
    errors: list[WordError] = field(default_factory=list)
    # Added by the decoder (defaults keep hand-built instances valid):
    bus_speed: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # True: high speed (100 kb/s)
    word_count: int = 0  # the CSDW's word count
    packet_offset: int = 0

    def __len__(self) -> int:
        return len(self.rtc)

    def error_counts(self) -> dict[str, int]:
        """Words per problem: format error, recorder parity error, failed parity check, missing."""
        out = {
            "format_error": int(np.count_nonzero(self.format_error)),
            "parity_error": int(np.count_nonzero(self.parity_error)),
            "parity_check": int(np.count_nonzero(~self.parity_ok)),
            "missing": sum(1 for e in self.errors if not e.decoded),
        }
        return {k: v for k, v in out.items() if v}


def decode_429(packet: Packet) -> Words429:
    """Decode one ARINC-429 F0 packet. Never raises on bad content: problems go to ``errors``."""
    body = packet.body
    errors: list[WordError] = []
    if len(body) < 4:
        errors.append(WordError(packet.offset, 0, "truncated packet: no channel-specific data word"))
        return _rows(packet, np.zeros(0, "<u4"), 0, errors)
    count = int.from_bytes(body[:4], "little") & 0xFFFF
    avail = (len(body) - 4) // 8
    n = min(count, avail)
    if n < count:
        errors.append(WordError(packet.offset, n, f"truncated packet: {avail} of {count} words present"))
    elif avail > count:
        errors.append(WordError(packet.offset, count, f"{len(body) - 4 - 8 * count} bytes after the last of {count} words"))
    rec = np.frombuffer(body, "<u4", count=2 * n, offset=4)
    return _rows(packet, rec, count, errors)


def _rows(packet: Packet, rec: np.ndarray, count: int, errors: list[WordError]) -> Words429:
    n = len(rec) // 2
    r32 = rec.reshape(n, 2)
    r8, r16 = r32.view(np.uint8), r32.view("<u2")  # (n, 8) bytes and (n, 4) halves of each record
    hdr, word = r32[:, 0], r32[:, 1].copy()
    gap = hdr & np.uint32(0xFFFFF)
    flags = _FLAGS[r8[:, 2]]  # header bits 23-21: format error, parity error, bus speed
    fe, pe = flags[:, 0], flags[:, 1]
    ok = _PARITY16[r16[:, 2]] ^ _PARITY16[r16[:, 3]]
    if flags[:, :2].any() or not ok.all():
        flagged = fe | pe | ~ok
        for k in np.flatnonzero(flagged):
            why = [w for w, f in (("format error", fe[k]), ("parity error", pe[k]), ("parity check failed", not ok[k])) if f]
            errors.append(WordError(packet.offset, int(k), ", ".join(why), True))
        errors.sort(key=lambda e: e.index)
    return Words429(
        channel_id=packet.channel_id,
        rtc=np.cumsum(gap, dtype=np.int64) + packet.header.rtc,
        gap=gap,
        bus=r8[:, 3].copy(),
        format_error=fe,
        parity_error=pe,
        word=word,
        label=_REVERSE8[r8[:, 4]],
        sdi=r8[:, 5] & 3,
        data=(word >> np.uint32(10)) & np.uint32(0x7FFFF),
        ssm=_SSM[r8[:, 7]],
        parity_ok=ok,
        errors=errors,
        bus_speed=flags[:, 2],
        word_count=count,
        packet_offset=packet.offset,
    )


def make_word(label: int, data: int = 0, *, sdi: int = 0, ssm: int = 0, parity: bool | None = None) -> int:
    """A stored 32-bit word from its fields; ``parity`` None sets bit 32 for odd parity."""
    w = label_to_stored(label) | (sdi & 3) << 8 | (data & 0x7FFFF) << 10 | (ssm & 3) << 29
    if parity is None:
        parity = bin(w).count("1") % 2 == 0
    return w | int(parity) << 31


def build_429_body(words: Iterable[Mapping], *, word_count: int | None = None) -> bytes:
    """Build an ARINC-429 F0 packet body (CSDW + records).

    Each word is a mapping: ``label`` (octal value), ``data``, ``sdi``, ``ssm``,
    optional ``parity`` (bit 32; default: odd parity), or ``word`` (the stored
    32 bits, raw); header fields ``bus``, ``gap`` (0.1 us), ``bus_speed``,
    ``format_error``, ``parity_error``. ``word_count`` overrides the CSDW count.
    """
    hdr, word = [], []
    for m in words:
        w = int(m["word"]) if "word" in m else make_word(
            int(m["label"]), int(m.get("data", 0)), sdi=int(m.get("sdi", 0)), ssm=int(m.get("ssm", 0)),
            parity=m.get("parity"))
        hdr.append((int(m.get("bus", 0)) & 0xFF) << 24 | bool(m.get("format_error")) << 23
                   | bool(m.get("parity_error")) << 22 | bool(m.get("bus_speed")) << 21 | (int(m.get("gap", 0)) & 0xFFFFF))
        word.append(w & 0xFFFF_FFFF)
    rec = np.empty(2 * len(word), "<u4")
    rec[0::2], rec[1::2] = hdr, word
    count = len(word) if word_count is None else word_count
    return (count & 0xFFFF).to_bytes(4, "little") + rec.tobytes()


def _check_fast_layout() -> None:
    """The numpy paths above agree with the construct definitions."""
    h = dict(bus=0xA5, format_error=True, parity_error=False, bus_speed=True, gap_time=0xABCDE)
    if DataHeader429.build(h) != (0xA5 << 24 | 1 << 23 | 1 << 21 | 0xABCDE).to_bytes(4, "little"):
        raise AssertionError("ARINC-429 data header layout disagrees with its construct definition")
    w = Word429.parse(make_word(0o310, 0x5A5A5, sdi=2, ssm=3).to_bytes(4, "little"))
    if (label_from_stored(w.label_stored), w.sdi, w.data, w.ssm) != (0o310, 2, 0x5A5A5, 3):
        raise AssertionError("ARINC-429 word layout disagrees with its construct definition")


_check_fast_layout()
