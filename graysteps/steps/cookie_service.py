"""The cookie service (`graysteps serve-cookie`): the seed's cookie generator, a WSGI app on waitress.

  GET /v1/gray-cookie?tenant=T  → 200 {"tenant": T, "gray": true|false} + Set-Cookie
                                  400 {"error": …} for a missing/invalid tenant
  GET /healthz                  → 200 {"status": "ok", "generation": N}, 503 when the DB is unreachable
  HEAD of either                → the same status and headers, no body; other methods → 405

The server (waitress) bounds what clients can hold: a connection limit, a
timeout for idle or stalled connections, a fixed pool of request threads and a
deep listen backlog (ServerLimits). Each request is one JSON line in the access
log (stderr by default).

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
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Callable, TextIO

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


Response = tuple[int, dict, list[tuple[str, str]]]  # status, JSON body, extra headers


def _route(service: CookieService, method: str, path: str, query: str) -> Response:
    if method not in ("GET", "HEAD"):
        return 405, {"error": f"method {method[:16]!r} not allowed; use GET or HEAD"}, [("Allow", "GET, HEAD")]
    if path == "/healthz":
        try:
            return 200, service.health(), []
        except Exception as e:  # the database is down: say so, keep serving
            return 503, {"status": "unavailable", "error": _first_line(e)}, []
    if path != "/v1/gray-cookie":
        return 404, {"error": f"no such path {path[:100]!r}; use /v1/gray-cookie?tenant=T or /healthz"}, []
    tenants = urllib.parse.parse_qs(query, keep_blank_values=True, max_num_fields=10).get("tenant", [])
    if len(tenants) != 1:
        return 400, {"error": "give exactly one tenant: /v1/gray-cookie?tenant=T"}, []
    try:
        body, cookie = service.answer(tenants[0])
    except InvalidInput as e:
        return 400, {"error": e.message}, []
    except Exception as e:
        return 503, {"error": f"whitelist unavailable: {_first_line(e)}"}, []
    return 200, body, [("Set-Cookie", cookie)]


def _first_line(error: BaseException) -> str:
    from graysteps.adapters.urls import mask_text

    lines = str(error).strip().splitlines()
    return mask_text(lines[0][:300]) if lines else type(error).__name__


AccessLog = Callable[[dict], None]


def json_lines_log(stream: TextIO) -> AccessLog:
    """An access log writing one JSON object per request to `stream` (thread-safe)."""
    lock = threading.Lock()

    def log(record: dict) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with lock:
            try:
                stream.write(line)
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed log must not take the service down

    return log


def make_app(service: CookieService, access_log: AccessLog | None = None):
    """The cookie service as a WSGI application (GET and HEAD; JSON answers; one access-log record per request)."""

    def app(environ, start_response):
        started = time.monotonic()
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        try:
            status, body, headers = _route(service, method, path, environ.get("QUERY_STRING", ""))
        except Exception as e:  # never a traceback to the client or the log
            status, body, headers = 500, {"error": f"internal error: {type(e).__name__}"}, []
        data = json.dumps(body).encode("utf-8")
        start_response(f"{status} {HTTPStatus(status).phrase}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("Cache-Control", "no-store"),
            *headers,
        ])
        if access_log is not None:
            access_log({
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "remote": environ.get("REMOTE_ADDR", ""), "method": method[:16], "path": path[:200],
                "tenant": body.get("tenant"), "gray": body.get("gray"), "status": status, "bytes": len(data),
                "ms": round((time.monotonic() - started) * 1000, 3),
            })
        return [b"" if method == "HEAD" else data]  # HEAD: the same headers (Content-Length too), no body

    return app


@dataclass(frozen=True)
class ServerLimits:
    """How the cookie service protects itself from slow, idle or too many clients (waitress adjustments)."""

    threads: int = 8  # requests handled at once (each may wait on the database)
    connection_limit: int = 1000  # open connections; more wait in the listen backlog
    channel_timeout: int = 30  # seconds an idle or stalled connection is kept
    backlog: int = 2048  # the listen queue (the old server had 5: p99 of seconds at 200 clients)


def _server_messages_as_json_lines(access_log: AccessLog | None) -> None:
    """waitress' own messages go to the access log as JSON lines too ({"event": "server", …}),
    so the log stays one JSON object per line; its per-request queue-depth notes are dropped."""
    import logging

    class ToAccessLog(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if access_log is not None:
                access_log({"event": "server", "level": record.levelname.lower(), "message": record.getMessage()})

    waitress = logging.getLogger("waitress")
    waitress.handlers[:] = [ToAccessLog()]
    waitress.propagate = False
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


class CookieServer:
    """The cookie service on waitress (a production WSGI server: pure Python, thread pool, idle
    connections cost no thread, timeouts and a connection limit; client disconnects are not errors)."""

    def __init__(self, service: CookieService, host: str = "127.0.0.1", port: int = 8080, *,
                 limits: ServerLimits = ServerLimits(), access_log: AccessLog | None = None):
        from waitress.server import create_server

        self.service = service
        _server_messages_as_json_lines(access_log)
        self._server = create_server(
            make_app(service, access_log), host=host, port=port, threads=limits.threads,
            connection_limit=limits.connection_limit, channel_timeout=limits.channel_timeout,
            cleanup_interval=max(1, min(limits.channel_timeout // 2, 30)),  # how often idle connections are looked for
            backlog=limits.backlog, ident="graysteps-cookie", expose_tracebacks=False,
            clear_untrusted_proxy_headers=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.effective_host, self._server.effective_port
        return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"

    def serve_forever(self) -> None:
        """Serve until SystemExit or KeyboardInterrupt reaches this thread (the signal handlers raise one);
        requests in flight are finished first."""
        self._server.run()

    def close(self) -> None:
        self._server.close()
