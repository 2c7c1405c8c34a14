"""The cookie service over real HTTP: `graysteps serve-cookie` in a subprocess."""

import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse

import pytest

from graysteps.model.cookie import verify_gray_token

KEY = "s" * 40


@pytest.fixture
def serve(db_url, tmp_path):
    """Start `graysteps serve-cookie --port 0 ARGS…`; returns (host, port)."""
    started = []

    def start(*args, env=None):
        proc = subprocess.Popen(
            [sys.executable, "-m", "graysteps", "serve-cookie", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "GRAYSTEPS_DB": db_url, **(env or {})},
        )
        started.append(proc)
        line = proc.stdout.readline()
        assert line.startswith("serving on http://"), (line, proc.stderr.read() if proc.poll() is not None else "")
        address = urllib.parse.urlsplit(line.split()[-1])
        return address.hostname, address.port

    yield start
    for proc in started:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def get(address, path):
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        conn.close()


def test_whitelisted_and_unknown_tenants_get_their_cookie(cli, serve):
    assert cli("whitelist", "add", "acme").returncode == 0
    address = serve()
    status, headers, body = get(address, "/v1/gray-cookie?tenant=acme")
    assert (status, body) == (200, {"tenant": "acme", "gray": True})
    assert headers["Set-Cookie"] == "tenantGray=1; Path=/; HttpOnly; SameSite=Lax"
    status, headers, body = get(address, "/v1/gray-cookie?tenant=other")
    assert (status, body) == (200, {"tenant": "other", "gray": False})
    assert headers["Set-Cookie"].startswith("tenantGray=0;")


def test_health_reports_the_whitelist_generation(cli, serve):
    address = serve()
    assert get(address, "/healthz")[:3:2] == (200, {"status": "ok", "generation": 0})
    cli("whitelist", "add", "a", "b")
    assert get(address, "/healthz")[2]["generation"] == 1


@pytest.mark.parametrize("query", [
    "tenant=" + urllib.parse.quote("'; DROP TABLE graysteps_whitelist; --"),
    "tenant=" + urllib.parse.quote('" OR 1=1'),
    "tenant=" + urllib.parse.quote("租户"),
    "tenant=%00",
    "tenant=",
    "",
    "tenant=a&tenant=b",
])
def test_bad_tenant_parameters_get_400_and_no_cookie(cli, serve, query):
    cli("whitelist", "add", "a")
    address = serve()
    status, headers, body = get(address, "/v1/gray-cookie?" + query)
    assert status == 400 and "Set-Cookie" not in headers
    assert "tenant" in body["error"]
    assert get(address, "/v1/gray-cookie?tenant=a")[2]["gray"] is True  # still serving, table intact


def test_unknown_paths_are_404(serve):
    assert get(serve(), "/v1/other")[0] == 404


def test_answers_are_cached_until_the_whitelist_generation_changes(cli, serve):
    address = serve("--ttl", "3600", "--generation-check", "3600")
    assert get(address, "/v1/gray-cookie?tenant=late")[2]["gray"] is False
    cli("whitelist", "add", "late")
    assert get(address, "/v1/gray-cookie?tenant=late")[2]["gray"] is False  # cached, no generation check yet


def test_a_sync_in_another_process_invalidates_the_cache(cli, serve, tmp_path):
    address = serve("--ttl", "3600", "--generation-check", "0.2")
    assert get(address, "/v1/gray-cookie?tenant=late")[2]["gray"] is False
    (tmp_path / "ids.txt").write_text("late\n")
    assert cli("whitelist", "sync", "--source", str(tmp_path / "ids.txt")).returncode == 0
    deadline = time.monotonic() + 10
    while get(address, "/v1/gray-cookie?tenant=late")[2]["gray"] is not True:
        assert time.monotonic() < deadline, "the sync did not reach the cookie service"
        time.sleep(0.1)
    (tmp_path / "ids.txt").write_text("someone-else\n")
    assert cli("whitelist", "sync", "--source", str(tmp_path / "ids.txt")).returncode == 0
    while get(address, "/v1/gray-cookie?tenant=late")[2]["gray"] is not False:
        assert time.monotonic() < deadline + 10, "the removal did not reach the cookie service"
        time.sleep(0.1)


def test_signed_mode_serves_cookies_that_verify_with_the_key(cli, serve):
    cli("whitelist", "add", "acme")
    address = serve("--signed", "--max-age", "600", env={"GRAYSTEPS_COOKIE_KEY": KEY})
    _, headers, body = get(address, "/v1/gray-cookie?tenant=acme")
    assert body == {"tenant": "acme", "gray": True}
    value = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    claims = verify_gray_token(value, KEY.encode())
    assert (claims["sub"], claims["gray"]) == ("acme", True)
    assert "Max-Age=600" in headers["Set-Cookie"]
