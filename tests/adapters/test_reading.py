"""Every file or URL graysteps reads is bounded: only regular files and http(s)
URLs, a size limit and a wall-clock limit (adapters/reading.py), and whatever
is wrong inside (not UTF-8, nested too deep, numbers too long, duplicate keys)
is one line, exit 2, nothing changed."""

from __future__ import annotations

import os
import time

import pytest

from tests.adapters.conftest import CATALOG, assert_one_line, trickle

KEY = "k" * 40
PLAN_OK = "services:\n  - service: test-a\n    strategy: whitelist\n"


def read_by(kind: str, path: str) -> list[str]:
    """The command line that makes graysteps read `path` as one kind of input."""
    return {
        "sync source": ["whitelist", "sync", "--source", path],
        "cookie key": ["cookie", "--tenant", "acme", "--signed", "--key-file", path],
        "plan": ["release", "--plan", path, "--catalog", CATALOG, "--dry-run"],
        "--from": ["render", "--catalog", CATALOG, "--service", "test-a", "--strategy", "whitelist", "--from", path],
        "catalog": ["render", "--catalog", path, "--service", "test-a", "--strategy", "whitelist"],
    }[kind]


KINDS = ["sync source", "cookie key", "plan", "--from", "catalog"]
EVERYWHERE = {"GRAYSTEPS_SYNC_ROOTS": "/"}  # past the sync policy, so the reader itself is what refuses


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path, says", [("/dev/zero", "is a device"), ("/dev/urandom", "is a device"),
                                        ("/proc/self", "is a directory"), ("/tmp", "is a directory")])
def test_anything_but_a_regular_file_is_refused_at_once(graysteps, kind, path, says):
    started = time.monotonic()
    line = assert_one_line(graysteps(*read_by(kind, path), env=EVERYWHERE))
    assert says in line and "give a regular file" in line
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("kind", KINDS)
def test_a_fifo_is_refused_without_waiting_for_a_writer(graysteps, tmp_path, kind):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    line = assert_one_line(graysteps(*read_by(kind, str(fifo)), env=EVERYWHERE, timeout=30))
    assert "is a FIFO" in line


@pytest.mark.parametrize("kind, variable", [
    ("sync source", "GRAYSTEPS_READ_MAX_BYTES"), ("cookie key", "GRAYSTEPS_READ_MAX_DOCUMENT_BYTES"),
    ("plan", "GRAYSTEPS_READ_MAX_DOCUMENT_BYTES"), ("--from", "GRAYSTEPS_READ_MAX_DOCUMENT_BYTES"),
    ("catalog", "GRAYSTEPS_READ_MAX_DOCUMENT_BYTES"),
])
def test_a_file_over_the_size_limit_is_refused_naming_the_limit_and_how_to_raise_it(graysteps, tmp_path, kind, variable):
    big = tmp_path / "big"
    big.write_bytes(b"a\n" * 600)
    line = assert_one_line(graysteps(*read_by(kind, "big"), env={variable: "1000"}))
    assert "larger than 1000 bytes" in line and f"${variable}" in line


def test_the_limits_are_overridable_and_checked(graysteps, tmp_path):
    (tmp_path / "ids.txt").write_bytes(b"a\n" * 600)
    assert graysteps("whitelist", "sync", "--source", "ids.txt", env={"GRAYSTEPS_READ_MAX_BYTES": "1200"}).returncode == 0
    for bad in ("0", "-5", "1e3", "lots", "nan"):
        line = assert_one_line(graysteps("whitelist", "sync", "--source", "ids.txt", env={"GRAYSTEPS_READ_MAX_BYTES": bad}))
        assert "$GRAYSTEPS_READ_MAX_BYTES" in line


