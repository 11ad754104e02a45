"""Build a ``ParameterDatabase`` from a user's TOML/YAML file or from TMATS P/D/C groups.

The file format is documented with an example in ``docs/parameters.md``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..tmats import Conversion, PcmLink, Tmats
from .model import (
    Calibration,
    ConfigError,
    Fragment,
    FrameFormat,
    Limits,
    Parameter,
    ParameterDatabase,
    Sfid,
)

__all__ = ["load_parameter_file", "parse_parameter_mapping", "read_document", "from_tmats", "frame_from_pcm_link"]

_TMATS_ENCODING = {"UNS": "unsigned", "TWO": "signed", "INT": "signed", "FPT": "float"}


def _num(v: Any, what: str) -> int:
    """An integer written as a number, a hex string ("0x..") or a bit string ("0b..")."""
    if isinstance(v, bool):
        raise ConfigError(f"{what}: expected an integer, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v.replace("_", ""), 0)
        except ValueError:
            pass
    raise ConfigError(f"{what}: expected an integer, got {v!r}")


def _sync_from_bits(bits: str) -> tuple[int, int, int]:
    """(pattern, length, mask) from a TMATS-style bit string; X/x bits are don't-care."""
    bits = bits.strip()
    if not bits or any(c not in "01Xx" for c in bits):
        raise ConfigError(f"sync pattern {bits!r}: expected a string of 0, 1 and X")
    pattern = int(bits.replace("X", "0").replace("x", "0"), 2)
    mask = int("".join("0" if c in "Xx" else "1" for c in bits), 2)
    return pattern, len(bits), mask


def frame_from_mapping(m: Mapping[str, Any]) -> FrameFormat:
    name = str(m.get("name", "pcm"))
    sync = m.get("sync_pattern", "0xFE6B2840")
    sync_len = m.get("sync_length")
    if isinstance(sync, str) and set(sync) <= set("01Xx") and len(sync) > 1:
        pattern, length, mask = _sync_from_bits(sync)
    else:
        pattern = _num(sync, f"frame {name}: sync_pattern")
        length = int(sync_len) if sync_len else max(pattern.bit_length(), 1)
        mask = None
    if sync_len and int(sync_len) != length:
        raise ConfigError(f"frame {name}: sync_length {sync_len} does not match the pattern's {length} bits")
    sfid = None
    if "sfid" in m and m["sfid"] is not None:
        s = m["sfid"]
        sfid = Sfid(
            word=_num(s.get("word"), f"frame {name}: sfid.word"),
            msb_bit=int(s.get("msb_bit", 1)),
            length=s.get("length"),
            first_count=int(s.get("first_count", 0)),
            increasing=str(s.get("direction", "up")).lower() in ("up", "inc", "increasing"),
        )
    try:
        return FrameFormat(
            name=name,
            words_per_minor=_num(m["words_per_minor"], f"frame {name}: words_per_minor"),
            word_length=int(m.get("word_length", 16)),
            sync_pattern=pattern,
            sync_length=length,
            sync_mask=mask if mask != (1 << length) - 1 else None,
            minor_frames=int(m.get("minor_frames", 1)),
            bit_rate=float(m["bit_rate"]) if m.get("bit_rate") else None,
            word_lengths={int(k): int(v) for k, v in (m.get("word_lengths") or {}).items()},
            sfid=sfid,
        )
    except KeyError as exc:
        raise ConfigError(f"frame {name}: missing {exc.args[0]!r}") from None


