"""Every file or URL graysteps reads, read with a size limit and a wall-clock limit.

The one thing to know: nothing is read unbounded. A path must name a regular
file (not /dev/zero, a FIFO, a directory or a terminal) and a URL must be
http(s); anything larger than the size limit or slower than the time limit is
refused with one line naming what was read and the limit, and nothing is used.

Limits (documented in the README; the environment overrides them):

  GRAYSTEPS_READ_MAX_BYTES           data sources (whitelist sync --source)   default 256 MiB
  GRAYSTEPS_READ_MAX_DOCUMENT_BYTES  documents: catalog, plan, --from,
                                     cookie key, build record                 default 16 MiB
  GRAYSTEPS_READ_TIMEOUT             seconds for one whole read, connect
                                     and transfer included                    default 60

A URL is fetched without proxies and without following redirects (a redirect
could lead past the caller's allow-list); credentials in it are sent as HTTP
Basic auth and never shown. The same module parses what it read: UTF-8 text
(named by line when it is not), YAML through one safe loader that refuses
duplicate keys, and JSON; input nested too deeply or holding numbers too long
to convert becomes one line too (InvalidInput), never a traceback.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import http.client
import math
import os
import socket
import stat
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Mapping

from graysteps.adapters.urls import mask_url
from graysteps.errors import GraystepsError, InvalidInput

MAX_BYTES_ENV = "GRAYSTEPS_READ_MAX_BYTES"
MAX_DOCUMENT_BYTES_ENV = "GRAYSTEPS_READ_MAX_DOCUMENT_BYTES"
TIMEOUT_ENV = "GRAYSTEPS_READ_TIMEOUT"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
DEFAULT_TIMEOUT_S = 60.0
CHUNK = 1 << 16


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    timeout: float


def _env_number(env: Mapping[str, str], name: str, default: float, *, integer: bool) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    text = raw if integer else raw.replace(".", "", 1)
    if not (text.isascii() and text.isdigit()) or (integer and len(raw) > 18):
        raise InvalidInput(f"${name}={raw[:40]!r} is not allowed: use a positive {'integer' if integer else 'number'}")
    value = int(raw) if integer else float(raw)
    if value <= 0 or not math.isfinite(value):
        raise InvalidInput(f"${name}={raw[:40]!r} is not allowed: use a positive {'integer' if integer else 'number'}")
    return value


def limits(*, document: bool = False, env: Mapping[str, str] | None = None) -> Limits:
    """The limits in force: a data source's, or a document's (`document=True`)."""
    env = os.environ if env is None else env
    if document:
        size = _env_number(env, MAX_DOCUMENT_BYTES_ENV, DEFAULT_MAX_DOCUMENT_BYTES, integer=True)
    else:
        size = _env_number(env, MAX_BYTES_ENV, DEFAULT_MAX_BYTES, integer=True)
    return Limits(int(size), _env_number(env, TIMEOUT_ENV, DEFAULT_TIMEOUT_S, integer=False))


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def _too_large(what: str, name: str, limit: Limits, document: bool) -> InvalidInput:
    variable = MAX_DOCUMENT_BYTES_ENV if document else MAX_BYTES_ENV
    return InvalidInput(f"{what} {name}: larger than {limit.max_bytes} bytes; "
                        f"that is the limit (set ${variable} to raise it)")


def _too_slow(what: str, name: str, limit: Limits) -> GraystepsError:
    return GraystepsError(f"{what} {name}: not read within {limit.timeout:g} s; "
                          f"that is the limit (set ${TIMEOUT_ENV} to raise it)")


def read_bytes(location: str, *, what: str, document: bool = False, allow_url: bool = False,
               limit: Limits | None = None) -> bytes:
    """The bytes of a regular file (or, with `allow_url`, an http(s) URL), within the limits.

    `what` names the input in messages (e.g. "--source", "plan file").
    """
    location = os.fspath(location)
    limit = limit or limits(document=document)
    if is_url(location):
        if not allow_url:
            raise InvalidInput(f"{what} {mask_url(location)}: give a file path, not a URL")
        return _read_url(location, what=what, limit=limit, document=document)
    if "://" in location:
        raise InvalidInput(f"{what} {mask_url(location)!r}: use a file path" + (" or an http(s):// URL" if allow_url else ""))
    return _read_file(location, what=what, limit=limit, document=document)


def not_regular(mode: int) -> str | None:
    """What a file of this st_mode is when it is not a regular file ("a FIFO", ...); None when it is one."""
    if stat.S_ISREG(mode):
        return None
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


def _read_file(path: str, *, what: str, limit: Limits, document: bool) -> bytes:
    name = repr(path)
    if "\0" in path:
        raise InvalidInput(f"{what} {path!r}: a path holds no NUL character")
    deadline = time.monotonic() + limit.timeout
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOCTTY: a terminal is never adopted.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InvalidInput(f"{what} {name}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{what} {name}: is a directory; give a regular file") from None
    except OSError as e:
        raise InvalidInput(f"{what} {name}: cannot read it ({e.strerror or e})") from None
    try:
        info = os.fstat(fd)
        kind = not_regular(info.st_mode)
        if kind:
            raise InvalidInput(f"{what} {name}: is {kind}; give a regular file")
        if info.st_size > limit.max_bytes:
            raise _too_large(what, name, limit, document)
        parts, total = [], 0
        while True:
            try:
                chunk = os.read(fd, CHUNK)
            except OSError as e:
                raise InvalidInput(f"{what} {name}: cannot read it ({e.strerror or e})") from None
            if not chunk:
                return b"".join(parts)
            total += len(chunk)
            if total > limit.max_bytes:
                raise _too_large(what, name, limit, document)  # grew while read (e.g. /proc files report 0)
            if time.monotonic() > deadline:
                raise _too_slow(what, name, limit)
            parts.append(chunk)
    finally:
        os.close(fd)


def _read_url(url: str, *, what: str, limit: Limits, document: bool) -> bytes:
    name = mask_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise InvalidInput(f"{what} {name}: not a valid URL ({e})") from None
    if not host:
        raise InvalidInput(f"{what} {name}: a URL needs a host")
    deadline = time.monotonic() + limit.timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    https = parts.scheme.lower() == "https"
    connection_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
    connection = connection_class(host, port, timeout=limit.timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": "graysteps", "Accept-Encoding": "identity"}
    if parts.username is not None:
        credentials = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")
    expired = threading.Event()
    opened: list[socket.socket] = []  # the connection drops its socket once a response owns it: keep it here

    def cut_off() -> None:  # the wall clock ran out: whatever recv is waiting ends now
        expired.set()
        for sock in opened:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(limit.timeout, cut_off)
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.connect()
        sock = connection.sock
        opened.append(sock)
        if expired.is_set():
            cut_off()
        sock.settimeout(remaining())
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        if expired.is_set():
            raise TimeoutError
        if response.status != 200:
            where = response.getheader("Location")
            extra = f" to {mask_url(where)}" if where and 300 <= response.status < 400 else ""
            raise GraystepsError(f"could not fetch {what} {name}: HTTP {response.status} {response.reason}{extra}"
                                 + ("; redirects are not followed, give the final URL" if extra else "; check the URL"))
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > limit.max_bytes:
            raise _too_large(what, name, limit, document)
        body, total = [], 0
        while True:
            sock.settimeout(remaining())
            chunk = response.read1(CHUNK)
            if expired.is_set():  # a cut-off connection reads as an end: it is not one
                raise TimeoutError
            if not chunk:
                return b"".join(body)
            total += len(chunk)
            if total > limit.max_bytes:
                raise _too_large(what, name, limit, document)
            body.append(chunk)
    except GraystepsError:
        raise
    except TimeoutError:
        raise _too_slow(what, name, limit) from None
    except (OSError, ValueError, http.client.HTTPException) as e:
        if expired.is_set() or (isinstance(e, OSError) and e.errno == errno.ETIMEDOUT):
            raise _too_slow(what, name, limit) from None
        reason = getattr(e, "strerror", None) or getattr(e, "reason", None) or _first_line(e)
        raise GraystepsError(f"could not fetch {what} {name}: {reason}; check the URL and the server") from None
    finally:
        watchdog.cancel()
        connection.close()


# ---------------------------------------------------------------- parsing what was read


def decode_text(data: bytes, *, what: str, name: str) -> str:
    """UTF-8 (a BOM is dropped); InvalidInput naming the line and the byte otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InvalidInput(f"{what} {name} line {line}: not UTF-8 (byte 0x{data[e.start]:02x}); "
                           "save it as UTF-8") from None


