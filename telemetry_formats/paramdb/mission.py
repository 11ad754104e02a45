"""The mission database: every source of a vehicle (PCM links, 1553 buses, ARINC-429 buses) and its parameters.

A source is one kind of data on one Chapter 10 channel. PCM sources keep their
``ParameterDatabase`` (a frame format and its parameters); bus parameters carry their
channel, so every parameter names its source. Names are unique across the whole
mission; merging databases from several files refuses a name defined twice and
names both places. The vehicle's uplink commands and the telemetry that verifies
them (``[[command]]`` and ``[verifier]`` tables) travel with it as the tables they
were read from; ``groundstation.commanding`` gives them their meaning.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .bus import Parameter429, Parameter1553
from .model import ConfigError, Parameter, ParameterDatabase

__all__ = ["Source", "PcmSource", "MissionDatabase", "SOURCE_KINDS"]

SOURCE_KINDS = ("pcm", "1553", "429")


@dataclass(frozen=True)
class Source:
    """One kind of data on one Chapter 10 channel (``channel`` None: a PCM link bound at run time)."""

    kind: str  # "pcm", "1553" or "429"
    channel: int | None
    name: str = ""

    @property
    def label(self) -> str:
        ch = "any channel" if self.channel is None else f"channel {self.channel}"
        return f"{self.name} ({self.kind}, {ch})" if self.name else f"{self.kind} {ch}"


@dataclass
class PcmSource:
    """A PCM link: its source and its frame format with parameters."""

    source: Source
    db: ParameterDatabase


@dataclass
class MissionDatabase:
    """All sources and parameters of a vehicle, checked on construction.

    ``origins`` maps each parameter name to where it was defined (``file``, ``file line N``).
    """

    pcm: list[PcmSource] = field(default_factory=list)
    mil1553: list[Parameter1553] = field(default_factory=list)
    arinc429: list[Parameter429] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)  # named bus sources (for labels)
    origins: dict[str, str] = field(default_factory=dict)
    commands: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)  # (origin, [[command]] table)
    verifier: tuple[str, Mapping[str, Any]] | None = None  # (origin, [verifier] table)

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name, origin in self._entries():
            if name in seen:
                raise ConfigError(f"parameter {name!r} defined twice: {seen[name]} and {origin}")
            seen[name] = origin
        self.origins = seen
        for p in (*self.mil1553, *self.arinc429):
            p.check()
        channels: dict[int, str] = {}
        for s in self.all_sources():
            if s.channel is None:
                continue
            other = channels.setdefault(s.channel, s.kind)
            if other != s.kind:
                raise ConfigError(f"channel {s.channel} is given as both a {other} and a {s.kind} source")
        commands: dict[str, str] = {}
        for origin, table in self.commands:
            name = str(table.get("name", ""))
            if name in commands:
                raise ConfigError(f"command {name!r} defined twice: {commands[name]} and {origin}")
            commands[name] = origin

    def _entries(self) -> Iterator[tuple[str, str]]:
        """(name, where it was defined) of every parameter."""
        for src in self.pcm:
            for p in src.db.parameters:
                yield p.name, self.origins.get(p.name) or src.db.source or src.source.label
        for b in (*self.mil1553, *self.arinc429):
            yield b.name, b.origin or self.origins.get(b.name, "") or "?"

    # -- lookup ---------------------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Every parameter name: PCM sources in order, then 1553, then ARINC-429."""
        return [name for name, _ in self._entries()]

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, name: str) -> Parameter | Parameter1553 | Parameter429:
        for src in self.pcm:
            for p in src.db.parameters:
                if p.name == name:
                    return p
        for b in (*self.mil1553, *self.arinc429):
            if b.name == name:
                return b
        raise KeyError(name)

    def all_sources(self) -> list[Source]:
        """Every source: PCM links, then the bus channels parameters use (named where a source names them)."""
        named = {(s.kind, s.channel): s for s in self.sources}
        out = [s.source for s in self.pcm]
        for b in (*self.mil1553, *self.arinc429):
            key = (b.kind, b.channel)
            if key not in named:
                named[key] = Source(b.kind, b.channel)
        out += [s for s in named.values() if s.kind != "pcm"]
        return out

    def source_of(self, name: str) -> Source:
        """The source parameter ``name`` belongs to."""
        for src in self.pcm:
            if any(p.name == name for p in src.db.parameters):
                return src.source
        p = self[name]
        return next(s for s in self.all_sources() if (s.kind, s.channel) == (p.kind, p.channel))

    def channels(self, kind: str) -> list[int]:
        """Channel IDs with parameters of ``kind`` ("1553" or "429"), sorted."""
        params = self.mil1553 if kind == "1553" else self.arinc429
        return sorted({p.channel for p in params})

    def mil1553_on(self, channel: int) -> list[Parameter1553]:
        return [p for p in self.mil1553 if p.channel == channel]

    def arinc429_on(self, channel: int) -> list[Parameter429]:
        return [p for p in self.arinc429 if p.channel == channel]

    def pcm_database(self, channel: int | None = None) -> ParameterDatabase | None:
        """The PCM link for ``channel``: the one bound to it, else the only one; None without PCM sources.

        ConfigError when there are several and none is bound to ``channel``.
        """
        if not self.pcm:
            return None
        bound = [s for s in self.pcm if s.source.channel is not None and s.source.channel == channel]
        if bound:
            return bound[0].db
        if len(self.pcm) == 1:
            return self.pcm[0].db
        links = ", ".join(s.source.label for s in self.pcm)
        raise ConfigError(f"several PCM links ({links}): choose one with its channel")

    # -- merging --------------------------------------------------------------------------------------------------
    @classmethod
    def merge(cls, dbs: Iterable[MissionDatabase]) -> MissionDatabase:
        """One database from several; ConfigError naming both places for a name defined twice."""
        out = cls()
        origins: dict[str, str] = {}
        for db in dbs:
            for name, origin in db.origins.items():
                if name in origins:
                    raise ConfigError(f"parameter {name!r} defined twice: {origins[name]} and {origin}")
                origins[name] = origin
            out.pcm += db.pcm
            out.mil1553 += db.mil1553
            out.arinc429 += db.arinc429
            out.sources += db.sources
            out.commands += db.commands
            if db.verifier is not None:
                if out.verifier is not None:
                    raise ConfigError(f"[verifier] given twice: {out.verifier[0]} and {db.verifier[0]}")
                out.verifier = db.verifier
        return cls(out.pcm, out.mil1553, out.arinc429, _unique_sources(out.sources), origins, out.commands,
                   out.verifier)


def _unique_sources(sources: list[Source]) -> list[Source]:
    by_key: dict[tuple[str, int | None], Source] = {}
    for s in sources:
        old = by_key.setdefault((s.kind, s.channel), s)
        if old.name != s.name and old.name and s.name:
            raise ConfigError(f"{s.kind} channel {s.channel} is named both {old.name!r} and {s.name!r}")
        if not old.name:
            by_key[(s.kind, s.channel)] = s
    return list(by_key.values())
