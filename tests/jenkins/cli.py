"""Run the real `graysteps` CLI in a subprocess: real exit codes, stdout and stderr."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


EXAMPLE_CATALOG = ROOT / "examples" / "catalog.yaml"


def graysteps(*args: str, env: dict | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """`graysteps ARGS` with a clean JENKINS_*/GRAYSTEPS_* environment, plus `env`; the catalog is the
    example one unless `env` names another (GRAYSTEPS_CATALOG)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("JENKINS_", "GRAYSTEPS_"))}
    full_env["GRAYSTEPS_CATALOG"] = str(EXAMPLE_CATALOG)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=60)
