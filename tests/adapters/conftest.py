"""Running the real `graysteps` command in a scratch working directory, and a
loopback HTTP server whose answers a test scripts (including slow ones)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOG = str(ROOT / "examples" / "catalog.yaml")


@pytest.fixture
def graysteps(tmp_path):
    """`graysteps ARGS…` in tmp_path, with a database of its own; returns the CompletedProcess."""

    def run(*args: str, env: dict | None = None, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
        full = {**os.environ, "GRAYSTEPS_DEBUG": "", "GRAYSTEPS_DB": f"sqlite:///{tmp_path / 'whitelist.db'}",
                "BUILD_USER_ID": "ci-bot", **(env or {})}
        return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True,
                              env=full, timeout=timeout, cwd=cwd or tmp_path)

    return run


def assert_one_line(done: subprocess.CompletedProcess, code: int = 2) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


class ScriptedServer:
    """A raw-socket HTTP server on 127.0.0.1: `script(conn)` writes whatever the test wants, as slowly as it wants."""

    def __init__(self, script):
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            try:
                conn.recv(65536)
                self.script(conn, self)
            except OSError:
                pass

    def url(self, path: str = "/ids.txt") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.stopping = True
        self.listener.close()


@pytest.fixture
def scripted_server():
    servers = []

    def start(script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def trickle(body: bytes, *, headers_first: bool = True, every: float = 0.2):
    """A script that sends `body` one byte every `every` seconds (headers at once, or trickled too)."""

    def script(conn, server):
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        if headers_first:
            conn.sendall(head)
            payload = body
        else:
            payload = head + body
        for i in range(len(payload)):
            if server.stopping:
                return
            conn.sendall(payload[i:i + 1])
            time.sleep(every)

    return script
