"""Rate shedding (sans-I/O): a console whose data ages past its budget steps down a rate tier,
keeps every spike in the coarser buckets, and steps back up once it has caught up."""

from __future__ import annotations

import msgpack
import numpy as np

from groundstation.catalog import Catalog
from groundstation.console.hub import Hub
from groundstation.console.protocol import encode
from groundstation.console.session import Principal
from groundstation.console.shedding import RateGovernor, shed_rate
from groundstation.simulator.flight import vehicle_database
from telemetry_formats.decom import SampleBatch

S = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * S


def test_shed_rate_halves_down_to_one_hertz() -> None:
    assert [shed_rate(20, k) for k in range(6)] == [20, 10, 5, 2, 1, 1]
    assert shed_rate(1, 3) == 1 and shed_rate(50, 1) == 25


def test_governor_steps_down_while_over_budget_and_up_after_catching_up() -> None:
    g = RateGovernor(budget_s=0.2, hold_s=0.5, recover_s=2.0)
    levels, t = [], T0
    for _ in range(40):  # 2 s at 400 ms of age, one observation per 50 ms
        t += 50 * MS
        if (lv := g.observe(400 * MS, t)) is not None:
            levels.append(lv)
    assert levels == [1, 2, 3]  # one step per hold interval, never a burst
    assert g.observe(30 * MS, t + 10 * MS) is None  # one quick write: the smoothed age is still over
    ups, t = [], t + 50 * MS
    for _ in range(200):  # 10 s at 10 ms
        t += 50 * MS
        if (lv := g.observe(10 * MS, t)) is not None:
            ups.append(lv)
    assert ups[-3:] == [2, 1, 0] and all(a - b == 1 for a, b in zip(ups[1:], ups[2:]))
    assert g.level == 0


def _age_ticks(hub: Hub, s, ages_ms: list[int], t: int, alt: int) -> tuple[int, list[dict]]:
    """One 50 ms tick per age: a sample, a tick, the shell pops and reports the send ``age`` later."""
    out = []
    for k, age in enumerate(ages_ms):
        t += 50 * MS
        v = 5000.0 if k == 3 else float(k)  # one spike
        hub.on_samples(SampleBatch(pid=np.array([alt], np.int32), t_ns=np.array([t], np.int64),
                                   raw=np.zeros(1, np.uint32), eu=np.array([v]), limit=np.zeros(1, np.int8)), t)
        hub.tick(t)
        while (b := s.outbox.pop()) is not None:
            m = msgpack.unpackb(b, raw=False)
            out += [{**f, "bundle_rate": m["rate"]} for f in m["frames"]] if m["type"] == "bundle" else [m]
        s.sent(t + age * MS)
    return t, out


def test_a_session_steps_down_tells_its_console_and_keeps_the_spike_then_steps_back_up() -> None:
    cat = Catalog(vehicle_database(1_000_000), version=1)
    hub = Hub(cat, now_ns=T0)
    s = hub.connect(Principal("ann", "engineer"), T0)
    s.receive(encode(1, {"type": "subscribe", "id": 1, "rate": 20, "names": ["ALT"]}), T0)
    alt = cat.by_name["ALT"].id
    t, out = _age_ticks(hub, s, [500] * 40, T0, alt)
    limited = [m for m in out if m["type"] == "rate_limited"]
    assert [m["subs"][0]["rate"] for m in limited] == [10, 5, 2, 1, 1][:len(limited)] and len(limited) >= 3
    first = limited[0]
    assert first["level"] == 1 and first["subs"][0] == {"sub": 1, "rate": 10, "requested": 20}
    assert "500" in first["reason"] and first["budget_ms"] == 200
    assert s.subs[1].rate < 20 and set(hub.tiers) == {s.subs[1].rate}
    data = [m for m in out if m["type"] == "data"]
    assert max(max(np.frombuffer(m["max"], "<f8")) for m in data) == 5000.0  # the spike is in a bucket
    assert sum(int(np.frombuffer(m["count"], "<u4")[0]) for m in data) <= 40  # no sample counted twice
    t, out = _age_ticks(hub, s, [5] * 400, t, alt)
    back = [m for m in out if m["type"] == "rate_limited"]
    assert back[-1]["level"] == 0 and back[-1]["subs"][0]["rate"] == 20 and "caught up" in back[-1]["reason"]
    assert s.subs[1].rate == 20 and set(hub.tiers) == {20}
    late = [m for m in out if m["type"] == "data"][-5:]
    assert {m["bundle_rate"] for m in late} == {20}


def test_a_new_subscription_of_a_shed_console_starts_at_the_shed_rate_and_budget_zero_never_sheds() -> None:
    cat = Catalog(vehicle_database(1_000_000), version=1)
    hub = Hub(cat, now_ns=T0)
    s = hub.connect(Principal("ann", "engineer"), T0)
    s.governor.level = 2
    s.receive(encode(1, {"type": "subscribe", "id": 1, "rate": 20, "names": ["ALT"]}), T0)
    assert s.subs[1].rate == 5 and s.subs[1].requested == 20
    quiet = hub.connect(Principal("bob", "engineer"), T0)
    quiet.governor.budget_s = 0
    quiet.receive(encode(1, {"type": "subscribe", "id": 1, "rate": 20, "names": ["ALT"]}), T0)
    _, out = _age_ticks(hub, quiet, [5000] * 30, T0, cat.by_name["ALT"].id)
    assert not [m for m in out if m["type"] == "rate_limited"] and quiet.subs[1].rate == 20


def test_live_a_console_over_its_age_budget_is_told_and_gets_the_lower_rate() -> None:
    """A real server whose age budget (1 ms) every console exceeds: it steps the console down."""
    import asyncio

    from tests.live import Console, Sim, server

    async def main():
        with server("--console-age-budget", "0.001") as srv:
            sim = Sim(srv.udp_port).start()
            try:
                con = await Console.connect(srv.ws_url, open_timeout=30)
                await con.catalog()
                assert (await con.subscribe(20, names=["ALT", "IAS"]))["type"] == "subscribed"
                limited = await con.until(lambda m: m["type"] == "rate_limited", timeout=20)
                assert limited["level"] == 1 and limited["subs"] == [{"sub": 1, "rate": 10, "requested": 20}]
                assert limited["budget_ms"] == 1 and limited["age_ms"] > 1
                data = await con.until(lambda m: m["type"] == "data" and m["rate"] < 20, timeout=10)
                assert data["group"] and len(data["ids"])
            finally:
                await sim.stop()

    asyncio.run(asyncio.wait_for(main(), 90))
