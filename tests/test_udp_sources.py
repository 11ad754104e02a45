"""Only the configured senders feed the ingest (``--udp-source``): others are dropped and counted."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from groundstation.server.udp import SourceFilter
from tests.live import Sim, server


def test_source_filter_takes_addresses_and_networks():
    f = SourceFilter(["192.0.2.7", "10.1.0.0/16", "::1"])
    assert f.allows("192.0.2.7") and f.allows("10.1.200.3") and f.allows("::1")
    assert not f.allows("192.0.2.8") and not f.allows("not-an-address")
    assert f.refused == 2 and f.last_refused == "not-an-address"
    assert SourceFilter(None).allows("203.0.113.9")


def health(srv) -> dict:
    return json.loads(urllib.request.urlopen(srv.http_url + "/healthz", timeout=5).read())


def test_telemetry_from_another_address_never_reaches_the_decoder():
    async def main():
        with server("--udp-source", "127.0.0.2") as refusing, server("--udp-source", "127.0.0.0/8") as accepting:
            sims = [Sim(s.udp_port).start() for s in (refusing, accepting)]
            await asyncio.sleep(1.5)
            for sim in sims:
                await sim.stop()
            return health(refusing), health(accepting)

    refused, accepted = asyncio.run(asyncio.wait_for(main(), 60))
    assert refused["ingest"]["datagrams"] == 0 and refused["udp"]["refused_sources"] > 0
    assert refused["udp"]["last_refused_source"] == "127.0.0.1" and refused["configured"] is None
    assert accepted["ingest"]["datagrams"] > 0 and accepted["udp"]["refused_sources"] == 0


def test_the_reader_takes_every_waiting_datagram_at_once_up_to_its_batch():
    """asyncio's transport reads one datagram per loop iteration; ours drains what waits."""
    import socket

    from groundstation.server.udp import open_udp_endpoint

    async def main():
        got: list[bytes] = []
        reader, port = await open_udp_endpoint("127.0.0.1", 0, lambda data, t, sender: got.append(data))
        reader.batch = 8
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i in range(12):
                tx.sendto(b"%d" % i, ("127.0.0.1", port))
        reader._drain()  # what one readiness does (called here before the loop gets to it)
        first = len(got)
        await asyncio.sleep(0.05)  # the loop's own readiness call takes the rest
        reader.close()
        reader.close()  # twice is harmless
        return first, got

    first, got = asyncio.run(main())
    assert first == 8 and got == [b"%d" % i for i in range(12)]
