"""The bus between ground-station nodes (in-process by default, Redis to scale out)."""

from .base import EDGE, INGEST, STANDALONE, Bus
from .envelope import BusMessageError, SeqTracker, TierFrame
from .inprocess import Broker, InProcessBus

__all__ = ["Bus", "Broker", "BusMessageError", "EDGE", "INGEST", "InProcessBus", "STANDALONE", "SeqTracker",
           "TierFrame", "make_bus"]


def make_bus(url: str | None, node: str, prefix: str = "gs") -> Bus:
    """The Redis bus for a ``redis://`` or ``rediss://`` URL, the in-process bus for None."""
    if not url:
        return InProcessBus(node)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"bus URL must start with redis://, rediss:// or unix://, got {url.split('@')[-1]!r}")
    from .redis_bus import RedisBus  # redis only when scaling out

    return RedisBus(url, node, prefix=prefix)
