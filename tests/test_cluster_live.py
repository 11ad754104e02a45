"""Scale-out end to end: a real redis-server, one ingest node, edge nodes, consoles on each (``websockets``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.error
import urllib.request

import numpy as np

from groundstation.simulator.flight import Spike
from tests.cluster import cluster
from tests.live import Console, Director


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def http(url: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def frames_by_tick(messages: list[dict]) -> dict[tuple[int, str], tuple[bytes, bytes]]:
    return {(m["t"], m["group"]): (m["last"].tobytes(), m["count"].tobytes()) for m in messages if m["type"] == "data"}


NAMES = ["ALT", "IAS", "EGT"]


def test_consoles_on_both_edges_get_the_ingest_nodes_frames_and_late_joiners_a_snapshot():
    async def main():
        async with cluster(2) as c:
            cons = [await Console.connect(u) for u in (c.edges[0].ws_url, c.edges[1].ws_url, c.ingest.ws_url)]
            for con in cons:
                await con.catalog()
                assert (await con.subscribe(20, names=NAMES))["type"] == "subscribed"
            got = await asyncio.gather(*(con.collect(3.0) for con in cons))
            a, b, i = (frames_by_tick(g) for g in got)
            common = set(a) & set(b) & set(i)
            assert len(common) >= 20, (len(a), len(b), len(i))
            assert all(a[k] == b[k] == i[k] for k in common)  # the same bytes, frame for frame
            lo, hi = max(min(x) for x in (a, b, i)), min(max(x) for x in (a, b, i))
            window = [{k for k in x if lo <= k <= hi} for x in (a, b, i)]
            assert window[0] == window[1] == window[2]  # identical sequences: no frame lost or added
            assert not [m for g in got for m in g if m["type"] in ("gap", "error")]
            late = await Console.connect(c.edges[1].ws_url)
            await late.catalog()
            await late.subscribe(20, names=NAMES)
            snap = await late.until(lambda m: m["type"] == "snapshot")
            assert len(snap["ids"]) == 3 and np.isfinite(snap["value"]).all()
            for con in cons + [late]:
                await con.close()

    run(main())


def test_a_targeted_alert_reaches_exactly_the_consoles_of_that_position_or_user():
    async def main():
        async with cluster(2) as c:
            e1, e2 = c.edges
            ann = await Console.connect(e1.ws_url + "?user=ann&position=propulsion")
            bob = await Console.connect(e2.ws_url + "?user=bob&position=flight-controls")
            cat = await Console.connect(e2.ws_url + "?user=cat&position=propulsion")
            dan = await Console.connect(c.ingest.ws_url + "?user=dan&position=propulsion")
            everyone = {"ann": ann, "bob": bob, "cat": cat, "dan": dan}
            await asyncio.sleep(0.5)  # registry writes are queued, not awaited
            status, reply = http(e1.http_url + "/api/alert?user=eve",
                                 {"text": "check fuel imbalance", "severity": "warning", "positions": ["propulsion"]})
            assert status == 200 and reply["delivered"] == 3, reply
            assert {t["user"] for t in reply["consoles"]} == {"ann", "cat", "dan"}
            assert {t["node"] for t in reply["consoles"]} == {"edge1", "edge2", "ingest"}

            async def alerts(con: Console) -> list[dict]:
                return [m for m in await con.collect(1.0) if m["type"] == "alert"]

            got = dict(zip(everyone, await asyncio.gather(*(alerts(x) for x in everyone.values()))))
            assert {u for u, a in got.items() if a} == {"ann", "cat", "dan"}
            assert got["ann"][0]["text"] == "check fuel imbalance" and got["ann"][0]["from"] == "eve"
            status, reply = http(c.ingest.http_url + "/api/alert", {"text": "call me", "users": ["bob"]})
            assert status == 200 and reply["delivered"] == 1
            got = dict(zip(everyone, await asyncio.gather(*(alerts(x) for x in everyone.values()))))
            assert {u for u, a in got.items() if a} == {"bob"}
            status, reply = http(e2.http_url + "/api/alert", {"text": "x", "positions": ["nobody-here"]})
            assert status == 404 and reply["delivered"] == 0
            status, reply = http(e2.http_url + "/api/alert", {"text": "", "positions": ["propulsion"]})
            assert status == 400 and reply["code"] == "bad_alert"
            status, listing = http(e2.http_url + "/api/consoles")
            assert {(e["user"], e["node"]) for e in listing["consoles"] if e["kind"] == "console"} >= {
                ("ann", "edge1"), ("bob", "edge2"), ("cat", "edge2"), ("dan", "ingest")}

    run(main())


def test_alarms_reach_consoles_on_every_node_and_an_acknowledge_from_an_edge_is_the_ingest_nodes():
    async def main():
        async with cluster(2, vehicle={"spikes": [Spike("IAS", 6.0, 600.0)]}) as c:
            cons = [await Console.connect(u + "?user=" + n) for u, n in
                    ((c.edges[0].ws_url, "ann"), (c.edges[1].ws_url, "bob"), (c.ingest.ws_url, "ian"))]
            # the spike in IAS shows on the ADC's ADC_CAS too (the same airspeed on the 1553 bus): follow IAS
            raised = await asyncio.gather(*(x.until(lambda m: m["type"] == "alarm" and m["alarm"]["name"] == "IAS",
                                                    timeout=20) for x in cons))
            assert len({(m["alarm"]["id"], m["alarm"]["name"], m["event"]) for m in raised}) == 1
            alarm = raised[0]["alarm"]
            assert alarm["name"] == "IAS"
            await cons[0].send({"type": "ack", "id": 5, "alarm": alarm["id"]})
            reply = await cons[0].until(lambda m: m.get("id") == 5)
            assert reply["type"] == "acked" and reply["alarm"] == alarm["id"]
            for x in cons[1:]:  # the acknowledgement reaches the other edge and the ingest node's consoles
                ev = await x.until(lambda m: m["type"] == "alarm" and m["alarm"]["name"] == "IAS"
                                   and m["alarm"]["acknowledged_by"] == "ann")
                assert ev["alarm"]["id"] == alarm["id"]
            await cons[1].send({"type": "ack", "id": 6, "alarm": 999})
            assert (await cons[1].until(lambda m: m.get("id") == 6))["code"] == "unknown_alarm"
            await asyncio.sleep(0.3)
            late = await Console.connect(c.edges[1].ws_url)  # the hello's alarms are the ingest node's
            assert late.hello["alarms"] == (await Console.connect(c.ingest.ws_url)).hello["alarms"]

    run(main())


def test_one_director_holds_authority_cluster_wide_and_commands_from_an_edge_reach_the_vehicle():
    async def main():
        async with cluster(2) as c:
            e1, e2 = c.edges
            ann = await Director.connect(f"ws://127.0.0.1:{e1.http_port}/ws/command?user=ann")
            bob = await Director.connect(f"ws://127.0.0.1:{e2.http_port}/ws/command?user=bob")
            assert (await ann.request(type="authority", action="take"))["type"] == "authority_ok"
            r = await bob.request(type="authority", action="take")
            assert r["type"] == "error" and r["code"] == "held" and "ann" in r["message"]
            raw = c.redis.client().get("gs:lease:authority")
            assert raw.startswith(b"ann\n") and 0 < c.redis.client().pttl("gs:lease:authority") <= 15_000
            r = await ann.request(type="command", name="MARK_TEST_POINT", args={"test_point": 7}, client_seq=1)
            assert r["type"] == "accepted", r
            rec_id = r["record"]["id"]

            def completed(m: dict) -> bool:
                return m.get("type") == "command" and m["record"]["id"] == rec_id and m["record"]["state"] == "COMPLETED"

            while not any(completed(m) for m in bob.seen):  # the other edge's director sees the history
                await bob.recv(10)
            assert c.sim.vehicle.state.test_point == 7
            r = await bob.request(type="command", name="MARK_TEST_POINT", args={"test_point": 8}, client_seq=1)
            assert r["type"] == "rejected" and "ann" in r["record"]["detail"], r
            assert (await ann.request(type="authority", action="release"))["type"] == "authority_ok"
            assert (await bob.request(type="authority", action="take"))["type"] == "authority_ok"
            assert c.redis.client().get("gs:lease:authority").startswith(b"bob\n")

    run(main())


def test_redis_killed_and_restarted_mid_stream_edges_recover_with_a_gap_and_a_snapshot():
    async def main():
        async with cluster(2) as c:
            con = await Console.connect(c.edges[0].ws_url)
            await con.catalog()
            await con.subscribe(20, names=NAMES)
            assert [m for m in await con.collect(1.0) if m["type"] == "data"]
            c.redis.kill()
            lost = await con.until(lambda m: m["type"] == "bus", timeout=5)
            assert lost["state"] == "LOST"
            await asyncio.sleep(1.0)
            c.redis.start()  # same port, empty
            back = await con.until(lambda m: m["type"] == "bus" and m["state"] == "OK", timeout=5)
            gap = await con.until(lambda m: m["type"] == "gap", timeout=5)
            assert gap["sub"] == 1 and back["state"] == "OK"
            assert (await con.until(lambda m: m["type"] == "snapshot", timeout=5))["sub"] == 1
            await con.until(lambda m: m["type"] == "data", timeout=5)  # live again
            for node in [c.ingest, *c.edges]:
                assert node.proc.poll() is None
            late = await Console.connect(c.edges[1].ws_url)  # state and snapshot were written again
            await late.catalog()
            await late.subscribe(20, names=NAMES)
            assert (await late.until(lambda m: m["type"] == "snapshot"))["sub"] == 1
            await late.until(lambda m: m["type"] == "data", timeout=5)

    run(main())


def test_an_edge_that_dies_leaves_the_registry_and_its_directors_authority_lapses():
    async def main():
        async with cluster(2, "--authority-lease", "2", "--registry-ttl", "1.5") as c:
            e1, e2 = c.edges
            ann = await Director.connect(f"ws://127.0.0.1:{e1.http_port}/ws/command?user=ann")
            watcher = await Console.connect(e2.ws_url + "?user=wes&position=test-conductor")
            assert (await ann.request(type="authority", action="take"))["type"] == "authority_ok"
            await asyncio.sleep(3)  # past one lease: renewed while ann is connected
            status, listing = http(c.ingest.http_url + "/api/consoles")
            assert ("ann", "edge1", "command") in {(e["user"], e["node"], e["kind"]) for e in listing["consoles"]}
            assert c.redis.client().get("gs:lease:authority").startswith(b"ann\n")
            os.kill(e1.proc.pid, signal.SIGKILL)
            ev = await watcher.until(lambda m: m["type"] == "authority" and m["action"] == "expire", timeout=10)
            assert ev["previous"] == "ann"
            status, listing = http(c.ingest.http_url + "/api/consoles")
            assert "edge1" not in {e["node"] for e in listing["consoles"]}

    run(main())


def test_a_console_that_moves_to_another_edge_gets_the_missed_interval_from_the_ingest_nodes_recording(tmp_path):
    async def main():
        async with cluster(2, ingest_extra=("--record", str(tmp_path))) as c:
            con = await Console.connect(c.edges[0].ws_url)
            alt = (await con.catalog())["ALT"]
            await con.subscribe(10, names=["ALT"])
            m = await con.until(lambda m: m["type"] == "data" and alt in m["ids"])
            since = int(m["last_t"][list(m["ids"]).index(alt)])
            await con.close()
            await asyncio.sleep(1.5)
            con = await Console.connect(c.edges[1].ws_url)
            await con.send({"type": "subscribe", "id": 1, "rate": 10, "names": ["ALT"], "since_ns": since})
            parts = []
            while (m := await con.recv(10))["type"] != "backfill_done":
                assert m["type"] != "error", m
                if m["type"] == "backfill":
                    parts.append(m)
            assert m["id"] == 1 and m["parts"] == len(parts) >= 1
            ids = np.concatenate([p["ids"] for p in parts])
            last, last_t = (np.concatenate([p[k] for p in parts])[ids == alt] for k in ("last", "last_t"))
            assert len(last) >= 10 and np.all(last_t > since)
            assert np.max(np.abs(last - c.sim.vehicle.truth("ALT", last_t))) <= 0.51
            await con.until(lambda m: m["type"] == "data")  # then live

    run(main())
