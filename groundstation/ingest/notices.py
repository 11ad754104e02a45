"""What the ingest tells consoles and the recording about the link's integrity (sans-I/O).

``IngestNotices.observe(result, now_ns)`` counts, per datagram, the packets whose
data checksum failed and the UDP senders that appeared, started over or were
forgotten; ``due(now_ns)`` returns the console events to send: the first at once,
then at most one of each type per ``interval_s`` (a summary of what happened
since), so a stream of damaged packets or a flood from many ports cannot flood
consoles. Event formats: docs/protocol.md (``integrity``, ``udp_sender``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from telemetry_formats.ch10.packet import STATUS_DATA_CHECKSUM
from telemetry_formats.inspect import short_type_name

__all__ = ["IngestNotices"]

_MAX_LISTED = 8  # channels or senders named in one event


@dataclass
class _Pending:
    count: int = 0
    first: dict | None = None
    by_key: dict = field(default_factory=dict)


class IngestNotices:
    """Checksum errors and sender changes in, rate-bounded console events out."""

    def __init__(self, *, strict_checksums: bool = False, interval_s: float = 1.0) -> None:
        self.strict = strict_checksums
        self.interval_ns = int(interval_s * 1e9)
        self._checksums = _Pending()
        self._senders = _Pending()
        self._last_sent: dict[str, int] = {}

    def observe(self, res, now_ns: int) -> None:
        """Count one ``IngestResult``'s damaged packets and sender notes."""
        for p in res.packets:
            if p.status != STATUS_DATA_CHECKSUM:
                continue
            pend = self._checksums
            pend.count += 1
            key = (p.channel_id, p.data_type)
            pend.by_key[key] = pend.by_key.get(key, 0) + 1
            if pend.first is None:
                pend.first = {"channel": p.channel_id, "data_type": f"0x{p.data_type:02X}",
                              "reason": getattr(p, "checksum_error", None) or "data checksum mismatch"}
        for note in res.senders:
            pend = self._senders
            pend.count += 1
            pend.by_key[note.event] = pend.by_key.get(note.event, 0) + 1
            if len(pend.by_key.setdefault("notes", [])) < _MAX_LISTED:
                pend.by_key["notes"].append(note.as_dict())

    def due(self, now_ns: int) -> list[dict]:
        """The events to send now (empty if nothing happened or it is too soon)."""
        out = []
        if self._checksums.count and self._may_send("integrity", now_ns):
            out.append(self._integrity(self._checksums))
            self._checksums = _Pending()
        if self._senders.count and self._may_send("udp_sender", now_ns):
            out.append(self._sender_event(self._senders))
            self._senders = _Pending()
        return out

    def _may_send(self, kind: str, now_ns: int) -> bool:
        last = self._last_sent.get(kind)
        if last is not None and now_ns - last < self.interval_ns:
            return False
        self._last_sent[kind] = now_ns
        return True

    def _integrity(self, pend: _Pending) -> dict:
        channels = [{"channel": ch, "data_type": f"0x{dt:02X}", "name": short_type_name(dt), "packets": n}
                    for (ch, dt), n in sorted(pend.by_key.items())[:_MAX_LISTED]]
        what = ", ".join(f"{c['name']} channel {c['channel']} x{c['packets']}" for c in channels)
        used = not self.strict
        return {"type": "integrity", "event": "data_checksum", "packets": pend.count, "used": used,
                "channels": channels, "first": pend.first,
                "message": f"{pend.count} packet{'s' if pend.count != 1 else ''} with a bad data checksum ({what}): "
                           + ("decoded all the same" if used else "refused (--strict-checksums)")
                           + "; recorded as received"}

    def _sender_event(self, pend: _Pending) -> dict:
        notes = pend.by_key.get("notes", [])
        counts = {k: v for k, v in pend.by_key.items() if k != "notes"}
        if pend.count == 1:
            n = notes[0]
            text = {"new": f"new UDP sender {n['sender']}",
                    "restart": f"UDP sender {n['sender']} started over: {n['reason']}",
                    "evicted": f"UDP sender {n['sender']} forgotten: {n['reason']}"}[n["event"]]
        else:
            text = "UDP senders: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        return {"type": "udp_sender", "count": pend.count, "counts": counts, "senders": notes, "message": text}
