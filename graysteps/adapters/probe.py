"""Send requests through a proxy and count where they landed.

`probe(url, host, n)` sends `n` GETs to `url` with the given Host header over
a few keep-alive connections with TCP_NODELAY, and returns a Counter keyed by
the serving profile (the backend's `x-graysteps-profile` header), or
"HTTP <status>" for an answer that is not a 2xx, or "error <Exception>" for a
request that got no answer. Pass `key=by_path` to count whole paths A→B
instead (e.g. "test-a:gray>test-b:prod").

Only the standard library: the verify step and the benchmarks use it too.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections import Counter
from typing import Callable, Mapping
from urllib.parse import urlsplit

from graysteps.adapters.urls import mask_url

PROFILE_HEADER = "x-graysteps-profile"

Answer = tuple[int, http.client.HTTPMessage, bytes]
KeyFunction = Callable[[int, http.client.HTTPMessage, bytes], str]


class NoDelayHTTPConnection(http.client.HTTPConnection):
    """http.client connection with Nagle's algorithm off (no 40 ms delayed-ACK stalls)."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def by_profile(status: int, headers: http.client.HTTPMessage, body: bytes) -> str:
    """The profile that served a 2xx answer, else "HTTP <status>"."""
    profile = headers.get(PROFILE_HEADER)
    if 200 <= status < 300 and profile:
        return profile
    return f"HTTP {status}"


def by_path(status: int, headers: http.client.HTTPMessage, body: bytes) -> str:
    """The hops of a 2xx answer as "svc:profile>svc:profile", else "HTTP <status>"."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    hops = json.loads(body)["hops"]
    return ">".join(f"{h['service']}:{h.get('profile')}" + (f"!{h['error']}" if h.get("error") else "") for h in hops)


def probe(url: str, host: str, n: int, headers: Mapping[str, str] | None = None, concurrency: int = 4,
          *, key: KeyFunction = by_profile, timeout: float = 30.0, method: str = "GET") -> Counter:
    """Send `n` requests (GET, or `method`, without a body) to `url` (Host: `host`) and count the answers by `key`."""
    if n < 0 or concurrency < 1:
        raise ValueError(f"probe: n must be >= 0 and concurrency >= 1, got n={n}, concurrency={concurrency}")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"probe: url must be http://HOST:PORT/PATH, got {mask_url(url)!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request_headers = {"Host": host, **(headers or {})}
    counts: Counter = Counter()
    lock = threading.Lock()
    workers = min(concurrency, max(n, 1))
    shares = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]

    def work(share: int) -> None:
        local: Counter = Counter()
        conn = NoDelayHTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        try:
            for _ in range(share):
                local[_one(conn, method, target, request_headers, key)] += 1
        finally:
            conn.close()
            with lock:
                counts.update(local)

    threads = [threading.Thread(target=work, args=(s,), daemon=True) for s in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def _one(conn: NoDelayHTTPConnection, method: str, target: str, headers: Mapping[str, str], key: KeyFunction) -> str:
    """One request; a keep-alive connection the server closed meanwhile is reopened once."""
    for attempt in (1, 2):
        try:
            conn.request(method, target, headers=dict(headers))
            resp = conn.getresponse()
            body = resp.read()
            if resp.will_close:
                conn.close()
            return key(resp.status, resp.headers, body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            conn.close()
            if attempt == 2:
                return f"error {type(e).__name__}"
        except OSError as e:
            conn.close()
            return f"error {type(e).__name__}"
    raise AssertionError("unreachable")
