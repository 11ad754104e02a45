"""Bounded work per message, per console and per user (sans-I/O): subscribe caps, compiled globs, the
cost budget, per-user rates, memory after close, and the recorder worker's bounded read share."""

from __future__ import annotations

import fnmatch
import gc
import threading
import time
import tracemalloc

import msgpack
import numpy as np
import pytest

from groundstation.catalog import GLOB_COST, Catalog, SelectionError, glob_prefix
from groundstation.console.hub import Hub
from groundstation.console.protocol import MAX_GLOBS, MAX_NAMES
from groundstation.console.session import MAX_SELECT_COST, MAX_SELECTORS, MAX_SUBSCRIPTIONS, Principal
from groundstation.server.limits import KeyedRate, MessageRate
from groundstation.simulator.flight import vehicle_database
from recorder.worker import RecorderWorker

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def short_names(n: int = MAX_NAMES) -> Catalog:
    """``n`` parameters with 4-character names: 10,000 of them fit one subscribe (~50 KB)."""
    return Catalog.from_wire({"version": 1, "params": [{"id": i, "name": f"{i:04x}", "group": f"g{i % 8}"}
                                                       for i in range(n)]})


def big_catalog(n: int = 10_000) -> Catalog:
    groups = ["air data", "propulsion", "hydraulics", "structures"]
    return Catalog.from_wire({"version": 1, "params": [
        {"id": i, "name": f"{groups[i % 4][:3].upper()}_{i:05d}_{'XYZ'[i % 3]}", "group": groups[i % 4]}
        for i in range(n)]})


PATTERNS = ["*", "?", "N?", "N*", "*_RATE", "*RATE*", "[NE]*", "[!A-M]*", "ALT", "A?T", "*[0-9]", "HYD_*",
            "F[UC]*_*", "*_[!R]*", "[", "[]]", "[!]]*", "**", "*?*?", "PRO_0001?_*", "STR_*_Z", "*_00042_*", "",
            "a*", "*QTY", "\\*", "[*]*", "AIR_0*[XY]"]


@pytest.mark.parametrize("catalog", [Catalog(vehicle_database(), 1), big_catalog(3000)], ids=["vehicle", "3000"])
def test_compiled_globs_match_exactly_what_fnmatch_matches(catalog) -> None:
    for pattern in PATTERNS:
        want = sorted(e.id for e in catalog.entries if fnmatch.fnmatchcase(e.name, pattern))
        if not want:
            with pytest.raises(SelectionError) as info:
                catalog.select(globs=[pattern])
            assert info.value.unknown == [f"glob:{pattern}"]
            continue
        assert catalog.select(globs=[pattern]).tolist() == want, pattern
    # several at once: the union, duplicates once
    got = catalog.select(names=[catalog.entries[0].name], globs=["*_RATE", "N*", "N*"] if len(catalog) < 100 else
                         ["AIR_*", "PRO_0001*"])
    assert len(got) == len(set(got.tolist())) and np.all(np.diff(got) > 0)


def test_a_glob_is_tried_only_on_the_names_sharing_its_literal_start() -> None:
    cat = big_catalog()
    assert glob_prefix("AIR_0*_X") == "AIR_0" and glob_prefix("*X") == "" and glob_prefix("N[12]") == "N"
    n = sum(e.name.startswith("AIR_0001") for e in cat.entries)
    assert 0 < n < 10 and cat.select_cost(globs=["AIR_0001?_*"]) == GLOB_COST + n
    assert cat.select_cost(globs=["*_X"]) == GLOB_COST + len(cat)  # no literal start: every name
    assert cat.select_cost(names=["A", "B"], groups=["x"]) == 3
    assert cat.select_cost(globs=["*_X"] * 5) == GLOB_COST + len(cat)  # the same glob once


def viewer(hub: Hub, user: str = "mallory"):
    s = hub.connect(Principal(user, "viewer"), T0)
    replies(s)
    return s


