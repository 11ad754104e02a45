"""TLS: with a certificate and key the console and command channels are wss/https only."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess

import msgpack
import pytest
import websockets

from tests.live import server

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def test_wss_with_a_configured_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)

    async def main():
        with server("--cert", str(cert), "--key", str(key)) as srv:
            ctx = ssl.create_default_context(cafile=str(cert))
            async with websockets.connect(f"wss://127.0.0.1:{srv.http_port}/ws/telemetry", ssl=ctx) as ws:
                hello = msgpack.unpackb(await ws.recv())
                assert hello["type"] == "hello"
            with pytest.raises((OSError, websockets.InvalidHandshake, asyncio.TimeoutError)):  # no plain ws
                async with websockets.connect(f"ws://127.0.0.1:{srv.http_port}/ws/telemetry", open_timeout=3):
                    pass

    asyncio.run(main())
