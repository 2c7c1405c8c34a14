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
