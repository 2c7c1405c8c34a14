"""`whitelist sync --source` reads only what the administrator allows: files
under the allowed roots (default: the working directory), URLs only to hosts on
an allow-list from the environment or the config file. A refused source is
never read, and a bad line is never echoed whole."""

from __future__ import annotations

import os

import pytest

from tests.adapters.conftest import assert_one_line

SECRET_LINE = "root:$6$SeCrEtHaSh0123456789:19000:0:99999:7:::"


@pytest.fixture
def outside(tmp_path_factory):
    """A file outside the working directory holding a line nobody should see in a build log."""
    path = tmp_path_factory.mktemp("elsewhere") / "shadow"
    path.write_text(SECRET_LINE + "\n")
    return path


def test_a_file_outside_the_working_directory_is_refused_and_not_read(graysteps, outside):
    line = assert_one_line(graysteps("whitelist", "sync", "--source", str(outside)))
    assert "outside the directories sync may read" in line and "the working directory" in line
    assert "SeCrEt" not in line


def test_a_symlink_or_dot_dot_out_of_the_working_directory_is_refused(graysteps, tmp_path, outside):
    (tmp_path / "ids.txt").symlink_to(outside)
    for path in ("ids.txt", f"../{outside.parent.name}/shadow", "/etc/passwd"):
        line = assert_one_line(graysteps("whitelist", "sync", "--source", path))
        assert "outside the directories sync may read" in line


def test_an_allowed_root_lets_a_file_in_but_a_bad_line_is_masked(graysteps, outside):
    line = assert_one_line(graysteps("whitelist", "sync", "--source", str(outside),
                                     env={"GRAYSTEPS_SYNC_ROOTS": str(outside.parent)}))
    assert "line 1: invalid tenant id 'roo…' (47 characters; character 6 is '$')" in line
    assert "SeCrEt" not in line and "99999" not in line


def test_roots_and_hosts_come_from_the_config_file_too(graysteps, tmp_path, outside, scripted_server):
    def ids(conn, server):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nweb-1\n")

    server = scripted_server(ids)
    config = tmp_path / "config.yaml"
    config.write_text(f"sync:\n  roots: [{outside.parent}]\n  url_hosts: ['127.0.0.1:{server.port}']\n")
    env = {"GRAYSTEPS_CONFIG": str(config)}
    done = graysteps("whitelist", "sync", "--source", server.url(), env=env)
    assert (done.returncode, done.stdout.splitlines()[0]) == (0, "+ web-1"), done.stderr
    line = assert_one_line(graysteps("whitelist", "sync", "--source", str(outside), env=env))
    assert "line 1: invalid tenant id" in line  # read: the root is allowed
    config.write_text("sync:\n  url_hosts: [a]\n  url_hosts: [b]\n")
    assert "duplicate key" in assert_one_line(graysteps("whitelist", "sync", "--source", "x", env=env))


def test_a_url_is_refused_unless_its_host_is_on_the_allow_list(graysteps, scripted_server):
    requests = []

    def record(conn, server):
        requests.append(1)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nweb-1\n")

    server = scripted_server(record)
    url = server.url().replace("127.0.0.1", "admin:Pa55w0rd@127.0.0.1") + "?token=T0k3n"
    line = assert_one_line(graysteps("whitelist", "sync", "--source", url))
    assert "host '127.0.0.1' is not on the allow-list (allowed: none" in line
    assert "Pa55w0rd" not in line and "T0k3n" not in line
    line = assert_one_line(graysteps("whitelist", "sync", "--source", url,
                                     env={"GRAYSTEPS_SYNC_URL_HOSTS": "crm.example.com, 127.0.0.1:1"}))
    assert "allowed: 127.0.0.1:1, crm.example.com" in line
    assert requests == []  # refused before any connection
    done = graysteps("whitelist", "sync", "--source", url, env={"GRAYSTEPS_SYNC_URL_HOSTS": "127.0.0.1"})
    assert done.returncode == 0 and requests == [1]
    assert "Pa55w0rd" not in done.stdout + done.stderr


def test_the_whitelist_sync_job_cannot_widen_the_policy():
    """The pipeline and the step pass SOURCE as the value of --source only: no job parameter
    reaches GRAYSTEPS_SYNC_ROOTS, GRAYSTEPS_SYNC_URL_HOSTS or GRAYSTEPS_CONFIG."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for path in ("pipelines/whitelist-sync.Jenkinsfile", "vars/grayWhitelistSync.groovy", "vars/graystepsRun.groovy"):
        text = (root / path).read_text()
        for name in ("GRAYSTEPS_SYNC_ROOTS", "GRAYSTEPS_SYNC_URL_HOSTS", "GRAYSTEPS_CONFIG"):
            assert name not in text, (path, name)
    from graysteps.adapters.jenkins import render

    assert "GRAYSTEPS_SYNC" not in Path(render.__file__).read_text()


def test_relative_roots_are_refused(graysteps, tmp_path):
    (tmp_path / "ids.txt").write_text("a\n")
    line = assert_one_line(graysteps("whitelist", "sync", "--source", "ids.txt", env={"GRAYSTEPS_SYNC_ROOTS": "rel"}))
    assert "must be an absolute path" in line


def test_the_default_root_is_the_working_directory(graysteps, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ids.txt").write_text("a\n")
    assert graysteps("whitelist", "sync", "--source", "sub/ids.txt").returncode == 0
    assert graysteps("whitelist", "sync", "--source", os.path.join(tmp_path, "sub", "ids.txt")).returncode == 0
