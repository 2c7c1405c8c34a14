"""Helpers for the test-world smoke tests."""

from __future__ import annotations

import http.server
import threading

import pytest


class _NameHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.answer.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_backend():
    """Start tiny HTTP servers on loopback that answer every GET with their name."""
    servers = []

    def start(answer: str) -> int:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NameHandler)
        server.answer = answer
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
