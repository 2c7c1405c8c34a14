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
