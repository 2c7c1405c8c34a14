"""Fixtures for build, deploy and verify tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def build_context(tmp_path):
    """A build context whose Dockerfile only uses FROM scratch / ARG / COPY (no RUN: no runtime here)."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "app.txt").write_text("test-a says hello\n")
    (context / "Dockerfile").write_text("FROM scratch\nARG GREETING=hi\nCOPY app.txt /app.txt\n")
    return context


EXAMPLE_CATALOG = "examples/catalog.yaml"


@pytest.fixture(scope="session")
def kube_with_workloads(tmp_path_factory):
    """A second control plane whose Deployments really roll out: kube-controller-manager,
    kube-scheduler and kwok (fake nodes) run against it. Separate from `kube`, where
    tests set Deployment status by hand and a controller would overwrite it."""
    from graysteps_lab.world.kube import KubeWorld
    from graysteps_lab.world.workloads import Workloads
    from tests.fixtures.failing import fail_loudly

    workdir = tmp_path_factory.mktemp("kube-workloads")
    world, workloads = KubeWorld(workdir / "kube", install_istio_crds=False), None
    try:
        with fail_loudly("kube-apiserver + controllers + kwok"):
            world.start()
            workloads = Workloads(world, workdir / "workloads").start()
        yield world
    finally:
        if workloads:
            workloads.stop()
        world.stop()


@pytest.fixture
def api(kube):
    """An admin ApiClient on the real apiserver, closed after the test."""
    with kube.api_client() as client:
        yield client


@pytest.fixture
def service_in():
    """service_in(name, prod_ns, gray_ns) -> the example catalog's ServiceSpec living in those namespaces."""
    import dataclasses

    from graysteps.model.catalog import load_catalog

    catalog = load_catalog(EXAMPLE_CATALOG)

    def make(name: str, prod: str, gray: str):
        return dataclasses.replace(catalog.service(name), namespaces={"prod": prod, "gray": gray})

    return make


def set_deployment_status(api_client, namespace: str, name: str, **status) -> dict:
    """Move a Deployment's status through the /status subresource, as envtest users do (no controllers run)."""
    import json

    from kubernetes import client

    response = client.AppsV1Api(api_client).patch_namespaced_deployment_status(
        name, namespace, {"status": status}, _content_type="application/merge-patch+json", _preload_content=False)
    return json.loads(response.data)


def rolled_out(generation: int, replicas: int) -> dict:
    """The status of a Deployment whose rollout is complete."""
    return {"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                            "message": "Deployment has minimum availability."},
                           {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                            "message": "ReplicaSet has successfully progressed."}]}


def catalog_with_namespaces(path, name: str, prod: str, gray: str) -> str:
    """Write a copy of the example catalog in which service `name` lives in namespaces prod/gray."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    with open(EXAMPLE_CATALOG, encoding="utf-8") as f:
        data = yaml.load(f)
    data["services"][name]["namespaces"] = {"prod": prod, "gray": gray}
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(data, f)
    return str(path)


def assert_refused(done, named: str) -> None:
    """Bad input: exit 2, nothing on stdout, one line on stderr naming the bad value."""
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graysteps ") and named in lines[0], lines


def argv_with(defaults: dict[str, str], overrides: list[str]) -> list[str]:
    """`defaults` as flags, except those `overrides` gives, then `overrides`."""
    return [x for flag, value in defaults.items() if flag not in overrides for x in (flag, value)] + overrides
