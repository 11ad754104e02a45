"""Write a TMATS setup record (G, R, P, D, C groups) describing a parameter database.

Bus channels (``BusChannel``) add their R-group entries and, with parameters, a
B-group each (``tmats_bus_writer``), their conversions as more C-groups.

TMATS has no notion of parameter groups; the group rides in the C-group
comment as ``C-x\\COM:GROUP=name;`` (read back by ``paramdb.from_tmats``).

The inverse of ``tmats.parse_tmats`` + ``paramdb.from_tmats``: a vehicle (or the
simulator) announces its own PCM format this way, and a ground station that
reads the record rebuilds the same ``ParameterDatabase``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .paramdb.model import ParameterDatabase
from .tmats_bus_writer import BusChannel, bus_groups, recorder_entries

__all__ = ["write_tmats", "BusChannel"]

_BFM = {"unsigned": "UNS", "signed": "TWO", "float": "FPT"}


def _num(v: float) -> str:
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def write_tmats(
    db: ParameterDatabase,
    *,
    pcm_channel: int,
    time_channel: int | None = 1,
    program: str = "GROUNDSTATION",
    version: str = "11",
    comment: str = "",
    bus_channels: Sequence[BusChannel] = (),
) -> str:
    """The TMATS text for one PCM link ``db`` recorded on channel ``pcm_channel`` (and ``bus_channels``)."""
    f = db.frame
    link = f.name
    a: list[tuple[str, str]] = [("G\\PN", program), ("G\\106", version), ("G\\DSI\\N", "1"), ("G\\DSI-1", "DATASOURCE")]
    if comment:
        a.append(("G\\COM", comment))
    channels = []
    if time_channel is not None:
        channels.append((time_channel, "TIME", "TIMEIN", None))
    channels.append((pcm_channel, link, "PCMIN", link))
    a += [("R-1\\ID", "DATASOURCE"), ("R-1\\N", str(len(channels) + len(bus_channels)))]
    for n, (ch, dsi, cdt, dln) in enumerate(channels, 1):
        a += [(f"R-1\\TK1-{n}", str(ch)), (f"R-1\\DSI-{n}", dsi), (f"R-1\\CHE-{n}", "T"), (f"R-1\\CDT-{n}", cdt)]
        if dln:
            a += [(f"R-1\\CDLN-{n}", dln), (f"R-1\\PDTF-{n}", "1"), (f"R-1\\PDP-{n}", "UN")]
    for n, bus in enumerate(bus_channels, len(channels) + 1):
        a += recorder_entries(bus, n)
    sync_bits = format(f.sync_pattern, f"0{f.sync_length}b")
    if f.sync_mask is not None:
        sync_bits = "".join(b if (f.sync_mask >> (f.sync_length - 1 - i)) & 1 else "X" for i, b in enumerate(sync_bits))
    a += [
        ("P-1\\DLN", link),
        ("P-1\\D1", "NRZ-L"),
        ("P-1\\D2", _num(f.bit_rate) if f.bit_rate else "0"),
        ("P-1\\TF", "ONE"),
        ("P-1\\F1", str(f.word_length)),
        ("P-1\\F2", "M"),
        ("P-1\\F3", "NO"),
        ("P-1\\MF\\N", str(f.minor_frames)),
        ("P-1\\MF1", str(f.words_per_minor)),
        ("P-1\\MF2", str(f.bits_per_minor)),
        ("P-1\\MF3", "FPT"),
        ("P-1\\MF4", str(f.sync_length)),
        ("P-1\\MF5", sync_bits),
    ]
    if f.word_lengths:
        a.append(("P-1\\MFW\\N", str(len(f.word_lengths))))
        for n, (pos, bits) in enumerate(sorted(f.word_lengths.items()), 1):
            a += [(f"P-1\\MFW1-{n}", str(pos)), (f"P-1\\MFW2-{n}", str(bits))]
    if f.sfid is not None:
        s = f.sfid
        width = int(f.widths()[s.word])
        a += [
            ("P-1\\ISF\\N", "1"),
            ("P-1\\ISF1-1", "SFID"),
            ("P-1\\ISF2-1", "ID"),
            ("P-1\\IDC1-1", str(s.word)),
            ("P-1\\IDC2-1", str(width)),
            ("P-1\\IDC3-1", str(s.msb_bit)),
            ("P-1\\IDC4-1", str(s.length or width)),
            ("P-1\\IDC5-1", "M"),
            ("P-1\\IDC6-1", str(s.first_count)),
            ("P-1\\IDC10-1", "INC" if s.increasing else "DEC"),
        ]
    params = db.parameters
    a += [("D-1\\DLN", link), ("D-1\\ML\\N", "1"), ("D-1\\MLN-1", link), ("D-1\\MN\\N-1", str(len(params)))]
    widths = f.widths()
    for n, p in enumerate(params, 1):
        a += [(f"D-1\\MN-1-{n}", p.name), (f"D-1\\LT-1-{n}", "WDFR"), (f"D-1\\MML\\N-1-{n}", "1"),
              (f"D-1\\MNF\\N-1-{n}-1", str(len(p.fragments)))]
        for e, frag in enumerate(p.fragments, 1):
            sfx = f"1-{n}-1-{e}"
            mask = "FW"
            if frag.mask is not None:
                mask = format(frag.mask, f"0{int(widths[frag.word])}b")
            a += [(f"D-1\\WP-{sfx}", str(frag.word)), (f"D-1\\WI-{sfx}", str(p.word_interval)),
                  (f"D-1\\WFM-{sfx}", mask), (f"D-1\\WFP-{sfx}", str(e))]
            if p.frame_position is not None:
                a += [(f"D-1\\FP-{sfx}", str(p.frame_position)), (f"D-1\\FI-{sfx}", str(p.frame_interval))]
    for n, p in enumerate(params, 1):
        a += conversion_group(f"C-{n}", p, _BFM[p.encoding])
    a += bus_groups(bus_channels, len(params) + 1, conversion_group)
    return "".join(f"{k}:{v};\r\n" for k, v in a)


def conversion_group(c: str, p, bfm: str) -> list[tuple[str, str]]:
    """The C-group ``c`` (``"C-3"``) of a parameter (PCM or bus): name, units, format, calibration, limits, group."""
    a = [(f"{c}\\DCN", p.name), (f"{c}\\MN3", p.units), (f"{c}\\BFM", bfm)]
    if p.description:
        a.append((f"{c}\\MN1", p.description.replace(";", ",")))  # ";" ends a TMATS attribute
    cal = p.calibration
    if cal.polynomial:
        a += [(f"{c}\\DCT", "COE"), (f"{c}\\CO\\N", str(len(cal.polynomial) - 1)), (f"{c}\\CO1", "N"),
              (f"{c}\\CO", _num(cal.polynomial[0]))]
        a += [(f"{c}\\CO-{i}", _num(v)) for i, v in enumerate(cal.polynomial[1:], 1)]
    elif cal.pairs:
        a += [(f"{c}\\DCT", "PRS"), (f"{c}\\PS\\N", str(len(cal.pairs))), (f"{c}\\PS1", "Y")]
        for i, (r, e) in enumerate(cal.pairs, 1):
            a += [(f"{c}\\PS3-{i}", _num(r)), (f"{c}\\PS4-{i}", _num(e))]
    else:
        a.append((f"{c}\\DCT", "NON"))
    lim = p.limits
    for code, v in (("MOT3", lim.critical_high), ("MOT4", lim.critical_low),
                    ("MOT5", lim.warning_high), ("MOT6", lim.warning_low)):
        if v is not None:
            a.append((f"{c}\\{code}", _num(v)))
    com = [f"GROUP={p.group}"] if p.group else []
    if getattr(p, "enum", ()):  # our convention, like GROUP: ENUM=0:primary|1:backup
        com.append("ENUM=" + "|".join(f"{v}:{_enum_name(n)}" for v, n in p.enum))
    if com:
        a.append((f"{c}\\COM", ",".join(com)))
    return a


def _enum_name(name: str) -> str:
    """A state name as the COM convention can carry it (no ``; , | : =``)."""
    return "".join("_" if ch in ";,|:=" else ch for ch in name)
