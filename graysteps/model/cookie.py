"""The gray cookie the auth center hands to users: plain (the seed's) or HMAC-signed.

Plain mode (the seed, §3.3.1): `tenantGray=1` for a whitelisted tenant,
`tenantGray=0` otherwise, matched by the VirtualService regex
`.*tenantGray=1.*`. Anyone can forge it: a user who sends `tenantGray=1`
reaches the gray services.

Signed mode: the cookie value is a compact JWT (HS256) with the claims
`{"sub": tenant, "gray": true|false, "iat", "exp"}`, signed with a key from
the environment (`GRAYSTEPS_COOKIE_KEY`, at least 32 bytes) or a key file
(`GRAYSTEPS_COOKIE_KEY_FILE` / `--key-file`; in Jenkins bind it with
`withCredentials([file(...)])`). The key is never taken from argv. A client
cannot make `gray: true` without the key; `verify_gray_token()` is the check.

How the routing side checks it (not built here; only the cookie side is):
  A. Recommended: the ingress gateway validates the cookie and turns it into
     an internal header. An ext_authz service (or an Envoy Lua/Wasm filter at
     the gateway) runs `verify_gray_token(cookie, key)` and sets
     `x-graysteps-gray: 1` when it holds `gray: true`, and ALWAYS removes any
     `x-graysteps-gray` the client sent. The VirtualServices match
     `headers: {x-graysteps-gray: {exact: "1"}}` instead of the cookie regex;
     sidecars propagate the header between services as they propagate the
     cookie today.
  B. Istio only: a RequestAuthentication on the gateway with
     `jwtRules: [{issuer: graysteps, fromCookies: [tenantGray], jwks: <oct key>,
     outputClaimToHeaders: [{header: x-graysteps-gray, claim: gray}]}]`.
     Envoy's jwt_authn accepts HS256 with an `oct` JWKS key, but the JWKS then
     holds the secret in a cluster resource, and a request WITHOUT the cookie
     keeps a client-sent header: strip `x-graysteps-gray` at the gateway first.
     Prefer an asymmetric key (RS256/ES256) if you go this way.
Either way the routing side must treat the cookie/header as untrusted until
verified, and `exp` bounds how long a removed tenant keeps gray (Max-Age).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping

from graysteps.errors import InvalidInput

COOKIE_NAME = "tenantGray"
KEY_ENV = "GRAYSTEPS_COOKIE_KEY"
KEY_FILE_ENV = "GRAYSTEPS_COOKIE_KEY_FILE"
KEY_MIN_BYTES = 32
SIGNED_LIFETIME_S = 8 * 3600  # exp of a signed cookie without Max-Age; with one, exp = iat + Max-Age (0: expired)
ISSUER = "graysteps"

_COOKIE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")  # RFC 6265 token
_DOMAIN = re.compile(r"\.?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


@dataclass(frozen=True)
class CookieSettings:
    """Name and attributes of the gray cookie."""

    name: str = COOKIE_NAME
    path: str = "/"
    domain: str | None = None
    max_age: int | None = None
    same_site: str = "Lax"
    secure: bool = False
    http_only: bool = True

    def __post_init__(self):
        if not _COOKIE_NAME.fullmatch(self.name):
            raise InvalidInput(f"invalid cookie name {self.name!r}: use 1-64 letters, digits and !#$%&'*+.^_`|~-")
        if not self.path.startswith("/") or not _printable_attr(self.path):
            raise InvalidInput(f"invalid cookie path {self.path!r}: start with / and use no ';' or control characters")
        if self.domain is not None and not _DOMAIN.fullmatch(self.domain):
            raise InvalidInput(f"invalid cookie domain {self.domain!r}: use a DNS name like example.com")
        if self.max_age is not None and not (0 <= self.max_age <= 400 * 86400):
            raise InvalidInput(f"invalid cookie max-age {self.max_age!r}: use 0..34560000 seconds")
        same_site = _SAME_SITE.get(str(self.same_site).lower())
        if same_site is None:
            raise InvalidInput(f"invalid SameSite {self.same_site!r}: use Strict, Lax or None")
        object.__setattr__(self, "same_site", same_site)
        if same_site == "None" and not self.secure:
            raise InvalidInput("SameSite=None needs --secure (browsers drop such cookies otherwise)")


def _printable_attr(value: str) -> bool:
    return value.isprintable() and ";" not in value and value.isascii()


def set_cookie_value(settings: CookieSettings, value: str) -> str:
    """The Set-Cookie header value: `name=value; Path=/; …`."""
    parts = [f"{settings.name}={value}", f"Path={settings.path}"]
    if settings.domain:
        parts.append(f"Domain={settings.domain}")
    if settings.max_age is not None:
        parts.append(f"Max-Age={settings.max_age}")
    if settings.secure:
        parts.append("Secure")
    if settings.http_only:
        parts.append("HttpOnly")
    parts.append(f"SameSite={settings.same_site}")
    return "; ".join(parts)


def cookie_value(tenant: str, gray: bool, *, key: bytes | None = None, lifetime: int | None = None, now: float | None = None) -> str:
    """`1`/`0` without a key; the signed token with one."""
    if key is None:
        return "1" if gray else "0"
    issued = int(time.time() if now is None else now)
    claims = {"iss": ISSUER, "sub": tenant, "gray": bool(gray), "iat": issued, "exp": issued + (SIGNED_LIFETIME_S if lifetime is None else lifetime)}
    return sign_token(claims, key)


def gray_cookie(tenant: str, gray: bool, settings: CookieSettings, *, key: bytes | None = None, now: float | None = None) -> str:
    """The full Set-Cookie value for this tenant's decision."""
    return set_cookie_value(settings, cookie_value(tenant, gray, key=key, lifetime=settings.max_age, now=now))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def sign_token(claims: Mapping[str, Any], key: bytes) -> str:
    """A compact HS256 JWT of `claims`."""
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{_HEADER}.{payload}".encode("ascii")
    return f"{_HEADER}.{payload}.{_b64(hmac.new(key, signing_input, hashlib.sha256).digest())}"