def parameter_from_mapping(m: Mapping[str, Any]) -> Parameter:
    name = m.get("name")
    if not name:
        raise ConfigError(f"a parameter has no name: {dict(m)!r}")
    words = m.get("words", [m["word"]] if "word" in m else None)
    if not words:
        raise ConfigError(f"parameter {name!r}: give 'word' or 'words'")
    masks = m.get("masks", [m.get("mask")] * len(words))
    if len(masks) != len(words):
        raise ConfigError(f"parameter {name!r}: 'masks' must have one entry per word")
    fragments = tuple(
        Fragment(word=_num(w, f"parameter {name}: word"), mask=None if k is None else _num(k, f"parameter {name}: mask"))
        for w, k in zip(words, masks)
    )
    poly, pairs = m.get("polynomial"), m.get("pairs")
    try:
        cal = Calibration(
            polynomial=tuple(float(c) for c in poly) if poly else (),
            pairs=tuple((float(a), float(b)) for a, b in pairs) if pairs else (),
        )
    except ConfigError as exc:
        raise ConfigError(f"parameter {name!r}: {exc}") from None
    try:  # enum = { 0 = "primary", 1 = "backup" }: names of a discrete's values
        enum = tuple(sorted((int(k), str(v)) for k, v in (m.get("enum") or {}).items()))
    except (TypeError, ValueError, AttributeError):
        raise ConfigError(f"parameter {name!r}: 'enum' must map integer values to names") from None
    lim = m.get("limits") or {}
    unknown = set(lim) - {"warning_low", "warning_high", "critical_low", "critical_high"}
    if unknown:
        raise ConfigError(f"parameter {name!r}: unknown limit keys {sorted(unknown)}")
    return Parameter(
        name=str(name),
        fragments=fragments,
        encoding=str(m.get("encoding", "unsigned")),
        word_interval=int(m.get("word_interval", 0)),
        frame_position=int(m["frame"]) if m.get("frame") is not None else None,
        frame_interval=int(m.get("frame_interval", 0)),
        calibration=cal,
        units=str(m.get("units", "")),
        limits=Limits(**{k: float(v) for k, v in lim.items()}),
        group=str(m.get("group", "")),
        description=str(m.get("description", "")),
        enum=enum,
    )


def parse_parameter_mapping(doc: Mapping[str, Any], source: str = "") -> ParameterDatabase:
    """Build a database from the parsed contents of a parameter file."""
    if not isinstance(doc, Mapping) or "frame" not in doc:
        raise ConfigError(f"{source or 'parameter file'}: needs a [frame] table")
    frame = frame_from_mapping(doc["frame"])
    params = [parameter_from_mapping(p) for p in doc.get("parameter", doc.get("parameters", [])) or []]
    return ParameterDatabase(frame=frame, parameters=params, source=source)


def read_document(path: str | Path) -> Any:
    """The parsed contents of a ``.toml`` or ``.yaml``/``.yml`` file; ConfigError naming the file."""
    path = Path(path)
    text = path.read_bytes()
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text.decode())
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    raise ConfigError(f"{path}: use a .toml, .yaml or .yml file (or an ICD .csv for bus parameters)")


def load_parameter_file(path: str | Path) -> ParameterDatabase:
    """Load a ``.toml`` or ``.yaml``/``.yml`` PCM parameter file (``[frame]`` and its parameters)."""
    return parse_parameter_mapping(read_document(path), source=str(path))


def frame_from_pcm_link(link: PcmLink) -> FrameFormat:
    """A ``FrameFormat`` from a TMATS P-group."""
    if not link.sync_pattern or not link.words_per_minor:
        raise ConfigError(f"P-group {link.name!r}: no sync pattern (MF5) or words per minor frame (MF1)")
    pattern, length, mask = _sync_from_bits(link.sync_pattern)
    sfid = None
    if link.sfid:
        c = link.sfid[0]
        sfid = Sfid(
            word=c.word,
            msb_bit=c.msb_bit or 1,
            length=c.length,
            first_count=c.first_count,
            increasing=c.increasing,
        )
    frame = FrameFormat(
        name=link.name,
        words_per_minor=link.words_per_minor,
        word_length=link.word_length,
        sync_pattern=pattern,
        sync_length=length,
        sync_mask=mask if mask != (1 << length) - 1 else None,
        minor_frames=link.minor_frames,
        bit_rate=link.bit_rate,
        word_lengths=dict(link.word_lengths),
        sfid=sfid,
    )
    if link.bits_per_minor and frame.bits_per_minor != link.bits_per_minor:
        raise ConfigError(
            f"P-group {link.name!r}: MF2 says {link.bits_per_minor} bits per minor frame, "
            f"the word lengths add up to {frame.bits_per_minor}"
        )
    return frame


