"""Access to the console socket: signed tokens at the handshake, Origin allowlist, expiry."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets

from groundstation.auth import TokenIssuer
from tests.live import SECRET, Console, server
from tests.live import refused_status as refused


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def token(role: str = "viewer", ttl: float = 600, secret: str = SECRET, user: str = "ann", now=None) -> str:
    return TokenIssuer(secret).issue(user, role, ttl, now=now)


def test_tokens_and_origins_at_the_handshake():
    async def main():
        with server(open_mode=False) as srv:
            url = srv.ws_url
            assert await refused(url) == 401  # no token
            assert await refused(url + "?token=garbage") == 401  # malformed
            assert await refused(url + "?token=" + token(secret="another-secret-" + "y" * 40)) == 401  # forged
            expired = token(ttl=60, now=time.time() - 3600)
            assert await refused(url + "?token=" + expired) == 401
            # a valid viewer token, in the query or as a Bearer header
            c = await Console.connect(url + "?token=" + token("viewer"))
            assert c.hello["user"] == "ann" and c.hello["role"] == "viewer"
            await c.close()
            c = await Console.connect(url, additional_headers={"Authorization": "Bearer " + token("director")})
            assert c.hello["role"] == "director"
            await c.close()
            # browsers send an Origin: only the allowlist gets in
            good = f"http://127.0.0.1:{srv.http_port}"
            c = await Console.connect(url + "?token=" + token(), origin=good)
            await c.close()
            assert await refused(url + "?token=" + token(), origin="http://evil.example") == 403
            # every refusal is counted and logged
            srv.log.flush()
            srv.log.seek(0)
            log = srv.log.read()
            assert log.count('"auth_refused"') >= 4 and '"origin_refused"' in log

    run(main())


def test_token_expiry_closes_an_open_socket():
    async def main():
        with server(open_mode=False) as srv:
            c = await Console.connect(srv.ws_url + "?token=" + token(ttl=1))
            with pytest.raises(websockets.ConnectionClosed) as info:
                for _ in range(100):
                    await c.recv(3)
            assert info.value.rcvd.code == 4001 and "expired" in info.value.rcvd.reason

    run(main())
