"""MIL-STD-1553 format 1 (data type 0x19): one packet's messages as arrays.

Interface only (the decoder and builder land with the bus-data work): a packet
decodes to one ``Messages1553``, one row per message, never a Python object per
message on the live path. Word order on the bus (IRIG 106 Chapter 11):
BC-to-RT: command, data..., status; RT-to-BC: command, status, data...;
RT-to-RT: receive command, transmit command, transmit status, data..., receive status;
mode codes (subaddress 0 or 31): command, status, optional data word.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["DATA_TYPE_1553_F1", "MAX_DATA_WORDS", "Messages1553", "MessageError"]

DATA_TYPE_1553_F1 = 0x19
MAX_DATA_WORDS = 32


@dataclass(frozen=True)
class MessageError:
    """A message that could not be decoded whole: where it is and why."""

    packet_offset: int  # the packet's byte offset in its stream (``Packet.offset``)
    index: int  # 0-based message index in the packet
    reason: str

    def __str__(self) -> str:
        return f"offset {self.packet_offset}: 1553 message {self.index}: {self.reason}"


@dataclass
class Messages1553:
    """The messages of one 1553 F1 packet, one row per message (all arrays of length n)."""

    channel_id: int
    rtc: np.ndarray  # int64: intra-packet time stamp in RTC counts (10 MHz), at the bit the CSDW's time-tag bits name
    block_status: np.ndarray  # uint16: the block status word as recorded
    bus_b: np.ndarray  # bool: received on bus B
    error: np.ndarray  # bool: any error bit of the block status word (message, format, timeout, word count, sync, word)
    rt_to_rt: np.ndarray  # bool
    command: np.ndarray  # uint16: the first command word (the receive command for RT-to-RT)
    command2: np.ndarray  # uint16: the transmit command word of an RT-to-RT message, else 0
    status: np.ndarray  # uint16: the (transmit) status word, 0 if none was recorded
    rt: np.ndarray  # uint8: RT address of ``command``
    tr: np.ndarray  # uint8: 1 transmit (RT-to-BC), 0 receive, of ``command``
    subaddress: np.ndarray  # uint8: 0 and 31 are mode codes
    word_count: np.ndarray  # uint8: data words the command asks for, 1..32 (a mode code's data words, 0 or 1)
    n_data: np.ndarray  # uint8: data words actually present in the record
    data: np.ndarray  # uint16, shape (n, 32): the data words, zero-padded past n_data
    offset: np.ndarray  # int64: byte offset of each message's intra-packet header in the packet
    errors: list[MessageError] = field(default_factory=list)  # messages that could not be decoded (not in the rows)

    def __len__(self) -> int:
        return len(self.rtc)
