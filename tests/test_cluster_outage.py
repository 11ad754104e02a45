"""Events across a broker outage (real redis-server, ingest node, edges, ``websockets`` clients):
alarms raised and acknowledged and a command completed while Redis is down reach every edge
console exactly once and in order; a killed edge resumes from its stream position."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import urllib.request

import msgpack

from groundstation.simulator.flight import Spike
from tests.cluster import cluster
from tests.live import Console, Director, server

SPIKES = {"spikes": [Spike("IAS", 5.0 + 0.6 * k, 600.0) for k in range(60)]}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def health(srv) -> dict:
    with urllib.request.urlopen(srv.http_url + "/healthz", timeout=5) as r:
        return json.loads(r.read())


async def _read_forever(peer) -> None:
    with contextlib.suppress(Exception):
        while True:
            await peer.recv(60)


async def _seen(peer, pred, timeout: float = 30) -> None:
    """Wait until a message its reader task collected satisfies ``pred``."""
    deadline = time.monotonic() + timeout
    while not any(pred(m) for m in peer.messages):
        assert time.monotonic() < deadline, "no matching message"
        await asyncio.sleep(0.05)


def _events(messages: list[dict], kinds: tuple[str, ...]) -> list[str]:
    """The events as canonical strings without the per-console ``seq``, in arrival order."""
    return [json.dumps({k: v for k, v in m.items() if k != "seq"}, sort_keys=True, default=str)
            for m in messages if m.get("type") in kinds]


def _assert_once_in_order(edge: list[str], ingest: list[str], must: list[str]) -> None:
    assert edge, "no events on the edge"
    starts = [i for i, e in enumerate(ingest) if e == edge[0]]  # events may repeat in content (a spike's alarm)
    assert any(edge == ingest[i:i + len(edge)] for i in starts), \
        "the edge's events are not the ingest node's, once each and in order"
    missing = [e for e in must if e not in edge]
    assert not missing, f"{len(missing)} events of the outage never reached the edge"


def test_alarms_acknowledgements_and_commands_during_a_redis_outage_reach_every_edge_console_once_in_order():
    async def main():
        async with cluster(2, vehicle=SPIKES) as c:
            ing = await Console.connect(c.ingest.ws_url + "?user=ian", open_timeout=30)
            edge_cons = [await Console.connect(e.ws_url + f"?user=e{i}", open_timeout=30) for i, e in enumerate(c.edges)]
            dan = await Director.connect(f"ws://127.0.0.1:{c.ingest.http_port}/ws/command?user=dan")
            edge_dirs = [await Director.connect(f"ws://127.0.0.1:{e.http_port}/ws/command?user=v{i}")
                         for i, e in enumerate(c.edges)]
            readers = [asyncio.ensure_future(_read_forever(p)) for p in [ing, *edge_cons, *edge_dirs]]
            try:
                assert (await dan.request(type="authority", action="take"))["type"] == "authority_ok"
                await _seen(edge_cons[0], lambda m: m["type"] == "alarm")  # alarms flow before the outage
                c.redis.kill()
                n_before = len(ing.messages)
                t_kill = time.monotonic()
                raised = [m for m in ing.messages if m["type"] == "alarm" and m["event"] == "raised"]
                active = [m["alarm"]["id"] for m in raised if m["alarm"]["acknowledged_by"] is None]
                for aid in active[-2:]:  # acknowledged on the ingest node while the bus is down
                    await ing.send({"type": "ack", "id": 100 + aid, "alarm": aid})
                r = await dan.request(type="command", name="MARK_TEST_POINT", args={"test_point": 4}, client_seq=1)
                assert r["type"] == "accepted", r
                rec = r["record"]["id"]
                while not any(m.get("type") == "command" and m["record"]["id"] == rec
                              and m["record"]["state"] == "COMPLETED" for m in dan.seen):
                    await dan.recv(10)
                await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - t_kill)))
                outage = ing.messages[n_before:]
                c.redis.start()  # same port, empty
                await asyncio.sleep(5)
            finally:
                for t in readers:
                    t.cancel()
            kinds = ("alarm",)
            during = _events(outage, kinds)
            assert len(during) >= 2 and any('"acknowledged_by": "ian"' in e for e in during), during
            ingest_alarms = _events(ing.messages, kinds)
            for con in edge_cons:
                _assert_once_in_order(_events(con.messages, kinds), ingest_alarms, during)
            cmd = [e for e in _events(dan.seen, ("command",)) if f'"id": {rec},' in e]
            assert any("COMPLETED" in e for e in cmd)
            for d in edge_dirs:
                _assert_once_in_order([e for e in _events(d.seen, ("command",)) if f'"id": {rec},' in e], cmd, cmd)
            for e in c.edges:
                bus = health(e)["bus"]
                assert bus["events_lost"] == 0 and bus["connected"], bus

    run(main())


def test_an_edge_killed_and_restarted_resumes_from_its_stream_position():
    async def main():
        async with cluster(1, vehicle=SPIKES) as c:
            con = await Console.connect(c.edges[0].ws_url, open_timeout=30)
            await con.until(lambda m: m["type"] == "alarm", timeout=30)
            await asyncio.sleep(0.5)
            client = c.redis.client()
            os.kill(c.edges[0].proc.pid, signal.SIGKILL)
            c.edges[0].proc.wait(5)
            stored = msgpack.unpackb(client.hget("gs:events:pos", "edge1"), raw=False)["id"]
            await asyncio.sleep(2.0)  # events go on while the edge is away
            with server("--role", "edge", "--redis", c.redis.url, "--node", "edge1", "--open-role", "director") as e:
                missed = len(client.xrange("gs:events", f"({stored}", "+"))
                assert missed > 0
                deadline = time.monotonic() + 10
                while True:
                    bus = health(e)["bus"]
                    if bus["events_delivered"] >= missed or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
                assert bus["events_resumed_from"] == stored
                assert bus["events_delivered"] >= missed and bus["events_lost"] == 0 and bus["events_duplicate"] == 0

    run(main())
