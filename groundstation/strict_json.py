"""Strict JSON input (sans-I/O): finite numbers only, bounded size and nesting, one clear refusal.

``json.loads`` accepts ``NaN``, ``Infinity`` and ``1e999`` (which become
non-finite floats that later serialize as bare ``NaN``, which strict parsers
reject) and raises ``RecursionError`` on deep nesting. :func:`loads_strict`
refuses all of these with a :class:`JsonRefused` carrying a stable ``code``.
"""

from __future__ import annotations

import json
import math

__all__ = ["JsonRefused", "loads_strict", "depth_within", "MAX_DEPTH"]

MAX_DEPTH = 32  # arrays and objects nested inside each other


class JsonRefused(ValueError):
    """Why a JSON document was refused: ``code`` (``too_large``, ``bad_json``, ``non_finite``,
    ``too_deep``) and a reason for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _no_constant(name: str):
    raise JsonRefused("non_finite", f"{name} is not a JSON number (only finite numbers are accepted)")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise JsonRefused("non_finite", f"{text[:40]} is out of range for a number")
    return v


def depth_within(obj, max_depth: int) -> bool:
    """True if ``obj`` (decoded JSON or msgpack) nests lists and dicts at most ``max_depth`` deep."""
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict):
            children = o.values()
        elif isinstance(o, (list, tuple)):
            children = o
        else:
            continue
        if d > max_depth:
            return False
        stack.extend((c, d + 1) for c in children if isinstance(c, (dict, list, tuple)))
    return True


def loads_strict(data: bytes | str, max_bytes: int, max_depth: int = MAX_DEPTH):
    """Decode ``data`` as strict JSON; raises :class:`JsonRefused` instead of accepting or crashing."""
    if len(data) > max_bytes:
        raise JsonRefused("too_large", f"larger than {max_bytes} bytes")
    try:
        obj = json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
    except JsonRefused:
        raise
    except RecursionError:
        raise JsonRefused("too_deep", f"nested more than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer with too many digits
        raise JsonRefused("bad_json", f"not JSON: {str(exc)[:120]}") from None
    if not depth_within(obj, max_depth):
        raise JsonRefused("too_deep", f"nested more than {max_depth} levels")
    return obj
