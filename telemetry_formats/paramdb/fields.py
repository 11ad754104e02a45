"""Field readers shared by the parameter-file loaders: each error names where, the parameter and the field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .bus import (
    ARINC_ENCODINGS,
    BUS_1553_ENCODINGS,
    SSM_RULES,
    Parameter429,
    Parameter1553,
    WordBits,
    label_from_octal,
)
from .model import Calibration, ConfigError, Limits

__all__ = ["FieldReader", "LIMIT_FIELDS", "parameter_1553", "parameter_429"]

# (file column / flat key, Limits attribute)
LIMIT_FIELDS = (("warn_low", "warning_low"), ("warn_high", "warning_high"),
                ("crit_low", "critical_low"), ("crit_high", "critical_high"))


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


class FieldReader:
    """Typed access to one parameter's fields (a TOML/YAML table or a CSV row)."""

    def __init__(self, values: Mapping[str, Any], where: str) -> None:
        self.values = values
        self.where = where  # "file line 7: parameter 'ALT'"

    def fail(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.where}: field {key!r}: {what}")

    def has(self, key: str) -> bool:
        return not _blank(self.values.get(key))

    def text(self, key: str, default: str = "") -> str:
        v = self.values.get(key)
        return default if _blank(v) else str(v).strip()

    def integer(self, key: str, default: int | None = None, *, required: bool = False) -> int | None:
        v = self.values.get(key)
        if _blank(v):
            if required:
                raise self.fail(key, "missing")
            return default
        if isinstance(v, bool):
            raise self.fail(key, f"expected an integer, got {v!r}")
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        try:
            return int(str(v).strip().replace("_", ""), 0)
        except ValueError:
            raise self.fail(key, f"expected an integer, got {v!r}") from None

    def number(self, key: str) -> float | None:
        v = self.values.get(key)
        if _blank(v):
            return None
        try:
            f = float(v) if not isinstance(v, bool) else math.nan
        except (TypeError, ValueError):
            f = math.nan
        if not math.isfinite(f):
            raise self.fail(key, f"expected a number, got {v!r}")
        return f

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        v = self.text(key, default).lower()
        if v not in allowed:
            raise self.fail(key, f"{v!r} is not one of {', '.join(allowed)}")
        return v

    def calibration(self) -> Calibration:
        """``polynomial`` or ``pairs`` (TOML/YAML), else EU = raw * ``scale`` + ``offset`` (``resolution`` = scale)."""
        poly, pairs = self.values.get("polynomial"), self.values.get("pairs")
        scale_key = "resolution" if self.has("resolution") else "scale"
        scale, offset = self.number(scale_key), self.number("offset")
        if (poly or pairs) and (scale is not None or offset is not None):
            raise self.fail(scale_key if scale is not None else "offset", "give scale/offset or a polynomial/pairs,"
                            " not both")
        try:
            if poly or pairs:
                return Calibration(polynomial=tuple(float(c) for c in poly) if poly else (),
                                   pairs=tuple((float(a), float(b)) for a, b in pairs) if pairs else ())
        except (TypeError, ValueError) as exc:
            raise self.fail("polynomial" if poly else "pairs", f"expected numbers: {exc}") from None
        except ConfigError as exc:
            raise self.fail("polynomial" if poly else "pairs", str(exc)) from None
        scale = 1.0 if scale is None else scale
        offset = 0.0 if offset is None else offset
        return Calibration() if (scale, offset) == (1.0, 0.0) else Calibration(polynomial=(offset, scale))

    def limits(self) -> Limits:
        """A ``limits`` table (warning_low ...) or the flat warn_low/warn_high/crit_low/crit_high fields."""
        table = self.values.get("limits")
        if table:
            if not isinstance(table, Mapping):
                raise self.fail("limits", "expected a table of warning_low/warning_high/critical_low/critical_high")
            unknown = set(table) - {attr for _, attr in LIMIT_FIELDS}
            if unknown:
                raise self.fail("limits", f"unknown limit keys {sorted(unknown)}")
            inner = FieldReader(table, self.where)
            return Limits(**{k: inner.number(k) for k in table})
        return Limits(**{attr: self.number(key) for key, attr in LIMIT_FIELDS})

    def words_1553(self) -> tuple[WordBits, ...]:
        """1553 fragments: ``fragments`` = [{word, msb, lsb}, ...], or ``word`` ("3", "3-4", "3+7") or ``words``
        with ``msb`` applying to the first word and ``lsb`` to the last (whole words between)."""
        frags = self.values.get("fragments")
        if frags:
            out = []
            for f in frags:
                r = FieldReader(f, self.where) if isinstance(f, Mapping) else None
                if r is None:
                    raise self.fail("fragments", "expected tables of word, msb, lsb")
                out.append(WordBits(r.integer("word", required=True), r.integer("msb", 1), r.integer("lsb", 16)))
            return tuple(out)
        if self.values.get("words"):
            words = [FieldReader({"words": w}, self.where).integer("words") for w in self.values["words"]]
        else:
            words = self._word_list(self.text("word"))
        msb, lsb = self.integer("msb", 1), self.integer("lsb", 16)
        return tuple(WordBits(w, msb if i == 0 else 1, lsb if i == len(words) - 1 else 16)
                     for i, w in enumerate(words))

    def _word_list(self, text: str) -> list[int]:
        if not text:
            raise self.fail("word", "missing (the data word number, 1 = first)")
        try:
            if "-" in text:
                a, b = (int(x) for x in text.split("-"))
                if b < a:
                    raise ValueError
                return list(range(a, b + 1))
            return [int(x) for x in text.split("+")]
        except ValueError:
            raise self.fail("word", f"{text!r}: expected N, N-M (consecutive words) or N+M") from None


