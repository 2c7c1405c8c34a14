"""A sandbox started by the real `graysteps sandbox up` (a detached supervisor), per test module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def graysteps(*args: str, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """`graysteps ARGS...` as its own process, from the repository root (`env`: added variables)."""
    return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True, cwd=REPO,
                          stdin=subprocess.DEVNULL, timeout=timeout, env={**os.environ, **(env or {})})


@dataclass
class RunningSandbox:
    dir: Path

    @property
    def state(self) -> dict:
        return json.loads((self.dir / "state.json").read_text())

    def api_client(self):
        from graysteps.adapters.kube.client import api_client

        return api_client(self.state["env"]["KUBECONFIG"])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sandbox")
    done = graysteps("sandbox", "up", "--dir", str(directory))
    if done.returncode != 0:
        graysteps("sandbox", "down", "--dir", str(directory))
        pytest.fail(f"`graysteps sandbox up` failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}",
                    pytrace=False)
    yield RunningSandbox(directory)
    graysteps("sandbox", "down", "--dir", str(directory))
