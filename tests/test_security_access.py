"""Hostile clients at the WebSocket and HTTP endpoints: every one refused with its reason and audited,
and no command reaches the vehicle.

Covers: no token, wrong role, expired, forged, wrong Origin, oversize frames,
message floods (console and command channel), too many connections from one
address. A real server process, the independent ``websockets`` client and a
real simulator listening for uplink.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets

from groundstation.auth import TokenIssuer
from tests.live import SECRET, Console, pack, refused_status, vehicle_and_server


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def token(role: str = "viewer", ttl: float = 600, secret: str = SECRET, now=None) -> str:
    return TokenIssuer(secret).issue("mallory", role, ttl, now=now)


def audit_lines(srv) -> list[dict]:
    srv.log.flush()
    srv.log.seek(0)
    out = []
    for line in srv.log.read().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("audit"):
            out.append(rec)
    return out


def http_status(url: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


async def closed_with(ws, timeout: float = 10.0) -> websockets.frames.Close:
    """Read until the server closes; its close frame."""
    with pytest.raises(websockets.ConnectionClosed) as info:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
    return info.value.rcvd


def test_every_refusal_has_its_reason_is_audited_and_no_command_reaches_the_vehicle():
    async def main():
        async with vehicle_and_server("--max-connections-per-address", "4", "--message-rate", "20",
                                      open_mode=False) as (sim, srv):
            url, cmd = srv.ws_url, f"ws://127.0.0.1:{srv.http_port}/ws/command"
            expired = token("director", ttl=60, now=time.time() - 3600)
            forged = token("director", secret="another-secret-" + "y" * 40)
            handshakes = {
                "no token": (url, {}, 401),
                "expired": (url + "?token=" + expired, {}, 401),
                "forged": (url + "?token=" + forged, {}, 401),
                "wrong origin": (url + "?token=" + token(), {"origin": "http://evil.example"}, 403),
                "command, no token": (cmd, {}, 401),
                "command, viewer": (cmd + "?token=" + token("viewer"), {}, 403),
                "command, engineer": (cmd + "?token=" + token("engineer"), {}, 403),
                "command, forged director": (cmd + "?token=" + forged, {}, 401),
                "command, wrong origin": (cmd + "?token=" + token("director"), {"origin": "http://evil.example"}, 403),
            }
            got = {name: await refused_status(u, **kw) for name, (u, kw, _) in handshakes.items()}
            assert got == {name: status for name, (_, _, status) in handshakes.items()}
            api = f"http://127.0.0.1:{srv.http_port}/api/commands"
            body = json.dumps({"name": "SET_TEST_POINT", "args": {"value": 1}}).encode()
            assert http_status(api, "POST", body=body) == 401
            assert http_status(api, "POST", {"Authorization": "Bearer " + token("viewer")}, body) == 403
            assert http_status(api, "POST", {"Authorization": "Bearer " + forged}, body) == 401

            # oversize frame: closed with 1009
            c = await Console.connect(url + "?token=" + token())
            await c.ws.send(b"\x80" * 70_000)
            assert (await closed_with(c.ws)).code == 1009

            # message flood on the console socket: told once, then closed with 4029
            c = await Console.connect(url + "?token=" + token())
            for i in range(1000):
                await c.ws.send(pack({"type": "ping", "id": i}))
            close = await closed_with(c.ws)
            assert close.code == 4029 and "flood" in close.reason
            # ... while a console at an honest rate is never limited
            c = await Console.connect(url + "?token=" + token())
            for i in range(10):
                await c.send({"type": "ping", "id": i})
                assert (await c.until(lambda m: m["type"] in ("pong", "error")))["type"] == "pong"
                await asyncio.sleep(0.06)

            # too many connections from one address: the 5th gets HTTP 429; a slot frees on close
            others = [await Console.connect(url + "?token=" + token()) for _ in range(3)]
            assert await refused_status(url + "?token=" + token()) == 429
            assert await refused_status(cmd + "?token=" + token("director")) == 429
            await others.pop().close()
            await asyncio.sleep(0.3)
            others.append(await Console.connect(url + "?token=" + token()))
            for o in others + [c]:
                await o.close()

            # a director floods the command channel with garbage: told, then closed with 4029
            d = await websockets.connect(cmd + "?token=" + token("director"), max_size=None)
            for _ in range(600):
                await d.send(b"\xc1garbage")
            assert (await closed_with(d)).code == 4029

            await asyncio.sleep(0.5)
            assert sim.vehicle.uplinks == []  # nothing reached the vehicle
            audits = audit_lines(srv)
            codes = {(a["event"], a["code"]) for a in audits}
            for expected in [("auth_refused", "missing"), ("auth_refused", "expired"), ("auth_refused", "forged"),
                             ("auth_refused", "role"), ("origin_refused", "origin"), ("command_refused", "origin"),
                             ("message_refused", "too_large"), ("message_refused", "rate_limited"),
                             ("message_refused", "flood"), ("connection_refused", "too_many_connections"),
                             ("command_refused", "rate_limited"), ("command_refused", "flood")]:
                assert expected in codes, (expected, sorted(codes))
            assert all(a.get("remote") == "127.0.0.1" for a in audits if a["event"].endswith("_refused"))
            assert not any("token=" in json.dumps(a) for a in audits)  # tokens never reach the audit log

    run(main())


def test_a_full_server_refuses_new_connections_with_503_and_says_so_in_health():
    async def main():
        async with vehicle_and_server("--max-connections", "3", "--max-connections-per-address", "0",
                                      open_mode=False) as (sim, srv):
            url = srv.ws_url + "?token=" + token()
            consoles = [await Console.connect(url) for _ in range(3)]
            assert await refused_status(url) == 503
            health = f"http://127.0.0.1:{srv.http_port}/healthz"
            assert http_status(health) == 503  # every socket counts: a plain HTTP request too
            await consoles.pop().close()
            await asyncio.sleep(0.3)
            h = json.loads(urllib.request.urlopen(health, timeout=5).read())
            assert h["connections"] == {"open": 3, "max": 3, "refused": 2}  # 2 consoles + this request
            consoles.append(await Console.connect(url))
            for c in consoles:  # the full server still serves its consoles
                await c.send({"type": "ping", "id": 1})
                assert (await c.until(lambda m: m["type"] == "pong"))["id"] == 1
            await consoles.pop().close()
            await asyncio.sleep(0.3)
            consoles.append(await Console.connect(url))  # a slot freed
            for c in consoles:
                await c.close()
            assert ("connection_refused", "server_full") in {(a["event"], a["code"]) for a in audit_lines(srv)}

    run(main())
