"""Targeted alerts and the authority lease, sans-I/O (the in-process bus, a fake clock)."""

from __future__ import annotations

import asyncio

import pytest

from groundstation.bus import Broker, InProcessBus
from groundstation.commanding.authority import Authority, AuthorityRefused
from groundstation.commanding.lease import AuthorityLease
from groundstation.console.session import Principal
from groundstation.targeting import AlertError, by_node, parse_alert, select

ENTRIES = [
    {"node": "e1", "kind": "console", "conn": 1, "user": "ann", "position": "propulsion"},
    {"node": "e2", "kind": "console", "conn": 4, "user": "bob", "position": "flight-controls"},
    {"node": "e2", "kind": "console", "conn": 5, "user": "cat", "position": "propulsion"},
    {"node": "e2", "kind": "command", "conn": 9, "user": "cat", "position": "propulsion"},
]


def test_alerts_select_the_consoles_of_a_position_or_user_and_group_them_by_node():
    a = parse_alert({"text": " low fuel ", "severity": "critical", "positions": "propulsion"}, "eve", 7)
    assert a.text == "low fuel" and a.positions == ("propulsion",) and a.as_wire()["from"] == "eve"
    assert by_node(select(ENTRIES, a)) == {"e1": [1], "e2": [5]}  # command sockets get no alerts
    b = parse_alert({"text": "hi", "users": ["bob", "zed"]}, "eve", 7)
    assert by_node(select(ENTRIES, b)) == {"e2": [4]}


@pytest.mark.parametrize("body, field", [
    ({"positions": ["p"]}, "text"), ({"text": "x" * 501, "positions": ["p"]}, "text"),
    ({"text": "x", "severity": "panic", "positions": ["p"]}, "severity"), ({"text": "x"}, "positions"),
    ({"text": "x", "users": [3]}, "users"), ([], "object"),
])
def test_bad_alerts_name_the_field(body, field):
    with pytest.raises(AlertError, match=field):
        parse_alert(body, "eve", 0)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


ANN, BOB = Principal("ann", "director"), Principal("bob", "director")


def test_the_lease_makes_one_holder_across_nodes_and_lapses_when_its_holder_is_gone():
    async def main():
        clock, online = Clock(), set()
        broker = Broker(clock)
        n1, n2 = (AuthorityLease(InProcessBus(n, broker), Authority(), 10.0, connected=online.__contains__)
                  for n in ("n1", "n2"))
        n1.authority.take(ANN, 0)
        await n1.commit("take", ANN, 0)
        assert [e["action"] for e in await n2.sync(1)] == ["take"] and n2.authority.holds("ann", 1)
        with pytest.raises(AuthorityRefused, match="ann"):  # n2 refuses bob locally, as it now knows
            n2.authority.take(BOB, 2)
        # ann stays connected: renewed past the lease
        online.add("ann")
        for t in (5.0, 12.0, 19.0):
            clock.t = t
            assert await n1.maintain(int(t * 1e9)) == []
        # ann's node dies: no more renewals, the lease runs out, every node sees it lapse
        online.clear()
        n1.last_active_ns.clear()
        clock.t = 30.0
        assert [e["action"] for e in await n2.maintain(int(30e9))] == ["expire"]
        # a broker that lost the lease (restarted) while the holder is active: taken again
        n2.authority.take(BOB, int(31e9))
        await n2.commit("take", BOB, int(31e9))
        broker.leases.clear()
        assert await n2.maintain(int(32e9)) == [] and (await n1.bus.lease_get("authority"))["user"] == "bob"

    asyncio.run(main())


def test_a_race_lost_on_the_bus_is_refused_and_the_winner_adopted():
    async def main():
        broker = Broker(Clock())
        n1, n2 = (AuthorityLease(InProcessBus(n, broker), Authority(), 10.0) for n in ("n1", "n2"))
        n1.authority.take(ANN, 0)
        n2.authority.take(BOB, 0)  # n2 did not know yet
        await n1.commit("take", ANN, 0)
        with pytest.raises(AuthorityRefused, match="ann") as info:
            await n2.commit("take", BOB, 0)
        assert [e["action"] for e in info.value.events] == ["take"] and n2.authority.holds("ann", 0)

    asyncio.run(main())
