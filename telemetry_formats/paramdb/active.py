"""The parameters in force: every source's parameters (PCM links, 1553, ARINC-429) in one id space.

The station decodes several sources at once; the catalog, the alarms, the decimation
and the recorder see one flat list of parameters with ids 0..n-1 (PCM links by
channel, then 1553, then ARINC-429). ``ActiveDatabase`` is that list with, per
parameter, what the PCM-shaped code needs: a ``Parameter`` to evaluate over a frame
(bus parameters reduce to one over their synthetic frame, ``as_slot_parameter``), that
frame, the source kind and channel, and a ``time_key`` naming the parameters that are
sampled together (one PCM link; one 1553 message; one ARINC label).

``combine`` builds it from a parameter file's mission database and a stream's TMATS
(``from_tmats`` per PCM link, ``buses_from_tmats``) with the precedence rule: the
parameter files first; TMATS PCM links only when the files define no PCM link; TMATS
bus parameters only for channels the files define no bus parameters on; a TMATS name
the files already use is dropped with a note, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..tmats import Tmats
from .bus import FRAME_429, FRAME_1553, Parameter429, Parameter1553
from .bus_tmats import buses_from_tmats
from .loaders import from_tmats
from .mission import MissionDatabase
from .model import ConfigError, FrameFormat, Parameter, ParameterDatabase

__all__ = ["ActiveDatabase", "combine"]


@dataclass
class ActiveDatabase:
    """PCM links by channel and bus parameters, as one list (see the module docstring)."""

    pcm: dict[int, ParameterDatabase] = field(default_factory=dict)  # channel -> link (-1: channel not known)
    mil1553: list[Parameter1553] = field(default_factory=list)
    arinc429: list[Parameter429] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        params: list[Parameter] = []
        frames: list[FrameFormat] = []
        kinds: list[str] = []
        channels: list[int] = []
        keys: list[tuple] = []
        for ch, db in sorted(self.pcm.items()):
            for p in db.parameters:
                params.append(p)
                frames.append(db.frame)
                kinds.append("pcm")
                channels.append(ch)
                keys.append(("pcm", ch))
        for b in self.mil1553:
            params.append(b.as_slot_parameter())
            frames.append(FRAME_1553)
            kinds.append("1553")
            channels.append(b.channel)
            keys.append(("1553", b.channel, b.key, b.word_count or 0))
        for a in self.arinc429:
            params.append(a.as_slot_parameter())
            frames.append(FRAME_429)
            kinds.append("429")
            channels.append(a.channel)
            keys.append(("429", a.channel, a.bus, a.label, a.sdi))
        seen: set[str] = set()
        for p in params:
            if p.name in seen:
                raise ConfigError(f"parameter {p.name!r} defined twice")
            seen.add(p.name)
        self.parameters = params
        self.frames = frames
        self.kinds = kinds
        self.channels = channels
        self.time_keys = keys
        self.ids = {p.name: i for i, p in enumerate(params)}

    @classmethod
    def of(cls, db: ParameterDatabase, channel: int = -1) -> ActiveDatabase:
        """One PCM link alone (``channel`` -1: not bound to a channel)."""
        return cls(pcm={channel: db}, source=db.source)

    @property
    def frame(self) -> FrameFormat:
        """The first PCM link's frame (the 1553 frame without PCM): for figures that name one."""
        return next(iter(sorted(self.pcm.items())))[1].frame if self.pcm else FRAME_1553

    @property
    def bus(self) -> MissionDatabase:
        """The bus parameters as a mission database (for ``BusExtractor``)."""
        return MissionDatabase(mil1553=list(self.mil1553), arinc429=list(self.arinc429))

    def location(self, i: int) -> str:
        """Where parameter ``i`` is read from, for a person (bus parameters; "" for PCM)."""
        kind, ch = self.kinds[i], self.channels[i]
        if kind == "1553":
            b = next(p for p in self.mil1553 if p.name == self.parameters[i].name)
            words = "+".join(f"{f.word}[{f.msb}..{f.lsb}]" for f in b.fragments)
            return f"1553 channel {ch} RT{b.rt} {b.tr} SA{b.subaddress} word {words}"
        if kind == "429":
            a = next(p for p in self.arinc429 if p.name == self.parameters[i].name)
            sdi = "any" if a.sdi is None else a.sdi
            return f"ARINC-429 channel {ch} label {a.label:03o} SDI {sdi} bits {a.msb}..{a.lsb}"
        return ""


