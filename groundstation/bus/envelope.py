"""Bus messages (sans-I/O): what travels between the ingest node and the edge nodes.

Telemetry goes out as one :class:`TierFrame` per rate-tier tick. Its group maps
are the console ``data`` maps already encoded by the ingest node's hub; the
envelope is a msgpack array in which they are ``bin`` items, so an edge unpacks
the small envelope and hands the maps to its consoles byte for byte, without
decoding or re-encoding them. Everything else (events, requests, replies, the
hello state) is a msgpack map. The snapshot for late joiners is the newest
value of every parameter as little-endian arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgpack
import numpy as np

from ..console.decimate import Latest

__all__ = ["BUS_VERSION", "BusMessageError", "TierFrame", "SeqTracker", "pack", "unpack", "pack_tier",
           "unpack_tier", "pack_snapshot", "unpack_snapshot"]

BUS_VERSION = 1


class BusMessageError(ValueError):
    """A bus message that cannot be read (another version, or not ours)."""


@dataclass(frozen=True)
class TierFrame:
    """One tick of one rate tier: the encoded ``data`` map of every group that had samples."""

    rate: int
    seq: int  # per rate, counted by the ingest node: a jump means frames were lost on the way
    t_ns: int
    ingest_ns: int
    catalog_version: int
    groups: dict[int, bytes] = field(default_factory=dict)  # catalog group index -> encoded map


def pack(message: dict) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def unpack(data: bytes) -> dict:
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several types for garbage
        raise BusMessageError(f"not msgpack: {exc.__class__.__name__}") from None
    if not isinstance(msg, dict):
        raise BusMessageError("a bus message must be a map")
    return msg


def pack_tier(f: TierFrame) -> bytes:
    flat: list = []
    for g, data in f.groups.items():
        flat += (g, data)
    return msgpack.packb([BUS_VERSION, f.rate, f.seq, f.t_ns, f.ingest_ns, f.catalog_version, flat],
                         use_bin_type=True)


def unpack_tier(data: bytes) -> TierFrame:
    try:
        version, rate, seq, t_ns, ingest_ns, catalog_version, flat = msgpack.unpackb(data, raw=False)
    except Exception as exc:  # noqa: BLE001
        raise BusMessageError(f"not a tier frame: {exc.__class__.__name__}") from None
    if version != BUS_VERSION:
        raise BusMessageError(f"tier frame of bus version {version}, this node speaks {BUS_VERSION}")
    return TierFrame(rate, seq, t_ns, ingest_ns, catalog_version, dict(zip(flat[::2], flat[1::2])))


def pack_snapshot(latest: Latest, catalog_version: int) -> bytes:
    ids = np.flatnonzero(latest.seen).astype("<u4")
    return pack({"v": BUS_VERSION, "catalog": catalog_version, "n": len(latest.seen), "ids": ids.tobytes(),
                 "value": latest.value[ids].astype("<f8").tobytes(),
                 "t": latest.t_ns[ids].astype("<i8").tobytes(), "limit": latest.limit[ids].astype("<i1").tobytes()})


def unpack_snapshot(data: bytes) -> tuple[int, Latest]:
    """(catalog version, the newest values) from :func:`pack_snapshot`'s bytes."""
    m = unpack(data)
    try:
        ids = np.frombuffer(m["ids"], "<u4")
        latest = Latest(int(m["n"]))
        latest.value[ids] = np.frombuffer(m["value"], "<f8")
        latest.t_ns[ids] = np.frombuffer(m["t"], "<i8")
        latest.limit[ids] = np.frombuffer(m["limit"], "<i1")
        latest.seen[ids] = True
        return int(m["catalog"]), latest
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BusMessageError(f"bad snapshot: {exc}") from None


class SeqTracker:
    """Per-rate sequence check on an edge: how many tier frames went missing."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.missed = 0

    def observe(self, rate: int, seq: int) -> int:
        """Frames missed before this one (0 in order; 1 for a restart of the counter)."""
        last = self.last.get(rate)
        self.last[rate] = seq
        if last is None or seq == last + 1:
            return 0
        missed = seq - last - 1 if seq > last else 1
        self.missed += missed
        return missed
