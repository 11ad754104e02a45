"""ARINC-429 format 0 (data type 0x38): one packet's words as arrays.

Interface only (the decoder and builder land with the bus-data work): a packet
decodes to one ``Words429``, one row per word. The 32-bit word is stored with
ARINC bit 1 in the least significant bit: label bits 1-8 (sent most significant
bit first, so the stored byte is bit-reversed against the octal label), SDI 9-10,
data 11-29 (BNR sign bit 29), SSM 30-31, odd parity 32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["DATA_TYPE_ARINC429_F0", "Words429", "WordError"]

DATA_TYPE_ARINC429_F0 = 0x38


@dataclass(frozen=True)
class WordError:
    """A word that could not be decoded: where it is and why."""

    packet_offset: int
    index: int  # 0-based word index in the packet
    reason: str

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

    def __len__(self) -> int:
        return len(self.rtc)
