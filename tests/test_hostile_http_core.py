"""The sans-I/O pieces behind the hostile-HTTP defences: strict JSON, log redaction and throttling,
API request rates, accept back-off, the static asset list."""

from __future__ import annotations

import json
import logging

import pytest

from groundstation.logs import JsonFormatter, LogThrottle, redact
from groundstation.server.api import RequestRates
from groundstation.server.app import built_assets
from groundstation.server.http_server import AcceptBackoff
from groundstation.strict_json import JsonRefused, depth_within, loads_strict


@pytest.mark.parametrize("text, code", [
    ("NaN", "non_finite"), ('{"a": Infinity}', "non_finite"), ("[-Infinity]", "non_finite"),
    ("1e999", "non_finite"), ('{"a": -1e400}', "non_finite"), ("[" * 5000 + "]" * 5000, "too_deep"),
    ("[" * 33 + "]" * 33, "too_deep"), ('{"a": ' * 40 + "1" + "}" * 40, "too_deep"), ("{", "bad_json"),
    (b"\xff", "bad_json"), ("1" * 5000, "bad_json"), ('"' + "x" * 100 + '"', "too_large"),
])
def test_strict_json_refuses_with_a_code(text, code):
    with pytest.raises(JsonRefused) as info:
        loads_strict(text, max_bytes=100 if code == "too_large" else 1 << 20)
    assert info.value.code == code and str(info.value)


def test_strict_json_takes_what_is_fine():
    assert loads_strict(b'{"a": [1, 2.5, -3e10, "x", null, true]}', 1000) == {"a": [1, 2.5, -3e10, "x", None, True]}
    assert loads_strict("[" * 32 + "]" * 32, 1000) is not None
    assert depth_within({"a": [{"b": []}]}, 4) and not depth_within({"a": [{"b": []}]}, 3)  # 4 levels


def test_redaction_covers_query_tokens_headers_cookies_and_jwts():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl"
    for text in (f"POST /api/commands?token={jwt}&x=1 (127.0.0.1)", f"{{'Authorization': 'Bearer {jwt}'}}",
                 f"Cookie: gs_token={jwt}; other=1", f"a bare {jwt} somewhere", "Authorization: Basic dXNlcjpw"):
        out = redact(text)
        assert jwt not in out and "dXNlcjpw" not in out and "<redacted>" in out
    assert redact("nothing secret here") == "nothing secret here"


def test_the_formatter_writes_strict_redacted_json_whatever_the_record_holds():
    deep: list = []
    x = deep
    for _ in range(3000):
        x.append([])
        x = x[0]
    rec = logging.LogRecord("tornado.application", logging.ERROR, "f", 1, "Uncaught exception %s", ("GET /x?token=abc",),
                            None)
    rec.fields = {"nan": float("nan"), "deep": deep}
    line = JsonFormatter().format(rec)
    parsed = json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert parsed["event"] == "Uncaught exception GET /x?token=<redacted>" and parsed["logger"] == "tornado.application"
    assert parsed["nan"] == "nan"


def test_log_throttle_passes_a_burst_per_key_then_counts_and_reports_once_per_interval():
    t = LogThrottle(burst=3, interval_s=10, max_keys=4)
    assert [t.admit(("decode", "a"), 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert t.admit(("decode", "b"), 1.0)  # another reason has its own budget
    assert t.due(5.0) == []
    assert t.due(10.0) == [(("decode", "a"), 2, {})]  # b suppressed nothing: no summary
    assert t.admit(("decode", "a"), 10.5)  # a new interval
    for i in range(10):  # many distinct keys share one bucket past max_keys
        t.admit(("k", str(i)), 11.0)
    assert len(t._windows) <= 5


def test_request_rates_per_key_with_bounded_memory():
    r = RequestRates(10, max_keys=3)
    assert all(r.check("user:a", 0.0, "for this user") is None for _ in range(20))  # the burst
    refusal = r.check("user:a", 0.0, "for this user")
    assert refusal.code == "rate_limited" and refusal.status == 429 and "for this user" in refusal.reason
    assert r.check("user:b", 0.0, "x") is None  # others are not affected
    assert r.check("user:a", 0.2, "x") is None  # tokens come back at the rate
    for k in "cdefg":
        r.check(k, 1.0, "x")
    assert len(r._buckets) == 3 and r.retry_after_s() == 1
    assert RequestRates(0).check("a", 0, "x") is None  # 0 = no limit


def test_accept_backoff_doubles_to_a_cap_and_resets():
    b = AcceptBackoff(0.05, 1.0)
    assert [b.failed() for _ in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    b.succeeded()
    assert b.failed() == 0.05 and b.failures == 8


def test_only_built_assets_are_listed(tmp_path):
    (tmp_path / "app" / "sub").mkdir(parents=True)
    (tmp_path / "vendor").mkdir()
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    for f in ("app.css", "app/main.js", "app/sub/a.js", "app/notes.txt", "vendor/uPlot.min.css", "package.json",
              "build.mjs", "node_modules/x/index.js", "index.html"):
        (tmp_path / f).write_text("x")
    (tmp_path / "app" / "link.js").symlink_to(tmp_path / "package.json")
    assert built_assets(tmp_path) == {"app.css", "app/main.js", "app/sub/a.js", "vendor/uPlot.min.css"}
