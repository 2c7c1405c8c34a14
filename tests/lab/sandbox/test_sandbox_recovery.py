"""A supervisor killed hard leaves its servers running: the next `up` in that
directory stops them (and only them) before it starts a fresh sandbox."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from graysteps_lab.sandbox.state import pid_alive
from tests.fixtures.sandbox import graysteps

pytestmark = pytest.mark.world


def test_up_after_a_killed_supervisor_stops_the_orphaned_servers_and_starts_afresh(tmp_path):
    directory = tmp_path / "sb"
    try:
        first = graysteps("sandbox", "up", "--dir", str(directory), "--no-workloads")
        assert first.returncode == 0, first.stdout + first.stderr
        state = json.loads((directory / "state.json").read_text())
        servers = {c["name"]: c["pid"] for c in state["components"] if c["pid"] != state["pid"]}
        envoys = {"envoy", "envoy outbound-prod", "envoy outbound-gray"}
        assert set(servers) == {"etcd", "kube-apiserver", "istiod", "cookie-service", "prometheus"} | envoys
        os.kill(state["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(state["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Envoy ends itself soon after its parent dies (it gets a SIGTERM); the others keep running
        deadline = time.monotonic() + 5
        while any(pid_alive(servers[e]) for e in envoys) and time.monotonic() < deadline:
            time.sleep(0.05)
        orphans = [name for name, pid in servers.items() if pid_alive(pid)]
        assert {"etcd", "kube-apiserver", "istiod", "cookie-service", "prometheus"} <= set(orphans), "the orphans this test is about"
        assert graysteps("sandbox", "status", "--dir", str(directory)).returncode == 3

        again = graysteps("sandbox", "up", "--dir", str(directory), "--no-workloads")
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"stopped what an earlier sandbox in {directory} left running: {', '.join(orphans)}\n" in again.stdout
        assert [name for name, pid in servers.items() if pid_alive(pid)] == []
        assert graysteps("sandbox", "status", "--dir", str(directory)).returncode == 0
    finally:
        graysteps("sandbox", "down", "--dir", str(directory))
