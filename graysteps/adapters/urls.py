"""Credentials masked out of URLs and of any text that may hold one.

Every URL graysteps prints, logs, audits or puts in an error message goes
through `mask_url` (one URL) or `mask_text` (a message from a library that may
quote a URL). The one thing to know: the user name is kept, the password and
any query or fragment are replaced by `***` — a query string often carries a
token (`?token=…`, `?password=…`) and is never worth printing whole.
Standard library only, so even the fastest paths (rollback's checks) can use it.
"""

from __future__ import annotations

import re
import urllib.parse

MASK = "***"

# scheme://userinfo@ — the userinfo part is what holds a password.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s@?#]*)@")
# ?query or #fragment of a URL (up to the next whitespace or quote).
_QUERY = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s?#'\"]*)[?#][^\s'\"]*")


def _mask_userinfo(match: re.Match) -> str:
    user, has_password, _ = match.group(2).partition(":")
    if has_password:
        return f"{match.group(1)}{user}:{MASK}@"
    return match.group(0)


def mask_url(url: str) -> str:
    """`url` with its password, query and fragment replaced by ***; other text unchanged."""
    return mask_text(str(url))


def mask_text(text: str) -> str:
    """Every URL inside `text` masked as by `mask_url`."""
    text = _USERINFO.sub(_mask_userinfo, str(text))
    return _QUERY.sub(lambda m: f"{m.group(1)}?{MASK}", text)


# A host as an argument names it: a DNS name or IPv4 address, or an IPv6 address in brackets.
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+(%25[A-Za-z0-9._~-]+)?\]")


def url_problem(url: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Why `url` is not SCHEME://HOST[:PORT][/PATH] with one of `schemes`, a host and a port in 1-65535;
    None when it is. The reason never quotes the URL (the caller shows it masked)."""
    forms = " or ".join(f"{s}://HOST[:PORT]" for s in schemes)
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as e:
        return f"not a URL ({e}); use {forms}"
    if parts.scheme not in schemes:
        return f"use {forms}"
    host = re.sub(r":[^:\]]*\Z", "", parts.netloc.rpartition("@")[2])
    if not _HOST.fullmatch(host):
        return f"no valid host (a name, an IPv4 address or an [IPv6] address); use {forms}"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return f"the port is not a number in 1-65535; use {forms}"
    return None


def without_credentials(url: str) -> str:
    """The URL with no user, password, query or fragment at all (for audit subjects and names)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = parts.port
    except ValueError:
        return mask_url(url)
    if port:
        host = f"{host}:{port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
