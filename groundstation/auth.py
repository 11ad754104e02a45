"""Access control: who may connect and with which role (signed tokens, Origin allowlist, ``token`` command).

Sans-I/O: the server shell hands over the token and Origin header; the clock is injectable."""

from __future__ import annotations

import argparse
import enum
import os
import re
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jwt

__all__ = ["AuthError", "OriginPolicy", "Principal", "Role", "TokenIssuer", "TokenVerifier", "cmd_token",
           "generate_secret", "parse_ttl", "register_token_command", "role_allows", "secret_from_env", "token_from_request"]

SECRET_ENV = "GROUNDSTATION_SECRET"
HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 3.2: key at least as long as the hash
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_JWT_OPTS = {"verify_exp": False, "verify_iat": False, "verify_nbf": False,  # checked against injected now
             "require": ["sub", "role", "iat", "exp", "jti", "iss"]}


class AuthError(Exception):
    """Access refused: ``reason`` is for people, ``code`` a stable short name for programs and logs."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


class Role(enum.IntEnum):
    """What a user may do; a higher role may do everything a lower one may."""

    VIEWER = 1
    ENGINEER = 2
    DIRECTOR = 3
    ADMIN = 4

    @classmethod
    def parse(cls, text: str | Role) -> Role:
        """``"engineer"`` (any case) -> ``Role.ENGINEER``; ValueError naming the valid roles otherwise."""
        try:
            return cls[str(text).strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r} (expected one of: {', '.join(map(str, cls))})") from None

    @classmethod
    def lookup(cls, text: object) -> Role | None:
        """The role named ``text`` (a ``Role`` or its name, any case), or None if it is not one we know."""
        try:
            return cls.parse(text)  # type: ignore[arg-type]  # parse stringifies whatever it gets
        except ValueError:
            return None

    def __str__(self) -> str:
        return self.name.lower()


def role_allows(role: object, min_role: Role | str) -> bool:
    """True if ``role`` (a ``Role`` or its name) is at least ``min_role``; an unknown role allows nothing."""
    r = Role.lookup(role)
    return r is not None and r >= Role.parse(min_role)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user: str
    role: Role
    token_id: str
    expires_at: float  # epoch seconds

    def allows(self, min_role: Role | str) -> bool:
        """True if this caller's role is at least ``min_role``."""
        return role_allows(self.role, min_role)

    def seconds_left(self, now: float | None = None) -> float:
        """Seconds until the token expires (0 once expired)."""
        return max(0.0, self.expires_at - (time.time() if now is None else now))


def _hmac_setup(secret: bytes | str, algorithm: str, what: str = "token secret") -> tuple[bytes, str]:
    """Validated (key, algorithm): an HMAC algorithm and a shared secret at least as long as its hash."""
    if algorithm not in HMAC_KEY_BYTES:
        raise ValueError(f"algorithm {algorithm!r} not supported (expected one of: {', '.join(HMAC_KEY_BYTES)})")
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < HMAC_KEY_BYTES[algorithm]:
        raise ValueError(f"{what} is {len(key)} bytes; at least {HMAC_KEY_BYTES[algorithm]} are required")
    return key, algorithm


class TokenIssuer:
    """Signs role tokens with a shared secret."""

    def __init__(self, secret: bytes | str, issuer: str = "groundstation", algorithm: str = "HS256") -> None:
        self._key, self.algorithm = _hmac_setup(secret, algorithm)
        self.issuer = issuer

    def issue(self, user: str, role: Role | str, ttl_s: float, now: float | None = None) -> str:
        """A token for ``user`` with ``role``, valid ``ttl_s`` seconds from ``now``."""
        if not user.strip() or ttl_s < 1:
            raise ValueError(f"need a user name and a ttl of at least 1 s, got {user!r} and {ttl_s}")
        iat = int(time.time() if now is None else now)
        claims = {"sub": user, "role": str(Role.parse(role)), "iat": iat, "exp": iat + int(ttl_s),
                  "jti": secrets.token_hex(16), "iss": self.issuer}
        return jwt.encode(claims, self._key, algorithm=self.algorithm)


class TokenVerifier:
    """Checks role tokens and turns them into a :class:`Principal`, or says exactly why not."""

    def __init__(self, secret: bytes | str, issuer: str = "groundstation", leeway_s: float = 0,
                 algorithm: str = "HS256") -> None:
        self._key, self.algorithm = _hmac_setup(secret, algorithm)
        self.issuer, self.leeway_s = issuer, leeway_s

    def verify(self, token: str | None, now: float | None = None) -> Principal:
        """The caller the token names; AuthError if it is missing, malformed, forged, expired or foreign."""
        if not token:
            raise AuthError("missing token", "missing")
        try:
            claims = jwt.decode(token, self._key, algorithms=[self.algorithm], issuer=self.issuer, options=_JWT_OPTS)
        except jwt.InvalidAlgorithmError:
            alg = jwt.get_unverified_header(token).get("alg")
            raise AuthError(f"token algorithm {alg!r} not allowed (expected {self.algorithm})", "algorithm") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad token signature (forged or signed with another secret)", "forged") from None
        except jwt.InvalidIssuerError:
            raise AuthError(f"wrong token issuer (expected {self.issuer!r})", "issuer") from None
        except jwt.InvalidTokenError as e:
            raise AuthError(f"malformed token: {e}", "malformed") from None
        return self._check_claims(claims, time.time() if now is None else now)

    def _check_claims(self, claims: dict, now: float) -> Principal:
        t = {"iat": claims["iat"], "exp": claims["exp"], "nbf": claims.get("nbf", claims["iat"])}
        for k, v in t.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise AuthError(f"malformed token: claim {k!r} is not a number", "malformed")
        if now >= t["exp"] + self.leeway_s:
            raise AuthError(f"token expired {now - t['exp']:.0f} s ago", "expired")
        if (start := max(t["iat"], t["nbf"])) > now + self.leeway_s:
            raise AuthError(f"token not yet valid (starts in {start - now:.0f} s)", "not_yet_valid")
        try:
            role = Role.parse(claims["role"])
        except ValueError as e:
            raise AuthError(str(e), "role") from None
        return Principal(user=claims["sub"], role=role, token_id=str(claims["jti"]), expires_at=float(t["exp"]))


