"""What a connection the server is closing may still do: nothing.

After the server's close frame (1009 here) Tornado still hands the client's
later frames to ``on_message`` until the close handshake ends; none of them may
reach the console session or the command service, and the connection's slot is
free only once its socket has closed. An in-process station, so the hub and
the connection limiter can be looked at.
"""

from __future__ import annotations

import asyncio

import websockets

from groundstation.server.start import start_station
from groundstation.server.station import StationConfig
from tests.live import Console, Sim, free_port, pack


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _closed_code(ws) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


def test_messages_behind_an_oversized_one_are_not_handled_and_the_slot_frees_with_the_socket():
    async def main():
        rs = await start_station(StationConfig(udp_port=0, http_port=0, http_host="127.0.0.1", open_mode=True,
                                               open_role="director", uplink=("127.0.0.1", free_port())))
        sim = Sim(rs.udp_port).start()
        try:
            hub, limiter = rs.station.hub, rs.station.connection_limiter
            url = f"ws://127.0.0.1:{rs.http_port}/ws/telemetry"
            c = await Console.connect(url)
            name = sorted(await c.catalog())[0]
            assert limiter.total == 1
            await c.ws.send(b"\x80" * 70_000)  # over 64 KiB: closed with 1009 ...
            await c.ws.send(pack({"type": "subscribe", "id": 2, "rate": 10, "names": [name]}))  # ... then this
            assert await _closed_code(c.ws) == 1009
            await asyncio.sleep(0.3)
            assert hub.sessions == {} and all(not t.channels for t in hub.tiers.values())
            assert limiter.total == 0

            cmd = f"ws://127.0.0.1:{rs.http_port}/ws/command"
            d = await websockets.connect(cmd, max_size=None)
            await d.recv()  # hello
            await d.send(b"\x80" * 70_000)
            await d.send(pack({"type": "arm", "id": 1}))
            assert await _closed_code(d) == 1009
            await asyncio.sleep(0.3)
            assert limiter.total == 0
        finally:
            await sim.stop()
            await rs.stop()

    run(main())
