"""Local HTTP backends standing in for a service's prod or gray Deployment.

Each `Backend(service, profile)` answers every request with the headers
`x-graysteps-service` / `x-graysteps-profile` and a JSON body
`{"hops": [{"service", "profile", "path"}, ...]}`. If it has `downstream`
services, it calls each of them through `outbound` (the Envoy listener of its
own caller profile, i.e. its sidecar) by the Host `hosts` names for it, forwarding the Cookie header or not, and
appends their hops to its own: the body then shows the whole path A→B.

For retry/timeout tests a backend can fail its next N requests
(`fail_next`), every request (`fail_all`), or answer slowly (`delay`). To play
a bad version it can be told to fail a share of its requests and add latency
(`misbehave`), in process or over HTTP: `POST /_lab/misbehave` with
`{"error_rate": 0.05, "latency_ms": 200}` on the backend's own port (an empty
object makes it healthy again); that path is answered by the lab, never counted
as traffic.

Speed: HTTP/1.1 keep-alive and Nagle disabled on the server socket of every
connection. Without it, a stdlib server writing headers and body separately
meets Envoy's delayed ACK and manages ~25 requests/s (see bench/).
"""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Mapping, Sequence

from graysteps.adapters.probe import NoDelayHTTPConnection

MISBEHAVE_PATH = "/_lab/misbehave"
SERVICE_HEADER = "x-graysteps-service"
PROFILE_HEADER = "x-graysteps-profile"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    backend: "Backend"

    def handle_error(self, request, client_address) -> None:
        """A peer (Envoy, a load generator) closing its keep-alive connection is normal, not worth a traceback."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY on each accepted connection
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self.server.backend._handle(self)

    do_POST = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib name)
        pass


class Backend:
    """One (service, profile) HTTP backend on 127.0.0.1. Context manager."""

    def __init__(self, service: str, profile: str, *, downstream: Sequence[str] = (),
                 outbound: tuple[str, int] | None = None, forward_cookie: bool = True,
                 host: str = "127.0.0.1", port: int = 0, nagle: bool = False,
                 hosts: Mapping[str, str] | None = None):
        if downstream and outbound is None:
            raise ValueError(f"backend {service}/{profile}: downstream {list(downstream)} needs an outbound proxy address")
        self.service = service
        self.profile = profile
        self.downstream = list(downstream)
        self.outbound = outbound
        self.forward_cookie = forward_cookie
        self.hosts = dict(hosts or {})  # downstream service -> the Host header to call it by
        self.delay = 0.0
        self.fail_all: int | None = None  # when set, every request is answered with this status
        self.requests = 0
        self._fail: list[int] = []
        self.error_rate = 0.0  # share of requests answered with `error_status`
        self.error_status = 503
        self.latency = 0.0  # seconds added to every request while misbehaving
        self._random = random.Random()
        self._lock = threading.Lock()
        self._local = threading.local()
        handler = _Handler
        if nagle:  # only for the benchmark's baseline: the slow stdlib default
            handler = type("_NagleHandler", (_Handler,), {"disable_nagle_algorithm": False})
        self._server = _Server((host, port), handler)
        self._server.backend = self
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]

    def start(self) -> "Backend":
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"backend-{self.service}-{self.profile}",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "Backend":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next `count` requests with `status` (and no downstream calls)."""
        with self._lock:
            self._fail.extend([status] * count)

    def misbehave(self, error_rate: float = 0.0, latency: float = 0.0, *, status: int = 503,
                  seed: int | None = None) -> None:
        """From now on fail `error_rate` (0..1) of requests with `status` and add
        `latency` seconds to each; `misbehave()` makes the backend healthy again."""
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be within 0..1, got {error_rate}")
        if not 0.0 <= latency <= 60.0:
            raise ValueError(f"latency must be within 0..60 seconds, got {latency}")
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error 400..599, got {status}")
        with self._lock:
            self.error_rate, self.latency, self.error_status = float(error_rate), float(latency), int(status)
            if seed is not None:
                self._random.seed(seed)

    def _misbehave_over_http(self, req: BaseHTTPRequestHandler, body: bytes) -> None:
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict) or set(spec) - {"error_rate", "latency_ms", "status", "seed"}:
                raise ValueError("send a JSON object with error_rate (0..1), latency_ms, status, seed")
            self.misbehave(float(spec.get("error_rate", 0.0)), float(spec.get("latency_ms", 0.0)) / 1000.0,
                           status=int(spec.get("status", 503)), seed=spec.get("seed"))
        except (ValueError, TypeError) as e:
            self._send(req, 400, {"error": str(e)})
            return
        self._send(req, 200, {"service": self.service, "profile": self.profile, "error_rate": self.error_rate,
                              "latency_ms": self.latency * 1000.0, "status": self.error_status})

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        if req.path == MISBEHAVE_PATH and req.command == "POST":
            self._misbehave_over_http(req, body)
            return
        with self._lock:
            self.requests += 1
            fail = self._fail.pop(0) if self._fail else self.fail_all
            if fail is None and self.error_rate and self._random.random() < self.error_rate:
                fail = self.error_status
            delay = self.delay + self.latency
        if delay:
            threading.Event().wait(delay)
        if fail is not None:
            self._send(req, fail, {"hops": [self._hop(req.path)], "error": f"injected {fail}"})
            return
        hops = [self._hop(req.path)]
        cookie = req.headers.get("Cookie")
        for service in self.downstream:
            hops.extend(self._call(service, req.path, cookie if self.forward_cookie else None))
        self._send(req, 200, {"hops": hops})

    def _hop(self, path: str) -> dict:
        return {"service": self.service, "profile": self.profile, "path": path}

    def _send(self, req: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.send_header(SERVICE_HEADER, self.service)
        req.send_header(PROFILE_HEADER, self.profile)
        req.end_headers()
        req.wfile.write(data)

    def _call(self, service: str, path: str, cookie: str | None) -> list[dict]:
        """Call a downstream service through the outbound proxy; its hops, or one error hop."""
        headers = {"Host": self.hosts.get(service, service)}
        if cookie is not None:
            headers["Cookie"] = cookie
        for attempt in (1, 2):  # a pooled connection the proxy closed meanwhile gets one fresh retry
            conn = self._connection()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionError, OSError) as e:
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    return [{"service": service, "profile": None, "error": f"{type(e).__name__}: {e}"}]
                continue
            if resp.status == 200:
                return json.loads(data)["hops"]
            return [{"service": service, "profile": resp.headers.get(PROFILE_HEADER), "error": f"HTTP {resp.status}"}]
        raise AssertionError("unreachable")

    def _connection(self) -> NoDelayHTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            host, port = self.outbound  # type: ignore[misc]
            conn = self._local.conn = NoDelayHTTPConnection(host, port, timeout=30)
        return conn


class BackendSet:
    """Several backends started and stopped together; `endpoint(service, profile)` → (ip, port)."""

    def __init__(self, backends: Sequence[Backend] = ()):
        self.backends: list[Backend] = []
        for b in backends:
            self.add(b)

    def add(self, backend: Backend) -> Backend:
        self.backends.append(backend)
        return backend

    def get(self, service: str, profile: str) -> Backend:
        for b in self.backends:
            if (b.service, b.profile) == (service, profile):
                return b
        raise KeyError(f"no backend for {service}/{profile}")

    def __enter__(self) -> "BackendSet":
        started = []
        try:
            for b in self.backends:
                started.append(b.start())
        except BaseException:
            for b in started:
                b.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for b in self.backends:
            b.stop()
