"""The guard at the top of the CLI: whatever escapes a command is one line on
stderr (exit 1, or 2 for bad input), the error file gets it, and a traceback
appears only when asked for with --debug or GRAYSTEPS_DEBUG=1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOG = str(ROOT / "examples" / "catalog.yaml")


def graysteps(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True,
                          env={**os.environ, "GRAYSTEPS_DEBUG": "", **(env or {})}, timeout=60, cwd=cwd or ROOT)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def job_names(tmp_path_factory) -> list[str]:
    """The directories `jobs render` makes, from a run into a fresh directory (which succeeds)."""
    out = tmp_path_factory.mktemp("jobs-ok")
    done = graysteps("jobs", "render", "--out", str(out), "--repo", "https://git.example/r.git", "--catalog", CATALOG)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir() if (p / "config.xml").is_file())
    assert names
    return names


@pytest.fixture
def unwritable_out(tmp_path, job_names) -> str:
    """An --out that passes the up-front check and then fails inside the command, for real.

    The directory exists and is writable (the up-front check really creates a temp file there), but every
    job's directory name in it is taken by a regular file, so write_all's mkdir raises FileExistsError: an
    unexpected OSError inside the command, which is what the guard is for. Every name is taken, so the
    first job fails whatever the order and nothing is printed (stdout stays empty).
    Not used: a path under /proc (refused up front since the check creates a temp file), a read-only
    directory (root writes anyway), /dev/full or a full filesystem (a device is refused as an output, no
    full mount is at hand), RLIMIT_FSIZE (it would break the error file too), monkeypatching (the
    command runs in a subprocess)."""
    out = tmp_path / "jobs-out"
    out.mkdir()
    for name in job_names:
        (out / name).write_text("not a directory\n")
    return str(out)


def test_an_unexpected_failure_is_one_line_naming_the_command_and_exit_1(unwritable_out):
    out = unwritable_out
    done = graysteps("jobs", "render", "--out", out, "--repo", "https://git.example/r.git", "--catalog", CATALOG)
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith("graysteps jobs: ") and out in line


@pytest.mark.parametrize("how", [["--debug"], []])
def test_the_traceback_is_shown_only_when_asked_for(unwritable_out, how):
    env = {} if how else {"GRAYSTEPS_DEBUG": "1"}
    done = graysteps(*how, "jobs", "render", "--out", unwritable_out, "--repo", "https://git.example/r.git",
                     "--catalog", CATALOG, env=env)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.rstrip("\n").splitlines()[-1].startswith("graysteps jobs: ")


def test_an_unexpected_failure_is_written_to_the_error_file(tmp_path, unwritable_out):
    error_file = tmp_path / "error.json"
    done = graysteps("jobs", "render", "--out", unwritable_out, "--repo", "https://git.example/r.git",
                     "--catalog", CATALOG, env={"GRAYSTEPS_ERROR_FILE": str(error_file)})
    assert done.returncode == 1
    details = json.loads(error_file.read_text())
    assert details["step"] == "jobs" and details["message"] in done.stderr


@pytest.mark.parametrize("raw", [
    None,  # the variable is not set
    "not json",
    '{"a": 1}',
    '["render", 3]',
    json.dumps(["render", "--from", "a\u0000b", "--service", "test-a", "--strategy", "whitelist"]),
    json.dumps(["render", "--service", "test-a"]),  # a usage error
    json.dumps(["render", "--service", "test-a", "--strategy", "weight", "--weight", "+20", "--catalog", CATALOG]),
    "[" * 30_000 + "]" * 30_000,
])
def test_bad_input_through_args_json_env_is_bad_input_exit_2_with_the_error_file(tmp_path, raw):
    error_file = tmp_path / "error.json"
    env = {"GRAYSTEPS_ERROR_FILE": str(error_file)}
    if raw is not None:
        env["ARGS"] = raw
    done = graysteps("--args-json-env", "ARGS", env=env)
    assert done.returncode == 2
    line = one_line(done)
    details = json.loads(error_file.read_text())
    assert details["message"] in line and details["type"]


def test_an_unwritable_error_file_is_said_on_the_same_line_and_keeps_the_exit_code(tmp_path):
    done = graysteps("render", "--service", "test-a", "--strategy", "nope", "--catalog", CATALOG,
                     env={"GRAYSTEPS_ERROR_FILE": str(tmp_path / "missing" / "error.json")})
    assert done.returncode == 2
    line = one_line(done)
    assert "--strategy 'nope'" in line and "could not be written" in line


def test_a_password_in_an_unexpected_message_is_masked(tmp_path):
    secret = "Sup3r-s3cret-pw"
    done = graysteps("whitelist", "list", "--db", f"mysql+pymysql://admin:{secret}@127.0.0.1:1/db?ssl_key={secret}",
                     env={"GRAYSTEPS_ERROR_FILE": str(tmp_path / "e.json")})
    assert done.returncode in (1, 2)
    one_line(done)
    assert secret not in done.stderr and secret not in (tmp_path / "e.json").read_text()
