"""The `graysteps` shell itself: version, help, usage errors, arguments from JSON."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys

import graysteps
import graysteps.commands


def graysteps_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_version_names_the_package_version():
    done = graysteps_cli("--version")
    assert done.returncode == 0
    assert done.stdout == f"graysteps {graysteps.__version__}\n"


def test_help_lists_every_command_module():
    done = graysteps_cli("--help")
    assert done.returncode == 0
    modules = [m.name for m in pkgutil.iter_modules(graysteps.commands.__path__) if not m.name.startswith("_")]
    assert modules, "no command modules found"
    for name in modules:
        command = __import__(f"graysteps.commands.{name}", fromlist=["NAME"]).NAME
        assert f"    {command}" in done.stdout, command


def test_the_version_answer_imports_no_heavy_client():
    code = ("import sys; from graysteps.cli import main; main(['--version']); "
            "heavy = [m for m in ('kubernetes', 'docker', 'sqlalchemy', 'yaml', 'ruamel') if m in sys.modules]; "
            "print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "[]"


def test_a_usage_error_is_one_line_on_stderr_with_exit_2():
    done = graysteps_cli("route", "--strategy", "whitelist")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "--service" in done.stderr


def test_an_unknown_command_is_named():
    done = graysteps_cli("deploi")
    assert done.returncode == 2
    assert "invalid choice: 'deploi'" in done.stderr and done.stdout == ""


def test_arguments_come_from_a_json_env_var_verbatim():
    hostile = "x; rm -rf / $(id) `id` \"'"
    done = graysteps_cli("--args-json-env", "ARGS", env={"ARGS": json.dumps(["render", "--service", hostile,
                                                                             "--strategy", "whitelist",
                                                                             "--catalog", "examples/catalog.yaml"])})
    assert done.returncode == 2 and done.stdout == ""
    # reached graysteps as one argument (named, quoted, in the error), never a shell
    assert "'x; rm -rf / $(id) `id`" in done.stderr


def test_a_json_env_var_that_is_not_a_list_of_strings_is_refused():
    for raw in ('{"a": 1}', '["ok", 3]', "not json"):
        done = graysteps_cli("--args-json-env", "ARGS", env={"ARGS": raw})
        assert done.returncode != 0 and done.stdout == ""
        assert "--args-json-env" in done.stderr
    done = graysteps_cli("--args-json-env", "UNSET_GRAYSTEPS_VAR")
    assert done.returncode != 0 and "UNSET_GRAYSTEPS_VAR is not set" in done.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly_with_141():
    # `graysteps render ... | head -1`: once the reader has gone, the next write
    # fails. The command stops like a shell tool (128 + SIGPIPE), no traceback.
    command = [sys.executable, "-m", "graysteps", "render", "--catalog", "examples/catalog.yaml",
               "--service", "test-a", "--strategy", "whitelist"]
    reader_gone = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   cwd=os.path.dirname(os.path.dirname(graysteps.__file__)))
    reader_gone.stdout.close()
    stderr = reader_gone.stderr.read().decode()
    assert reader_gone.wait(timeout=60) == 141, stderr
    assert stderr == ""
