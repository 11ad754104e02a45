"""The command channel end to end: director -> server -> UDP uplink -> vehicle -> telemetry echo."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from groundstation.auth import TokenIssuer
from tests.live import SECRET, Console, Director, refused_status, vehicle_and_server


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def tok(user: str, role: str, **kw) -> str:
    return TokenIssuer(kw.pop("secret", SECRET)).issue(user, role, kw.pop("ttl", 600), **kw)


def test_director_changes_the_bit_rate_and_the_history_reaches_completed():
    async def main():
        async with vehicle_and_server(open_mode=False) as (sim, srv):
            console = await Console.connect(srv.ws_url + "?token=" + tok("eve", "engineer"))
            cat = await console.catalog()
            assert [c["name"] for c in console.hello["commands"]][:2] == ["SET_BITRATE", "SET_GROUP_RATE"]
            await console.subscribe(20, req=1, names=["ALT"])
            cmd_url = f"ws://127.0.0.1:{srv.http_port}/ws/command"
            d = await Director.connect(cmd_url, tok("dan", "director"))
            r = await d.request(type="authority", action="take")
            assert r["type"] == "authority_ok" and r["authority"]["holder"] == "dan"

            def alt_counts(frames):
                out = []
                for m in frames:
                    if m["type"] == "data" and m["group"] == "air data":
                        j = np.flatnonzero(m["ids"] == cat["ALT"])
                        if len(j):
                            out.append(int(m["count"][j[0]]))
                return out

            before = alt_counts(await console.collect(1.0))
            t_submit = time.monotonic()
            r = await d.request(type="command", name="SET_BITRATE", args={"bitrate": 2_000_000},
                                reason="double the frame rate for the flutter test point", client_seq=1)
            assert r["type"] == "accepted", r
            rec_id = r["record"]["id"]
            states = []
            final = await console.until(
                lambda m: m["type"] == "command" and m["record"]["id"] == rec_id
                and (states.append(m["record"]["state"]) or m["record"]["state"] in
                     ("COMPLETED", "FAILED", "TIMED_OUT")), 15)
            assert final["record"]["state"] == "COMPLETED", final
            assert states[-1] == "COMPLETED" and "SENT" in states and "ACKNOWLEDGED" in states
            times = final["record"]["times"]
            assert times["QUEUED"] <= times["SENT"] <= times["ACKNOWLEDGED"] <= times["COMPLETED"]
            assert final["record"]["user"] == "dan" and final["record"]["reason"].startswith("double")
            print("submit->completed", time.monotonic() - t_submit)
            # the console sees the reconfiguration and twice the samples per update
            if not any(m["type"] == "catalog" for m in console.messages):
                await console.until(lambda m: m["type"] == "catalog", 5)
            after = alt_counts(await console.collect(1.5))
            assert np.median(after[2:]) == pytest.approx(2 * np.median(before[2:]), rel=0.2), (before, after)
            assert sim.vehicle.bit_rate == 2_000_000
            assert sim.vehicle.uplinks == [(final["record"]["sequence"], "applied")]
            await console.close()
            await d.ws.close()

    run(main())


def test_every_refused_path_is_rejected_audited_and_sends_nothing():
    async def main():
        async with vehicle_and_server(open_mode=False) as (sim, srv):
            url = f"ws://127.0.0.1:{srv.http_port}/ws/command"
            assert await refused_status(url) == 401  # no token
            for role in ("viewer", "engineer"):
                assert await refused_status(url, additional_headers={
                    "Authorization": "Bearer " + tok("x", role)}) == 403
            expired = tok("dan", "director", ttl=60, now=time.time() - 3600)
            assert await refused_status(url + "?token=" + expired) == 401
            forged = tok("dan", "director", secret="not-the-server-secret-" + "z" * 30)
            assert await refused_status(url + "?token=" + forged) == 401
            assert await refused_status(url + "?token=" + tok("dan", "director"),
                                        origin="http://evil.example") == 403
            # HTTP API: same rules
            req = urllib.request.Request(f"{srv.http_url}/api/commands", data=b"{}", method="POST",
                                         headers={"Authorization": "Bearer " + tok("v", "viewer")})
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(req)
            assert info.value.code == 403

            a = await Director.connect(url, tok("ann", "director"))
            b = await Director.connect(url, tok("bob", "director"))
            await asyncio.sleep(1.0)  # telemetry (the echo words) flowing
            r = await b.request(type="command", name="MARK_TEST_POINT", args={"test_point": 1}, client_seq=1)
            assert r["type"] == "rejected" and "authority" in r["record"]["detail"]
            assert (await a.request(type="authority", action="take"))["type"] == "authority_ok"
            r = await b.request(type="authority", action="take")
            assert r["type"] == "error" and "ann" in r["message"]
            r = await b.request(type="command", name="MARK_TEST_POINT", args={"test_point": 1}, client_seq=2)
            assert r["type"] == "rejected" and "ann" in r["record"]["detail"]
            r = await a.request(type="command", name="SELECT_SYSTEM", args={"system": "backup"}, client_seq=1)
            assert r["type"] == "rejected" and r["record"]["code"] == "hazardous"
            r = await a.request(type="command", name="SET_BITRATE", args={"bitrate": 5}, client_seq=2)
            assert r["type"] == "rejected" and "bitrate" in r["record"]["detail"]
            assert "10000..20000000" in r["record"]["detail"]
            r = await a.request(type="command", name="MARK_TEST_POINT", args={"test_point": 7}, client_seq=3)
            assert r["type"] == "accepted"
            r = await a.request(type="command", name="MARK_TEST_POINT", args={"test_point": 8}, client_seq=3)
            assert r["type"] == "rejected" and r["record"]["code"] == "replay"
            # arm then execute works for the hazardous one
            r = await a.request(type="arm", name="SELECT_SYSTEM", args={"system": "backup"}, client_seq=4,
                                reason="backup hydraulics check")
            assert r["type"] == "armed"
            r = await a.request(type="execute", arm=r["arm"], client_seq=5)
            assert r["type"] == "accepted"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and sim.vehicle.state.system != 1:
                await asyncio.sleep(0.1)
            # only the two accepted commands reached the vehicle
            assert [o for _, o in sim.vehicle.uplinks] == ["applied", "applied"]
            assert sim.vehicle.state.test_point == 7 and sim.vehicle.state.system == 1
            hist = json.loads(urllib.request.urlopen(urllib.request.Request(
                f"{srv.http_url}/api/commands", headers={"Authorization": "Bearer " + tok("a", "admin")})).read())
            assert sum(1 for r in hist["records"] if r["state"] == "REJECTED") == 5
            srv.log.flush()
            srv.log.seek(0)
            log = srv.log.read()
            assert log.count('"command_audit"') == 8  # one line per attempt, accepted or not
            refused = [r for r in map(json.loads, log.splitlines()) if r.get("audit")
                       and r["event"] in ("auth_refused", "command_refused") and r["path"].startswith(("/ws/command",
                                                                                                  "/api/"))]
            assert len(refused) >= 6  # handshakes and the HTTP request refused, audited
            await a.ws.close()
            await b.ws.close()

    run(main())
