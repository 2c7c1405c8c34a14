"""Guard: no value is ever interpolated by Groovy into a shell script in vars/ or pipelines/."""

import pytest

from tests.jenkins.cli import ROOT
from tests.jenkins.shell_steps import shell_steps

FILES = sorted([*ROOT.glob("vars/*.groovy"), *ROOT.glob("pipelines/*.Jenkinsfile"), ROOT / "Jenkinsfile"])


def test_the_guard_scans_real_files_and_finds_their_shell_steps():
    assert len(FILES) >= 14
    runner = (ROOT / "vars/graystepsRun.groovy").read_text()
    assert [s.script for s in shell_steps(runner)] == ["'graysteps --args-json-env GRAYSTEPS_ARGS'"]
    assert [s.script for s in shell_steps((ROOT / "vars/grayEnv.groovy").read_text())] == [
        "libraryResource('io/graysteps/install-venv.sh')"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_steps_only_run_constants(path):
    problems = [f"{path.relative_to(ROOT)}:{s.line}: {s.step} {p}" for s in shell_steps(path.read_text()) for p in s.problems()]
    assert problems == []


@pytest.mark.parametrize("bad", [
    'sh "graysteps route --service ${config.service}"',
    "sh(script: \"rm -rf $dir\", returnStatus: true)",
    'sh(returnStatus: true, script: "echo ${env.TOKEN}")',
    'bat """dir ${path}"""',
    "sh script\n",
    "sh(label: \"step ${name}\", script: 'ls')",
    "    powershell(\"Write-Host $x\")",
    "sh('graysteps ' + config.service)",
])
def test_the_guard_catches_interpolated_or_computed_scripts(bad):
    steps = shell_steps(bad)
    assert len(steps) == 1 and steps[0].problems(), bad


@pytest.mark.parametrize("good", [
    "sh 'graysteps --args-json-env GRAYSTEPS_ARGS'",
    "sh(script: 'echo \"$HOME\"', returnStatus: true, label: 'x')",
    "sh(label: 'grayEnv', script: libraryResource('io/graysteps/install-venv.sh'))",
    "sh '''\nset -e\necho \"$A\"\n'''",
    "// sh \"${commented} out\"",
])
def test_the_guard_accepts_constants(good):
    assert all(not s.problems() for s in shell_steps(good))
