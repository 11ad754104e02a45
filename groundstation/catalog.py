"""The parameter catalog consoles see: a numeric id per parameter, names sent once.

Selections (``select``) cost what their parameters say, not patterns x parameters:
names are dictionary lookups; each glob is compiled once (an LRU cache of
``fnmatch.translate`` regexes) and tried only on the names sharing its literal
prefix, a contiguous range of the sorted name index found by bisection.
``select_cost`` says what a selection will cost before any of it is done, so a
caller can refuse one that is over its budget.
"""

from __future__ import annotations

import bisect
import fnmatch
import functools
import re
from dataclasses import dataclass

import numpy as np

from telemetry_formats.paramdb import ParameterDatabase
from telemetry_formats.paramdb.active import ActiveDatabase

__all__ = ["Catalog", "CatalogEntry", "SelectionError", "GLOB_COST", "glob_prefix"]

GLOB_COST = 200  # cost units of compiling one glob (one unit ~ one name tried against a compiled glob)
_WILDCARDS = re.compile(r"[*?\[]")


def glob_prefix(pattern: str) -> str:
    """The literal start of a glob (before its first ``*``, ``?`` or ``[``): every match begins with it."""
    m = _WILDCARDS.search(pattern)
    return pattern if m is None else pattern[:m.start()]


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str):
    return re.compile(fnmatch.translate(pattern)).match


class SelectionError(ValueError):
    """A subscription that names parameters or groups that do not exist."""

    def __init__(self, message: str, unknown: list[str]) -> None:
        super().__init__(message)
        self.unknown = unknown


@dataclass(frozen=True)
class CatalogEntry:
    id: int
    name: str
    units: str
    group: str
    rate_hz: float | None
    description: str
    limits: tuple[float | None, float | None, float | None, float | None]  # crit lo, warn lo, warn hi, crit hi
    kind: str = "real"  # how to show the value: "real", "integer" (counters, discretes) or "enum"
    enum: tuple[tuple[int, str], ...] = ()  # (value, name) when kind is "enum"
    source: str = "pcm"  # "pcm", "1553" or "429"
    channel: int | None = None  # its Chapter 10 channel (None: not known)

    def as_wire(self) -> dict:
        wire = {"id": self.id, "name": self.name, "units": self.units, "group": self.group,
                "rate": self.rate_hz, "description": self.description, "limits": list(self.limits), "kind": self.kind,
                "source": self.source, "channel": self.channel}
        if self.enum:
            wire["enum"] = {str(v): n for v, n in self.enum}
        return wire


class Catalog:
    """Parameters by id, name and group; ``version`` changes when the vehicle is reconfigured.

    PCM and bus parameters side by side, each with its source kind and channel.
    """

    DEFAULT_GROUP = "default"

    def __init__(self, db: ActiveDatabase | ParameterDatabase | None = None, version: int = 0) -> None:
        self.version = version
        self.entries: list[CatalogEntry] = []
        if db is not None:
            active = db if isinstance(db, ActiveDatabase) else ActiveDatabase.of(db)
            for i, p in enumerate(active.parameters):
                lim = p.limits
                ch = active.channels[i]
                self.entries.append(CatalogEntry(
                    id=i, name=p.name, units=p.units, group=p.group or self.DEFAULT_GROUP,
                    rate_hz=p.nominal_rate(active.frames[i]), description=p.description,
                    limits=(lim.critical_low, lim.warning_low, lim.warning_high, lim.critical_high),
                    kind=p.display_kind(), enum=p.enum,
                    source=active.kinds[i], channel=None if ch < 0 else ch))
        self._index()

    @classmethod
    def from_wire(cls, wire: dict) -> "Catalog":
        """The catalog an ingest node sent (``as_wire``), for an edge node."""
        cat = cls(None, int(wire.get("version", 0)))
        cat.entries = [CatalogEntry(id=int(p["id"]), name=p["name"], units=p.get("units", ""),
                                    group=p.get("group") or cls.DEFAULT_GROUP, rate_hz=p.get("rate"),
                                    description=p.get("description", ""), limits=tuple(p.get("limits", (None,) * 4)),
                                    kind=p.get("kind", "real"),
                                    enum=tuple((int(v), str(n)) for v, n in (p.get("enum") or {}).items()),
                                    source=p.get("source", "pcm"), channel=p.get("channel"))
                       for p in wire.get("params", [])]
        cat._index()
        return cat

    def _index(self) -> None:
        self.by_name = {e.name: e for e in self.entries}
        self._sorted = sorted(self.by_name)  # the name index globs are matched against
        self.groups: dict[str, np.ndarray] = {}
        for g in sorted({e.group for e in self.entries}):
            self.groups[g] = np.array([e.id for e in self.entries if e.group == g], np.int32)
        self.group_of = np.array([0] * len(self.entries), np.int32)
        self.group_names = list(self.groups)
        for gi, g in enumerate(self.group_names):
            self.group_of[self.groups[g]] = gi

    def __len__(self) -> int:
        return len(self.entries)

    def ids(self) -> dict[str, int]:
        return {e.name: e.id for e in self.entries}

    def _candidates(self, pattern: str) -> tuple[int, int]:
        """The range of the sorted names that share the glob's literal prefix."""
        prefix = glob_prefix(pattern)
        if not prefix:
            return 0, len(self._sorted)
        lo = bisect.bisect_left(self._sorted, prefix)
        return lo, bisect.bisect_left(self._sorted, prefix + "\U0010ffff", lo)

    def select_cost(self, names=(), globs=(), groups=()) -> int:
        """What ``select`` of this selection costs, in units of one name tried against one compiled
        glob: O(globs x log(parameters)) to find out, nothing matched yet."""
        cost = len(names) + len(groups)
        for pattern in set(globs):
            lo, hi = self._candidates(pattern)
            cost += GLOB_COST + hi - lo
        return cost

    def select(self, names=(), globs=(), groups=()) -> np.ndarray:
        """Ids matching any of the names, glob patterns (``fnmatchcase`` semantics) or groups (sorted,
        unique).

        Raises ``SelectionError`` listing unknown names and groups; a glob that
        matches nothing is an error too.
        """
        unknown = [n for n in names if n not in self.by_name]
        unknown += [f"group:{g}" for g in groups if g not in self.groups]
        ids = [self.by_name[n].id for n in names if n in self.by_name]
        for pattern in dict.fromkeys(globs):
            lo, hi = self._candidates(pattern)
            hit = list(filter(_compiled(pattern), self._sorted[lo:hi]))
            if not hit:
                unknown.append(f"glob:{pattern}")
            ids += [self.by_name[n].id for n in hit]
        for g in groups:
            if g in self.groups:
                ids += self.groups[g].tolist()
        if unknown:
            raise SelectionError(f"unknown: {', '.join(unknown)}", unknown)
        return np.unique(np.array(ids, np.int32))

    def as_wire(self) -> dict:
        return {"version": self.version, "groups": self.group_names,
                "params": [e.as_wire() for e in self.entries]}
