"""graysteps.commands._types: output paths are checked up front by really creating (and removing) a temp
file where the output will go, so a report that cannot be written is refused before the command runs; an
empty input path is refused rather than taken for "not given" (the default file); a URL option takes only
SCHEME://HOST[:PORT] with a valid host and a port in 1-65535."""

from __future__ import annotations

import argparse
import errno
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from graysteps.commands._types import (docker_endpoint, http_or_https_url, http_url, input_file, output_dir,
                                       output_file)

ROOT = Path(__file__).resolve().parents[2]
CATALOG = str(ROOT / "examples" / "catalog.yaml")
UNDER_PROC = "/proc/graysteps-no-such/out"  # /proc is a directory root may "write" (os.access), yet nothing is created there


@pytest.mark.parametrize("check", [output_file, output_dir])
def test_a_path_under_proc_is_refused_in_one_line(check):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        check(UNDER_PROC)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{UNDER_PROC!r} cannot be written: ") and message.endswith(" in '/proc'")


@pytest.mark.parametrize("argv", [
    ["verify", "--service", "test-a", "--junit", UNDER_PROC],
    ["jobs", "render", "--out", UNDER_PROC, "--repo", "https://git.example/r.git", "--catalog", CATALOG],
])
def test_the_cli_refuses_it_before_running_the_command(argv):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAYSTEPS_", "JENKINS_"))}
    done = subprocess.run([sys.executable, "-m", "graysteps", *argv], capture_output=True, text=True, env=env,
                          timeout=60, cwd=ROOT)
    assert (done.returncode, done.stdout) == (2, ""), (done.returncode, done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{UNDER_PROC!r} cannot be written" in done.stderr


def test_a_normal_place_passes_and_leaves_nothing_behind(tmp_path):
    (tmp_path / "existing.xml").write_text("old\n")
    (tmp_path / "existing-dir").mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for text in [str(tmp_path / "report.xml"), str(tmp_path / "new" / "deeper" / "report.xml"),
                 str(tmp_path / "existing.xml")]:
        assert output_file(text) == text
    for text in [str(tmp_path / "jobs"), str(tmp_path / "new" / "jobs"), str(tmp_path / "existing-dir")]:
        assert output_dir(text) == text
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "existing.xml").read_text() == "old\n"


