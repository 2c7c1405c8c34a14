"""`graysteps build` against podman's Docker API and a real registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from graysteps.model.images import parse_image, read_build_record, write_build_record
from graysteps.steps.build import BuildRequest, build_image, registry_auth
from graysteps.errors import GraystepsError, InvalidInput
from tests.fixtures.workloads import argv_with, assert_refused

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def graysteps(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


def registry_manifest(registry, repository: str, tag: str, auth: tuple[str, str] | None = None) -> tuple[str, dict]:
    """(digest, manifest) as the registry itself serves them (`auth`: its login, if it needs one)."""
    status, headers, body = registry.get(f"/v2/{repository}/manifests/{tag}", accept=MANIFEST_TYPES, auth=auth)
    assert status == 200, (status, body[:300])
    return headers["Docker-Content-Digest"], json.loads(body)


@pytest.mark.world
def test_build_and_push_records_the_digest_the_registry_serves(podman, registry, build_context, tmp_path):
    tag = f"t{uuid.uuid4().hex[:8]}"
    record = tmp_path / "build.json"
    revision = "0123456789abcdef0123456789abcdef01234567"
    done = graysteps("build", "--service", "test-a", "--context", str(build_context), "--tag", tag,
                     "--registry", registry.address, "--push", "--build-arg", "GREETING=hello", "--out", str(record),
                     env={"DOCKER_HOST": podman.docker_host, "GIT_COMMIT": revision})
    assert done.returncode == 0, done.stderr
    assert "COPY app.txt /app.txt" in done.stderr  # the build log is streamed
    saved = json.loads(record.read_text())
    digest, manifest = registry_manifest(registry, "test-a", tag)
    assert saved["digest"] == digest
    assert saved["pinned_image"] == f"{registry.address}/test-a:{tag}@{digest}"
    assert json.loads(done.stdout)["digest"] == digest

    # The labels are in the pushed image's config blob, read back from the registry.
    status, _, blob = registry.get(f"/v2/test-a/blobs/{manifest['config']['digest']}")
    assert status == 200
    labels = json.loads(blob)["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == revision
    assert labels["io.graysteps.service"] == "test-a"
    assert labels["io.graysteps.profile"] == "gray"
    assert labels["org.opencontainers.image.version"] == tag


@pytest.mark.world
def test_build_without_push_records_no_digest(podman, build_context, tmp_path):
    result = build_image(BuildRequest("test-b", str(build_context), "local1", revision="abc"),
                         docker_host=podman.docker_host, log=lambda line: None)
    assert result.pushed is False and result.digest is None
    assert result.image_id.startswith("sha256:")
    path = write_build_record(result, tmp_path / "r.json")
    assert read_build_record("test-b", path).pinned_image == "test-b:local1"


@pytest.mark.world
def test_registry_password_never_reaches_the_log_or_the_record(podman, registry, build_context, tmp_path):
    secret = f"pw-{uuid.uuid4().hex}"
    record = tmp_path / "build.json"
    done = graysteps("build", "--service", "test-a", "--context", str(build_context), "--tag", "secret1",
                     "--registry", registry.address, "--push", "--out", str(record),
                     env={"DOCKER_HOST": podman.docker_host, "REGISTRY_USER": "jenkins", "REGISTRY_PASSWORD": secret})
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr + record.read_text()


def push_to_login_registry(podman, registry, context, tmp_path, user: str, password: str):
    """`graysteps build --push` of test-a to `registry` with REGISTRY_USER/REGISTRY_PASSWORD as given
    ("" is unset) and an empty docker config: (the finished command, the tag, the --out path)."""
    tag = f"t{uuid.uuid4().hex[:8]}"
    record = tmp_path / "build.json"
    (tmp_path / "docker-config").mkdir()
    done = graysteps("build", "--service", "test-a", "--context", str(context), "--tag", tag,
                     "--registry", registry.address, "--push", "--out", str(record),
                     env={"DOCKER_HOST": podman.docker_host, "DOCKER_CONFIG": str(tmp_path / "docker-config"),
                          "REGISTRY_USER": user, "REGISTRY_PASSWORD": password})
    return done, tag, record


def assert_push_refused_for_login(done, record, registry, tag: str, why: str) -> None:
    """A failed push: exit 1, nothing on stdout, no record, no manifest, stderr naming the registry and `why`."""
    assert done.returncode == 1, done.stderr
    assert done.stdout == "" and not record.exists()
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"graysteps build: pushing {registry.address}/test-a:{tag} failed: "
                            f"the registry {registry.address} "), error
    assert why in error and "authentication failed" in error, error
    assert registry.get(f"/v2/test-a/manifests/{tag}", auth=next(iter(registry.users.items())))[0] == 404


@pytest.mark.world
def test_push_with_registry_credentials_records_the_digest_the_login_registry_serves(
        login_podman, login_registry, build_context, tmp_path):
    user, password = next(iter(login_registry.users.items()))
    done, tag, record = push_to_login_registry(login_podman, login_registry, build_context, tmp_path, user, password)
    assert done.returncode == 0, done.stderr
    digest, _ = registry_manifest(login_registry, "test-a", tag, auth=(user, password))
    assert json.loads(done.stdout)["digest"] == digest
    assert json.loads(record.read_text())["pinned_image"] == f"{login_registry.address}/test-a:{tag}@{digest}"
    assert password not in done.stdout + done.stderr + record.read_text()


@pytest.mark.world
def test_a_wrong_registry_password_fails_naming_the_registry_and_the_user(
        login_podman, login_registry, build_context, tmp_path):
    wrong = f"wrong-{uuid.uuid4().hex}"
    done, tag, record = push_to_login_registry(login_podman, login_registry, build_context, tmp_path, "jenkins", wrong)
    assert_push_refused_for_login(done, record, login_registry, tag, "refused the credentials of user 'jenkins'")
    assert wrong not in done.stdout + done.stderr


@pytest.mark.world
def test_a_push_without_credentials_to_a_login_registry_fails_clearly(
        login_podman, login_registry, build_context, tmp_path):
    done, tag, record = push_to_login_registry(login_podman, login_registry, build_context, tmp_path, "", "")
    assert_push_refused_for_login(done, record, login_registry, tag, "requires a login")


@pytest.mark.world
def test_a_failing_build_names_the_image_and_the_cause(podman, build_context):
    (build_context / "Dockerfile").write_text("FROM scratch\nCOPY missing.txt /missing.txt\n")
    with pytest.raises(GraystepsError) as caught:
        build_image(BuildRequest("test-a", str(build_context), "broken"), docker_host=podman.docker_host,
                    log=lambda line: None)
    assert "test-a:broken" in caught.value.message and "missing.txt" in caught.value.message


@pytest.mark.world
def test_push_to_an_unreachable_registry_fails_clearly(podman, build_context):
    from graysteps_lab.world.ports import free_port

    with pytest.raises(GraystepsError) as caught:
        build_image(BuildRequest("test-a", str(build_context), "nowhere", registry=f"127.0.0.1:{free_port()}"),
                    push=True, docker_host=podman.docker_host, log=lambda line: None)
    assert "pushing" in caught.value.message or "refused" in caught.value.message


@pytest.mark.parametrize("args, named", [
    (["--service", "test-A"], "test-A"),
    (["--tag", "v1/x"], "v1/x"),
    (["--registry", "http://127.0.0.1:5000"], "http://127.0.0.1:5000"),
    (["--context", "/no/such/dir"], "/no/such/dir"),
    (["--dockerfile", "Nope.dockerfile"], "Nope.dockerfile"),
    (["--build-arg", "NOEQUALS"], "NOEQUALS"),
])
def test_bad_build_input_is_one_line_on_stderr_and_nothing_built(args, named, build_context, tmp_path):
    argv = argv_with({"--service": "test-a", "--context": str(build_context), "--tag": "v1"}, args)
    done = graysteps("build", *argv, "--out", str(tmp_path / "r.json"),
                     env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert_refused(done, named)
    assert not (tmp_path / "r.json").exists()


def test_half_set_registry_credentials_are_refused():
    with pytest.raises(InvalidInput, match="REGISTRY_PASSWORD"):
        registry_auth("r:5000", {"REGISTRY_USER": "u"})
    assert registry_auth("r:5000/team", {"REGISTRY_USER": "u", "REGISTRY_PASSWORD": "p"})["serveraddress"] == "r:5000"
    assert registry_auth("r:5000", {}) is None


@pytest.mark.parametrize("text", ["Test-A:1", "reg:5000/a:-x", "a b", "", "a@sha256:123", "team/UPPER"])
def test_invalid_image_references_are_refused(text):
    with pytest.raises(InvalidInput, match="not a valid image reference"):
        parse_image(text)


@pytest.mark.parametrize("text", ["test-a", "127.0.0.1:5000/test-a:1.2", "reg.example/team/test-a@sha256:" + "a" * 64,
                                  "localhost:5000/a/b:v_1.0-rc1"])
def test_valid_image_references_round_trip(text):
    assert str(parse_image(text)) == text
