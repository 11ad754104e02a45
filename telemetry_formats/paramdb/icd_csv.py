"""The ICD spreadsheet in CSV: one row per 1553 or ARINC-429 parameter, as flight-test programs keep them.

Columns (header row, any order, case-insensitive, extra columns ignored) are in
``COLUMNS``; ``description``, ``word_count`` and ``ssm`` are read when present.
Documented in ``docs/parameters.md``; every error names the file, the line, the
parameter and the field.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .fields import FieldReader, parameter_429, parameter_1553
from .mission import MissionDatabase
from .model import ConfigError

__all__ = ["COLUMNS", "OPTIONAL_COLUMNS", "load_icd_csv", "parse_icd_csv"]

COLUMNS = ("name", "source", "channel", "bus", "rt", "tr", "subaddress", "word", "label", "sdi", "msb", "lsb",
           "encoding", "scale", "offset", "units", "warn_low", "warn_high", "crit_low", "crit_high", "group")
OPTIONAL_COLUMNS = ("description", "word_count", "ssm")


def parse_icd_csv(text: str, origin: str = "ICD") -> MissionDatabase:
    """The bus parameters of an ICD CSV text; ``origin`` (the file name) prefixes every error."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ConfigError(f"{origin} line 1: the header lacks the column(s) {', '.join(missing)}"
                          f" (needed: {', '.join(COLUMNS)})")
    reader.fieldnames = header
    mil1553, arinc429 = [], []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num  # the record's (last) line
        where_line = f"{origin} line {line}"
        name = (row.get("name") or "").strip()
        if not name and not any((v or "").strip() for k, v in row.items() if k):
            continue  # an empty row
        if name.startswith("#"):
            continue  # a comment row
        if not name:
            raise ConfigError(f"{where_line}: field 'name': missing")
        if name in seen:
            raise ConfigError(f"parameter {name!r} defined twice: {origin} line {seen[name]} and {where_line}")
        seen[name] = line
        r = FieldReader(row, f"{where_line}: parameter {name!r}")
        kind = r.choice("source", ("1553", "429"), "")
        channel = r.integer("channel", required=True)
        if kind == "1553":
            mil1553.append(parameter_1553(r, name, channel, where_line))
        else:
            arinc429.append(parameter_429(r, name, channel, where_line))
    return MissionDatabase(mil1553=mil1553, arinc429=arinc429)


def load_icd_csv(path: str | Path) -> MissionDatabase:
    """Load an ICD CSV file (UTF-8, a byte-order mark allowed)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc})") from None
    try:
        return parse_icd_csv(text, str(path))
    except csv.Error as exc:
        raise ConfigError(f"{path}: {exc}") from None
