"""Strict parsing: what runs is what was meant. Integers are ASCII digits only,
durations are finite, job parameters hold no control characters, repository
URLs are checked, the signed cookie's lifetime follows --max-age, and reading
never creates a database. Each refusal is one line, exit 2, nothing changed."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOG = str(ROOT / "examples" / "catalog.yaml")
LOOSE_INTEGERS = [" 20", "20 ", "+20", "-0", "020", "٢٠", "２０", "2_0", "0x14", "1e1", "", "7" * 5000]
LOOSE_DURATIONS = ["nan", "inf", "-inf", "-1", "1e3", " 5", "+5", "5.", ".5", "٥", "0x5", "9" * 5000]


def graysteps(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("GRAYSTEPS_", "JENKINS_"))}
    return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True,
                          env={**full, **(env or {})}, timeout=60, cwd=cwd or ROOT)


def refused(done: subprocess.CompletedProcess) -> str:
    assert (done.returncode, done.stdout) == (2, ""), (done.returncode, done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


INTEGER_OPTIONS = {
    "--weight": ["render", "--catalog", CATALOG, "--service", "test-a", "--strategy", "weight", "--weight"],
    "--replicas": ["render", "--catalog", CATALOG, "--service", "test-a", "--env", "gray", "--image", "r.example/a:1",
                   "--replicas"],
    "--max-age": ["cookie", "--tenant", "acme", "--max-age"],
    "--workers": ["rollback", "--all", "--catalog", CATALOG, "--workers"],
    "--port": ["serve-cookie", "--port"],
    "--max-requests": ["verify", "--service", "test-a", "--max-requests"],
    "--progress-deadline": ["deploy", "--service", "test-a", "--env", "gray", "--image", "r.example/a:1",
                            "--progress-deadline"],
}


@pytest.mark.parametrize("option", list(INTEGER_OPTIONS))
def test_integers_are_ascii_digits_only(tmp_path, option):
    for value in LOOSE_INTEGERS:
        *command, flag = INTEGER_OPTIONS[option]
        line = refused(graysteps(*command, f"{flag}={value}", env={"GRAYSTEPS_DB": f"sqlite:///{tmp_path}/w.db"}))
        assert option in line, line
    assert not (tmp_path / "w.db").exists()


DURATION_OPTIONS = {
    "--ttl": ["serve-cookie", "--ttl"],
    "--generation-check": ["serve-cookie", "--generation-check"],
    "--rollout-timeout": ["verify", "--service", "test-a", "--rollout-timeout"],
    "--timeout": ["deploy", "--service", "test-a", "--env", "gray", "--image", "r.example/a:1", "--timeout"],
}


@pytest.mark.parametrize("option", list(DURATION_OPTIONS))
def test_durations_are_finite_plain_decimals(option):
    for value in LOOSE_DURATIONS:
        *command, flag = DURATION_OPTIONS[option]
        line = refused(graysteps(*command, f"{flag}={value}"))  # '=' so that '-1' is a value, not an option
        assert option in line and "seconds" in line, line


def test_a_plan_weight_is_an_integer_not_text_or_a_float(tmp_path):
    for weight in ("'20'", "20.0", "1" + "0" * 40, "true", ".inf", "0x14", "'٢٠'"):
        (tmp_path / "plan.yaml").write_text(f"services:\n  - service: test-a\n    strategy: weight\n    weight: {weight}\n")
        line = refused(graysteps("release", "--plan", str(tmp_path / "plan.yaml"), "--catalog", CATALOG, "--dry-run"))
        assert "weight" in line


@pytest.mark.parametrize("value", ["line\nbreak", "tab\there", "bell\x07", "esc\x1b[31m", "del\x7f", "c1\x85",
                                   "nul\x00"])
def test_control_characters_in_job_parameters_are_refused_and_change_nothing(tmp_path, value):
    db = tmp_path / "w.db"
    env = {"GRAYSTEPS_DB": f"sqlite:///{db}", "GRAYSTEPS_ERROR_FILE": str(tmp_path / "error.json")}
    for argv in (["whitelist", "add", "acme", "--reason", value], ["whitelist", "add", value],
                 ["jobs", "render", "--out", str(tmp_path / "jobs"), "--repo", "https://git.example/r.git",
                  "--credentials-id", value, "--catalog", CATALOG]):
        line = refused(graysteps("--args-json-env", "ARGS", env={**env, "ARGS": json.dumps(argv)}))
        assert "control character" in line
        assert json.loads((tmp_path / "error.json").read_text())["message"] in line
    assert not db.exists() and not (tmp_path / "jobs").exists()


@pytest.mark.parametrize("repo, says", [
    ("--upload-pack=touch /tmp/pwned", "no leading '-'"),
    ("-c core.sshCommand=x", "no leading '-'"),
    ("https://bot:s3cret@git.example/r.git", "holds a password"),
    ("ftp://git.example/r.git", "is not a repository URL"),
    ("https://", "is not a repository URL"),
    ("git.example/r.git", "is not a repository URL"),
    ("git@host:-oProxyCommand=x", "is not a repository URL"),
])
def test_repository_urls_are_validated(tmp_path, repo, says):
    line = refused(graysteps("jobs", "render", "--out", str(tmp_path / "jobs"), "--repo", repo, "--catalog", CATALOG))
    assert says in line and "s3cret" not in line
    assert not (tmp_path / "jobs").exists()


def test_accepted_job_parameters_give_well_formed_xml(tmp_path):
    from defusedxml.ElementTree import parse

    for repo in ("https://git.example/a&b/r.git", "git@git.example:org/r.git", "file:///srv/git/r"):
        done = graysteps("jobs", "render", "--out", str(tmp_path), "--repo", repo, "--credentials-id", "git-ro",
                         "--catalog", CATALOG)
        assert done.returncode == 0, done.stderr
        for config in tmp_path.glob("*/config.xml"):
            parse(str(config))


def _claims(cookie_line: str) -> dict:
    token = cookie_line.split(";")[0].split("=", 1)[1]
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize("max_age", ["0", "60", "86400"])
def test_the_signed_token_lifetime_follows_max_age(tmp_path, max_age):
    done = graysteps("cookie", "--tenant", "acme", "--signed", "--max-age", max_age,
                     env={"GRAYSTEPS_COOKIE_KEY": "k" * 40, "XDG_DATA_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    claims = _claims(done.stdout)
    assert claims["exp"] - claims["iat"] == int(max_age)
    assert f"Max-Age={max_age}" in done.stdout


def test_read_only_commands_never_create_a_database_or_its_folder(tmp_path):
    xdg = tmp_path / "xdg"
    env = {"XDG_DATA_HOME": str(xdg)}
    listed = graysteps("whitelist", "list", env=env)
    assert (listed.returncode, listed.stdout) == (0, "")
    cookie = graysteps("cookie", "--tenant", "acme", env=env)
    assert (cookie.returncode, cookie.stdout) == (0, "tenantGray=0; Path=/; HttpOnly; SameSite=Lax\n")
    explicit = tmp_path / "explicit" / "never.db"  # named, but missing: a typo must not read as "nobody is gray"
    for argv in (["whitelist", "list", "--db", f"sqlite:///{explicit}"], ["cookie", "--tenant", "acme"]):
        line = refused(graysteps(*argv, env={**env, "GRAYSTEPS_DB": f"sqlite:///{explicit}"}))
        assert f"no whitelist database at {explicit}" in line
    assert not xdg.exists() and not explicit.parent.exists()
    assert graysteps("whitelist", "add", "acme", env=env).returncode == 0  # a write creates it
    assert graysteps("whitelist", "list", env=env).stdout == "acme\n"
