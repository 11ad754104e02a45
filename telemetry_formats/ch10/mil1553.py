"""MIL-STD-1553 format 1 (data type 0x19): one packet's messages as arrays.

A packet decodes to one ``Messages1553``, one row per message, never a Python
object per message on the live path. The construct definitions below are the
layout (IRIG 106 Chapter 11, 11.2.4): CSDW, then per message an intra-packet
header (8-byte time stamp, block status word, gap times, length in bytes) and
the words as they came on the bus, each a little-endian 16-bit word:

- BC-to-RT: command, data..., status
- RT-to-BC: command, status, data...
- RT-to-RT: receive command, transmit command, transmit status, data..., receive status
- mode codes (subaddress 0 or 31): command, status, data word if the mode code
  is 16-31 (after the status when the RT transmits it, before when the BC does)
- broadcast (RT address 31): no status word from the receiving RT(s).

``decode_1553`` walks the message headers in one tight loop (lengths chain the
messages) and reads everything else with numpy gathers; ``build_1553_body``
(``mil1553_build``) writes packets through the same layout. Both are checked
against the construct definitions at import time and in the tests.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
from construct import Array, BitsInteger, BitStruct, ByteSwapped, Flag, Int8ul, Int16ul, Int64ul, Padding, Struct, this
from numpy.lib.stride_tricks import as_strided

from .ipts_rtc import stamps_to_rtc
from .packet import Packet

__all__ = [
    "DATA_TYPE_1553_F1", "MAX_DATA_WORDS", "Messages1553", "MessageError",
    "Csdw1553", "BlockStatus", "IntraPacketHeader1553", "CommandWord", "StatusWord", "Message1553", "Body1553",
    "BSW_BITS", "BSW_ERRORS", "BROADCAST_RT", "command_word", "decode_1553",
]  # fmt: skip

DATA_TYPE_1553_F1 = 0x19
MAX_DATA_WORDS = 32
BROADCAST_RT = 31

# Channel-specific data word: bits 31-30 time tag bits, 29-24 reserved, 23-0 message count.
# Time tag bits: 0 last bit of the last word, 1 first bit of the first (command) word,
# 2 last bit of the first (command) word.
Csdw1553 = ByteSwapped(BitStruct("time_tag_bits" / BitsInteger(2), Padding(6), "message_count" / BitsInteger(24)))

# Block status word, fields from bit 15 down.
BlockStatus = ByteSwapped(
    BitStruct(
        Padding(2),  # bits 15-14 reserved
        "bus_b" / Flag,  # bit 13: 0 bus A, 1 bus B
        "message_error" / Flag,  # bit 12
        "rt_to_rt" / Flag,  # bit 11
        "format_error" / Flag,  # bit 10
        "response_timeout" / Flag,  # bit 9
        Padding(3),  # bits 8-6 reserved
        "word_count_error" / Flag,  # bit 5
        "sync_type_error" / Flag,  # bit 4
        "invalid_word_error" / Flag,  # bit 3
        Padding(3),  # bits 2-0 reserved
    )
)

IntraPacketHeader1553 = Struct(
    "time_stamp" / Int64ul,  # RTC (48 bits) or, per the packet flags, secondary-header time
    "block_status" / BlockStatus,
    "gap1" / Int8ul,  # 0.1 us: command/data word to the (first) status word
    "gap2" / Int8ul,  # 0.1 us: last data word to the second status word (RT-to-RT)
    "length" / Int16ul,  # bytes of bus words that follow
)

CommandWord = ByteSwapped(
    BitStruct("rt" / BitsInteger(5), "tr" / Flag, "subaddress" / BitsInteger(5), "word_count" / BitsInteger(5))
)

StatusWord = ByteSwapped(
    BitStruct(
        "rt" / BitsInteger(5),
        "message_error" / Flag,
        "instrumentation" / Flag,
        "service_request" / Flag,
        Padding(3),
        "broadcast_received" / Flag,
        "busy" / Flag,
        "subsystem_flag" / Flag,
        "dynamic_bus_control" / Flag,
        "terminal_flag" / Flag,
    )
)

Message1553 = Struct(
    "header" / IntraPacketHeader1553,
    "words" / Array(this.header.length // 2, Int16ul),
    Padding(this.header.length % 2),
)

Body1553 = Struct("csdw" / Csdw1553, "messages" / Array(this.csdw.message_count, Message1553))

# Block status bits by name, and the ones that mean the message is in error.
BSW_BITS = {
    "bus_b": 1 << 13,
    "message_error": 1 << 12,
    "rt_to_rt": 1 << 11,
    "format_error": 1 << 10,
    "response_timeout": 1 << 9,
    "word_count_error": 1 << 5,
    "sync_type_error": 1 << 4,
    "invalid_word_error": 1 << 3,
}
BSW_ERRORS = {k: v for k, v in BSW_BITS.items() if k not in ("bus_b", "rt_to_rt")}
_ERROR_MASK = sum(BSW_ERRORS.values())

REASON_TRUNCATED = "truncated message"
REASON_LENGTH = "length disagrees with command word"
REASON_TRAILING = "bytes after the last message"


@dataclass(frozen=True)
class MessageError:
    """A message with a problem: where it is and why.

    ``decoded`` False: the message could not be decoded and is not in the rows
    (truncated, or its length disagrees with its command word). ``decoded`` True:
    the recorder flagged it in the block status word; it is in the rows with
    ``error`` set, and ``reason`` names the bits.
    """

    packet_offset: int  # the packet's byte offset in its stream (``Packet.offset``)
    index: int  # 0-based message index in the packet
    reason: str
    decoded: bool = False
    command: int | None = None  # the (receive) command word, when it could be read

    def __str__(self) -> str:
        return f"offset {self.packet_offset}: 1553 message {self.index}: {self.reason}"


def _u8() -> np.ndarray:
    return np.zeros(0, np.uint8)


@dataclass
class Messages1553:
    """The messages of one 1553 F1 packet, one row per message (all arrays of length n)."""

    channel_id: int
    rtc: np.ndarray  # int64: intra-packet time stamp in RTC counts (10 MHz), at the bit the CSDW's time-tag bits name
    block_status: np.ndarray  # uint16: the block status word as recorded
    bus_b: np.ndarray  # bool: received on bus B
    error: np.ndarray  # bool: any error bit of the block status word (message, format, timeout, word count, sync, word)
    rt_to_rt: np.ndarray  # bool: block status bit 11, or recognised from the words when a recorder leaves it clear
    command: np.ndarray  # uint16: the first command word (the receive command for RT-to-RT)
    command2: np.ndarray  # uint16: the transmit command word of an RT-to-RT message, else 0
    status: np.ndarray  # uint16: the (transmit) status word, 0 if none was recorded
    rt: np.ndarray  # uint8: RT address of ``command``
    tr: np.ndarray  # uint8: 1 transmit (RT-to-BC), 0 receive, of ``command``
    subaddress: np.ndarray  # uint8: 0 and 31 are mode codes
    word_count: np.ndarray  # uint8: data words the command asks for, 1..32 (a mode code's data words, 0 or 1)
    n_data: np.ndarray  # uint8: data words actually present in the record
    data: np.ndarray  # uint16, shape (n, 32): the data words, zero-padded past n_data
    offset: np.ndarray  # int64: byte offset of each message's intra-packet header from the packet's sync word
    errors: list[MessageError] = field(default_factory=list)  # messages with a problem (see MessageError.decoded)
    # Added by the decoder (defaults keep hand-built instances valid):
    status2: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))  # RT-to-RT receive status, else 0
    gap1: np.ndarray = field(default_factory=_u8)  # uint8, 0.1 us
    gap2: np.ndarray = field(default_factory=_u8)  # uint8, 0.1 us
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))  # message index in the packet
    time_tag_bits: int = 0  # CSDW bits 31-30: which bit of the message ``rtc`` marks
    message_count: int = 0  # CSDW message count (rows + undecodable messages, for a sound packet)
    packet_offset: int = 0

    def __len__(self) -> int:
        return len(self.rtc)

    @property
    def mode_code(self) -> np.ndarray:
        """(n,) bool: subaddress 0 or 31 (``command & 31`` is then the mode code)."""
        return (self.subaddress == 0) | (self.subaddress == 31)

    def error_counts(self) -> dict[str, int]:
        """Messages per problem: block status error bits of the rows, and the undecodable ones by reason."""
        out = {name: int(np.count_nonzero(self.block_status & bit)) for name, bit in BSW_ERRORS.items()}
        for e in self.errors:
            if not e.decoded:
                key = e.reason.split(":", 1)[0]
                out[key] = out.get(key, 0) + 1
        return {k: v for k, v in out.items() if v}


def command_word(rt: int, tr: int, subaddress: int, word_count: int) -> int:
    """A command word from its fields (``word_count`` 32 is written as 0)."""
    return (rt & 31) << 11 | (tr & 1) << 10 | (subaddress & 31) << 5 | (word_count & 31)


# --- decoding ------------------------------------------------------------------------------

_HEADER_WORDS = 7  # 8-byte stamp, block status, gap times, length
_PAD = bytes(2 * (MAX_DATA_WORDS + 8))  # zeros after the body: gathers near its end need no clipping
_HCOLS = np.arange(_HEADER_WORDS + 2, dtype=np.int64)  # the header and the first two bus words
_COLS = np.arange(MAX_DATA_WORDS, dtype=np.int64)
_RR, _BUS_B = BSW_BITS["rt_to_rt"], BSW_BITS["bus_b"]


def _command_table() -> np.ndarray:
    """(65536, 8) int32: per command word, its fields and its plain (not RT-to-RT) layout.

    Columns: RT, T/R, subaddress, data words (1..32; a mode code's 0 or 1), mode code,
    status word expected, first data word's position, status word's position (-1: none),
    bus words expected. Positions count from the command word."""
    cmd = np.arange(1 << 16, dtype=np.int32)
    rt, tr, sa, wcf = cmd >> 11, (cmd >> 10) & 1, (cmd >> 5) & 31, cmd & 31
    mode = (sa == 0) | (sa == 31)
    wc = np.where(mode, wcf >= 16, np.where(wcf == 0, 32, wcf))
    has_status = (rt != BROADCAST_RT).astype(np.int32)
    data_start = np.where(tr == 1, 1 + has_status, 1)  # the RT's status precedes the data it sends
    status_pos = np.where(has_status == 0, -1, np.where(tr == 1, 1, 1 + wc))
    return np.stack([rt, tr, sa, wc, mode, has_status, data_start, status_pos, 1 + wc + has_status], axis=1).astype(np.int32)


_CMD = _command_table()
_RT, _TR, _SA, _WC, _MODE, _HAS_STATUS, _DATA_START, _STATUS_POS, _EXPECTED = range(9)
_FIELDS = np.ascontiguousarray(_CMD[:, :4].astype(np.uint8))  # RT, T/R, subaddress, data words: the output columns


def _walk(words: array, count: int) -> tuple[list[int], int, int]:
    """Word index of each message's header; the index after the last; messages cut short (0/1).

    ``words`` ends with ``_PAD`` (zeros), so the loop needs no bounds check: past the
    body's end it reads lengths of 0 until it runs off the array, and what it found
    there is cut off afterwards. ``nw`` is the body's own length in words."""
    starts: list[int] = []
    append = starts.append
    i, nw = 2, len(words) - len(_PAD) // 2  # the CSDW is words 0-1
    try:
        for _ in range(count):
            append(i)
            i += _HEADER_WORDS + ((words[i + 6] + 1) >> 1)
    except IndexError:
        pass
    if not starts or starts[-1] + _HEADER_WORDS <= nw and i <= nw:
        return starts, i, 0
    del starts[bisect_right(starts, nw - _HEADER_WORDS):]  # headers that end past the body
    if not starts:
        return starts, 2, 1
    last = starts[-1]
    end = last + _HEADER_WORDS + ((words[last + 6] + 1) >> 1)
    if end > nw:  # the last message runs past the body
        starts.pop()
        return starts, last, 1
    return starts, end, 1


def _bsw_reason(bsw: int) -> str:
    return "block status: " + ", ".join(n.replace("_", " ") for n, b in BSW_ERRORS.items() if bsw & b)


def decode_1553(packet: Packet) -> Messages1553:
    """Decode one 1553 F1 packet. Never raises on bad content: problems go to ``errors``."""
    body = packet.body
    nb = len(body)
    if nb < 4:
        return _empty(packet, 0, 0, [MessageError(packet.offset, 0, f"{REASON_TRUNCATED}: no channel-specific data word")])
    csdw = int.from_bytes(body[:4], "little")
    count, ttb = csdw & 0xFFFFFF, csdw >> 30
    words = array("H")
    words.frombytes(body[: nb & ~1])
    words.frombytes(_PAD)
    starts, end, cut = _walk(words, count)
    errors: list[MessageError] = []
    if cut:
        errors.append(MessageError(packet.offset, len(starts),
                                   f"{REASON_TRUNCATED}: {nb - 2 * end} bytes left for message {len(starts) + 1} of {count}"))
    elif 2 * end < nb:
        errors.append(MessageError(packet.offset, count, f"{REASON_TRAILING}: {nb - 2 * end} bytes after {count} messages"))
    if not starts:
        return _empty(packet, ttb, count, errors)

    w = np.frombuffer(words, np.uint16)
    s = np.array(starts, np.int64)
    head = w[s[:, None] + _HCOLS]  # (n, 9): stamp (4 words), block status, gaps, length, 2 bus words
    stamps = np.ascontiguousarray(head[:, :4]).view("<u8")[:, 0]
    bsw, nwords = head[:, 4], (head[:, 6] >> 1).astype(np.int64)
    cmd = head[:, 7]
    c, f = _CMD[cmd], _FIELDS[cmd]
    first = s + _HEADER_WORDS  # the first bus word
    irregular = (nwords != c[:, _EXPECTED]) | ((bsw & (_ERROR_MASK | _RR)) != 0)
    if irregular.any():
        lay = _general_layout(c, bsw, nwords, head[:, 8])
        errors += _problems(packet.offset, lay, nwords, cmd, bsw)
        keep = ~lay["bad"]
        if not keep.all():
            s, stamps, head, c, f, first = s[keep], stamps[keep], head[keep], c[keep], f[keep], first[keep]
            lay = {k: v[keep] for k, v in lay.items()}
            bsw, nwords, cmd = head[:, 4], (head[:, 6] >> 1).astype(np.int64), head[:, 7]
        if errors:
            errors.sort(key=lambda e: e.index)
        index = np.flatnonzero(keep).astype(np.uint32)
        n_data, data_start, rt2rt, flagged = lay["n_data"], lay["data_start"], lay["rt2rt"], lay["flagged"]
        status = _word_at(w, first, lay["status_pos"], nwords)
        status2 = _word_at(w, first, lay["status2_pos"], nwords)
        cmd2 = _word_at(w, first, np.where(rt2rt, 1, -1), nwords)
    else:
        index = np.arange(len(s), dtype=np.uint32)
        n_data, data_start = f[:, _WC].copy(), c[:, _DATA_START]
        rt2rt = flagged = np.zeros(len(s), bool)
        status = _word_at(w, first, c[:, _STATUS_POS], nwords)
        status2 = cmd2 = np.zeros(len(s), np.uint16)

    # Each message's 32 words from its first data word (the padding keeps the window inside ``w``), past n_data zeroed.
    data = as_strided(w, shape=(len(w) - MAX_DATA_WORDS + 1, MAX_DATA_WORDS), strides=(2, 2), writeable=False)[first + data_start]
    data *= _COLS < n_data[:, None]
    gaps = head.view(np.uint8)  # (n, 18): gap 1 is byte 10 of the header block, gap 2 byte 11
    return Messages1553(
        channel_id=packet.channel_id,
        rtc=stamps_to_rtc(packet, stamps),
        block_status=bsw,
        bus_b=(bsw & _BUS_B) != 0,
        error=flagged,
        rt_to_rt=rt2rt,  # the block status bit or inferred from the words
        command=cmd,
        command2=cmd2,
        status=status,
        rt=f[:, _RT],
        tr=f[:, _TR],
        subaddress=f[:, _SA],
        word_count=f[:, _WC],
        n_data=n_data.astype(np.uint8, copy=False),
        data=data,
        offset=packet.header.body_offset + 2 * s,
        errors=errors,
        status2=status2,
        gap1=gaps[:, 10],
        gap2=gaps[:, 11],
        index=index,
        time_tag_bits=ttb,
        message_count=count,
        packet_offset=packet.offset,
    )


def _word_at(w: np.ndarray, first: np.ndarray, pos: np.ndarray, nwords: np.ndarray) -> np.ndarray:
    """The bus word at ``pos`` (from the command word) of each message; 0 where ``pos`` is -1 or past its end."""
    return np.where((pos >= 0) & (pos < nwords), w[first + np.maximum(pos, 0)], 0).astype(np.uint16)


def _general_layout(c: np.ndarray, bsw: np.ndarray, nwords: np.ndarray, second: np.ndarray) -> dict[str, np.ndarray]:
    """Where each message's words are, for packets with RT-to-RT, flagged or odd-length messages."""
    tr, wc, mode, has_status = c[:, _TR], c[:, _WC], c[:, _MODE] != 0, c[:, _HAS_STATUS]
    # RT-to-RT: the block status bit, or (recorders that leave it clear) a receive command
    # followed by a transmit command of the same word count, with the length of an RT-to-RT.
    rt2rt = ((bsw & _RR) != 0) | (
        (tr == 0) & ~mode & (nwords == 3 + wc + has_status) & ((second >> 10) & 1 == 1) & ((second & 31) == (c[:, _WC] & 31)))
    flagged = (bsw & _ERROR_MASK) != 0
    base = np.where(rt2rt, 3, 1)  # words before the data (RT-to-RT: both commands and the transmit status)
    data_start = np.where(rt2rt, 3, c[:, _DATA_START])
    expected = base + wc + has_status
    return dict(
        rt2rt=rt2rt,
        flagged=flagged,
        data_start=data_start,
        expected=expected,
        bad=((nwords != expected) & ~flagged) | (nwords == 0),
        n_data=np.clip(nwords - data_start, 0, wc),
        status_pos=np.where(rt2rt, 2, c[:, _STATUS_POS]),
        status2_pos=np.where(rt2rt & (has_status != 0), 3 + wc, -1),
    )


def _problems(offset: int, lay: dict, nwords: np.ndarray, cmd: np.ndarray, bsw: np.ndarray) -> list[MessageError]:
    out = []
    for k in np.flatnonzero(lay["bad"]):
        reason = ("no command word" if nwords[k] == 0 else
                  f"{REASON_LENGTH}: {nwords[k]} words, the command asks for {lay['expected'][k]}")
        out.append(MessageError(offset, int(k), reason, command=int(cmd[k]) if nwords[k] else None))
    for k in np.flatnonzero(lay["flagged"] & ~lay["bad"]):
        out.append(MessageError(offset, int(k), _bsw_reason(int(bsw[k])), True, int(cmd[k])))
    return out


def _empty(packet: Packet, ttb: int, count: int, errors: list[MessageError]) -> Messages1553:
    z16, z8, zb = np.zeros(0, np.uint16), np.zeros(0, np.uint8), np.zeros(0, bool)
    return Messages1553(
        channel_id=packet.channel_id, rtc=np.zeros(0, np.int64), block_status=z16, bus_b=zb, error=zb,
        rt_to_rt=zb, command=z16, command2=z16, status=z16, rt=z8, tr=z8, subaddress=z8, word_count=z8,
        n_data=z8, data=np.zeros((0, MAX_DATA_WORDS), np.uint16), offset=np.zeros(0, np.int64), errors=errors,
        status2=z16, gap1=z8, gap2=z8, index=np.zeros(0, np.uint32), time_tag_bits=ttb, message_count=count,
        packet_offset=packet.offset,
    )


def _check_fast_layout() -> None:
    """The integer paths above agree with the construct definitions."""
    if CommandWord.build(dict(rt=5, tr=True, subaddress=17, word_count=3)) != command_word(5, 1, 17, 3).to_bytes(2, "little"):
        raise AssertionError("1553 command word layout disagrees with its construct definition")
    if Csdw1553.build(dict(time_tag_bits=2, message_count=77)) != (2 << 30 | 77).to_bytes(4, "little"):
        raise AssertionError("1553 CSDW layout disagrees with its construct definition")
    bsw = BlockStatus.build({name: name in ("bus_b", "response_timeout") for name in BSW_BITS})
    if bsw != (BSW_BITS["bus_b"] | BSW_BITS["response_timeout"]).to_bytes(2, "little"):
        raise AssertionError("1553 block status layout disagrees with its construct definition")


def __getattr__(name: str):
    """The builder lives in ``mil1553_build`` (tests, the simulator); importable from here too."""
    if name in ("build_1553_body", "bus_words"):
        from . import mil1553_build

        return getattr(mil1553_build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_check_fast_layout()