@pytest.mark.parametrize("headers_first", [True, False])
def test_a_trickling_http_source_stops_at_the_wall_clock_limit(graysteps, scripted_server, headers_first):
    server = scripted_server(trickle(b"t1\n" * 100, headers_first=headers_first, every=0.1))
    started = time.monotonic()
    done = graysteps("whitelist", "sync", "--source", server.url(),
                     env={"GRAYSTEPS_READ_TIMEOUT": "1.5", "GRAYSTEPS_SYNC_URL_HOSTS": "127.0.0.1"})
    elapsed = time.monotonic() - started
    line = assert_one_line(done, code=1)
    assert "not read within 1.5 s" in line and "$GRAYSTEPS_READ_TIMEOUT" in line
    assert elapsed < 10, elapsed  # the command's own start-up included; the trickle alone would take 30 s
    assert graysteps("whitelist", "list").stdout == ""  # nothing applied


def test_an_http_source_larger_than_the_limit_stops_reading(graysteps, scripted_server):
    def endless(conn, server):
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
        while not server.stopping:
            conn.sendall(b"t1\n" * 10_000)

    server = scripted_server(endless)
    line = assert_one_line(graysteps("whitelist", "sync", "--source", server.url(),
                                     env={"GRAYSTEPS_READ_MAX_BYTES": "100000", "GRAYSTEPS_SYNC_URL_HOSTS": "127.0.0.1"}))
    assert "larger than 100000 bytes" in line


def test_a_redirect_is_not_followed(graysteps, scripted_server):
    def redirect(conn, server):
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://user:hunter2@elsewhere.example/x?token=t0k\r\n"
                     b"Content-Length: 0\r\n\r\n")

    server = scripted_server(redirect)
    line = assert_one_line(graysteps("whitelist", "sync", "--source", server.url(),
                                     env={"GRAYSTEPS_SYNC_URL_HOSTS": "127.0.0.1"}), code=1)
    assert "HTTP 302" in line and "redirects are not followed" in line
    assert "hunter2" not in line and "t0k" not in line


BAD_DOCUMENTS = {
    "not UTF-8": (b"services:\n  - service: caf\xe9\n", "not UTF-8"),
    "nested thousands deep": (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    "nested mappings thousands deep": (b"a: " + b"{b: " * 3000 + b"1" + b"}" * 3000 + b"\n", "nested too deeply"),
    "a number of thousands of digits": (b"a: " + b"7" * 5000 + b"\n", "digits"),
    "a duplicate key": (b"apiVersion: v1\nkind: VirtualService\nkind: Service\n", "duplicate key"),
}


@pytest.mark.parametrize("kind", ["plan", "--from", "catalog"])
@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_a_bad_yaml_document_is_one_line(graysteps, tmp_path, kind, case):
    content, says = BAD_DOCUMENTS[case]
    (tmp_path / "doc.yaml").write_bytes(content)
    line = assert_one_line(graysteps(*read_by(kind, "doc.yaml")))
    assert says in line and "doc.yaml" in line


def test_a_duplicate_key_in_a_from_virtualservice_is_refused_naming_both_lines(graysteps, tmp_path):
    (tmp_path / "vs.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: test-a\n"
        "spec:\n  hosts: [test-a]\n  hosts: [evil]\n")
    line = assert_one_line(graysteps(*read_by("--from", "vs.yaml")))
    assert "vs.yaml:7" in line and "duplicate key 'hosts' (first at line 6)" in line


def test_a_bad_build_record_is_one_line(graysteps, tmp_path):
    (tmp_path / "record.json").write_text("[" * 50_000 + "]" * 50_000)
    done = graysteps("deploy", "--service", "test-a", "--env", "gray", "--catalog", CATALOG,
                     "--image", "registry.example:5000/test-a:1.0", "--build-record", "record.json",
                     "--kubeconfig", str(tmp_path / "none"))
    line = assert_one_line(done)
    assert "build record" in line and "nested too deeply" in line


def test_a_good_plan_and_key_still_read(graysteps, tmp_path):
    (tmp_path / "key").write_text(KEY)
    assert graysteps("whitelist", "add", "acme").returncode == 0
    done = graysteps(*read_by("cookie key", "key"))
    assert done.returncode == 0 and done.stdout.startswith("tenantGray=ey")
