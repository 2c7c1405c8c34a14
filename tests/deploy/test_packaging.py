"""A wheel of graysteps carries the Kubernetes templates `deploy` renders, so an
agent that pip-installed graysteps (grayEnv's default) can deploy without a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_the_deploy_templates(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, timeout=300, cwd=tmp_path)
    wheel = next(tmp_path.glob("graysteps-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for template in ("deployment.yaml", "service.yaml"):
        packed = [n for n in names if n.endswith(f".data/data/share/graysteps/resources/k8s/{template}")]
        assert packed, f"{template} is not in {wheel.name}"
        data = zipfile.ZipFile(wheel).read(packed[0])
        assert data == (ROOT / "resources" / "k8s" / template).read_bytes()
