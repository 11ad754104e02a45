"""Tests of groundstation.auth: tokens, roles, origin policy, token extraction and the ``token`` command."""

from __future__ import annotations

import argparse
import base64
import json

import jwt
import pytest

from groundstation.auth import (
    AuthError,
    OriginPolicy,
    Principal,
    Role,
    TokenIssuer,
    TokenVerifier,
    cmd_token,
    generate_secret,
    parse_ttl,
    register_token_command,
    secret_from_env,
    token_from_request,
)

SECRET = (b"ground-station-test-secret/" * 3)[:64]  # long enough for HS512 too
OTHER_SECRET = b"o" * 48
NOW = 1_700_000_000.0


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(SECRET)


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(SECRET)


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _claims(**over) -> dict:
    c = {"sub": "alice", "role": "engineer", "iat": int(NOW), "exp": int(NOW) + 3600, "jti": "j1",
         "iss": "groundstation"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def _reason(verifier: TokenVerifier, token: str | None, now: float = NOW) -> AuthError:
    with pytest.raises(AuthError) as exc:
        verifier.verify(token, now=now)
    return exc.value


# --- round trip ---------------------------------------------------------------------------------------------

def test_round_trip(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("alice", Role.DIRECTOR, 8 * 3600, now=NOW)
    p = verifier.verify(token, now=NOW + 60)
    assert p == Principal(user="alice", role=Role.DIRECTOR, token_id=p.token_id, expires_at=NOW + 8 * 3600)
    assert isinstance(p.expires_at, float) and len(p.token_id) == 32
    assert p.seconds_left(NOW + 60) == pytest.approx(8 * 3600 - 60)
    assert p.seconds_left(NOW + 9 * 3600) == 0.0


def test_claims_in_token(issuer: TokenIssuer) -> None:
    token = issuer.issue("bob", "viewer", 60, now=NOW)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False})
    assert set(claims) == {"sub", "role", "iat", "exp", "jti", "iss"}
    assert claims["sub"] == "bob" and claims["role"] == "viewer" and claims["iss"] == "groundstation"
    assert claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_token_ids_are_unique(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    ids = {verifier.verify(issuer.issue("a", "viewer", 60, now=NOW), now=NOW).token_id for _ in range(20)}
    assert len(ids) == 20


def test_str_secret_equals_bytes_secret() -> None:
    token = TokenIssuer(SECRET.decode()).issue("a", "admin", 60, now=NOW)
    assert TokenVerifier(SECRET).verify(token, now=NOW).role is Role.ADMIN


def test_other_hmac_algorithm_round_trip() -> None:
    token = TokenIssuer(SECRET, algorithm="HS512").issue("a", "viewer", 60, now=NOW)
    assert TokenVerifier(SECRET, algorithm="HS512").verify(token, now=NOW).user == "a"


@pytest.mark.parametrize("kwargs", [dict(secret=b"x" * 31), dict(secret=b"x" * 63, algorithm="HS512"),
                                    dict(secret=SECRET, algorithm="RS256"), dict(secret=SECRET, algorithm="none")])
def test_bad_issuer_setup(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        TokenIssuer(**kwargs)
    with pytest.raises(ValueError):
        TokenVerifier(**kwargs)


@pytest.mark.parametrize("user, ttl", [("", 60), ("  ", 60), ("a", 0), ("a", -5)])
def test_issue_rejects_bad_arguments(issuer: TokenIssuer, user: str, ttl: float) -> None:
    with pytest.raises(ValueError):
        issuer.issue(user, "viewer", ttl, now=NOW)


def test_issue_rejects_unknown_role(issuer: TokenIssuer) -> None:
    with pytest.raises(ValueError, match="unknown role 'pilot'"):
        issuer.issue("a", "pilot", 60)


# --- rejections ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, ""])
def test_missing(verifier: TokenVerifier, token: str | None) -> None:
    e = _reason(verifier, token)
    assert (e.code, e.reason, str(e)) == ("missing", "missing token", "missing token")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "a.b", "...."])