def _pcm_from_tmats(tmats: Tmats, channel_id: int | None, problems: list[str]) -> dict[int, ParameterDatabase]:
    """Every PCM link the TMATS describes (only ``channel_id`` when given), each from its own P-group."""
    wanted = [c.channel_id for c in tmats.channels if c.channel_type == "PCMIN" and c.channel_id is not None]
    if channel_id is not None:
        wanted = [channel_id]
    out: dict[int, ParameterDatabase] = {}
    for ch in wanted:
        try:
            db, more = from_tmats(tmats, ch)
        except ConfigError as exc:
            problems.append(f"TMATS PCM channel {ch}: {exc}")
            continue
        problems += more
        out[ch] = db
    return out


def _drop_taken(params: list, taken: set[str], problems: list[str], what: str) -> list:
    out = []
    for p in params:
        if p.name in taken:
            problems.append(f"{what} {p.name!r} not used: the parameter files define that name")
            continue
        taken.add(p.name)
        out.append(p)
    return out


def combine(files: MissionDatabase | None, tmats: Tmats | None, *, pcm_channel: int | None = None,
            bind_pcm: int | None = None) -> tuple[ActiveDatabase, list[str]]:
    """The parameters in force from the parameter files and the stream's TMATS, and non-fatal problems.

    ``pcm_channel`` restricts the TMATS PCM links to that channel (``--channel``);
    ``bind_pcm`` is the channel a file's PCM link with no channel of its own is decoded
    on (the first PCM channel seen, or ``--channel``).
    """
    problems: list[str] = []
    pcm: dict[int, ParameterDatabase] = {}
    mil1553: list[Parameter1553] = []
    arinc429: list[Parameter429] = []
    sources = []
    if files is not None:
        for src in files.pcm:
            ch = src.source.channel if src.source.channel is not None else bind_pcm
            if ch is None:
                ch = -1
            if ch in pcm:
                problems.append(f"PCM link {src.source.label}: channel {ch} already has a link; not used")
                continue
            pcm[ch] = src.db
        mil1553 += files.mil1553
        arinc429 += files.arinc429
        sources.append(files.pcm[0].db.source if files.pcm else "parameter files")
    if tmats is not None:
        taken = {p.name for db in pcm.values() for p in db.parameters} | {p.name for p in (*mil1553, *arinc429)}
        if not pcm:
            for ch, db in _pcm_from_tmats(tmats, pcm_channel, problems).items():
                kept = _drop_taken(db.parameters, taken, problems, "TMATS measurement")
                pcm[ch] = ParameterDatabase(db.frame, kept, db.source or "TMATS")
        try:
            buses, more = buses_from_tmats(tmats)
        except ConfigError as exc:
            buses, more = MissionDatabase(), [f"TMATS bus groups: {exc}"]
        problems += more
        defined = {p.channel for p in (*mil1553, *arinc429)}
        mil1553 += _drop_taken([p for p in buses.mil1553 if p.channel not in defined], taken, problems,
                               "TMATS bus measurand")
        arinc429 += _drop_taken([p for p in buses.arinc429 if p.channel not in defined], taken, problems,
                                "TMATS bus measurand")
        sources.append("TMATS")
    return ActiveDatabase(pcm, mil1553, arinc429, " + ".join(sources)), problems
