"""resources/io/graysteps/install-venv.sh, the script grayEnv runs on an agent, run for real."""

import subprocess
import sys

from graysteps import __version__
from tests.jenkins.cli import ROOT

SCRIPT = ROOT / "resources/io/graysteps/install-venv.sh"


def run_script(venv, version, source):
    env = {"PATH": "/usr/bin:/bin", "GRAYSTEPS_VENV": str(venv), "GRAYSTEPS_PYTHON": sys.executable,
           "GRAYSTEPS_PIP_SOURCE": source, "GRAYSTEPS_VERSION": version,
           "PIP_NO_INDEX": "1"}  # never the network: a test that reaches pip fails fast
    return subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120, cwd=venv.parent)


def test_a_venv_that_already_has_the_librarys_version_is_reused_even_under_a_hostile_path(tmp_path):
    venv = tmp_path / "ws $(touch pwned) `touch pwned2`; x" / ".graysteps" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    # install this checkout as pip -e would (a .pth and the console script), without needing a network
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "graysteps-checkout.pth").write_text(str(ROOT) + "\n")
    console = venv / "bin" / "graysteps"
    console.write_text('#!/bin/sh\nexec "$(dirname "$0")/python" -m graysteps "$@"\n')  # a shebang cannot hold spaces
    console.chmod(0o755)
    result = run_script(venv, __version__, "graysteps==" + __version__)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"grayEnv: graysteps {__version__} already in {venv}"
    assert not list(tmp_path.rglob("pwned*"))
    assert not list(ROOT.glob("pwned*"))
