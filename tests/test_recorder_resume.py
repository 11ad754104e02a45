"""A writer that stopped without closing its session, and the next one that goes on with it."""

from __future__ import annotations

import json

import recorder
from recorder.service import RecorderService
from tests.test_recorder import T0, S, SimClock, fly, recording_step


def _record_without_closing(folder, clock: SimClock, seconds: float) -> RecorderService:
    svc = RecorderService(folder, clock_ns=clock, flush_interval_s=0.5, resume_within_s=60)
    fly(seconds, on_step=recording_step(svc, clock), start=clock.t)
    return svc


def test_a_session_left_open_is_resumed_in_a_new_segment(tmp_path) -> None:
    clock = SimClock(T0)
    first = _record_without_closing(tmp_path, clock, 1.0)  # never closed: as after SIGKILL
    session = first.session
    clock.t += S // 20  # the restart takes a moment: the new vehicle's frames come after the first one's last
    second = _record_without_closing(tmp_path, clock, 1.0)
    second.close()
    assert second.session == session and second.status()["resumed"] and not first.status()["resumed"]
    index = json.loads((tmp_path / f"{session}.index.json").read_text())
    ends = [e["end"] for e in index["segments"]]
    assert "interrupted" in ends and ends[-1] == "closed" and index["state"] == "closed"
    assert len({e["file"] for e in index["segments"]}) == len(ends)  # new files, none overwritten
    alt = recorder.open(tmp_path).read("ALT")
    assert alt.t_ns.min() < T0 + S and alt.t_ns.max() > T0 + S  # both writers' samples, one recording
    first.close()


def test_a_closed_or_stale_session_is_not_resumed(tmp_path) -> None:
    clock = SimClock(T0)
    a = _record_without_closing(tmp_path, clock, 0.5)
    a.close()
    b = _record_without_closing(tmp_path, clock, 0.5)  # the newest session was closed: a new one
    assert b.session != a.session and not b.status()["resumed"]
    clock.t += 120 * S  # b is left open, but for longer than resume_within_s
    c = _record_without_closing(tmp_path, clock, 0.5)
    assert c.session not in (a.session, b.session) and not c.status()["resumed"]
    b.close()
    c.close()