def secret_from_env(env: Mapping[str, str] = os.environ, var: str = SECRET_ENV) -> bytes:
    """The shared token secret from ``env[var]``; ValueError if unset or shorter than 32 bytes (HS256)."""
    if not env.get(var):
        raise ValueError(f"{var} is not set (make one with groundstation.auth.generate_secret())")
    return _hmac_setup(env[var], "HS256", what=var)[0]


def generate_secret() -> str:
    """A fresh random secret suitable for ``GROUNDSTATION_SECRET`` (64 URL-safe characters)."""
    return secrets.token_urlsafe(48)


def _origin_parts(origin: str) -> tuple[str, str, int]:
    """``https://Host:443`` -> ``("https", "host", 443)``; ValueError if it is not a bare scheme://host[:port]."""
    u = urlsplit(origin.strip())
    if not u.scheme or not u.hostname or u.path.strip("/") or any(c in origin for c in "@*?#"):
        raise ValueError(f"not an origin: {origin!r}")
    scheme = u.scheme.lower()
    port = u.port if u.port is not None else _DEFAULT_PORTS.get(scheme, 0)
    return scheme, u.hostname.lower(), port


class OriginPolicy:
    """Allowlist for the browser ``Origin`` header: exact origins, ``scheme://*.domain`` and ``*``."""

    def __init__(self, allowed: list[str], allow_missing: bool = False) -> None:
        self.allow_any, self.allow_missing = "*" in allowed, allow_missing
        self._exact: set[tuple[str, str, int]] = set()
        self._wildcard: list[tuple[str, str, int]] = []  # (scheme, ".domain", port)
        for entry in (a for a in allowed if a != "*"):
            scheme, host, port = _origin_parts(entry.replace("://*.", "://", 1))
            if "://*." in entry:
                self._wildcard.append((scheme, "." + host, port))
            else:
                self._exact.add((scheme, host, port))

    def check(self, origin: str | None) -> None:
        """Return if ``origin`` may connect; AuthError("origin not allowed: ...") otherwise."""
        if (self.allow_missing and not origin) or (self.allow_any and origin):
            return
        if not origin:
            raise AuthError("origin not allowed: no Origin header", "origin")
        try:
            scheme, host, port = _origin_parts(origin)
        except ValueError:
            raise AuthError(f"origin not allowed: {origin!r} (malformed)", "origin") from None
        if (scheme, host, port) in self._exact or any(
                scheme == s and port == p and host.endswith(suffix) for s, suffix, p in self._wildcard):
            return
        raise AuthError(f"origin not allowed: {origin!r}", "origin")


def token_from_request(query_token: str | None, authorization_header: str | None,
                       cookie: str | None) -> str | None:
    """The request's token: ``Authorization: Bearer``, else the ``token`` query parameter, else the cookie value."""
    scheme, _, value = (authorization_header or "").strip().partition(" ")
    for candidate in (value if scheme.lower() == "bearer" else None, query_token, cookie):
        if candidate and candidate.strip():
            return candidate.strip()
    return None


def parse_ttl(text: str) -> int:
    """``"90"``, ``"30s"``, ``"15m"``, ``"8h"``, ``"2d"`` -> seconds; ValueError if not positive or unreadable."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text.lower())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"bad ttl {text!r}: expected a positive number with optional s/m/h/d suffix, e.g. 8h")
    return int(m.group(1)) * _TTL_UNITS[m.group(2)]


def _arg(parse):
    """An argparse ``type`` that reports ``parse``'s own ValueError message."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return convert


def register_token_command(subparsers) -> argparse.ArgumentParser:
    """Add ``token --user NAME --role ROLE [--ttl 12h] [--secret-file PATH]`` to an argparse subparsers object."""
    p = subparsers.add_parser("token", help="issue a signed access token for a console or commanding user")
    p.add_argument("--user", required=True, help="user name recorded with every command")
    p.add_argument("--role", required=True, type=_arg(Role.parse), metavar="{viewer,engineer,director,admin}")
    p.add_argument("--ttl", type=_arg(parse_ttl), default=12 * 3600, help="lifetime, s/m/h/d suffix (default 12h)")
    p.add_argument("--secret-file", type=Path, help=f"file holding the secret (default: ${SECRET_ENV})")
    p.add_argument("--issuer", default="groundstation", help="issuer claim (default: groundstation)")
    p.set_defaults(func=cmd_token)
    return p


def cmd_token(args: argparse.Namespace) -> int:
    """Print a token for ``args.user`` / ``args.role`` on stdout; 2 with a message on stderr if no usable secret."""
    try:
        secret = Path(args.secret_file).read_bytes().strip() if args.secret_file else secret_from_env()
        token = TokenIssuer(secret, issuer=args.issuer).issue(args.user, args.role, args.ttl)
    except (OSError, ValueError) as e:
        print(f"groundstation token: {e}", file=sys.stderr)
        return 2
    print(f"token for {args.user} ({args.role}), valid {args.ttl} s", file=sys.stderr)
    print(token)
    return 0
