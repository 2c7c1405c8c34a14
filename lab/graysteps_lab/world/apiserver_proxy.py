"""An HTTPS proxy in front of the lab apiserver, so a test can act between two requests.

A fault test points the command under test at `proxy.kubeconfig` and registers
`proxy.after_write(plural, namespace, name, action)`: once the apiserver has
answered a real (not dry-run) create or update of that object with success,
`action()` runs (stop the apiserver, refuse
the next write, edit an object as another writer …) before the answer is passed
on. The product has no hook for this: the fault comes from outside it, as it
would in a real cluster.

When the apiserver does not answer, the proxy closes the client's connection
without a response, so the client sees what it would see without the proxy: no
answer at all.
"""

from __future__ import annotations

import http.client
import http.server
import json
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from graysteps_lab.world.ports import free_port

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


@dataclass
class _Hook:
    matches: Callable[[str, str, bytes | None], bool]  # (method, path, body)
    action: Callable[[], None]


class ApiserverProxy:
    """Forwards every request to `kube`'s apiserver with the admin's credentials."""

    def __init__(self, kube):
        self.kube = kube
        self.port = free_port()
        self.kubeconfig = kube.proxied_kubeconfig(f"https://127.0.0.1:{self.port}", name=f"proxy-{self.port}")
        self._hooks: list[_Hook] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    def after_write(self, plural: str, namespace: str, name: str, action: Callable[[], None]) -> None:
        """Run `action` once, after the first successful real create or update of
        `plural` `namespace/name` (e.g. "virtualservices", "prod", "test-a")."""
        collection = f"/namespaces/{namespace}/{plural}"

        def matches(method: str, path: str, body: bytes | None) -> bool:
            route, _, query = path.partition("?")
            if "dryRun=" in query or method not in ("POST", "PUT", "PATCH"):
                return False
            if route.endswith(f"{collection}/{name}"):
                return True
            if method == "POST" and route.endswith(collection) and body:
                try:
                    return (json.loads(body).get("metadata") or {}).get("name") == name
                except (ValueError, AttributeError):
                    return False
            return False

        with self._lock:
            self._hooks.append(_Hook(matches, action))

    def _take_hooks(self, method: str, path: str, body: bytes | None) -> list[_Hook]:
        with self._lock:
            due = [h for h in self._hooks if h.matches(method, path, body)]
            self._hooks = [h for h in self._hooks if h not in due]
        return due

    def start(self) -> "ApiserverProxy":
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                try:
                    upstream = http.client.HTTPSConnection("127.0.0.1", proxy.kube.port, timeout=30,
                                                           context=proxy.kube._ssl_context())
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    upstream.close()
                except OSError:  # the apiserver did not answer: neither does the proxy
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if 200 <= answer.status < 300:
                    for hook in proxy._take_hooks(self.command, self.path, body):
                        hook.action()
                self.send_response(answer.status, answer.reason)
                for k, v in answer.getheaders():
                    if k.lower() not in _HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        pair = self.kube.serving_pair("apiserver-proxy")
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            pair.write(cert, key)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert), str(key))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, name="apiserver-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
