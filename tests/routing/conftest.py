"""Routing fixtures on the real apiserver (see tests/fixtures/kube.py)."""

from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture
def api(kube):
    """An admin ApiClient on the real apiserver, closed after the test."""
    with kube.api_client() as client:
        yield client


@pytest.fixture
def service_in(fresh_namespace):
    """service_in(name='test-a', catalog=example, **changes) -> that ServiceSpec with its
    VirtualService in the fresh namespace (gray stays `gray`; subsets: both there)."""
    from graysteps.model.catalog import load_catalog
    from tests.routing.fixture_pairs import EXAMPLE_CATALOG

    def make(name: str = "test-a", catalog: str = str(EXAMPLE_CATALOG), **changes):
        spec = load_catalog(catalog).service(name)
        gray = fresh_namespace if spec.layout == "subsets" else "gray"
        return dataclasses.replace(spec, namespaces={"prod": fresh_namespace, "gray": gray}, **changes)

    return make


def get_vs(api_client, service, version: str = "v1") -> dict | None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        return client.CustomObjectsApi(api_client).get_namespaced_custom_object(
            "networking.istio.io", version, service.vs_namespace, "virtualservices", service.vs_name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def create_vs(api_client, body: dict) -> dict:
    from kubernetes import client

    group, version = body["apiVersion"].split("/")
    return client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        group, version, body["metadata"]["namespace"], "virtualservices", body, field_manager="someone-else")


def routing(vs: dict) -> dict:
    """The parts graysteps decides: spec, labels, annotations."""
    md = vs["metadata"]
    return {"spec": vs["spec"], "labels": md.get("labels"), "annotations": md.get("annotations")}


@pytest.fixture(scope="session")
def istioctl():
    """istioctl built by tools/testenv/build-istio.sh (instant when cached; $GRAYSTEPS_ISTIO_BINARIES
    overrides the directory). A missing binary fails the test saying how to get it."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    override = os.environ.get("GRAYSTEPS_ISTIO_BINARIES")
    if override:
        directory = Path(override)
    else:
        done = subprocess.run(["bash", str(root / "tools" / "testenv" / "build-istio.sh")], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            pytest.fail(f"istioctl is missing and tools/testenv/build-istio.sh failed (exit {done.returncode}): "
                        f"{done.stderr.strip()[-500:]}; run it by hand (needs Go) or set GRAYSTEPS_ISTIO_BINARIES",
                        pytrace=False)
        directory = Path(done.stdout.strip().splitlines()[-1])
    binary = directory / "istioctl"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing: run bash tools/testenv/build-istio.sh (needs Go) or set "
                    "GRAYSTEPS_ISTIO_BINARIES to a directory holding istioctl", pytrace=False)
    return binary
