"""Whitelist fixtures: every store test runs against SQLite (a temp file) and a real MariaDB.

`db_url` gives each test a database of its own: an SQLite file in tmp_path, or a
fresh database on the session MariaDB (created through the admin account,
granted to the test user, dropped afterwards).
"""

from __future__ import annotations

import http.server
import itertools
import os
import subprocess
import sys
import threading

import pytest

_databases = itertools.count(1)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.world)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'whitelist.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = request.getfixturevalue("mariadb")
    name = f"wl_test_{os.getpid()}_{next(_databases)}"
    admin = create_engine(server.admin_url)
    user = make_url(server.url).username
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        for host in ("127.0.0.1", "localhost"):
            conn.execute(text(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'{host}'"))
    try:
        yield make_url(server.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture
def store(db_url):
    from graysteps.adapters.db.store import open_store

    opened = open_store(db_url)
    yield opened
    opened.close()


@pytest.fixture
def cli(db_url, tmp_path):
    """Run `graysteps ARGS…` in a subprocess against this test's database (via $GRAYSTEPS_DB)."""

    def run(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "GRAYSTEPS_DB": db_url, "BUILD_USER_ID": "ci-bot"}
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "graysteps", *args],
            capture_output=True, text=True, env=full_env, timeout=timeout, cwd=tmp_path,
        )

    return run


class _SourceHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body, status = self.server.routes.get(self.path, (b"not here", 404))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_source():
    """A real HTTP server on loopback serving sources: routes {path: (body, status)}."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SourceHandler)
    server.routes = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


INJECTIONS = [
    "'; DROP TABLE graysteps_whitelist; --",
    '" OR 1=1',
    "t1' OR '1'='1",
    "tenant\x00x",
    "租户",
    "tenänt",
    "t1\n",
    "t 1",
    "",
    "x" * 65,
    "t1;",
    "%s",
    "t1)--",
    "\u2028",
]
