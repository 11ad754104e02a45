"""Backfill: the bucketing core, the recorder's window read (files + memory), and the session's requests."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from groundstation.catalog import Catalog
from groundstation.console.backfill import Buckets, messages, plan
from groundstation.console.hub import Hub
from groundstation.console.protocol import decode_client_message
from groundstation.console.session import Principal
from groundstation.simulator.flight import vehicle_database
from recorder.service import RecorderService
from tests.test_recorder import T0, S, SimClock, fly, long_format, recording_step


def reference(ids, t, eu, lim, rate, from_ns):
    """Per (bucket end, id) figures computed one sample at a time (the slow, obvious way)."""
    period = S // rate
    out = {}
    for i, tt, v, li in zip(ids.tolist(), t.tolist(), eu.tolist(), lim.tolist()):
        if tt <= from_ns:
            continue
        k = ((tt // period + 1) * period, i)
        r = out.setdefault(k, {"min": v, "max": v, "last": v, "last_t": tt, "count": 0, "limit": li, "worst_t": tt})
        r["min"], r["max"] = min(r["min"], v), max(r["max"], v)
        if tt >= r["last_t"]:
            r["last"], r["last_t"] = v, tt
        r["count"] += 1
        if abs(li) > abs(r["limit"]) or (abs(li) == abs(r["limit"]) and tt < r["worst_t"]):
            r["limit"], r["worst_t"] = li, tt
    return out


def test_buckets_match_a_sample_by_sample_reference_whatever_the_pieces() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    ids = rng.integers(0, 4, n)
    t = T0 + np.sort(rng.integers(0, 3 * S, n))
    eu = rng.normal(size=n)
    lim = rng.choice(np.array([-2, -1, 0, 0, 0, 1, 2], np.int8), n)
    from_ns = T0 + S // 3
    b = Buckets(10, from_ns)
    order = rng.permutation(n)  # pieces in any order
    for piece in np.array_split(order, 150):  # more pieces than are kept: merged on the way
        b.add(ids[piece], t[piece], eu[piece], lim[piece])
    got = b.result()
    ref = reference(ids, t, eu, lim, 10, from_ns)
    assert len(got["t"]) == len(ref)
    keys = list(zip(got["t"].tolist(), got["ids"].tolist()))
    assert keys == sorted(ref)  # by bucket end, then id
    for j, k in enumerate(keys):
        r = ref[k]
        assert (got["min"][j], got["max"][j], got["last"][j]) == (r["min"], r["max"], r["last"])
        assert (got["count"][j], got["last_t"][j], got["limit"][j]) == (r["count"], r["last_t"], r["limit"])
    assert b.samples == sum(r["count"] for r in ref.values())


def test_plan_clips_to_the_retention_window() -> None:
    p = plan(1, 7, 10, since_ns=T0, newest_ns=T0 + 100 * S, retention_s=60)
    assert p.clipped and p.from_ns == T0 + 40 * S and p.since_ns == T0
    p = plan(1, 7, 10, since_ns=T0 + 50 * S, newest_ns=T0 + 100 * S, retention_s=60)
    assert not p.clipped and p.from_ns == T0 + 50 * S


def test_messages_are_bounded_and_end_with_done() -> None:
    b = Buckets(50, T0)
    t = T0 + 1 + np.arange(10_000) * (S // 1000)  # 10 s at 1 kHz: 500 buckets
    b.add(np.zeros(len(t), np.int64), t, np.arange(len(t), dtype=float), np.zeros(len(t), np.int8))
    p = plan(3, 9, 50, T0, int(t[-1]))
    msgs = messages(p, b.result(), max_rows=120)
    *parts, done = msgs
    assert [m["type"] for m in parts] == ["backfill"] * 5 and done["type"] == "backfill_done"
    assert all(m["id"] == 9 and m["sub"] == 3 and m["rate"] == 50 for m in msgs)
    counts = np.concatenate([np.frombuffer(m["count"], "<u4") for m in parts])
    assert counts.sum() == len(t) and done["rows"] == 500 and done["parts"] == 5
    assert done["to_ns"] == int(t[-1]) and done["clipped"] is False
    assert max(len(msgpack.packb(m)) for m in parts) < 120 * 60


def test_window_reads_files_and_memory_each_sample_once(tmp_path) -> None:
    """Part of the flight is in the segment file, part in the buffer, part written twice-visible."""
    clock = SimClock()
    svc = RecorderService(tmp_path, clock_ns=clock, flush_interval_s=0.5)
    # after 1.2 s nothing more is written: the rest stays in memory
    v, _, decoded, _ = fly(2.0, on_step=recording_step(svc, clock, write_until=T0 + int(1.2 * S)))
    cat = long_format(decoded)
    ids_by_name = {"ALT": 0, "EGT": 5}
    names = {p.name: i for i, p in enumerate(v.database.parameters)}
    from_ns = T0 + S // 2
    got = []
    fut = svc.read_recent(ids_by_name, from_ns, lambda *a: got.append(a))
    stats = fut.result(30)
    svc.close()
    assert stats["files"] == 1 and stats["file_samples"] > 0 and stats["memory_samples"] > 0
    for name, cid in ids_by_name.items():
        sel = (cat["pid"] == names[name]) & (cat["t_ns"] > from_ns)
        mine = [(t[i == cid], e[i == cid]) for i, t, e, _ in got]
        t = np.concatenate([m[0] for m in mine])
        e = np.concatenate([m[1] for m in mine])
        o = np.argsort(t, kind="stable")
        assert np.array_equal(t[o], cat["t_ns"][sel])  # every sample once, none missing
        np.testing.assert_allclose(e[o], cat["eu"][sel], rtol=1e-7, atol=0)  # file values are float32


def _hub_session():
    hub = Hub(Catalog(vehicle_database(), 1))
    s = hub.connect(Principal("u", "viewer"))
    return hub, s


def _replies(s):
    out = []
    while (data := s.outbox.pop()) is not None:
        out.append(msgpack.unpackb(data, raw=False))
    return out


def test_backfill_without_a_recording_is_a_clear_error_and_the_subscription_stays() -> None:
    hub, s = _hub_session()
    _replies(s)
    s.receive(msgpack.packb({"type": "subscribe", "id": 1, "rate": 10, "names": ["ALT"], "since_ns": T0}))
    r = _replies(s)
    assert [m["type"] for m in r] == ["subscribed", "snapshot", "error"]
    assert r[2]["code"] == "backfill_unavailable" and r[2]["id"] == 1 and s.subs
    s.receive(msgpack.packb({"type": "backfill", "id": 2, "sub": 99, "since_ns": T0}))
    assert _replies(s)[0]["code"] == "unknown_subscription"


def test_backfill_request_goes_to_the_provider() -> None:
    hub, s = _hub_session()
    calls = []
    hub.backfill_provider = lambda *a: calls.append(a)
    s.receive(msgpack.packb({"type": "subscribe", "id": 1, "rate": 5, "names": ["ALT"]}))
    assert not calls  # no since_ns: no backfill
    s.receive(msgpack.packb({"type": "backfill", "id": 2, "sub": 1, "since_ns": T0}))
    (sess, sub, since, req, _), = calls
    assert sess is s and sub.id == 1 and sub.rate == 5 and since == T0 and req == 2


@pytest.mark.parametrize("bad", [-1, 1.5, "x", True])
def test_bad_since_ns_is_refused(bad) -> None:
    from groundstation.console.protocol import ProtocolError

    with pytest.raises(ProtocolError) as e:
        decode_client_message(msgpack.packb({"type": "backfill", "id": 1, "sub": 1, "since_ns": bad}))
    assert e.value.code == "bad_field"
