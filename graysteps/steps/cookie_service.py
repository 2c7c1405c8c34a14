"""The cookie service (`graysteps serve-cookie`): the seed's cookie generator.

  GET /v1/gray-cookie?tenant=T  → 200 {"tenant": T, "gray": true|false} + Set-Cookie
                                  400 {"error": …} for a missing/invalid tenant
  GET /healthz                  → 200 {"status": "ok", "generation": N}, 503 when the DB is unreachable

Cache: answers are kept in process for `ttl` seconds. A sync or an add/remove
(any process, any host) bumps the whitelist generation in the database
(graysteps_state); the service reads that one row at most every
`generation_check` seconds and drops the whole cache when it changed. So a
change is visible within `generation_check` seconds (default 1 s), even with
a long TTL, without the writer having to know where the services run.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from graysteps.errors import InvalidInput
from graysteps.model.cookie import CookieSettings, gray_cookie
from graysteps.adapters.db.entries import is_whitelisted
from graysteps.adapters.db.store import Store, read_generation
from graysteps.model.tenants import validate_tenant_id

CACHE_MAX_ENTRIES = 100_000


class CookieService:
    """Decides gray for a tenant (cached) and makes its cookie."""

    def __init__(
        self,
        store: Store,
        settings: CookieSettings | None = None,
        *,
        key: bytes | None = None,
        ttl: float = 5.0,
        generation_check: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.settings = settings or CookieSettings()
        self.key = key
        self.ttl = ttl
        self.generation_check = generation_check
        self.clock = clock
        self._cache: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._checked_at = float("-inf")

    def _refresh_generation(self, now: float) -> None:
        if now - self._checked_at < self.generation_check:
            return
        with self._lock:
            if now - self._checked_at < self.generation_check:
                return
            with self.store.read() as conn:
                generation = read_generation(conn)
            if generation != self._generation:
                self._cache.clear()
                self._generation = generation
            self._checked_at = now

    def is_gray(self, tenant: str) -> bool:
        """Whitelisted? (`tenant` already validated.)"""
        now = self.clock()
        self._refresh_generation(now)
        hit = self._cache.get(tenant)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.store.read() as conn:
            gray = is_whitelisted(conn, tenant)
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            self._cache.clear()
        self._cache[tenant] = (gray, now + self.ttl)
        return gray

    def answer(self, tenant: str) -> tuple[dict, str]:
        """({"tenant", "gray"}, Set-Cookie value) for a raw tenant parameter; InvalidInput if bad."""
        tenant = validate_tenant_id(tenant)
        gray = self.is_gray(tenant)
        return {"tenant": tenant, "gray": gray}, gray_cookie(tenant, gray, self.settings, key=self.key)

    def health(self) -> dict:
        with self.store.read() as conn:
            return {"status": "ok", "generation": read_generation(conn)}


class _Handler(BaseHTTPRequestHandler):
    server_version = "graysteps-cookie"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small keep-alive answers: no Nagle/delayed-ACK stalls

    def do_GET(self):  # noqa: N802 (http.server naming)
        service: CookieService = self.server.service
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz":
            try:
                self._json(200, service.health())
            except Exception as e:  # the database is down: say so, keep serving
                self._json(503, {"status": "unavailable", "error": str(e).splitlines()[0]})
            return
        if url.path != "/v1/gray-cookie":
            self._json(404, {"error": f"no such path {url.path!r}; use /v1/gray-cookie?tenant=T or /healthz"})
            return
        tenants = urllib.parse.parse_qs(url.query, keep_blank_values=True).get("tenant", [])
        if len(tenants) != 1:
            self._json(400, {"error": "give exactly one tenant: /v1/gray-cookie?tenant=T"})
            return
        try:
            body, cookie = service.answer(tenants[0])
        except InvalidInput as e:
            self._json(400, {"error": e.message})
            return
        except Exception as e:
            self._json(503, {"error": f"whitelist unavailable: {str(e).splitlines()[0]}"})
            return
        self._json(200, body, {"Set-Cookie": cookie})

    def _json(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 — quiet; the auth center logs its calls
        pass


class CookieServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, service: CookieService, host: str = "127.0.0.1", port: int = 8080):
        self.service = service
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"