def replies(s) -> list[dict]:
    out = []
    while (data := s.outbox.pop()) is not None:
        out.append(msgpack.unpackb(data, raw=False))
    return out


def ask(s, msg: dict, now: int = T0) -> list[dict]:
    s.receive(msgpack.packb(msg), now)
    return replies(s)


def test_a_subscribe_over_the_cost_cap_is_refused_before_any_matching() -> None:
    hub = Hub(big_catalog())
    s = viewer(hub)
    globs = [f"*{i}" for i in range(10)]  # 10 x 10,000 names: over the cap
    assert hub.catalog.select_cost(globs=globs) > MAX_SELECT_COST
    (err,) = ask(s, {"type": "subscribe", "id": 1, "rate": 10, "globs": globs})
    assert err["code"] == "selection_too_costly" and err["limit"] == MAX_SELECT_COST and err["id"] == 1
    assert not s.subs and not hub.tiers
    ok = ask(s, {"type": "subscribe", "id": 2, "rate": 10, "globs": [f"AIR_0{i}*" for i in range(MAX_GLOBS)]})
    assert ok[0]["type"] == "subscribed"  # literal starts: cheap whatever the catalog


def test_subscriptions_per_console_are_capped_and_unsubscribing_frees_room() -> None:
    hub = Hub(Catalog(vehicle_database(), 1))
    s = viewer(hub)
    for i in range(MAX_SUBSCRIPTIONS):
        assert ask(s, {"type": "subscribe", "id": i, "rate": 1 + i % 50, "names": ["ALT"]})[0]["type"] == "subscribed"
    (err,) = ask(s, {"type": "subscribe", "id": 99, "rate": 10, "names": ["ALT"]})
    assert err["code"] == "too_many_subscriptions" and err["held"][0] == MAX_SUBSCRIPTIONS
    assert len(s.subs) == MAX_SUBSCRIPTIONS
    assert ask(s, {"type": "unsubscribe", "id": 100, "sub": 1})[0]["type"] == "unsubscribed"
    assert ask(s, {"type": "subscribe", "id": 101, "rate": 10, "names": ["ALT"]})[0]["type"] == "subscribed"


def test_names_held_per_console_are_capped() -> None:
    cat = short_names()
    hub = Hub(cat)
    s = viewer(hub)
    names = [e.name for e in cat.entries]
    held = 0
    while held + len(names) <= MAX_SELECTORS:
        assert ask(s, {"type": "subscribe", "id": 1, "rate": 10, "names": names}, T0)[0]["type"] == "subscribed"
        held += len(names)
    (err,) = ask(s, {"type": "subscribe", "id": 2, "rate": 10, "names": names})
    assert err["code"] == "too_many_subscriptions" and err["held"] == [len(s.subs), held]


def test_the_subscribe_budget_is_per_user_over_all_their_consoles() -> None:
    hub = Hub(big_catalog())
    hub.select_budget = KeyedRate(20_000, burst=MAX_SELECT_COST)
    a1, a2, b = viewer(hub, "mallory"), viewer(hub, "mallory"), viewer(hub, "bob")
    pricey = {"type": "subscribe", "rate": 10, "globs": ["*_X", "*_Y"]}  # 2 x (10,000 names + compiling)
    cost = hub.catalog.select_cost(globs=pricey["globs"])
    n_ok = MAX_SELECT_COST // cost
    for i in range(n_ok):
        assert ask([a1, a2][i % 2], {**pricey, "id": i})[0]["type"] == "subscribed"
    (err,) = ask(a2, {**pricey, "id": 9})
    assert err["code"] == "over_budget" and err["cost"] == cost and err["retry_after_s"] > 0
    assert ask(b, {**pricey, "id": 1})[0]["type"] == "subscribed"  # another user is not affected
    later = T0 + int(err["retry_after_s"] * S) + 1
    assert ask(a1, {**pricey, "id": 10}, later)[0]["type"] == "subscribed"