def test_a_place_where_nothing_can_be_created_is_refused_naming_the_reason(tmp_path, monkeypatch):
    """What a read-only mount does to root: permission bits say yes, creating a file says no."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    for check in (output_file, output_dir):
        with pytest.raises(argparse.ArgumentTypeError) as refused:
            check(str(tmp_path / "a" / "out"))
        assert str(refused.value) == f"{str(tmp_path / 'a' / 'out')!r} cannot be written: " \
                                     f"{os.strerror(errno.EROFS)} in {str(tmp_path)!r}"


def test_an_empty_input_path_is_refused_not_taken_for_the_default():
    with pytest.raises(argparse.ArgumentTypeError, match="^'' is not a path: "):
        input_file("")
    assert input_file("catalog.yaml") == "catalog.yaml"


@pytest.mark.parametrize("url, says", [
    ("http://127.0.0.1:99999/", "the port is not a number in 1-65535"),
    ("http://127.0.0.1:0/", "the port is not a number in 1-65535"),
    ("http://127.0.0.1:-1/", "the port is not a number in 1-65535"),
    ("http://127.0.0.1:x/", "the port is not a number in 1-65535"),
    ("http://[::1", "not a URL"),
    ("http://[::1]x/", "no valid host"),
    ("http://a b/", "no valid host"),
    ("http://:80/", "no valid host"),
    ("http://", "no valid host"),
    ("https://127.0.0.1:1/", "use http://HOST[:PORT]"),
    ("127.0.0.1:1", "use http://HOST[:PORT]"),
    ("", "use http://HOST[:PORT]"),
])
def test_a_bad_url_is_refused_in_one_line_naming_why(url, says):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        http_url(url)
    assert str(refused.value).startswith(f"{url!r} is not allowed: {says}") and "\n" not in str(refused.value)


def test_a_refused_url_never_shows_its_password():
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        http_url("http://u:hunter2@127.0.0.1:99999/")
    assert "hunter2" not in str(refused.value) and "'http://u:***@127.0.0.1:99999/'" in str(refused.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "http://gateway:8080/", "http://[::1]:65535/p", "http://h_1.example",
                                 "http://u:pw@istiod.istio-system:15014"])
def test_a_good_url_passes_as_given(url):
    assert http_url(url) == url and http_or_https_url(url) == url
    assert http_or_https_url(url.replace("http://", "https://", 1)).startswith("https://")


@pytest.mark.parametrize("endpoint", ["unix:///run/podman/podman.sock", "tcp://127.0.0.1:2375", "https://docker.example:2376",
                                      "ssh://builder@docker.example", "npipe:////./pipe/docker_engine"])
def test_a_docker_endpoint_passes_as_given(endpoint):
    assert docker_endpoint(endpoint) == endpoint


@pytest.mark.parametrize("endpoint", ["", "unix://", "tcp://", "tcp://h:0", "tcp://h:99999", "ftp://h", "/run/docker.sock"])
def test_a_bad_docker_endpoint_is_refused(endpoint):
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{re.escape(repr(endpoint))} is not allowed: "):
        docker_endpoint(endpoint)


@pytest.mark.parametrize("argv, named", [
    # seen in the property test: an empty --catalog meant ./catalog.yaml, and release went on to the cluster
    # (printing its plan outcome on stdout when the cluster was unreachable)
    (["release", "--plan", "plan.yaml", "--catalog", "", "--kubeconfig", "kubeconfig"], "argument --catalog: '' is not a path"),
    (["status", "--catalog", "catalog.yaml", "--kubeconfig", ""], "argument --kubeconfig: '' is not a path"),
    (["render", "--catalog", "", "--service", "test-a", "--strategy", "promote"], "argument --catalog: '' is not a path"),
    (["render", "--service", "test-a", "--strategy", "promote", "--from", ""], "argument --from: '' is not a path"),
    (["deploy", "--service", "test-a", "--env", "gray", "--image", "r.example/a:1", "--build-record", ""],
     "argument --build-record: '' is not a path"),
    # seen in the property test (world): port 99999 passed, and verify ran and printed its report
    (["verify", "--service", "test-a", "--gateway", "http://127.0.0.1:99999/", "--kubeconfig", "kubeconfig"],
     "argument --gateway: 'http://127.0.0.1:99999/' is not allowed: the port is not a number in 1-65535"),
    (["verify", "--service", "test-a", "--gateway", "http://127.0.0.1:1/", "--gray-caller", "http://h:0/"],
     "argument --gray-caller: 'http://h:0/' is not allowed"),
    (["verify", "--service", "test-a", "--gateway", ""], "argument --gateway: '' is not allowed"),
    (["route", "--service", "test-a", "--strategy", "promote", "--istiod", "http://istiod:99999"],
     "argument --istiod: 'http://istiod:99999' is not allowed"),
    (["jobs", "sync", "--url", "http://127.0.0.1:99999/", "--repo", "https://git.example/r.git"],
     "argument --url: 'http://127.0.0.1:99999/' is not allowed"),
    (["jobs", "render", "--out", "jobs", "--repo", ""], "--repo '' is not a repository URL"),
    # more of the same kind: an empty --docker-host meant the default socket, a bad port a ValueError (exit 1);
    # progress wrote --report after the run and took loose integers; --wait-timeout took ' 5'
    (["build", "--service", "test-a", "--context", ".", "--tag", "1", "--docker-host", ""], "argument --docker-host: ''"),
    (["build", "--service", "test-a", "--context", ".", "--tag", "1", "--docker-host", "tcp://h:99999"],
     "argument --docker-host: 'tcp://h:99999' is not allowed: the port"),
    (["progress", "--plan", "plan.yaml", "--report", UNDER_PROC], f"argument --report: {UNDER_PROC!r} cannot be written"),
    (["progress", "--plan", "plan.yaml", "--step", " 1"], "argument --step: ' 1' is not allowed"),
    (["route", "--service", "test-a", "--strategy", "promote", "--wait-timeout", " 5"],
     "argument --wait-timeout: ' 5' is not allowed"),
])
def test_the_cli_refuses_an_empty_path_or_a_bad_url_before_running_the_command(argv, named, tmp_path):
    """Run where a good catalog, plan and (unreachable) kubeconfig sit, so a value taken for "not given"
    would have gone on to run the command."""
    (tmp_path / "catalog.yaml").write_text(Path(CATALOG).read_text())
    (tmp_path / "plan.yaml").write_text((ROOT / "examples" / "plans" / "scenario-1.yaml").read_text())
    (tmp_path / "kubeconfig").write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "c", "clusters": [{"name": "k", "cluster": '
        '{"server": "https://127.0.0.1:1"}}], "users": [{"name": "u", "user": {"token": "t"}}], '
        '"contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}')
    before = sorted(tmp_path.iterdir())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAYSTEPS_", "JENKINS_", "KUBECONFIG"))}
    env |= {"GRAYSTEPS_DB": f"sqlite:///{tmp_path / 'audit.db'}", "JENKINS_USER": "u", "JENKINS_TOKEN": "t"}
    done = subprocess.run([sys.executable, "-m", "graysteps", *argv], capture_output=True, text=True, env=env,
                          timeout=60, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, ""), (done.returncode, done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert named in done.stderr, done.stderr
    assert sorted(tmp_path.iterdir()) == before
