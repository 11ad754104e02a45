"""The parameter catalog consoles see: a numeric id per parameter, names sent once."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np

from telemetry_formats.paramdb import ParameterDatabase

__all__ = ["Catalog", "CatalogEntry", "SelectionError"]


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

    def as_wire(self) -> dict:
        return {"id": self.id, "name": self.name, "units": self.units, "group": self.group,
                "rate": self.rate_hz, "description": self.description, "limits": list(self.limits)}


class Catalog:
    """Parameters by id, name and group; ``version`` changes when the vehicle is reconfigured."""

    DEFAULT_GROUP = "default"

    def __init__(self, db: ParameterDatabase | None = None, version: int = 0) -> None:
        self.version = version
        self.entries: list[CatalogEntry] = []
        if db is not None:
            for i, p in enumerate(db.parameters):
                lim = p.limits
                self.entries.append(CatalogEntry(
                    id=i, name=p.name, units=p.units, group=p.group or self.DEFAULT_GROUP,
                    rate_hz=p.nominal_rate(db.frame), description=p.description,
                    limits=(lim.critical_low, lim.warning_low, lim.warning_high, lim.critical_high)))
        self._index()

    @classmethod
    def from_wire(cls, wire: dict) -> "Catalog":
        """The catalog an ingest node sent (``as_wire``), for an edge node."""
        cat = cls(None, int(wire.get("version", 0)))
        cat.entries = [CatalogEntry(id=int(p["id"]), name=p["name"], units=p.get("units", ""),
                                    group=p.get("group") or cls.DEFAULT_GROUP, rate_hz=p.get("rate"),
                                    description=p.get("description", ""), limits=tuple(p.get("limits", (None,) * 4)))
                       for p in wire.get("params", [])]
        cat._index()
        return cat

    def _index(self) -> None:
        self.by_name = {e.name: e for e in self.entries}
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

    def select(self, names=(), globs=(), groups=()) -> np.ndarray:
        """Ids matching any of the names, glob patterns or groups (sorted, unique).

        Raises ``SelectionError`` listing unknown names and groups; a glob that
        matches nothing is an error too.
        """
        unknown = [n for n in names if n not in self.by_name]
        unknown += [f"group:{g}" for g in groups if g not in self.groups]
        ids = [self.by_name[n].id for n in names if n in self.by_name]
        for pattern in globs:
            hit = [e.id for e in self.entries if fnmatch.fnmatchcase(e.name, pattern)]
            if not hit:
                unknown.append(f"glob:{pattern}")
            ids += hit
        for g in groups:
            if g in self.groups:
                ids += self.groups[g].tolist()
        if unknown:
            raise SelectionError(f"unknown: {', '.join(unknown)}", unknown)
        return np.unique(np.array(ids, np.int32))

    def as_wire(self) -> dict:
        return {"version": self.version, "groups": self.group_names,
                "params": [e.as_wire() for e in self.entries]}
