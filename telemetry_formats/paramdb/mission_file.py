"""The vehicle database file (TOML/YAML) with sources, and loading several files into one mission.

Today's PCM form (``[frame]`` and ``[[parameter]]``) is one PCM source; ``[[source]]``
tables add named sources bound to channels (``type`` pcm with its own ``frame``,
``1553`` or ``429``), and a parameter names its source with ``source``.
``[[command]]`` and ``[verifier]`` tables are kept for ``groundstation.commanding``.
Documented in ``docs/parameters.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .fields import FieldReader, parameter_429, parameter_1553
from .icd_csv import load_icd_csv
from .loaders import frame_from_mapping, parameter_from_mapping, read_document
from .mission import SOURCE_KINDS, MissionDatabase, PcmSource, Source
from .model import ConfigError, Parameter, ParameterDatabase

__all__ = ["parse_mission_mapping", "load_mission_file", "load_mission"]

_DEFAULT_PCM = ""  # the key of the top-level [frame] source


def _sources(doc: Mapping[str, Any], origin: str) -> tuple[dict[str, Source], dict[str, Mapping[str, Any]]]:
    """Named sources by name, and the frame table of each PCM source (``""``: the top-level ``[frame]``)."""
    named: dict[str, Source] = {}
    frames: dict[str, Mapping[str, Any]] = {}
    if doc.get("frame") is not None:
        frame = doc["frame"]
        if not isinstance(frame, Mapping):
            raise ConfigError(f"{origin}: [frame] must be a table")
        channel = FieldReader(frame, f"{origin}: [frame]").integer("channel")
        named[_DEFAULT_PCM] = Source("pcm", channel, str(frame.get("name", "pcm")))
        frames[_DEFAULT_PCM] = frame
    for k, s in enumerate(doc.get("source") or doc.get("sources") or []):
        r = FieldReader(s if isinstance(s, Mapping) else {}, f"{origin}: source #{k + 1}")
        name = r.text("name")
        if not name:
            raise r.fail("name", "missing")
        r.where = f"{origin}: source {name!r}"
        kind = r.choice("type", SOURCE_KINDS, "")
        channel = r.integer("channel", required=kind != "pcm")
        if name in named:
            raise r.fail("name", "defined twice")
        named[name] = Source(kind, channel, name)
        if kind == "pcm":
            if not isinstance(s.get("frame"), Mapping):
                raise r.fail("frame", "a pcm source needs a frame table")
            frames[name] = s["frame"]
    return named, frames


def _resolve(r: FieldReader, named: dict[str, Source]) -> tuple[str, Source]:
    """(key, source) a parameter belongs to: a named source, ``1553``/``429`` with ``channel``, or the [frame]."""
    ref = r.text("source")
    if not ref:
        if _DEFAULT_PCM not in named:
            raise r.fail("source", "missing (no [frame] to put a PCM parameter in)")
        return _DEFAULT_PCM, named[_DEFAULT_PCM]
    if ref in named:
        return ref, named[ref]
    if ref.lower() in ("1553", "429"):
        channel = r.integer("channel", required=True)
        return ref, Source(ref.lower(), channel)
    known = ", ".join(repr(n) for n in named if n) or "none"
    raise r.fail("source", f"{ref!r} is no source of this file (sources: {known}; or 1553/429 with a channel)")


def parse_mission_mapping(doc: Any, origin: str = "") -> MissionDatabase:
    """A mission database from the parsed contents of a vehicle database file."""
    origin = origin or "parameter file"
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{origin}: expected a table of [frame], [[source]] and [[parameter]]")
    named, frames = _sources(doc, origin)
    pcm_params: dict[str, list[Parameter]] = {key: [] for key in frames}
    mil1553, arinc429 = [], []
    for k, m in enumerate(doc.get("parameter", doc.get("parameters", [])) or []):
        if not isinstance(m, Mapping):
            raise ConfigError(f"{origin}: parameter #{k + 1} is not a table")
        name = str(m.get("name") or "")
        if not name:
            raise ConfigError(f"{origin}: parameter #{k + 1} has no name")
        r = FieldReader(m, f"{origin}: parameter {name!r}")
        key, source = _resolve(r, named)
        if source.kind == "pcm":
            try:
                pcm_params[key].append(parameter_from_mapping(m))
            except ConfigError as exc:
                raise ConfigError(f"{origin}: {exc}") from None
        elif source.kind == "1553":
            mil1553.append(parameter_1553(r, name, source.channel, origin))
        else:
            arinc429.append(parameter_429(r, name, source.channel, origin))
    pcm = []
    for key, frame in frames.items():
        try:
            db = ParameterDatabase(frame_from_mapping(frame), pcm_params[key], source=origin)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
        pcm.append(PcmSource(named[key], db))
    origins = {p.name: origin for src in pcm for p in src.db.parameters}
    bus_sources = [s for s in named.values() if s.kind != "pcm"]
    commands = doc.get("command", doc.get("commands", [])) or []
    if not isinstance(commands, list) or not all(isinstance(c, Mapping) and c.get("name") for c in commands):
        raise ConfigError(f"{origin}: [[command]] entries must be tables with a name")
    verifier = doc.get("verifier")
    if verifier is not None and not isinstance(verifier, Mapping):
        raise ConfigError(f"{origin}: [verifier] must be a table")
    return MissionDatabase(pcm, mil1553, arinc429, bus_sources, origins, [(origin, c) for c in commands],
                           None if verifier is None else (origin, verifier))


def load_mission_file(path: str | Path) -> MissionDatabase:
    """Load one ``.toml``, ``.yaml``/``.yml`` vehicle database file or ``.csv`` ICD."""
    if Path(path).suffix.lower() == ".csv":
        return load_icd_csv(path)
    return parse_mission_mapping(read_document(path), str(path))


def load_mission(paths: Iterable[str | Path]) -> MissionDatabase:
    """Load and merge several files; a name defined twice is an error naming both places."""
    return MissionDatabase.merge(load_mission_file(p) for p in paths)
