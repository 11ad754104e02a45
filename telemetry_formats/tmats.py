"""TMATS (IRIG 106 Chapter 9) setup records: ``CODE:value;`` text to a structured model.

Only attribute codes the ground station acts on are modelled; every attribute,
known or not, stays available in ``Tmats.attributes`` (in order, duplicates kept)
and ``Tmats.get``. Parsing never fails: malformed fragments are collected in
``Tmats.problems``.

Linking, as the standard defines it: ``R-x\\TK1-n`` (channel ID) with
``R-x\\CDLN-n`` (``PDLN`` before 106-07) names the PCM data link ``P-d\\DLN``;
D-groups with the same ``DLN`` hold its measurements (``D-x\\MN-y-n``); the C-group
whose ``DCN`` equals a measurement name holds its conversion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "Tmats",
    "RecorderChannel",
    "PcmLink",
    "SfidCounter",
    "Measurement",
    "Fragment",
    "Conversion",
    "parse_tmats",
]

# The code runs to the first colon (stripped by the caller); a greedy class keeps
# matching linear in the chunk length.
_ATTR = re.compile(r"^\s*([A-Za-z0-9]+(?:-[0-9]+)?\\[^:;]+):(.*)$", re.S)


@dataclass
class RecorderChannel:
    """One R-group data source (``R-x\\...-n``)."""

    index: int
    channel_id: int | None
    data_source: str = ""
    channel_type: str = ""  # CDT: PCMIN, TIMEIN, 1553IN, ...
    enabled: bool = True
    data_link: str = ""  # CDLN / PDLN
    pcm_packing: str = ""  # PDP: UN (unpacked), PFS (packed), TM (throughput)


@dataclass
class SfidCounter:
    """A subframe ID counter (``P-d\\ISF``/``IDC`` attributes)."""

    name: str = ""
    word: int = 0  # IDC1: word position of the counter
    word_length: int | None = None  # IDC2
    msb_bit: int | None = None  # IDC3: bit of the word holding the counter MSB (1 = word MSB)
    length: int | None = None  # IDC4: counter length in bits
    first_count: int = 0  # IDC6
    last_count: int | None = None  # IDC8
    increasing: bool = True  # IDC10: INC/DEC


@dataclass
class PcmLink:
    """A P-group: the Chapter 4 PCM frame format of one data link."""

    index: int
    name: str = ""
    code: str = ""  # D1
    bit_rate: float | None = None  # D2, bits/s
    word_length: int = 16  # F1
    msb_first: bool = True  # F2
    parity: str = "NO"  # F3
    minor_frames: int = 1  # MF\N
    words_per_minor: int = 0  # MF1, the sync pattern counts as one word
    bits_per_minor: int = 0  # MF2
    sync_length: int = 0  # MF4
    sync_pattern: str = ""  # MF5 as written: 0/1 bits, X for don't care
    word_lengths: dict[int, int] = field(default_factory=dict)  # MFW1/MFW2 exceptions
    sfid: list[SfidCounter] = field(default_factory=list)


@dataclass
class Fragment:
    """One fragment location of a measurement (``-y-n-m-e`` attributes)."""

    word_position: int
    word_interval: int = 0
    frame_position: int | None = None
    frame_interval: int = 0
    mask: str = "FW"  # WFM: FW (full word) or a bit string of 0/1
    transfer_order: str = "D"  # WFT: M, L or D (default)
    fragment_position: int = 1  # WFP


@dataclass
class Measurement:
    """A D-group measurand: name, fragments and its location type."""

    name: str
    data_link: str
    location_type: str = "WDFR"
    fragments: list[Fragment] = field(default_factory=list)


@dataclass
class Conversion:
    """A C-group data conversion for one measurand."""

    name: str
    description: str = ""
    units: str = ""
    binary_format: str = "UNS"  # BFM
    kind: str = "NON"  # DCT
    coefficients: list[float] = field(default_factory=list)  # CO, CO-1 ... (increasing order)
    pairs: list[tuple[float, float]] = field(default_factory=list)  # PS3-n / PS4-n
    comment: str = ""  # COM
    high_limit: float | None = None  # MOT1 high measurement value
    low_limit: float | None = None  # MOT2
    high_alert: float | None = None  # MOT3
    low_alert: float | None = None  # MOT4
    high_warning: float | None = None  # MOT5
    low_warning: float | None = None  # MOT6


@dataclass
class Tmats:
    """A parsed setup record."""

    attributes: list[tuple[str, str]]
    values: dict[str, str]
    channels: list[RecorderChannel]
    pcm_links: dict[str, PcmLink]
    measurements: dict[str, Measurement]
    conversions: dict[str, Conversion]
    problems: list[str]

    def get(self, code: str, default: str | None = None) -> str | None:
        """The value of an attribute code (the last one if repeated)."""
        return self.values.get(code.upper(), default)

    @property
    def irig106_version(self) -> str | None:
        return self.get("G\\106")

    @property
    def program_name(self) -> str | None:
        return self.get("G\\PN")

    def pcm_link_for_channel(self, channel_id: int) -> PcmLink | None:
        """The P-group that describes the PCM channel ``channel_id``, if any."""
        for ch in self.channels:
            if ch.channel_id == channel_id and ch.data_link:
                return self.pcm_links.get(ch.data_link)
        return None

    def channel(self, channel_id: int) -> RecorderChannel | None:
        for ch in self.channels:
            if ch.channel_id == channel_id:
                return ch
        return None

    def measurements_of(self, data_link: str) -> list[Measurement]:
        return [m for m in self.measurements.values() if m.data_link == data_link]


def _split_attributes(text: str, problems: list[str]) -> list[tuple[str, str]]:
    out = []
    for chunk in text.split(";"):
        if not chunk.strip():
            continue
        m = _ATTR.match(chunk)
        if not m:
            if not chunk.strip().upper().startswith("COMMENT"):
                problems.append(f"not an attribute: {chunk.strip()[:60]!r}")
            continue
        out.append((m.group(1).strip().upper(), m.group(2).strip()))
    return out


def _int(v: str | None, default: int | None = None) -> int | None:
    if v is None:
        return default
    try:
        return int(v.strip(), 0) if v.strip().lower().startswith("0x") else int(float(v))
    except (ValueError, OverflowError):  # OverflowError: "inf", "1e400"
        return default


def _float(v: str | None) -> float | None:
    if v is None or not v.strip():
        return None
    try:
        return float(v)
    except ValueError:
        return None


def _groups(values: dict[str, str], letter: str) -> dict[int, dict[str, str]]:
    """``{group index: {sub-code: value}}`` for codes like ``P-3\\MF1``."""
    groups: dict[int, dict[str, str]] = {}
    prefix = re.compile(rf"^{letter}-(\d{{1,9}})\\(.+)$")
    for code, value in values.items():
        m = prefix.match(code)
        if m:
            groups.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return groups


def _indexed(sub: dict[str, str], name: str, arity: int | None = None) -> dict[tuple[int, ...], str]:
    """Values of ``NAME-i[-j...]`` sub-codes keyed by their index tuple
    (only those with ``arity`` indices, if given)."""
    out = {}
    pat = re.compile(rf"^{re.escape(name)}((?:-\d{{1,9}})+)$")
    for code, value in sub.items():
        m = pat.match(code)
        if m:
            key = tuple(int(x) for x in m.group(1)[1:].split("-"))
            if arity is None or len(key) == arity:
                out[key] = value
    return out


def _recorder_channels(values: dict[str, str]) -> list[RecorderChannel]:
    chans = []
    for _, sub in sorted(_groups(values, "R").items()):
        for (n,), ch_id in sorted(_indexed(sub, "TK1", 1).items()):
            chans.append(
                RecorderChannel(
                    index=n,
                    channel_id=_int(ch_id),
                    data_source=sub.get(f"DSI-{n}", ""),
                    channel_type=sub.get(f"CDT-{n}", "").upper(),
                    enabled=sub.get(f"CHE-{n}", "T").upper() != "F",
                    data_link=sub.get(f"CDLN-{n}") or sub.get(f"PDLN-{n}") or sub.get(f"DSI-{n}", ""),
                    pcm_packing=sub.get(f"PDP-{n}", "").upper(),
                )
            )
    return chans


def _pcm_links(values: dict[str, str]) -> dict[str, PcmLink]:
    links = {}
    for idx, sub in sorted(_groups(values, "P").items()):
        link = PcmLink(
            index=idx,
            name=sub.get("DLN", f"P-{idx}"),
            code=sub.get("D1", ""),
            bit_rate=_float(sub.get("D2")),
            word_length=_int(sub.get("F1"), 16) or 16,
            msb_first=sub.get("F2", "M").upper() != "L",
            parity=sub.get("F3", "NO").upper(),
            minor_frames=_int(sub.get("MF\\N"), 1) or 1,
            words_per_minor=_int(sub.get("MF1"), 0) or 0,
            bits_per_minor=_int(sub.get("MF2"), 0) or 0,
            sync_length=_int(sub.get("MF4"), 0) or 0,
            sync_pattern=sub.get("MF5", "").replace(" ", ""),
        )
        for (n,), pos in _indexed(sub, "MFW1", 1).items():
            bits = _int(sub.get(f"MFW2-{n}"))
            if _int(pos) is not None and bits:
                link.word_lengths[_int(pos)] = bits
        counters = {k[0] for k in _indexed(sub, "ISF1")} | {k[0] for k in _indexed(sub, "IDC1")}
        for n in sorted(counters):
            word = _int(sub.get(f"IDC1-{n}"))
            if word is None:
                continue
            link.sfid.append(
                SfidCounter(
                    name=sub.get(f"ISF1-{n}", ""),
                    word=word,
                    word_length=_int(sub.get(f"IDC2-{n}")),
                    msb_bit=_int(sub.get(f"IDC3-{n}")),
                    length=_int(sub.get(f"IDC4-{n}")),
                    first_count=_int(sub.get(f"IDC6-{n}"), 0) or 0,
                    last_count=_int(sub.get(f"IDC8-{n}")),
                    increasing=sub.get(f"IDC10-{n}", "INC").upper() != "DEC",
                )
            )
        links[link.name] = link
    return links


def _measurements(values: dict[str, str]) -> dict[str, Measurement]:
    out = {}
    for _, sub in sorted(_groups(values, "D").items()):
        dln = sub.get("DLN", "")
        positions = _indexed(sub, "WP")
        by_measurement: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
        for key in positions:  # grouped once: a per-measurement scan is quadratic
            by_measurement.setdefault(key[:2], []).append(key)
        for (y, n), name in sorted(_indexed(sub, "MN", 2).items()):
            meas = Measurement(name=name, data_link=dln, location_type=sub.get(f"LT-{y}-{n}", "WDFR").upper())
            for key in sorted(by_measurement.get((y, n), ())):
                sfx = "-".join(str(x) for x in key)
                wp = _int(positions[key])
                if wp is None:
                    continue
                meas.fragments.append(
                    Fragment(
                        word_position=wp,
                        word_interval=_int(sub.get(f"WI-{sfx}"), 0) or 0,
                        frame_position=_int(sub.get(f"FP-{sfx}")),
                        frame_interval=_int(sub.get(f"FI-{sfx}"), 0) or 0,
                        mask=sub.get(f"WFM-{sfx}", "FW").upper(),
                        transfer_order=sub.get(f"WFT-{sfx}", "D").upper(),
                        fragment_position=_int(sub.get(f"WFP-{sfx}"), 1) or 1,
                    )
                )
            out[name] = meas
    return out


def _conversions(values: dict[str, str]) -> dict[str, Conversion]:
    out = {}
    for _, sub in sorted(_groups(values, "C").items()):
        name = sub.get("DCN")
        if not name:
            continue
        conv = Conversion(
            name=name,
            description=sub.get("MN1", ""),
            units=sub.get("MN3", ""),
            binary_format=sub.get("BFM", "UNS").upper(),
            kind=sub.get("DCT", "NON").upper(),
            comment=sub.get("COM", ""),
            high_limit=_float(sub.get("MOT1")),
            low_limit=_float(sub.get("MOT2")),
            high_alert=_float(sub.get("MOT3")),
            low_alert=_float(sub.get("MOT4")),
            high_warning=_float(sub.get("MOT5")),
            low_warning=_float(sub.get("MOT6")),
        )
        order = _int(sub.get("CO\\N"))
        if order is not None:
            order = min(order, len(sub))  # a corrupt order must not allocate billions of zeros
            coeffs = [_float(sub.get("CO")) or 0.0]
            coeffs += [_float(sub.get(f"CO-{i}")) or 0.0 for i in range(1, order + 1)]
            conv.coefficients = coeffs
        raw = _indexed(sub, "PS3", 1)
        for (i,), r in sorted(raw.items()):
            rv, ev = _float(r), _float(sub.get(f"PS4-{i}"))
            if rv is not None and ev is not None:
                conv.pairs.append((rv, ev))
        out[name] = conv
    return out


def unclean_reason(text: str, tmats: Tmats) -> str | None:
    """Why a setup record's text does not parse cleanly (non-ASCII bytes, a chunk that is no
    attribute), or None. A TMATS packet whose data checksum failed is used only when clean."""
    if "\ufffd" in text:
        return "its text holds bytes that are not ASCII"
    if tmats.problems:
        return f"its text does not parse cleanly ({tmats.problems[0]})"
    return None


def parse_tmats(text: str | bytes) -> Tmats:
    """Parse a TMATS setup record. Never raises; see ``Tmats.problems``."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("ascii", errors="replace")
    problems: list[str] = []
    attrs = _split_attributes(text, problems)
    values = dict(attrs)
    return Tmats(
        attributes=attrs,
        values=values,
        channels=_recorder_channels(values),
        pcm_links=_pcm_links(values),
        measurements=_measurements(values),
        conversions=_conversions(values),
        problems=problems,
    )
