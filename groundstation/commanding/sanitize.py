"""Making submitted requests safe to record and broadcast (typed checks, truncation)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["is_int", "safe_name", "safe_value", "safe_args"]


def is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def safe_name(name: object) -> str:
    return (name if isinstance(name, str) else repr(name))[:64]


def safe_value(v: object) -> object:
    if v is None or isinstance(v, bool | int | float):
        return v
    return (v if isinstance(v, str) else repr(v))[:200]


def safe_args(raw: object) -> dict[str, object]:
    """Submitted arguments made safe to record and broadcast (stringified, truncated)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        return {"(not an object)": safe_value(raw)}
    return {str(k)[:64]: safe_value(v) for k, v in list(raw.items())[:32]}
