"""Building MIL-STD-1553 F1 packet bodies (tests, benchmarks, the simulator).

The words are written in the bus order ``mil1553`` decodes (see its docstring);
the intra-packet header is packed with ``struct``, checked against the construct
definition ``IntraPacketHeader1553`` at import time.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Mapping

from .mil1553 import BROADCAST_RT, BSW_BITS, IntraPacketHeader1553, command_word

__all__ = ["build_1553_body", "bus_words"]

_IPH = struct.Struct("<QHBBH")


def bus_words(m: Mapping) -> list[int]:
    """The words of one message in bus order, from a message mapping (see ``build_1553_body``)."""
    if "words" in m:
        return [int(x) & 0xFFFF for x in m["words"]]
    data = [int(x) & 0xFFFF for x in m.get("data", ())]
    sa = int(m["subaddress"])
    tr = int(m.get("tr", 0))
    mode = sa in (0, 31)
    wc = int(m.get("word_count", (int(m.get("mode_code", 0)) if mode else len(data) % 32)))
    cmd = command_word(int(m["rt"]), tr, sa, wc)
    status = [int(m.get("status", int(m["rt"]) << 11))] if int(m["rt"]) != BROADCAST_RT else []
    if "rt2" in m:  # RT-to-RT: ``rt``/``subaddress`` receive, ``rt2``/``subaddress2`` transmit
        cmd2 = command_word(int(m["rt2"]), 1, int(m.get("subaddress2", sa)), wc)
        return [cmd, cmd2, int(m.get("status2", int(m["rt2"]) << 11)), *data, *status]
    if tr:
        return [cmd, *status, *data]
    return [cmd, *data, *status]


def build_1553_body(messages: Iterable[Mapping], *, time_tag_bits: int = 0, message_count: int | None = None) -> bytes:
    """Build a 1553 F1 packet body (CSDW + messages).

    Each message is a mapping: ``rt``, ``tr`` (0/1), ``subaddress``, ``data`` (data
    words; their number is the word count unless ``word_count`` is given; for mode
    codes give ``mode_code``), optional ``status`` (default: the RT address, no
    flags), ``rt2``/``subaddress2``/``status2`` for RT-to-RT (``rt``/``subaddress``
    then name the receiving RT), ``rtc`` (time stamp), ``gap1``, ``gap2``, any
    block status bit by name (``bus_b``, ``response_timeout``, ...; ``rt_to_rt`` is
    set for RT-to-RT), or ``words`` (all bus words, raw, for bad-input tests) and
    ``length`` (bytes, to write a length that disagrees with the words).
    """
    parts = []
    n = 0
    for m in messages:
        words = bus_words(m)
        bsw = sum(bit for name, bit in BSW_BITS.items() if m.get(name))
        if "rt2" in m:
            bsw |= BSW_BITS["rt_to_rt"]
        length = int(m.get("length", 2 * len(words)))
        parts.append(_IPH.pack(int(m.get("rtc", 0)), bsw, int(m.get("gap1", 0)), int(m.get("gap2", 0)), length))
        parts.append(array("H", words).tobytes())
        n += 1
    count = n if message_count is None else message_count
    return ((time_tag_bits & 3) << 30 | (count & 0xFFFFFF)).to_bytes(4, "little") + b"".join(parts)


def _check_fast_layout() -> None:
    header = dict(time_stamp=0x0123456789AB, gap1=5, gap2=7, length=4,
                  block_status={name: name in ("bus_b", "rt_to_rt", "sync_type_error") for name in BSW_BITS})
    bsw = BSW_BITS["bus_b"] | BSW_BITS["rt_to_rt"] | BSW_BITS["sync_type_error"]
    if IntraPacketHeader1553.build(header) != _IPH.pack(0x0123456789AB, bsw, 5, 7, 4):
        raise AssertionError("1553 intra-packet header layout disagrees with its construct definition")


_check_fast_layout()
