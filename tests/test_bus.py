"""The bus without a server: envelopes, the hub's tier frames through it, the same contract on both backends."""

from __future__ import annotations

import asyncio

import msgpack
import numpy as np
import pytest

from groundstation.bus import Broker, BusMessageError, InProcessBus, SeqTracker, TierFrame
from groundstation.bus.base import EDGE, INGEST
from groundstation.bus.envelope import pack_snapshot, pack_tier, unpack_snapshot, unpack_tier
from groundstation.catalog import Catalog
from groundstation.console.decimate import Latest
from groundstation.console.hub import Hub
from groundstation.console.session import Principal
from telemetry_formats.decom import SampleBatch
from telemetry_formats.paramdb import load_parameter_file
from tests.cluster import redis_server


def catalog() -> Catalog:
    return Catalog(load_parameter_file("examples/params.toml"), version=3)


def batch(cat: Catalog, t0: int, n: int = 10) -> SampleBatch:
    ids = np.repeat(np.arange(len(cat), dtype=np.int32), n)
    t = t0 + np.tile(np.arange(n, dtype=np.int64) * 1_000_000, len(cat))
    eu = ids * 10.0 + np.tile(np.arange(n, dtype=np.float64), len(cat))
    return SampleBatch(pid=ids, t_ns=t, raw=eu.astype(np.uint32), eu=eu, limit=np.zeros(len(ids), np.int8))


def test_tier_frames_round_trip_with_their_group_maps_untouched():
    f = TierFrame(20, 7, 123, 456, 3, {0: b"\x81\xa1a\x01", 2: bytes(range(256))})
    g = unpack_tier(pack_tier(f))
    assert g == f and g.groups[2] is not f.groups[2]
    with pytest.raises(BusMessageError):
        unpack_tier(b"\x93\x02\x00\x00")
    with pytest.raises(BusMessageError):
        unpack_tier(b"garbage")


def test_snapshot_round_trip_keeps_only_seen_parameters():
    latest = Latest(5)
    latest.value[[1, 3]] = [1.5, -2.0]
    latest.t_ns[[1, 3]] = [10, 20]
    latest.limit[3] = 2
    latest.seen[[1, 3]] = True
    version, back = unpack_snapshot(pack_snapshot(latest, 9))
    assert version == 9 and back.seen.tolist() == [False, True, False, True, False]
    assert back.value[3] == -2.0 and back.t_ns[1] == 10 and back.limit[3] == 2


def test_seq_tracker_counts_what_went_missing():
    s = SeqTracker()
    assert [s.observe(20, q) for q in (5, 6, 9, 10)] == [0, 0, 2, 0]
    assert s.observe(20, 1) == 1  # the ingest node restarted its counter
    assert s.observe(1, 1) == 0 and s.missed == 3


def test_an_edge_hub_forwards_the_ingest_hubs_bytes_to_its_consoles():
    cat = catalog()
    ingest, edge = Hub(cat), Hub(Catalog.from_wire(cat.as_wire()))
    frames: list[TierFrame] = []
    ingest.tier_listeners.append(lambda f: frames.append(unpack_tier(pack_tier(f))))
    local = ingest.connect(Principal("a", "viewer"))
    remote = edge.connect(Principal("b", "viewer"))
    for s in (local, remote):
        s.receive(msgpack.packb({"type": "subscribe", "id": 1, "rate": 10, "groups": ["propulsion"]}))
    ingest.set_remote_demand({10: {"propulsion"}, 99: {"x"}})  # out-of-range rates ignored
    assert set(ingest.tiers) == {10}
    for o in (local.outbox, remote.outbox):
        while o.pop() is not None:
            pass
    ingest.on_samples(batch(cat, 1_000), 5_000)
    assert ingest.tick(1_000_000_000) == 1 and len(frames) == 1
    assert edge.distribute(frames[0], 1_000_000_000) == 1
    a, b = local.outbox.pop(), remote.outbox.pop()
    assert a == b  # the same bundle, byte for byte (both sessions' first bundle after the replies)


