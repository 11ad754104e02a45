"""Console protocol v1 (docs/protocol.md): msgpack messages, validated, encoded once.

Every server message is a msgpack map whose first key is ``seq``, the
per-session sequence number. Telemetry frames are encoded once per rate tier
and group: ``SharedFrame`` holds the map's other entries already packed, and
``SharedFrame.for_session(seq)`` only prepends the map header and ``seq``.
Numeric arrays travel as little-endian binary (``bin``) blobs.
"""

from __future__ import annotations

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
    "CLOSE_POLICY",
    "ProtocolError",
    "SharedFrame",
    "encode",
    "encode_map",
    "decode_client_message",
    "array_blob",
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
CLOSE_POLICY = 1008  # origin refused


class ProtocolError(ValueError):
    """A client message that is not valid; ``code`` is a stable machine-readable name."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.extra = extra
        self.request_id: int | None = None


def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x80 | n])
    return b"\xde" + n.to_bytes(2, "big")


def _pairs(d: dict) -> bytes:
    """The packed key/value pairs of a map, without its header."""
    packed = msgpack.packb(d, use_bin_type=True)
    return packed[1:] if len(d) < 16 else packed[3:]


_SEQ_KEY = msgpack.packb("seq")
_FRAMES_KEY = msgpack.packb("frames")


def encode(seq: int, message: dict) -> bytes:
    """A server message with ``seq`` first."""
    return _map_header(len(message) + 1) + msgpack.packb("seq") + msgpack.packb(seq) + _pairs(message)


@dataclass(frozen=True)
class SharedFrame:
    """A message body packed once and sent to many sessions with their own ``seq``."""

    n_fields: int
    pairs: bytes

    @classmethod
    def of(cls, message: dict) -> "SharedFrame":
        return cls(len(message), _pairs(message))

    def for_session(self, seq: int, extra_fields: int = 0) -> bytes:
        """This map with ``seq`` first; ``extra_fields`` more pairs are to be appended by the caller."""
        return _map_header(self.n_fields + 1 + extra_fields) + msgpack.packb("seq") + msgpack.packb(seq) + self.pairs

    def bundle(self, seq: int, frames: list[bytes]) -> bytes:
        """This map plus ``seq`` and ``frames``: an array of already encoded maps (not re-encoded)."""
        head, tail = self.bundle_parts(frames)
        return head + msgpack.packb(seq) + tail

    def bundle_parts(self, frames: list[bytes]) -> tuple[bytes, bytes]:
        """``bundle`` cut around the ``seq`` value: ``head + packb(seq) + tail`` is the message. One
        tick builds the parts once per distinct list of frames, each console only adds its ``seq``."""
        n = len(frames)
        array = bytes([0x90 | n]) if n < 16 else b"\xdc" + n.to_bytes(2, "big")
        head = _map_header(self.n_fields + 2) + _SEQ_KEY
        return head, self.pairs + _FRAMES_KEY + array + b"".join(frames)

    def __len__(self) -> int:
        return len(self.pairs)


packb = msgpack.Packer(use_bin_type=True).pack  # one packer: no per-call setup


def encode_map(message: dict) -> bytes:
    """A whole msgpack map, for embedding as-is in bundles."""
    return msgpack.packb(message, use_bin_type=True)


def array_blob(a: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(a, dtype=dtype).tobytes()


_STR_LISTS = ("names", "globs", "groups")


_CAPS = {"names": MAX_NAMES, "globs": MAX_GLOBS, "groups": MAX_GROUPS}


def _str_list(msg: dict, key: str) -> list[str]:
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


def _int(msg: dict, key: str, *, required: bool = True, lo: int | None = None, hi: int | None = None) -> int | None:
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


def decode_client_message(data: bytes | str) -> dict:
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
    out: dict = {"type": kind, "id": None}
    try:
        out["id"] = _int(msg, "id", required=False)
        if kind not in _TYPES:
            raise ProtocolError("unknown_type", f"unknown message type {kind!r}; expected one of {sorted(_TYPES)}")
        _fields(kind, msg, out)
    except ProtocolError as exc:
        exc.request_id = out["id"]
        raise
    return out


def _fields(kind: str, msg: dict, out: dict) -> None:
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
