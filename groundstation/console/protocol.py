"""Console protocol v1 (docs/protocol.md): msgpack messages, validated, encoded once.

Every server message is a msgpack map whose first key is ``seq``, the
per-session sequence number. Telemetry frames are encoded once per rate tier
and group: ``SharedFrame`` holds the map's other entries already packed, and
``SharedFrame.bundle_parts`` leaves each session only its ``seq`` to pack.
Numeric arrays travel as little-endian binary (``bin``) blobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_MESSAGE_BYTES",
    "ABORT_MESSAGE_BYTES",
    "MIN_RATE",
    "MAX_RATE",
    "MAX_NAMES",
    "MAX_GLOBS",
    "MAX_GROUPS",
    "MAX_GLOB_CHARS",
    "CLOSE_TOO_SLOW",
    "CLOSE_UNAUTHORIZED",
    "CLOSE_FLOOD",
    "ProtocolError",
    "SharedFrame",
    "encode",
    "encode_map",
    "decode_client_message",
    "array_blob",
    "field_blob",
    "BLOB_DTYPES",
]

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024  # client messages; larger ones are read, then closed with 1009
ABORT_MESSAGE_BYTES = 1 << 20  # past this a frame is not even read: close 1009 and drop the connection
MIN_RATE, MAX_RATE = 1, 50
# entries per subscribe: past them ``selection_too_large`` (the subscribe is refused whole)
MAX_NAMES, MAX_GLOBS, MAX_GROUPS = 10_000, 32, 256
MAX_GLOB_CHARS = 256
CLOSE_TOO_SLOW = 4008  # the console could not keep up past the bound
CLOSE_UNAUTHORIZED = 4001  # token missing, invalid or expired
CLOSE_FLOOD = 4029  # a client that keeps sending past its message rate (like HTTP 429)


class ProtocolError(ValueError):
    """A client message that is not valid; ``code`` is a stable machine-readable name."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.extra = extra
        self.request_id: int | None = None


_packer = msgpack.Packer(use_bin_type=True)
packb: Callable[[Any], bytes] = _packer.pack  # one packer: no per-call setup
_map_header: Callable[[int], bytes] = _packer.pack_map_header
_array_header: Callable[[int], bytes] = _packer.pack_array_header


def _pairs(d: dict[str, Any]) -> bytes:
    """The packed key/value pairs of a map, without its header."""
    packed: bytes = msgpack.packb(d, use_bin_type=True)
    return packed[1:] if len(d) < 16 else packed[3:]


_SEQ_KEY = packb("seq")
_FRAMES_KEY = packb("frames")


def encode(seq: int, message: dict[str, Any]) -> bytes:
    """A server message with ``seq`` first."""
    return _map_header(len(message) + 1) + _SEQ_KEY + packb(seq) + _pairs(message)


@dataclass(frozen=True)
class SharedFrame:
    """A message body packed once and sent to many sessions with their own ``seq``."""

    n_fields: int
    pairs: bytes

    @classmethod
    def of(cls, message: dict[str, Any]) -> "SharedFrame":
        return cls(len(message), _pairs(message))

    def bundle_parts(self, frames: list[bytes]) -> tuple[bytes, bytes]:
        """This map plus ``seq`` and ``frames`` (an array of already encoded maps, not re-encoded), cut
        around the ``seq`` value: ``head + packb(seq) + tail`` is the message. One tick builds the parts
        once per distinct list of frames, each console only adds its ``seq``."""
        head = _map_header(self.n_fields + 2) + _SEQ_KEY
        return head, self.pairs + _FRAMES_KEY + _array_header(len(frames)) + b"".join(frames)

    def __len__(self) -> int:
        return len(self.pairs)


def encode_map(message: dict[str, Any]) -> bytes:
    """A whole msgpack map, for embedding as-is in bundles."""
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return packed


# The binary-array fields of server messages and their little-endian dtypes: the one source. web/app/codec.js,
# docs/protocol.md and tests/live.py are checked against it (tests/test_one_rule.py).
BLOB_DTYPES = {"ids": "<u4", "min": "<f8", "max": "<f8", "last": "<f8", "value": "<f8", "count": "<u4",
               "last_t": "<i8", "limit": "<i1", "t": "<i8"}