def test_remote_demand_keeps_a_tier_alive_without_local_consoles():
    cat = catalog()
    hub = Hub(cat)
    seen: list[TierFrame] = []
    hub.tier_listeners.append(seen.append)
    hub.set_remote_demand({5: {"air data"}})
    hub.on_samples(batch(cat, 0), 1)
    hub.tick(10**9)
    assert len(seen) == 1 and [cat.group_names[g] for g in seen[0].groups] == ["air data"]
    assert seen[0].seq == 1 and seen[0].catalog_version == 3
    hub.set_remote_demand({})
    assert not hub.tiers
    assert hub.demand() == {}


# -- the same contract on both backends -----------------------------------------------------------------
@pytest.fixture(params=["inprocess", "redis"])
def buses(request):
    if request.param == "inprocess":
        broker = Broker()
        yield lambda node: InProcessBus(node, broker)
        return
    from groundstation.bus.redis_bus import RedisBus

    with redis_server() as rs:
        yield lambda node: RedisBus(rs.url, node, prefix="t")


def test_bus_contract_publish_request_reply_registry_and_lease(buses):
    async def main():
        ingest, edge = buses("ingest"), buses("edge")
        got: dict[str, list] = {"tier": [], "event": [], "request": [], "node": [], "snap": []}
        edge.on_tier, edge.on_event = got["tier"].append, got["event"].append
        edge.on_snapshot = got["snap"].append
        ingest.on_request = got["request"].append
        edge.on_node_message = got["node"].append
        await ingest.start(INGEST)
        await edge.start(EDGE)
        await asyncio.sleep(0.3)  # subscriptions in place
        ingest.set_state({"catalog": {"version": 1}})
        ingest.publish_event({"type": "alarm", "id": 1})
        ingest.publish_tier(TierFrame(20, 1, 2, 3, 1, {0: b"x"}))
        ingest.publish_snapshot(b"snap")
        edge.request({"kind": "ack", "rid": 1, "reply_to": "edge"})
        ingest.to_node("edge", {"type": "reply", "rid": 1})
        edge.set_demand({"20": ["air data"]})
        edge.register({"console/1": {"node": "edge", "kind": "console", "conn": 1, "user": "ann"}}, ttl_s=0.5)
        for _ in range(100):
            if all(got.values()):
                break
            await asyncio.sleep(0.02)
        assert got["event"] == [{"type": "alarm", "id": 1}] and got["tier"][0].groups == {0: b"x"}
        assert got["request"][0]["rid"] == 1 and got["node"] == [{"type": "reply", "rid": 1}]
        assert got["snap"] == [b"snap"] and await edge.get_snapshot() == b"snap"
        assert (await edge.get_state())["catalog"]["version"] == 1
        assert await ingest.get_demand(5.0) == {20: {"air data"}}
        assert [e["user"] for e in await ingest.consoles()] == ["ann"]
        await asyncio.sleep(0.6)
        assert await ingest.consoles() == []  # expired: the node stopped refreshing
        # the lease: atomic take, refusal naming the holder, renew, force, release, expiry
        ann, bob = {"user": "ann", "role": "director"}, {"user": "bob", "role": "director"}
        assert await ingest.lease_acquire("authority", ann, 5) == ann
        assert await edge.lease_acquire("authority", bob, 5) == ann
        assert await edge.lease_renew("authority", "ann", 5) and not await edge.lease_renew("authority", "bob", 5)
        assert not await edge.lease_release("authority", "bob")
        assert await edge.lease_acquire("authority", bob, 5, force=True) == bob
        assert await ingest.lease_get("authority") == bob
        assert await ingest.lease_release("authority", None) and await ingest.lease_get("authority") is None
        assert await ingest.lease_acquire("authority", ann, 0.2) == ann
        await asyncio.sleep(0.3)
        assert await edge.lease_get("authority") is None
        await edge.close()
        await ingest.close()

    asyncio.run(asyncio.wait_for(main(), 30))