def parameter_1553(r: FieldReader, name: str, channel: int, origin: str) -> Parameter1553:
    """A 1553 parameter from its fields (rt, tr, subaddress, word_count, words and bits, encoding, calibration ...)."""
    encoding = r.choice("encoding", (*BUS_1553_ENCODINGS, "discrete"), "unsigned")
    encoding = "unsigned" if encoding == "discrete" else encoding  # 1553 has no SSM: discrete bits are unsigned
    tr = r.text("tr").upper()
    tr = {"TRANSMIT": "T", "RECEIVE": "R", "1": "T", "0": "R"}.get(tr, tr)
    p = Parameter1553(
        name=name, channel=channel, rt=r.integer("rt", required=True), tr=tr,
        subaddress=r.integer("subaddress", required=True), fragments=r.words_1553(),
        word_count=r.integer("word_count"), encoding=encoding,
        calibration=r.calibration(), units=r.text("units"), limits=r.limits(), group=r.text("group"),
        description=r.text("description"), origin=origin)
    p.check()
    return p


def parameter_429(r: FieldReader, name: str, channel: int, origin: str) -> Parameter429:
    """An ARINC-429 parameter from its fields (label in octal, bus, sdi, msb, lsb, encoding, ssm, calibration ...)."""
    encoding = r.choice("encoding", ARINC_ENCODINGS, "bnr")
    if not r.has("label"):
        raise r.fail("label", "missing (the octal label, e.g. 203)")
    try:
        label = label_from_octal(r.values["label"], "label")
    except ConfigError:
        raise r.fail("label", f"{r.values['label']!r} is not an octal label 000..377") from None
    p = Parameter429(
        name=name, channel=channel, label=label, msb=r.integer("msb", 28 if encoding == "bnr" else 29),
        lsb=r.integer("lsb", 11), encoding=encoding, bus=r.integer("bus"), sdi=r.integer("sdi"),
        ssm=r.choice("ssm", SSM_RULES, "none") if r.has("ssm") else None,
        calibration=r.calibration(), units=r.text("units"), limits=r.limits(), group=r.text("group"),
        description=r.text("description"), origin=origin)
    p.check()
    return p
