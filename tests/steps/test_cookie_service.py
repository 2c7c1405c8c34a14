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
    """Start `graysteps serve-cookie --port 0 ARGS…`; returns (host, port). Its stderr (the access
    log) goes to tmp_path/serve-cookie.log, so a long test never fills a pipe."""
    started = []

    def start(*args, env=None):
        log = open(tmp_path / "serve-cookie.log", "a")
        proc = subprocess.Popen(
            [sys.executable, "-m", "graysteps", "serve-cookie", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=log, text=True,
            env={**os.environ, "GRAYSTEPS_DB": db_url, **(env or {})},
        )
        log.close()
        started.append(proc)
        line = proc.stdout.readline()
        assert line.startswith("serving on http://"), (line, (tmp_path / "serve-cookie.log").read_text())
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


def request(address, method, path):
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_head_gives_the_headers_of_get_without_a_body(cli, serve):
    cli("whitelist", "add", "acme")
    address = serve()
    status, headers, body = request(address, "HEAD", "/v1/gray-cookie?tenant=acme")
    _, get_headers, get_body = request(address, "GET", "/v1/gray-cookie?tenant=acme")
    assert (status, body) == (200, b"")
    assert headers["Set-Cookie"] == get_headers["Set-Cookie"]
    assert headers["Content-Length"] == str(len(get_body))
    assert request(address, "HEAD", "/healthz")[0] == 200


def test_other_methods_get_405_naming_the_allowed_ones(serve):
    status, headers, body = request(serve(), "POST", "/v1/gray-cookie?tenant=acme")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert "use GET or HEAD" in json.loads(body)["error"]


def test_each_request_is_one_json_line_in_the_access_log(cli, serve, tmp_path):
    cli("whitelist", "add", "acme")
    address = serve()
    get(address, "/v1/gray-cookie?tenant=acme")
    get(address, "/v1/gray-cookie?tenant=" + urllib.parse.quote("bad id"))
    request(address, "HEAD", "/healthz")
    records = [json.loads(line) for line in (tmp_path / "serve-cookie.log").read_text().splitlines()]
    assert [(r["method"], r["path"], r["status"], r.get("tenant"), r.get("gray")) for r in records] == [
        ("GET", "/v1/gray-cookie", 200, "acme", True),
        ("GET", "/v1/gray-cookie", 400, None, None),
        ("HEAD", "/healthz", 200, None, None),
    ]
    assert all(r["remote"] == "127.0.0.1" and r["ms"] >= 0 and r["time"].endswith("+00:00") for r in records)


def test_idle_connections_are_closed_after_the_idle_timeout_and_others_are_served(serve):
    import socket

    address = serve("--idle-timeout", "1", "--no-access-log")
    idle = [socket.create_connection(address, timeout=10) for _ in range(50)]
    assert get(address, "/healthz")[0] == 200  # idle sockets hold no thread
    started = time.monotonic()
    for sock in idle:
        assert sock.recv(1) == b""  # closed by the server
        sock.close()
    assert time.monotonic() - started < 8


def test_clients_that_go_away_mid_request_leave_no_traceback(cli, serve, tmp_path):
    import socket

    cli("whitelist", "add", "acme")
    address = serve()
    for i in range(30):
        sock = socket.create_connection(address, timeout=10)
        if i % 3 == 0:
            sock.sendall(b"GET /v1/gray-cookie?tenant=acme HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        elif i % 3 == 1:
            sock.sendall(b"GET /v1/gray-cookie?tenant=acme HTTP/1.1\r\nHost: x\r\n\r\n")  # never reads the answer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        sock.close()
    assert get(address, "/v1/gray-cookie?tenant=acme")[2]["gray"] is True
    assert "Traceback" not in (tmp_path / "serve-cookie.log").read_text()


@pytest.mark.parametrize("args", [["--port", "+80"], ["--port", "65536"], ["--ttl", "nan"], ["--ttl", "inf"],
                                  ["--generation-check", "-1"], ["--threads", "0"], ["--idle-timeout", "١٠"]])
def test_bad_server_settings_are_one_line_exit_2(cli, args):
    done = cli("serve-cookie", *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1 and "is not allowed" in done.stderr


def test_an_address_the_server_refuses_is_one_line_exit_2(cli):
    done = cli("serve-cookie", "--port", "0", "--host", "")  # waitress raised ValueError: exit 1, its type named
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1 and "cannot listen on '':0" in done.stderr
