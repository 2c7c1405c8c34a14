"""When a server of the test world cannot start, the run fails loudly: the error
names what is missing or what the server said, and how to get it going."""

from __future__ import annotations

import sys

import pytest

from graysteps_lab.world.kube import KubeWorld
from graysteps_lab.world.process import ServerProcess, WorldError, require_executable
from tests.fixtures.failing import fail_loudly


def test_a_missing_tool_is_named_with_how_to_install_it():
    with pytest.raises(WorldError, match=r"'graysteps-no-such-tool' is not installed: run tools/setup.sh"):
        require_executable("graysteps-no-such-tool", "run tools/setup.sh")


def test_a_server_that_dies_while_starting_fails_with_the_tail_of_its_log(tmp_path):
    server = ServerProcess("crashy", [sys.executable, "-c", "print('port already taken'); raise SystemExit(3)"],
                           tmp_path / "crashy.log").start()
    with pytest.raises(WorldError) as failed:
        server.wait_ready(lambda: False, timeout=10)
    assert "crashy exited with code 3" in str(failed.value)
    assert "port already taken" in str(failed.value)


def test_a_server_that_never_gets_ready_is_stopped_and_reported(tmp_path):
    server = ServerProcess("sleepy", [sys.executable, "-c", "import time; print('waiting'); time.sleep(60)"],
                           tmp_path / "sleepy.log").start()
    with pytest.raises(WorldError, match=r"sleepy was not ready after 1s"):
        server.wait_ready(lambda: False, timeout=1)
    assert not server.running


def test_missing_control_plane_binaries_are_named_with_how_to_build_them(tmp_path):
    with pytest.raises(WorldError, match=r"empty/etcd is missing: run bash .*build\.sh"):
        KubeWorld(tmp_path / "kube", binaries=tmp_path / "empty").start()


def test_a_fixture_that_cannot_start_its_server_fails_instead_of_skipping():
    with pytest.raises(pytest.fail.Exception, match="test world: podman could not be started: 'podman' is not"):
        with fail_loudly("podman"):
            raise WorldError("'podman' is not installed: apt-get install podman")