def test_malformed(verifier: TokenVerifier, token: str) -> None:
    e = _reason(verifier, token)
    assert e.code == "malformed" and e.reason.startswith("malformed token")


def test_forged_with_another_secret(verifier: TokenVerifier) -> None:
    token = TokenIssuer(OTHER_SECRET).issue("mallory", "admin", 3600, now=NOW)
    e = _reason(verifier, token)
    assert e.code == "forged" and "signature" in e.reason


def test_tampered_payload_is_forged(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    header, _, sig = issuer.issue("eve", "viewer", 3600, now=NOW).split(".")
    tampered = ".".join([header, _b64(_claims(sub="eve", role="admin")), sig])
    assert _reason(verifier, tampered).code == "forged"


def test_alg_none_rejected(verifier: TokenVerifier) -> None:
    token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims(role="admin")) + "."
    e = _reason(verifier, token)
    assert e.code == "algorithm" and "'none'" in e.reason


def test_other_algorithm_rejected(verifier: TokenVerifier) -> None:
    token = jwt.encode(_claims(), SECRET, algorithm="HS512")  # right secret, wrong algorithm
    e = _reason(verifier, token)
    assert e.code == "algorithm" and "HS512" in e.reason


def test_expired(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("alice", "engineer", 60, now=NOW)
    assert verifier.verify(token, now=NOW + 59).user == "alice"
    e = _reason(verifier, token, now=NOW + 60)
    assert e.code == "expired" and e.reason == "token expired 0 s ago"
    assert _reason(verifier, token, now=NOW + 3600).reason == "token expired 3540 s ago"


def test_leeway(issuer: TokenIssuer) -> None:
    token = issuer.issue("alice", "engineer", 60, now=NOW)
    lenient = TokenVerifier(SECRET, leeway_s=30)
    assert lenient.verify(token, now=NOW + 80).user == "alice"
    assert lenient.verify(token, now=NOW - 20).user == "alice"
    assert _reason(lenient, token, now=NOW + 90).code == "expired"


def test_not_yet_valid(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("alice", "engineer", 3600, now=NOW + 120)
    e = _reason(verifier, token)
    assert e.code == "not_yet_valid" and "120 s" in e.reason
    nbf_token = jwt.encode(_claims(nbf=int(NOW) + 10), SECRET, algorithm="HS256")
    assert _reason(verifier, nbf_token).code == "not_yet_valid"
    assert verifier.verify(nbf_token, now=NOW + 10).user == "alice"


def test_wrong_issuer(verifier: TokenVerifier) -> None:
    token = TokenIssuer(SECRET, issuer="someone-else").issue("alice", "admin", 3600, now=NOW)
    e = _reason(verifier, token)
    assert e.code == "issuer" and "'groundstation'" in e.reason
    assert TokenVerifier(SECRET, issuer="someone-else").verify(token, now=NOW).role is Role.ADMIN


def test_unknown_role(verifier: TokenVerifier) -> None:
    token = jwt.encode(_claims(role="pilot"), SECRET, algorithm="HS256")
    e = _reason(verifier, token)
    assert e.code == "role" and "pilot" in e.reason and "viewer, engineer, director, admin" in e.reason


@pytest.mark.parametrize("drop", ["sub", "role", "iat", "exp", "jti", "iss"])
def test_missing_claim_is_malformed(verifier: TokenVerifier, drop: str) -> None:
    token = jwt.encode(_claims(**{drop: None}), SECRET, algorithm="HS256")
    e = _reason(verifier, token)
    assert e.code == "malformed" and drop in e.reason


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_non_numeric_time_is_malformed(verifier: TokenVerifier, claim: str) -> None:
    token = jwt.encode(_claims(**{claim: "soon"}), SECRET, algorithm="HS256")
    assert _reason(verifier, token).code == "malformed"


def test_reasons_are_distinct(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    tokens = [None, "garbage", TokenIssuer(OTHER_SECRET).issue("a", "viewer", 60, now=NOW),
              jwt.encode(_claims(), SECRET, algorithm="HS384"), issuer.issue("a", "viewer", 60, now=NOW - 120),
              TokenIssuer(SECRET, issuer="x").issue("a", "viewer", 60, now=NOW),
              jwt.encode(_claims(role="pilot"), SECRET, algorithm="HS256"),
              issuer.issue("a", "viewer", 60, now=NOW + 120)]
    errors = [_reason(verifier, t) for t in tokens]
    assert len({e.code for e in errors}) == len({e.reason for e in errors}) == len(tokens)


# --- roles ----------------------------------------------------------------------------------------------

def test_role_order_and_parse() -> None:
    assert Role.VIEWER < Role.ENGINEER < Role.DIRECTOR < Role.ADMIN
    assert [str(r) for r in sorted(Role)] == ["viewer", "engineer", "director", "admin"]
    assert Role.parse(" Director ") is Role.DIRECTOR and Role.parse(Role.ADMIN) is Role.ADMIN
    with pytest.raises(ValueError, match="unknown role 'god'.*viewer, engineer, director, admin"):
        Role.parse("god")


def test_allows() -> None:
    p = Principal(user="d", role=Role.DIRECTOR, token_id="t", expires_at=NOW)
    assert p.allows(Role.VIEWER) and p.allows(Role.ENGINEER) and p.allows(Role.DIRECTOR) and p.allows("director")
    assert not p.allows(Role.ADMIN)
    viewer = Principal(user="v", role=Role.VIEWER, token_id="t", expires_at=NOW)
    assert viewer.allows("viewer") and not viewer.allows("engineer")
    with pytest.raises(AttributeError):
        p.role = Role.ADMIN  # type: ignore[misc]


# --- secrets ----------------------------------------------------------------------------------------------

def test_secret_from_env() -> None:
    assert secret_from_env({"GROUNDSTATION_SECRET": "x" * 32}) == b"x" * 32
    assert secret_from_env({"MY_SECRET": "y" * 40}, var="MY_SECRET") == b"y" * 40
    with pytest.raises(ValueError, match="GROUNDSTATION_SECRET is not set"):
        secret_from_env({})
    with pytest.raises(ValueError, match="GROUNDSTATION_SECRET is 31 bytes; at least 32"):
        secret_from_env({"GROUNDSTATION_SECRET": "x" * 31})


def test_generate_secret() -> None:
    a, b = generate_secret(), generate_secret()
    assert a != b and len(a) == 64 and secret_from_env({"GROUNDSTATION_SECRET": a}) == a.encode()


# --- origin policy ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("origin", ["https://gs.example.org", "https://GS.example.org:443", "https://gs.example.org/",
                                    "http://localhost:8888", "https://a.range.test", "https://x.y.range.test"])
def test_origin_allowed(origin: str) -> None:
    OriginPolicy(["https://gs.example.org", "http://localhost:8888", "https://*.range.test"]).check(origin)


@pytest.mark.parametrize("origin", ["http://gs.example.org", "https://gs.example.org:8443", "https://evil.org",
                                    "http://localhost", "https://range.test", "https://evilrange.test",
                                    "http://a.range.test", "https://a.range.test:444", "null",
                                    "https://gs.example.org/path", "https://gs.example.org?x=1",
                                    "https://user@gs.example.org", "https://gs.example.org:notaport"])
def test_origin_refused(origin: str) -> None:
    policy = OriginPolicy(["https://gs.example.org", "http://localhost:8888", "https://*.range.test"])
    with pytest.raises(AuthError, match="origin not allowed") as exc:
        policy.check(origin)
    assert exc.value.code == "origin"


def test_origin_default_ports() -> None:
    OriginPolicy(["https://x.org:443"]).check("https://x.org")
    OriginPolicy(["http://x.org"]).check("http://x.org:80")
    OriginPolicy(["https://*.x.org:443"]).check("https://a.x.org")
    with pytest.raises(AuthError):
        OriginPolicy(["https://x.org"]).check("http://x.org:443")


def test_origin_star_and_missing() -> None:
    OriginPolicy(["*"]).check("https://anything.example")
    for policy in (OriginPolicy(["*"]), OriginPolicy(["https://x.org"])):
        for missing in (None, ""):
            with pytest.raises(AuthError, match="no Origin header"):
                policy.check(missing)
    OriginPolicy(["https://x.org"], allow_missing=True).check(None)
    OriginPolicy([], allow_missing=True).check("")
    with pytest.raises(AuthError):
        OriginPolicy([], allow_missing=True).check("https://x.org")


@pytest.mark.parametrize("entry", ["gs.example.org", "https://", "https://x.org/path", "https://a*.x.org"])
def test_origin_bad_entry(entry: str) -> None:
    with pytest.raises(ValueError):
        OriginPolicy([entry])


# --- token extraction ------------------------------------------------------------------------------------

@pytest.mark.parametrize("query, header, cookie, expected", [
    ("q", "Bearer h", "c", "h"),
    ("q", "bearer  h ", "c", "h"),
    ("q", None, "c", "q"),
    ("q", "Basic dXNlcjpwdw==", "c", "q"),
    ("q", "Bearer ", "c", "q"),
    (None, None, "c", "c"),
    ("", "", "c", "c"),
    (None, None, None, None),
    ("", "Bearer", "  ", None),
])
def test_token_from_request(query: str | None, header: str | None, cookie: str | None, expected: str | None) -> None:
    assert token_from_request(query, header, cookie) == expected


# --- ttl and the command line ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("90", 90), ("30s", 30), ("15m", 900), ("8h", 28800), ("2d", 172800),
                                           ("12H", 43200), (" 5m ", 300)])
