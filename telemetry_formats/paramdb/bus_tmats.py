"""Bus parameters from a setup record's B-groups, with their C-group conversions (``C-d\\DCN``, ``MOT3``-``MOT6``).

A recorder channel (``R-x\\TK1-n``) of type ``1553IN`` or ``429IN`` whose data link
(``CDLN-n``) names a B-group gets that group's measurands. A measurand that cannot be
used is skipped and named in the problems, as for PCM D-groups.
"""

from __future__ import annotations

from ..tmats import Tmats
from ..tmats_bus import BusLink, BusLocation, BusMessage, arinc_subchannels, bus_links
from .bus import Parameter429, Parameter1553, WordBits, label_from_octal
from .loaders import conversion_fields
from .mission import MissionDatabase, Source
from .model import ConfigError

__all__ = ["buses_from_tmats"]

_BUS_ENCODINGS = {"UNS": "unsigned", "TWO": "signed", "INT": "signed", "FPT": "float", "IEEE": "float",
                  "BCD": "bcd", "BNR": "bnr", "DIS": "discrete"}
_NORMAL_ORDER = ("N", "M", "D", "0", "")


def _ones(mask: str, what: str) -> tuple[int, int]:
    """(first, last) 0-based positions of the 1s of a contiguous bit-string mask."""
    if not mask or set(mask) - {"0", "1"} or "1" not in mask:
        raise ConfigError(f"{what} {mask!r}: expected FW or a bit string")
    first, last = mask.index("1"), mask.rindex("1")
    if "0" in mask[first:last + 1]:
        raise ConfigError(f"{what} {mask!r} is not contiguous")
    return first, last


def _bits_1553(loc: BusLocation) -> WordBits:
    if loc.mask == "FW":
        return WordBits(loc.word)
    first, last = _ones(loc.mask, "bit mask")
    return WordBits(loc.word, first + 1, last + 1)


def _bits_429(loc: BusLocation) -> tuple[int, int]:
    """ARINC (msb, lsb): a 32-character mask starts at bit 32, a shorter one at bit 29; FW is the data field."""
    if loc.mask == "FW":
        return 29, 11
    first, last = _ones(loc.mask, "bit mask")
    top = 32 if len(loc.mask) == 32 else 29
    return top - first, top - last


def _measurands(link: BusLink, msg: BusMessage, kind: str, channel: int, tmats: Tmats,
                subchannels: dict[str, int], problems: list[str]) -> list[Parameter1553 | Parameter429]:
    out: list[Parameter1553 | Parameter429] = []
    for meas in msg.measurands:
        origin = f"TMATS B-{link.index} bus {msg.bus} message {msg.index}"
        try:
            locs = sorted(meas.locations, key=lambda loc: loc.fragment_position)
            if not locs:
                raise ConfigError("no word number (MWN)")
            if any(loc.transfer_order not in _NORMAL_ORDER for loc in locs):
                raise ConfigError("reversed transfer order (MTO) is not supported")
            fields = conversion_fields(tmats.conversions.get(meas.name), _BUS_ENCODINGS,
                                       "unsigned")
            p: Parameter1553 | Parameter429
            if kind == "1553":
                if None in (msg.rt, msg.transmit, msg.subaddress):
                    raise ConfigError("message without RT address, T/R or subaddress (TRA/TRM/STA or CMD)")
                p = Parameter1553(meas.name, channel, msg.rt, "T" if msg.transmit else "R", msg.subaddress,
                                  tuple(_bits_1553(loc) for loc in locs), msg.word_count, origin=origin, **fields)
            else:
                if len(locs) > 1:
                    raise ConfigError("an ARINC-429 measurand has one location")
                msb, lsb = _bits_429(locs[0])
                if fields["encoding"] == "bnr":
                    msb = min(msb, 29)
                bus = subchannels.get(link.bus_names.get(msg.bus, ""))
                p = Parameter429(meas.name, channel, label_from_octal(msg.label, "LBL"), msb, lsb, bus=bus,
                                 sdi=msg.sdi, origin=origin, **fields)
            p.check()
            out.append(p)
        except (ConfigError, ValueError) as exc:
            problems.append(f"bus measurand {meas.name!r}: {exc}")
    return out


def buses_from_tmats(tmats: Tmats) -> tuple[MissionDatabase, list[str]]:
    """The 1553 and ARINC-429 parameters a setup record's B-groups define, plus non-fatal problems."""
    links = bus_links(tmats)
    problems = [p for link in links.values() for p in link.problems]
    params: list[Parameter1553 | Parameter429] = []
    sources = []
    for ch in tmats.channels:
        link = links.get(ch.data_link)
        if link is None or ch.channel_id is None or not ch.enabled:
            continue
        for msg in link.messages:
            bt = link.bus_types.get(msg.bus, "")
            kind = "1553" if ch.channel_type == "1553IN" or (not ch.channel_type and "1553" in bt) else \
                "429" if ch.channel_type == "429IN" or "429" in bt else ""
            if not kind:
                problems.append(f"B-{link.index} bus {msg.bus}: channel {ch.channel_id} is neither 1553 nor 429")
                break
            params += _measurands(link, msg, kind, ch.channel_id, tmats,
                                  arinc_subchannels(tmats, ch.channel_id) if kind == "429" else {}, problems)
        kinds = {p.kind for p in params if p.channel == ch.channel_id}
        sources += [Source(k, ch.channel_id, ch.data_source or link.name) for k in kinds]
    seen: set[str] = set()
    unique = []
    for p in params:  # a name twice in TMATS: keep the first, report the other
        if p.name in seen:
            problems.append(f"bus measurand {p.name!r}: defined twice ({p.origin})")
            continue
        seen.add(p.name)
        unique.append(p)
    db = MissionDatabase(mil1553=[p for p in unique if isinstance(p, Parameter1553)],
                         arinc429=[p for p in unique if isinstance(p, Parameter429)], sources=sources)
    return db, problems
