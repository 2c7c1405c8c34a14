"""An image built through podman's Docker API is pushed to the local registry and served from it."""

from __future__ import annotations

import json
import uuid

import docker
import pytest

pytestmark = pytest.mark.world

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def test_a_copy_only_image_built_with_the_docker_sdk_is_pushed_and_its_manifest_served(podman, registry, tmp_path):
    (tmp_path / "version.txt").write_text("smoke-" + uuid.uuid4().hex)
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY version.txt /version.txt\nLABEL graysteps.smoke=yes\n")
    repository = f"{registry.address}/graysteps/smoke"
    tag = uuid.uuid4().hex[:10]

    client = docker.DockerClient(base_url=podman.docker_host, timeout=120)
    try:
        image, _ = client.images.build(path=str(tmp_path), tag=f"{repository}:{tag}", rm=True)
        assert image.labels.get("graysteps.smoke") == "yes"
        events = list(client.images.push(repository, tag=tag, stream=True, decode=True))
        errors = [e for e in events if "error" in e or "errorDetail" in e]
        assert not errors, errors
    finally:
        client.close()

    status, headers, body = registry.get(f"/v2/graysteps/smoke/manifests/{tag}", accept=MANIFEST_TYPES)
    assert status == 200, body
    manifest = json.loads(body)
    assert len(manifest["layers"]) == 1  # the one COPY layer
    status, _, _ = registry.get(f"/v2/graysteps/smoke/blobs/{manifest['layers'][0]['digest']}")
    assert status == 200
    status, _, tags = registry.get("/v2/graysteps/smoke/tags/list")
    assert tag in json.loads(tags)["tags"]


def test_a_registry_with_users_answers_only_their_login(login_registry):
    (user, password), = login_registry.users.items()
    status, headers, _ = login_registry.get("/v2/")
    assert status == 401 and headers["Www-Authenticate"] == 'Basic realm="graysteps-test"'
    assert login_registry.get("/v2/", auth=(user, password))[0] == 200
    assert login_registry.get("/v2/", auth=(user, password + "x"))[0] == 401
    assert password not in (login_registry.workdir / "htpasswd").read_text()  # a bcrypt hash, not the password