def read_text(location: str, *, what: str, document: bool = True, allow_url: bool = False) -> str:
    """A bounded read decoded as UTF-8."""
    data = read_bytes(location, what=what, document=document, allow_url=allow_url)
    return decode_text(data, what=what, name=mask_url(location))


def _strict_pyyaml_loader():
    import yaml

    class StrictSafeLoader(yaml.SafeLoader):
        """yaml.SafeLoader that refuses a key given twice in one mapping."""

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                self.flatten_mapping(node)
                seen: dict[Any, Any] = {}
                for key_node, _value in node.value:
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = seen.setdefault(key, key_node)
                    except TypeError:
                        continue  # an unhashable key: the base class names it
                    if first is not key_node:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            f"found duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                            key_node.start_mark)
            return super().construct_mapping(node, deep)

    return StrictSafeLoader


def parse_yaml(text: str, *, what: str, name: str, round_trip: bool = False, documents: bool = False) -> Any:
    """YAML through the one safe loader graysteps uses: no tags that make objects, no duplicate keys.

    `round_trip`: ruamel's round-trip loader (keeps line numbers and comments, for
    files graysteps reports on by line or writes back); otherwise PyYAML's safe
    loader. `documents`: a list of every document. InvalidInput on anything wrong.
    """
    try:
        if round_trip:
            from ruamel.yaml import YAML

            loader = YAML(typ="rt")
            loader.allow_duplicate_keys = False
            loader.preserve_quotes = True
            return list(loader.load_all(text)) if documents else loader.load(text)
        import yaml

        loader = _strict_pyyaml_loader()
        return list(yaml.load_all(text, Loader=loader)) if documents else yaml.load(text, Loader=loader)  # noqa: S506 (safe)
    except RecursionError:
        raise InvalidInput(f"{_label(what, name)}: nested too deeply") from None
    except ValueError as e:  # e.g. an integer of thousands of digits
        raise InvalidInput(f"{_label(what, name)}: {_first_line(e)}") from None
    except Exception as e:
        if not _is_yaml_error(e):
            raise
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or _first_line(e)
        raise InvalidInput(f"{_label(what, name)}{where}: not valid YAML: {problem}") from None


def _label(what: str, name: str) -> str:
    return f"{what} {name}" if what else name


def _is_yaml_error(error: Exception) -> bool:
    return any(c.__name__ in ("YAMLError", "MarkedYAMLError") for c in type(error).__mro__) or \
        type(error).__module__.startswith(("yaml", "ruamel"))


def parse_json(text: str | bytes, *, what: str, name: str) -> Any:
    """JSON; InvalidInput for malformed, deeply nested or oversized-number input."""
    import json

    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidInput(f"{what} {name}: nested too deeply") from None
    except ValueError as e:
        raise InvalidInput(f"{what} {name}: not valid JSON: {_first_line(e)}") from None


def _first_line(error: BaseException) -> str:
    if isinstance(error, ValueError) and "Exceeds the limit" in str(error) and "digits" in str(error):
        return f"holds a number of more than {sys.get_int_max_str_digits()} digits"
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__
