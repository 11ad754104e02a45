"""PCM data format 1 (data type 0x09): CSDW, intra-packet headers and minor-frame layout.

CSDW (IRIG 106 Chapter 11): bit 30 IPH, 29 MA (major frame indicator), 28 MI
(minor frame indicator), 27-26 minor frame status, 25-24 major frame status,
21 32-bit alignment, 20 throughput, 19 packed, 18 unpacked, 17-0 sync offset.
Status values: 0b11 lock, 0b10 check, else not locked.

Packed and unpacked modes carry each minor frame behind an intra-packet header:
an 8-byte time stamp and a data header (2 bytes, or 4 in 32-bit alignment) whose
bits 15-14 and 13-12 are the minor and major frame status. In packed mode the
frame's bits are contiguous and padded at the end to the alignment unit; in
unpacked mode every word (and the sync pattern) is right-justified in whole
alignment units. Throughput mode is the raw bit stream with no headers. Storage
is little-endian 16-bit (or 32-bit) units holding the first-sent bit in the
unit's most significant bit (see ``telemetry_formats.bits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property

import numpy as np
from construct import BitsInteger, BitStruct, ByteSwapped, Flag, Int64ul, Padding, Struct, Switch, this

from ..bits import from_bitstream, pack_fields, to_bitstream
from ..paramdb.model import FrameFormat

__all__ = [
    "DATA_TYPE_PCM_F1",
    "PcmCsdw",
    "IntraPacketHeader",
    "PcmMode",
    "PcmLayout",
    "PcmRecords",
    "build_pcm_body",
    "split_pcm_body",
    "STATUS_LOCK",
]

DATA_TYPE_PCM_F1 = 0x09
STATUS_LOCK = 0b11
STATUS_CHECK = 0b10

PcmCsdw = ByteSwapped(
    BitStruct(
        Padding(1),
        "iph" / Flag,  # bit 30
        "major_frame_indicator" / Flag,  # bit 29
        "minor_frame_indicator" / Flag,  # bit 28
        "minor_status" / BitsInteger(2),  # bits 27-26
        "major_status" / BitsInteger(2),  # bits 25-24
        Padding(2),
        "align32" / Flag,  # bit 21
        "throughput" / Flag,  # bit 20
        "packed" / Flag,  # bit 19
        "unpacked" / Flag,  # bit 18
        "sync_offset" / BitsInteger(18),  # bits 17-0
    )
)

_Ipdh16 = ByteSwapped(BitStruct("minor_status" / BitsInteger(2), "major_status" / BitsInteger(2), Padding(12)))
_Ipdh32 = ByteSwapped(
    BitStruct(Padding(16), "minor_status" / BitsInteger(2), "major_status" / BitsInteger(2), Padding(12))
)

IntraPacketHeader = Struct(
    "time" / Int64ul,  # 48-bit RTC in the low bits, or secondary-header time format
    "data_header" / Switch(this._params.align32, {False: _Ipdh16, True: _Ipdh32}),
)


class PcmMode(Enum):
    UNPACKED = "unpacked"
    PACKED = "packed"
    THROUGHPUT = "throughput"


@dataclass(frozen=True)
class PcmLayout:
    """How minor frames of ``frame`` sit in a PCM packet in a given mode."""

    frame: FrameFormat
    mode: PcmMode
    align32: bool = False

    @property
    def unit_bits(self) -> int:
        return 32 if self.align32 else 16

    @property
    def iph_bytes(self) -> int:
        if self.mode is PcmMode.THROUGHPUT:
            return 0
        return 8 + (4 if self.align32 else 2)

    @cached_property
    def widths(self) -> np.ndarray:
        """Bit width of each word position (0 = sync)."""
        return self.frame.widths()

    def slot_widths(self) -> np.ndarray:
        """Bits each word position occupies in storage (padded in unpacked mode)."""
        w = self.frame.widths()
        if self.mode is PcmMode.UNPACKED:
            u = self.unit_bits
            return -(-w // u) * u
        return w

    @cached_property
    def offsets(self) -> np.ndarray:
        """Bit offset of each word position's value from the start of the frame data."""
        slots = self.slot_widths()
        starts = np.concatenate([[0], np.cumsum(slots)[:-1]])
        return (starts + slots - self.frame.widths()).astype(np.int64)

    @cached_property
    def sync_slot_bits(self) -> int:
        """Bits the sync pattern occupies in storage (its value is right-justified)."""
        return int(self.slot_widths()[0])

    def word_offsets(self) -> np.ndarray:
        return self.offsets

    @cached_property
    def unit_word_index(self) -> np.ndarray | None:
        """For frames whose data words are all 16-bit on 16-bit boundaries: the index
        of each word position's 16-bit unit in transmission order, else None."""
        w, off = self.widths, self.offsets
        if self.frame_bits % 16 or np.any(w[1:] != 16) or np.any(off[1:] % 16):
            return None
        return off // 16

    @cached_property
    def frame_bits(self) -> int:
        """Bits of one minor frame's data in storage (without the intra-packet header)."""
        bits = int(self.slot_widths().sum())
        if self.mode is PcmMode.THROUGHPUT:
            return bits
        u = self.unit_bits
        return -(-bits // u) * u

    @property
    def record_bytes(self) -> int:
        """Bytes per minor frame including the intra-packet header (not for throughput)."""
        return self.iph_bytes + self.frame_bits // 8

    def csdw(self, **kw) -> dict:
        return dict(
            iph=self.mode is not PcmMode.THROUGHPUT,
            major_frame_indicator=kw.get("major_frame_indicator", False),
            minor_frame_indicator=kw.get("minor_frame_indicator", self.mode is not PcmMode.THROUGHPUT),
            minor_status=kw.get("minor_status", STATUS_LOCK if self.mode is not PcmMode.THROUGHPUT else 0),
            major_status=kw.get("major_status", STATUS_LOCK if self.mode is not PcmMode.THROUGHPUT else 0),
            align32=self.align32,
            throughput=self.mode is PcmMode.THROUGHPUT,
            packed=self.mode is PcmMode.PACKED,
            unpacked=self.mode is PcmMode.UNPACKED,
            sync_offset=kw.get("sync_offset", 0),
        )

    @classmethod
    def from_csdw(cls, frame: FrameFormat, csdw) -> "PcmLayout":
        """The layout a parsed CSDW announces (throughput if no mode bit is set)."""
        if csdw.unpacked:
            mode = PcmMode.UNPACKED
        elif csdw.packed:
            mode = PcmMode.PACKED
        else:
            mode = PcmMode.THROUGHPUT
        return cls(frame=frame, mode=mode, align32=bool(csdw.align32))


def build_pcm_body(
    layout: PcmLayout,
    words: np.ndarray,
    times: np.ndarray | None = None,
    *,
    minor_status: int = STATUS_LOCK,
    major_status: int = STATUS_LOCK,
    major_frame_indicator: bool = False,
) -> bytes:
    """Build a PCM packet body (CSDW + data) from minor frames.

    ``words`` is (n, words_per_minor) with column 0 ignored (the sync pattern is
    written from the frame format); ``times`` (n,) are the intra-packet time
    stamps (48-bit RTC counts) for packed and unpacked modes.
    """
    frame = layout.frame
    words = np.array(words, dtype=np.uint64, copy=True)
    n = words.shape[0]
    words[:, 0] = frame.sync_pattern
    widths = frame.widths()
    masks = (np.uint64(1) << widths.astype(np.uint64)) - np.uint64(1)
    words &= masks[None, :]
    csdw = PcmCsdw.build(
        layout.csdw(minor_status=minor_status, major_status=major_status, major_frame_indicator=major_frame_indicator)
    )
    if layout.mode is PcmMode.THROUGHPUT:
        stream = pack_fields(words.reshape(1, -1), np.tile(widths, n))[0]
        return csdw + from_bitstream(stream, layout.align32)
    rows = pack_fields(words, layout.slot_widths())  # (n, bytes), unit-padded below
    unit = layout.unit_bits // 8
    frame_bytes = layout.frame_bits // 8
    if rows.shape[1] < frame_bytes:
        rows = np.concatenate([rows, np.zeros((n, frame_bytes - rows.shape[1]), np.uint8)], axis=1)
    stored = rows.reshape(n, -1, unit)[:, :, ::-1].reshape(n, frame_bytes)
    if times is None:
        times = np.zeros(n, np.uint64)
    iph = np.zeros((n, layout.iph_bytes), np.uint8)
    iph[:, :8] = np.asarray(times, dtype="<u8").view(np.uint8).reshape(n, 8)
    status = (minor_status << 14) | (major_status << 12)
    iph[:, 8:10] = np.frombuffer(int(status).to_bytes(2, "little"), np.uint8)
    return csdw + np.concatenate([iph, stored], axis=1).tobytes()


@dataclass(eq=False)
class PcmRecords:
    """Minor frames located in one packed/unpacked packet body (views, not copies)."""

    storage: np.ndarray  # (n, frame bytes) uint8 as stored (LE units)
    align32: bool
    times: np.ndarray  # (n,) uint64 intra-packet time stamps
    data_header: np.ndarray  # (n,) uint16: the intra-packet data header's status half
    trailing_bytes: int  # bytes after the last whole record (should be 0)

    @cached_property
    def frame_start_bits(self) -> np.ndarray:
        """(n,) int64 bit offset of each frame in ``stream``."""
        return np.arange(len(self.storage), dtype=np.int64) * (self.storage.shape[1] * 8)

    @cached_property
    def minor_status(self) -> np.ndarray:
        return (self.data_header >> 14).astype(np.uint8)

    @cached_property
    def major_status(self) -> np.ndarray:
        return ((self.data_header >> 12) & 3).astype(np.uint8)

    def locked(self) -> np.ndarray:
        """(n,) bool: minor frame status is lock (bits 15-14 = 0b11)."""
        return self.data_header >= (STATUS_LOCK << 14)

    @cached_property
    def stream(self) -> np.ndarray:
        """Transmission-order bytes of the frames, back to back."""
        return to_bitstream(np.ascontiguousarray(self.storage).reshape(-1), self.align32)

    @cached_property
    def units16(self) -> np.ndarray:
        """(n, frame bytes / 2) 16-bit units in transmission order."""
        u = self.storage.view("<u2")
        if self.align32:
            u = u.reshape(len(u), -1, 2)[:, :, ::-1].reshape(len(u), -1)
        return u


def split_pcm_body(layout: PcmLayout, data: bytes | memoryview) -> PcmRecords:
    """Locate the minor frames of a packed/unpacked packet's data (after the CSDW).

    The intra-packet header fields are read through strided views of ``data``:
    the time stamp is its first 8 bytes (LE), and the minor/major frame status
    sits in bits 15-12 of the LE 16-bit word after it in both alignments
    (``IntraPacketHeader`` above is the definition; tests check the two agree).
    """
    if layout.mode is PcmMode.THROUGHPUT:
        raise ValueError("throughput mode has no records; use the frame synchronizer")
    raw = np.frombuffer(data, dtype=np.uint8)
    rec = layout.record_bytes
    n = len(raw) // rec
    recs = raw[: n * rec].reshape(n, rec)
    return PcmRecords(
        storage=recs[:, layout.iph_bytes :],
        align32=layout.align32,
        times=recs[:, :8].view("<u8").reshape(n),
        data_header=recs[:, 8:10].view("<u2").reshape(n),
        trailing_bytes=len(raw) - n * rec,
    )