def test_parse_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0h", "-1h", "1.5h", "8w", "h", "8 hours"])
def test_parse_ttl_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad ttl"):
        parse_ttl(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="groundstation")
    register_token_command(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_token_from_env(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GROUNDSTATION_SECRET", SECRET.decode())
    args = _parser().parse_args(["token", "--user", "carol", "--role", "director", "--ttl", "8h"])
    assert args.func is cmd_token and args.role is Role.DIRECTOR and args.ttl == 8 * 3600
    assert args.func(args) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert "\n" not in token and "carol" in out.err
    p = TokenVerifier(SECRET).verify(token)
    assert (p.user, p.role) == ("carol", Role.DIRECTOR)
    assert 8 * 3600 - 60 < p.seconds_left() <= 8 * 3600


def test_cli_token_from_secret_file(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GROUNDSTATION_SECRET", raising=False)
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(OTHER_SECRET + b"\n")
    args = _parser().parse_args(["token", "--user", "dan", "--role", "viewer", "--secret-file", str(secret_file)])
    assert cmd_token(args) == 0
    p = TokenVerifier(OTHER_SECRET).verify(capsys.readouterr().out.strip())
    assert (p.user, p.role) == ("dan", Role.VIEWER)
    assert 12 * 3600 - 60 < p.seconds_left() <= 12 * 3600  # default ttl


def test_cli_token_without_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                  tmp_path) -> None:
    monkeypatch.delenv("GROUNDSTATION_SECRET", raising=False)
    args = _parser().parse_args(["token", "--user", "e", "--role", "admin"])
    assert cmd_token(args) == 2
    out = capsys.readouterr()
    assert out.out == "" and "GROUNDSTATION_SECRET is not set" in out.err
    args = _parser().parse_args(["token", "--user", "e", "--role", "admin", "--secret-file", str(tmp_path / "nope")])
    assert cmd_token(args) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["token", "--user", "x", "--role", "pilot"], "unknown role 'pilot'"),
    (["token", "--user", "x", "--role", "viewer", "--ttl", "8w"], "bad ttl '8w'"),
    (["token", "--role", "viewer"], "--user"),
])
def test_cli_token_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err