class InvalidToken(ValueError):
    """The cookie is not a valid, unexpired gray token signed with our key."""


def verify_gray_token(token: str, key: bytes, *, now: float | None = None) -> dict[str, Any]:
    """The claims of a signed gray cookie, or InvalidToken. What the routing side runs."""
    try:
        header, payload, signature = token.split(".")
        expected = hmac.new(key, f"{header}.{payload}".encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise InvalidToken("bad signature")
        if json.loads(_unb64(header)) != {"alg": "HS256", "typ": "JWT"}:
            raise InvalidToken("unexpected header")
        claims = json.loads(_unb64(payload))
    except InvalidToken:
        raise
    except (ValueError, UnicodeError) as e:
        raise InvalidToken(f"malformed token: {e}") from None
    if not isinstance(claims, dict) or claims.get("iss") != ISSUER or not isinstance(claims.get("gray"), bool):
        raise InvalidToken("unexpected claims")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= (time.time() if now is None else now):
        raise InvalidToken("expired")
    return claims


def load_cookie_key(key_file: str | None = None, env: Mapping[str, str] | None = None) -> bytes:
    """The signing key: `key_file`, else $GRAYSTEPS_COOKIE_KEY_FILE, else $GRAYSTEPS_COOKIE_KEY."""
    env = os.environ if env is None else env
    if key_file == "":
        raise InvalidInput("--key-file is empty: give the path of the key file, or leave it out")
    path = key_file or env.get(KEY_FILE_ENV)
    if path:
        from graysteps.adapters.reading import read_bytes

        key = read_bytes(path, what="cookie key file", document=True).strip()
        source = f"key file {path!r}"
    elif env.get(KEY_ENV):
        key = env[KEY_ENV].encode("utf-8")
        source = f"${KEY_ENV}"
    else:
        raise InvalidInput(
            f"signed cookies need a key: set ${KEY_ENV} or ${KEY_FILE_ENV} (or --key-file); never pass the key itself as an argument"
        )
    if len(key) < KEY_MIN_BYTES:
        raise InvalidInput(f"the cookie key from {source} is {len(key)} bytes; use at least {KEY_MIN_BYTES} random bytes")
    return key