def test_memory_held_by_a_console_returns_when_it_closes() -> None:
    cat = short_names()
    hub = Hub(cat)
    hub.connect(Principal("warm", "viewer"), T0)  # first-use allocations out of the way
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        s = viewer(hub)
        msg = msgpack.packb({"type": "subscribe", "id": 1, "rate": 10, "names": [e.name for e in cat.entries]})
        for i in range(2 * MAX_SUBSCRIPTIONS):  # piling: what is past the caps is refused, not kept
            s.receive(msg, T0 + i)
            replies(s)
        del msg
        held = tracemalloc.get_traced_memory()[0] - before
        hub.disconnect(s)
        del s
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 8 << 20, held  # two subscriptions of 10,000 names: bounded
    assert after < 64 << 10, after  # and it all comes back


def test_keyed_rate_shares_one_bucket_per_key_and_forgets_idle_keys() -> None:
    r = KeyedRate(10, burst=5, max_keys=3)
    assert [r.check("u", 0.0).action for _ in range(6)] == ["ok"] * 5 + ["drop"]
    v = r.check("u", 0.0)
    assert v.action == "drop" and "u over all connections" in v.refusal.reason and r.dropped == 2
    assert r.check("v", 0.0).action == "ok"  # another key: its own bucket
    assert r.retry_after("u", 0.0) == pytest.approx(0.1) and r.retry_after("u", 0.0, cost=6) == float("inf")
    for k in ("w", "x", "y"):  # past max_keys: idle (full again) buckets go first, memory stays bounded
        r.check(k, 10.0)
    assert len(r) <= 3
    assert MessageRate(10, burst=10).check(0.0, cost=10).action == "ok"  # a cost of many tokens at once


def test_a_write_never_waits_for_a_backfill_read_and_reads_keep_their_share() -> None:
    worker = RecorderWorker(read_share=0.25, slice_s=0.01)
    pieces = []

    def read(n):
        for i in range(n):
            time.sleep(0.002)  # one piece of a file (h5py would hold the GIL here)
            pieces.append(i)
            yield
        return n

    try:
        t0 = time.monotonic()
        reads = [worker.submit_read(read(400)) for _ in range(3)]  # 2.4 s of reading
        time.sleep(0.1)
        waits = []
        for _ in range(10):
            t = time.monotonic()
            worker.submit(lambda: None).result(5)
            waits.append(time.monotonic() - t)
            time.sleep(0.05)
        assert max(waits) < 0.05, waits  # at most about one piece (2 ms), never a whole read
        share = worker.read_s / (time.monotonic() - t0)
        assert share < 0.25 + 0.1, share
        assert not any(r.done() for r in reads)
        reads[1].cancel()  # a console that left: its read stops
        n = len(pieces)
        assert [r.result(30) for r in (reads[0], reads[2])] == [400, 400]
        assert len(pieces) < n + 2 * 400 + 5
    finally:
        worker.shutdown()


def test_a_failing_read_fails_alone() -> None:
    worker = RecorderWorker()

    def bad():
        yield
        raise OSError("unreadable segment")

    try:
        fut = worker.submit_read(bad())
        with pytest.raises(OSError):
            fut.result(5)
        assert worker.submit(lambda: 7).result(5) == 7
        assert threading.active_count() >= 1
    finally:
        worker.shutdown()


def test_anonymous_consoles_of_the_open_mode_each_have_their_own_share() -> None:
    hub = Hub(big_catalog())
    hub.select_budget = KeyedRate(20_000, burst=MAX_SELECT_COST)
    pricey = {"type": "subscribe", "rate": 10, "globs": ["*_X", "*_Y"]}
    anon = [hub.connect(Principal("operator", "viewer", anonymous=True), T0) for _ in range(3)]
    for s in anon:
        replies(s)
        assert [ask(s, {**pricey, "id": i})[0]["type"] for i in range(2)] == ["subscribed"] * 2
    assert anon[0].share_key != anon[1].share_key
