"""What a Jenkins agent installs: the product wheel, and nothing of the lab.

The wheel carries every product module and the Kubernetes templates `deploy`
renders (so an agent that pip-installed graysteps can deploy without a
checkout), and no module of the lab (lab/graysteps_lab). Installed alone in a
fresh virtualenv, `graysteps --help` lists only the commands that work there.
"""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB_COMMANDS = ("sandbox", "demo", "preview")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                   check=True, timeout=300, cwd=out)
    return next(out.glob("graysteps-*.whl"))


def test_the_wheel_installs_the_deploy_templates(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for template in ("deployment.yaml", "service.yaml"):
        packed = [n for n in names if n.endswith(f".data/data/share/graysteps/resources/k8s/{template}")]
        assert packed, f"{template} is not in {wheel.name}"
        assert zipfile.ZipFile(wheel).read(packed[0]) == (ROOT / "resources" / "k8s" / template).read_bytes()


def test_the_wheel_holds_every_product_module_and_no_lab_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {n for n in names if n.endswith(".py")}
    product = {str(p.relative_to(ROOT)) for p in (ROOT / "graysteps").rglob("*.py")}
    assert product <= modules, f"missing from the wheel: {sorted(product - modules)}"
    assert modules == product, f"not product modules: {sorted(modules - product)}"
    assert not [n for n in names if "graysteps_lab" in n or n.startswith(("lab/", "tests/", "tools/"))]


def test_an_agent_that_installs_only_the_product_sees_only_the_commands_that_work_there(wheel, tmp_path):
    env_dir = tmp_path / "agent"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=600)
    shown = subprocess.run([str(env_dir / "bin" / "graysteps"), "--help"], capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    listed = {line.split()[0] for line in shown.stdout.splitlines() if line.startswith("    ") and line.split()}
    assert {"route", "release", "rollback", "verify", "whitelist", "jobs"} <= listed
    assert not listed & set(LAB_COMMANDS), shown.stdout
    unknown = subprocess.run([str(env_dir / "bin" / "graysteps"), "sandbox", "up"], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert unknown.returncode == 2 and "invalid choice: 'sandbox'" in unknown.stderr
