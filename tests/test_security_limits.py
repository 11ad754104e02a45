"""The sans-I/O abuse limits: connections per address, message rate per connection, audit lines."""

from __future__ import annotations

import json
import logging

import pytest

from groundstation.logs import JsonFormatter, audit_logger
from groundstation.server.limits import ConnectionLimiter, MessageRate, audit_refusal


def test_connections_per_address_are_bounded_and_released():
    lim = ConnectionLimiter(2)
    for _ in range(2):
        assert lim.admit("10.0.0.1") is None
        lim.opened("10.0.0.1")
    refusal = lim.admit("10.0.0.1")
    assert refusal.code == "too_many_connections" and refusal.status == 429 and "10.0.0.1" in refusal.reason
    assert lim.admit("10.0.0.2") is None  # another address is not affected
    lim.closed("10.0.0.1")
    assert lim.admit("10.0.0.1") is None and lim.count("10.0.0.1") == 1 and lim.refused == 1
    lim.closed("10.0.0.1")
    assert lim.count("10.0.0.1") == 0


def test_zero_means_no_connection_limit_and_negative_is_refused():
    lim = ConnectionLimiter(0)
    for _ in range(1000):
        assert lim.admit("a") is None
        lim.opened("a")
    with pytest.raises(ValueError):
        ConnectionLimiter(-1)


def test_message_rate_allows_bursts_then_drops_with_one_reply_per_streak():
    r = MessageRate(10, burst=5, close_after=100)
    assert all(r.check(0.0).action == "ok" for _ in range(5))
    first, second = r.check(0.0), r.check(0.0)
    assert first.action == "drop" and first.reply and first.refusal.code == "rate_limited"
    assert second.action == "drop" and not second.reply
    assert r.check(0.1).action == "ok"  # 0.1 s at 10/s refills one token
    assert r.check(0.1).reply  # a new streak is told again
    assert r.check(10.0).action == "ok" and r.dropped == 3


def test_a_sustained_flood_is_closed():
    r = MessageRate(10, burst=10, close_after=50)
    verdicts = [r.check(i * 1e-5) for i in range(200)]
    actions = [v.action for v in verdicts]
    assert actions[:10] == ["ok"] * 10 and actions[10:60] == ["drop"] * 50
    assert actions[60] == "close" and verdicts[60].refusal.code == "flood"


def test_an_honest_client_at_the_rate_is_never_dropped():
    r = MessageRate(20)
    assert all(r.check(i / 20).action == "ok" for i in range(10_000))
    assert MessageRate(0).check(0).action == "ok"  # 0 disables


def test_refusals_are_audit_lines(caplog):
    with caplog.at_level(logging.INFO, logger=audit_logger.name):
        audit_refusal("auth_refused", "forged", "bad token signature", path="/ws/telemetry", remote="127.0.0.1")
    line = json.loads(JsonFormatter().format(caplog.records[-1]))
    assert line["event"] == "auth_refused" and line["audit"] is True
    assert line["code"] == "forged" and line["remote"] == "127.0.0.1" and line["path"] == "/ws/telemetry"


def test_total_connections_are_bounded_with_503_before_the_per_address_limit():
    lim = ConnectionLimiter(2, max_total=3)
    for addr in ("a", "a", "b"):
        assert lim.admit(addr) is None
        lim.opened(addr)
    full = lim.admit("c")
    assert full.code == "server_full" and full.status == 503 and "3 connections" in full.reason
    assert lim.admit("a").code == "server_full"  # full first, whatever the address
    lim.closed("b")
    assert lim.total == 2 and lim.admit("c") is None and lim.refused == 2
    assert lim.admit("a").code == "too_many_connections"  # room in all, not for this address
    with pytest.raises(ValueError):
        ConnectionLimiter(0, max_total=-1)


def test_the_default_cap_follows_the_open_files_limit_raised_to_its_hard_limit():
    import resource

    from groundstation.run import FD_RESERVE, max_connections

    cap = max_connections(None)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard or hard == resource.RLIM_INFINITY  # raised
    assert cap == max(16, soft - FD_RESERVE) and max_connections(7) == 7 and max_connections(0) == 0


def test_the_default_cap_keeps_the_soft_limit_when_it_cannot_be_raised(monkeypatch):
    import resource

    from groundstation.run import FD_RESERVE, max_connections

    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, resource.RLIM_INFINITY))

    def refuse(*_):
        raise ValueError("not allowed here")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert max_connections(None) == 1024 - FD_RESERVE