def array_blob(a: np.ndarray, dtype: str) -> bytes:
    """``a`` as a little-endian binary blob of ``dtype``."""
    return np.ascontiguousarray(a, dtype=dtype).tobytes()


def field_blob(name: str, a: np.ndarray) -> bytes:
    """``a`` as the blob of message field ``name`` (its dtype from ``BLOB_DTYPES``)."""
    return np.ascontiguousarray(a, dtype=BLOB_DTYPES[name]).tobytes()


_STR_LISTS = ("names", "globs", "groups")


_CAPS = {"names": MAX_NAMES, "globs": MAX_GLOBS, "groups": MAX_GROUPS}


def _str_list(msg: dict[str, Any], key: str) -> list[str]:
    v = msg.get(key, [])
    if not isinstance(v, list):
        raise ProtocolError("bad_field", f"'{key}' must be a list of strings", field=key)
    if len(v) > _CAPS[key]:  # before looking at the entries: the cost of refusing does not grow
        raise ProtocolError("selection_too_large", f"'{key}' has {len(v)} entries, more than {_CAPS[key]}",
                            field=key, limit=_CAPS[key])
    if not all(isinstance(x, str) for x in v):
        raise ProtocolError("bad_field", f"'{key}' must be a list of strings", field=key)
    if key == "globs" and any(len(x) > MAX_GLOB_CHARS for x in v):
        raise ProtocolError("selection_too_large", f"a glob longer than {MAX_GLOB_CHARS} characters",
                            field=key, limit=MAX_GLOB_CHARS)
    return v


def _int(msg: dict[str, Any], key: str, *, required: bool = True, lo: int | None = None, hi: int | None = None) -> int | None:
    if msg.get(key) is None:
        if required:
            raise ProtocolError("missing_field", f"'{key}' is required", field=key)
        return None
    v = msg[key]
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError("bad_field", f"'{key}' must be an integer", field=key)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        if hi is None:
            raise ProtocolError("bad_field", f"'{key}' must be >= {lo}, got {v}", field=key, allowed=[lo, None])
        raise ProtocolError("bad_field", f"'{key}' must be in {lo}..{hi}, got {v}", field=key, allowed=[lo, hi])
    return v


_TYPES = {"subscribe", "unsubscribe", "ack", "ping", "snapshot", "backfill", "bus_monitor"}


def decode_client_message(data: bytes | str) -> dict[str, Any]:
    """Parse and validate one client message; raises ``ProtocolError`` naming the problem."""
    if isinstance(data, str):
        raise ProtocolError("not_binary", "messages must be binary msgpack frames")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several types for garbage
        raise ProtocolError("bad_msgpack", f"not valid msgpack: {exc.__class__.__name__}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("bad_message", "a message must be a map")
    kind = msg.get("type")
    out: dict[str, Any] = {"type": kind, "id": None}
    try:
        out["id"] = _int(msg, "id", required=False)
        if kind not in _TYPES:
            raise ProtocolError("unknown_type", f"unknown message type {kind!r}; expected one of {sorted(_TYPES)}")
        _fields(kind, msg, out)
    except ProtocolError as exc:
        exc.request_id = out["id"]
        raise
    return out


def _fields(kind: str, msg: dict[str, Any], out: dict[str, Any]) -> None:
    if kind == "subscribe":
        for key in _STR_LISTS:
            out[key] = _str_list(msg, key)
        if not any(out[k] for k in _STR_LISTS):
            raise ProtocolError("empty_selection", "subscribe needs 'names', 'globs' or 'groups'")
        out["rate"] = _int(msg, "rate", lo=MIN_RATE, hi=MAX_RATE)
        since = _int(msg, "since_ns", required=False, lo=0)
        if since is not None:  # backfill what came after it (optional)
            out["since_ns"] = since
    elif kind == "unsubscribe":
        out["sub"] = _int(msg, "sub", lo=0)
    elif kind == "ack":
        out["alarm"] = _int(msg, "alarm", lo=0)
    elif kind == "snapshot":
        out["sub"] = _int(msg, "sub", required=False, lo=0)
    elif kind == "backfill":
        out["sub"] = _int(msg, "sub", lo=0)
        out["since_ns"] = _int(msg, "since_ns", lo=0)
    elif kind == "bus_monitor":
        on = msg.get("on", True)
        if not isinstance(on, bool):
            raise ProtocolError("bad_field", "'on' must be true or false", field="on")
        out["on"] = on