def _mask_from_tmats(mask: str, width: int) -> int | None:
    if mask in ("", "FW"):
        return None
    bits = mask.replace(" ", "")
    if set(bits) <= {"0", "1"}:
        return int(bits, 2) << max(width - len(bits), 0)
    raise ConfigError(f"word mask {mask!r}: expected FW or a bit string")


def _group_from_comment(comment: str) -> str:
    """The ``GROUP=name`` convention our TMATS writer uses in ``C-x\\COM``."""
    for part in comment.split(","):
        key, _, value = part.partition("=")
        if key.strip().upper() == "GROUP":
            return value.strip()
    return ""


def _enum_from_comment(comment: str) -> tuple[tuple[int, str], ...]:
    """The ``ENUM=0:primary|1:backup`` convention our TMATS writer uses in ``C-x\\COM`` (a bad entry is skipped)."""
    out = []
    for part in comment.split(","):
        key, _, value = part.partition("=")
        if key.strip().upper() != "ENUM":
            continue
        for item in value.split("|"):
            v, _, name = item.partition(":")
            try:
                out.append((int(v), name.strip()))
            except ValueError:
                continue
    return tuple(sorted(out))


def conversion_fields(conv: Conversion | None, encodings: Mapping[str, str] = _TMATS_ENCODING,
                      default_encoding: str = "unsigned") -> dict[str, Any]:
    """A C-group's encoding (``BFM``), calibration (``DCT`` COE/PRS), units, limits (``MOT3``-``MOT6``),
    description and group as ``Parameter`` fields (identity and none without a C-group)."""
    if conv is None:
        return {"encoding": default_encoding}
    cal = Calibration()
    if conv.kind == "COE" and conv.coefficients:
        cal = Calibration(polynomial=tuple(conv.coefficients))
    elif conv.kind == "PRS" and conv.pairs:
        cal = Calibration(pairs=tuple(sorted(conv.pairs)))
    return {
        "encoding": encodings.get(conv.binary_format, default_encoding),
        "calibration": cal,
        "units": conv.units,
        "limits": Limits(warning_low=conv.low_warning, warning_high=conv.high_warning,
                         critical_low=conv.low_alert, critical_high=conv.high_alert),
        "description": conv.description,
        "group": _group_from_comment(conv.comment),
    }


def from_tmats(tmats: Tmats, channel_id: int) -> tuple[ParameterDatabase, list[str]]:
    """The database for PCM channel ``channel_id`` from TMATS, plus non-fatal problems.

    A measurement that cannot be used is skipped and named in the problems; with
    no D-groups the database has no parameters and decommutation gives raw words.
    """
    link = tmats.pcm_link_for_channel(channel_id)
    if link is None:
        raise ConfigError(f"TMATS has no PCM P-group for channel {channel_id}")
    frame = frame_from_pcm_link(link)
    problems: list[str] = []
    params: list[Parameter] = []
    widths = frame.widths()
    for meas in tmats.measurements_of(link.name):
        conv = tmats.conversions.get(meas.name)
        try:
            frags = sorted(meas.fragments, key=lambda f: f.fragment_position)
            if not frags:
                raise ConfigError("no word position")
            if any(f.word_position >= len(widths) or f.word_position < 1 for f in frags):
                raise ConfigError(f"word position outside 1..{frame.data_words}")
            first = frags[0]
            conv_fields = conversion_fields(conv)
            param = Parameter(
                name=meas.name,
                fragments=tuple(
                    Fragment(word=f.word_position, mask=_mask_from_tmats(f.mask, int(widths[f.word_position])))
                    for f in frags
                ),
                word_interval=first.word_interval,
                frame_position=first.frame_position if frame.minor_frames > 1 else None,
                frame_interval=first.frame_interval,
                enum=_enum_from_comment(conv.comment) if conv is not None else (),
                **conv_fields,
            )
            param.check(frame)
            params.append(param)
        except ConfigError as exc:
            problems.append(f"measurement {meas.name!r}: {exc}")
    return ParameterDatabase(frame=frame, parameters=params, source="TMATS"), problems
