"""`python -m graysteps_lab.world up/down` starts servers others can reach, and stops them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.world


def _wait_for(path, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)


def test_up_writes_how_to_reach_mariadb_and_down_stops_it(tmp_path):
    world_dir = tmp_path / "world"
    up = subprocess.Popen([sys.executable, "-m", "graysteps_lab.world", "up", "mariadb", "--dir", str(world_dir)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(world_dir / "world.pid", up)
        world = json.loads((world_dir / "world.json").read_text())
        engine = sa.create_engine(world["mariadb"]["url"])
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT DATABASE()")).scalar_one() == "graysteps"
        engine.dispose()
        server_pid = int((world_dir / "mariadb" / "mariadbd.pid").read_text())

        down = subprocess.run([sys.executable, "-m", "graysteps_lab.world", "down", "--dir", str(world_dir)],
                              capture_output=True, text=True, timeout=90)
        assert down.returncode == 0, down.stderr
        assert up.wait(timeout=10) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(server_pid, 0)
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(timeout=60)


def test_down_without_a_running_world_says_so(tmp_path):
    down = subprocess.run([sys.executable, "-m", "graysteps_lab.world", "down", "--dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert down.returncode == 1
    assert "nothing runs from" in down.stderr and down.stdout == ""
