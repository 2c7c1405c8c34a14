"""Exit 0 when this checkout is installed (editable) with every requirement of
setup.cfg's install_requires and the `test` extra satisfied; else print what is
missing and exit 1. Lets tools/setup.sh skip `pip install` when warm."""

from __future__ import annotations

import configparser
import sys
from importlib import metadata
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # a bare venv: pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement

root = Path(__file__).resolve().parents[1]
config = configparser.ConfigParser()
config.read(root / "setup.cfg")
lines = config["options"]["install_requires"].splitlines() + config["options.extras_require"]["test"].splitlines()
problems = []
if sys.version_info < (3, 11):
    problems.append(f"Python {sys.version.split()[0]} is older than 3.11")
try:
    import tomllib

    lines += tomllib.loads((root / "lab" / "pyproject.toml").read_text())["project"]["dependencies"]
except (OSError, KeyError) as e:
    problems.append(f"lab/pyproject.toml unreadable: {e}")
for line in filter(None, (text.split("#")[0].strip() for text in lines)):
    req = Requirement(line)
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        problems.append(f"{req.name} is not installed")
        continue
    if not req.specifier.contains(version, prereleases=True):
        problems.append(f"{req.name} {version} does not satisfy {req}")
try:
    import graysteps

    if Path(graysteps.__file__).resolve().parents[1] != root:
        problems.append(f"graysteps is installed from {Path(graysteps.__file__).parent}, not {root}")
except ImportError:
    problems.append("graysteps is not installed")
try:
    import graysteps_lab

    if Path(graysteps_lab.__file__).resolve().parents[2] != root:
        problems.append(f"graysteps_lab is installed from {Path(graysteps_lab.__file__).parent}, not {root}/lab")
except ImportError:
    problems.append("graysteps_lab (lab/) is not installed")
for problem in problems:
    print(f"python deps: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
