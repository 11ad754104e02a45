"""TMATS (IRIG 106 Chapter 9) B-groups: bus data links, their messages and measurands.

``B-x\\DLN`` names the link a recorder channel's ``R-x\\CDLN-n`` points at; per bus
``i``: ``BNA-i`` name, ``BT-i`` type (``1553``, ``A429``); per message ``n``: the
command word (``CWE-i-n`` = W with ``CMD-i-n`` in hex) or its fields ``TRA-i-n`` (RT
address), ``TRM-i-n`` (1 transmit, 0 receive), ``STA-i-n`` (subaddress), ``DWC-i-n``
(word count, 0 = 32), and for ARINC-429 ``LBL-i-n`` (octal) and ``SDI-i-n``; per
measurand ``p``: ``MN-i-n-p`` and its locations ``e``: ``MWN-i-n-p-e`` word number,
``MBM-i-n-p-e`` bit mask (FW or a bit string), ``MTO-i-n-p-e`` transfer order,
``MFP-i-n-p-e`` fragment position. Numbers written as five-bit binary strings (as
the standard shows them) or decimal are both read. ARINC sub-channels come from
``R-x\\ASN-n-m`` (number) and ``ANM-n-m`` (name). Parsing never fails: what cannot be
read is listed in ``problems``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .tmats import Tmats, _groups, _indexed, _int

__all__ = ["BusLink", "BusMessage", "BusMeasurand", "BusLocation", "bus_links", "arinc_subchannels"]


@dataclass
class BusLocation:
    """Where one fragment of a measurand sits: data word number, mask, transfer order, fragment position."""

    word: int
    mask: str = "FW"
    transfer_order: str = "N"
    fragment_position: int = 1


@dataclass
class BusMeasurand:
    name: str
    locations: list[BusLocation] = field(default_factory=list)


@dataclass
class BusMessage:
    """A message of bus ``bus`` (the B-group's bus index): its 1553 command fields or ARINC label/SDI."""

    bus: int
    index: int
    name: str = ""
    rt: int | None = None
    transmit: bool | None = None
    subaddress: int | None = None
    word_count: int | None = None
    label: str = ""  # octal, as written
    sdi: int | None = None  # None: all
    measurands: list[BusMeasurand] = field(default_factory=list)


@dataclass
class BusLink:
    """A B-group."""

    index: int
    name: str
    bus_names: dict[int, str] = field(default_factory=dict)
    bus_types: dict[int, str] = field(default_factory=dict)  # "1553", "A429", as written (upper case)
    messages: list[BusMessage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _field(v: str | None, bits: int) -> int | None:
    """A number written as a ``bits``-wide binary string or in decimal."""
    if v is None or not v.strip():
        return None
    v = v.strip()
    if len(v) == bits and set(v) <= {"0", "1"}:
        return int(v, 2)
    return _int(v)


def _message(link: BusLink, sub: dict[str, str], i: int, n: int) -> BusMessage:
    sfx = f"{i}-{n}"
    msg = BusMessage(bus=i, index=n, name=sub.get(f"MNA-{sfx}", ""))
    cmd = sub.get(f"CMD-{sfx}")
    if sub.get(f"CWE-{sfx}", "").upper() == "W" and cmd:
        try:
            word = int(cmd, 16)
            msg.rt, msg.transmit, msg.subaddress, wc = word >> 11 & 31, bool(word >> 10 & 1), word >> 5 & 31, word & 31
            msg.word_count = wc or 32
        except ValueError:
            link.problems.append(f"B-{link.index}\\CMD-{sfx}: {cmd!r} is not a hex command word")
    else:
        msg.rt, msg.subaddress = _field(sub.get(f"TRA-{sfx}"), 5), _field(sub.get(f"STA-{sfx}"), 5)
        trm = sub.get(f"TRM-{sfx}", "").strip().upper()
        msg.transmit = {"1": True, "T": True, "0": False, "R": False}.get(trm)
        wc = _field(sub.get(f"DWC-{sfx}"), 5)
        msg.word_count = None if wc is None else wc or 32
    msg.label = sub.get(f"LBL-{sfx}", "").strip()
    sdi = sub.get(f"SDI-{sfx}", "").strip().upper()
    msg.sdi = _int(sdi) if sdi and sdi not in ("ALL", "X", "ANY") else None
    return msg


def _link(index: int, sub: dict[str, str]) -> BusLink:
    link = BusLink(index=index, name=sub.get("DLN", f"B-{index}"))
    for (i,), name in _indexed(sub, "BNA", 1).items():
        link.bus_names[i] = name
    for (i,), kind in _indexed(sub, "BT", 1).items():
        link.bus_types[i] = kind.strip().upper().replace(" ", "")
    messages: dict[tuple[int, int], BusMessage] = {}
    keys = set(_indexed(sub, "TRA", 2)) | set(_indexed(sub, "CMD", 2)) | set(_indexed(sub, "LBL", 2)) \
        | set(_indexed(sub, "MID", 2)) | {k[:2] for k in _indexed(sub, "MN", 3)}
    for i, n in sorted(keys):
        messages[(i, n)] = _message(link, sub, i, n)
    locations = _indexed(sub, "MWN", 4)
    by_measurand: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for key in locations:
        by_measurand.setdefault(key[:3], []).append(key)
    for (i, n, p), name in sorted(_indexed(sub, "MN", 3).items()):
        meas = BusMeasurand(name)
        for key in sorted(by_measurand.get((i, n, p), ())):
            sfx = "-".join(str(x) for x in key)
            word = _int(locations[key])
            if word is None:
                link.problems.append(f"B-{index}\\MWN-{sfx}: {locations[key]!r} is not a word number")
                continue
            meas.locations.append(BusLocation(word, sub.get(f"MBM-{sfx}", "FW").strip().upper(),
                                              sub.get(f"MTO-{sfx}", "N").strip().upper(),
                                              _int(sub.get(f"MFP-{sfx}"), 1) or 1))
        messages[(i, n)].measurands.append(meas)
    link.messages = list(messages.values())
    return link


def bus_links(tmats: Tmats) -> dict[str, BusLink]:
    """The B-groups of a setup record by data link name."""
    return {link.name: link for link in (_link(x, sub) for x, sub in sorted(_groups(tmats.values, "B").items()))}


def arinc_subchannels(tmats: Tmats, channel_id: int) -> dict[str, int]:
    """ARINC-429 sub-channel numbers (``R-x\\ASN-n-m``) by name (``ANM-n-m``) of recorder channel ``channel_id``."""
    out: dict[str, int] = {}
    for _, sub in sorted(_groups(tmats.values, "R").items()):
        for (n,), ch in _indexed(sub, "TK1", 1).items():
            if _int(ch) != channel_id:
                continue
            for (n2, m), number in _indexed(sub, "ASN", 2).items():
                name = sub.get(f"ANM-{n2}-{m}")
                if n2 == n and name and (value := _int(number)) is not None:
                    out[name] = value
    return out
