"""TMATS for bus channels: R-group channel entries and B-groups (the inverse of ``tmats_bus`` + ``paramdb.bus_tmats``).

A MIL-STD-1553 channel is ``R-x\\CDT-n:1553IN``, an ARINC-429 channel ``429IN`` with
its sub-channels (``ASN-n-m`` number, ``ANM-n-m`` name). A channel with parameters
gets a B-group named by ``CDLN-n``: one bus per channel (1553) or per sub-channel
(ARINC-429, named as the sub-channel), one message per RT/T-R/subaddress/word count or
label/SDI, its measurands with word number, bit mask and fragment position, and a
C-group per measurand (``C-d\\DCN`` is the measurand's name) for format, calibration,
units and limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .paramdb.bus import Parameter429, Parameter1553

__all__ = ["BusChannel", "recorder_entries", "bus_groups"]

CHANNEL_TYPES = ("1553IN", "429IN")
_BFM = {"unsigned": "UNS", "signed": "TWO", "float": "FPT", "bnr": "BNR", "bcd": "BCD", "discrete": "DIS"}


@dataclass(frozen=True)
class BusChannel:
    """One bus channel of a recorder: Chapter 10 channel ID, ``1553IN`` or ``429IN``, its data link name,
    ARINC-429 sub-channel names by number, and (optionally) the parameters for its B-group."""

    channel: int
    kind: str
    name: str
    subchannels: Mapping[int, str] = field(default_factory=dict)
    parameters: Sequence[Parameter1553 | Parameter429] = ()

    def __post_init__(self) -> None:
        if self.kind not in CHANNEL_TYPES:
            raise ValueError(f"bus channel type must be one of {CHANNEL_TYPES}, got {self.kind!r}")


def recorder_entries(bus: BusChannel, n: int) -> list[tuple[str, str]]:
    """The ``R-1`` attributes of recorder channel ``n``."""
    a = [(f"R-1\\TK1-{n}", str(bus.channel)), (f"R-1\\DSI-{n}", bus.name), (f"R-1\\CHE-{n}", "T"),
         (f"R-1\\CDT-{n}", bus.kind), (f"R-1\\CDLN-{n}", bus.name)]
    for m, (number, name) in enumerate(sorted(bus.subchannels.items()), 1):
        a += [(f"R-1\\ASN-{n}-{m}", str(number)), (f"R-1\\ANM-{n}-{m}", name)]
    return a


def _bits5(v: int) -> str:
    return format(v & 31, "05b")


def _mask(first: int, last: int, width: int) -> str:
    """A bit-string mask of ``width`` characters with 1s at 0-based positions ``first``..``last``."""
    return "0" * first + "1" * (last - first + 1) + "0" * (width - 1 - last)


def _messages(bus: BusChannel) -> dict[tuple, list]:
    """Parameters grouped by (bus index name, message key), in ICD order."""
    out: dict[tuple, list] = {}
    for p in bus.parameters:
        if isinstance(p, Parameter1553):
            key: tuple = (bus.name, (p.rt, p.tr, p.subaddress, p.word_count or max(f.word for f in p.fragments)))
        else:
            key = (bus.subchannels.get(p.bus, "ANY") if p.bus is not None else "ANY", (p.label, p.sdi))
        out.setdefault(key, []).append(p)
    return out


def _b_group(x: int, bus: BusChannel) -> list[tuple[str, str]]:
    b = f"B-{x}\\"
    groups = _messages(bus)
    names = list(dict.fromkeys(k[0] for k in groups))
    a = [(f"{b}DLN", bus.name), (f"{b}NBS\\N", str(len(names)))]
    for i, name in enumerate(names, 1):
        a += [(f"{b}BNA-{i}", name), (f"{b}BT-{i}", "1553" if bus.kind == "1553IN" else "A429")]
        msgs = [(k[1], ps) for k, ps in groups.items() if k[0] == name]
        a.append((f"{b}NMS\\N-{i}", str(len(msgs))))
        for n, (key, params) in enumerate(msgs, 1):
            sfx = f"{i}-{n}"
            if bus.kind == "1553IN":
                rt, tr, sa, wc = key
                a += [(f"{b}TRA-{sfx}", _bits5(rt)), (f"{b}TRM-{sfx}", "1" if tr == "T" else "0"),
                      (f"{b}STA-{sfx}", _bits5(sa)), (f"{b}DWC-{sfx}", _bits5(wc))]
            else:
                label, sdi = key
                a += [(f"{b}LBL-{sfx}", f"{label:03o}"), (f"{b}SDI-{sfx}", "ALL" if sdi is None else str(sdi))]
            a.append((f"{b}MN\\N-{sfx}", str(len(params))))
            for q, p in enumerate(params, 1):
                a.append((f"{b}MN-{sfx}-{q}", p.name))
                if isinstance(p, Parameter1553):
                    locs = [(f.word, "FW" if f.bits == 16 else _mask(f.msb - 1, f.lsb - 1, 16)) for f in p.fragments]
                else:
                    msb, lsb = p.field_bits
                    locs = [(1, _mask(32 - msb, 32 - lsb, 32))]  # a 32-character mask starts at ARINC bit 32
                for e, (word, mask) in enumerate(locs, 1):
                    loc = f"{sfx}-{q}-{e}"
                    a += [(f"{b}MWN-{loc}", str(word)), (f"{b}MBM-{loc}", mask), (f"{b}MTO-{loc}", "N"),
                          (f"{b}MFP-{loc}", str(e))]
    return a


def bus_groups(buses: Sequence[BusChannel], first_c: int,
               conversion: Callable[[str, object, str], list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """The B-groups of ``buses`` with parameters, then their C-groups numbered from ``first_c``
    (``conversion`` writes one C-group, as ``tmats_writer.conversion_group``)."""
    a: list[tuple[str, str]] = []
    with_params = [bus for bus in buses if bus.parameters]
    for x, bus in enumerate(with_params, 1):
        a += _b_group(x, bus)
    c = first_c
    for bus in with_params:
        for p in bus.parameters:
            a += conversion(f"C-{c}", p, _BFM[p.encoding])
            c += 1
    return a
