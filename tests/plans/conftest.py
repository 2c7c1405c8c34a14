"""Fixtures for release plans and fleet rollback: a prod and a gray namespace
of their own in the session's apiserver, and a catalog of services there."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from graysteps_lab.world.fleet import write_catalog

REPO = Path(__file__).resolve().parents[2]
PLANS = REPO / "examples" / "plans"
EXAMPLE_CATALOG = REPO / "examples" / "catalog.yaml"


@pytest.fixture
def profile_namespaces(kube):
    """{"prod": ns, "gray": ns}: two new namespaces (the seed's layout), for this test only."""
    from kubernetes import client

    if not kube.apiserver_running:  # a fault test may have left it stopped
        kube.start_apiserver()
    stem = uuid.uuid4().hex[:8]
    names = {"prod": f"p{stem}-prod", "gray": f"p{stem}-gray"}
    with kube.api_client() as api:
        for ns in names.values():
            client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    yield names
    if kube.apiserver_running:
        with kube.api_client() as api:
            for ns in names.values():
                client.CoreV1Api(api).delete_namespace(ns)


@pytest.fixture
def make_catalog(tmp_path, profile_namespaces):
    """make_catalog(["test-a", "test-b"]) -> path of a catalog of those services in profile_namespaces."""

    def make(names=("test-a", "test-b"), **kw) -> str:
        path = tmp_path / f"catalog-{uuid.uuid4().hex[:6]}.yaml"
        write_catalog(path, list(names), prod_ns=profile_namespaces["prod"], gray_ns=profile_namespaces["gray"], **kw)
        return str(path)

    return make


@pytest.fixture
def audit_db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'audit.db'}"


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`graysteps ARGS...` as a real process."""
    return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True, cwd=REPO, env=env)


class RefusedWrites:
    """A real ValidatingAdmissionPolicy that makes the apiserver refuse every
    write to one VirtualService: how a test makes one service of a plan fail
    on a live apiserver, without mocking anything."""

    def __init__(self, kube, namespace: str, vs_name: str):
        self.kube, self.namespace, self.vs_name = kube, namespace, vs_name
        self.name = f"refuse-{namespace}-{vs_name}"[:63]

    def install(self, timeout: float = 20.0) -> None:
        import time

        base = "/apis/admissionregistration.k8s.io/v1"
        policy = {
            "metadata": {"name": self.name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": ["networking.istio.io"], "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE", "DELETE"], "resources": ["virtualservices"]}]},
                "validations": [{"expression": f"request.name != '{self.vs_name}'",
                                 "message": f"this test refuses writes to {self.vs_name}"}],
            },
        }
        binding = {
            "metadata": {"name": self.name},
            "spec": {"policyName": self.name, "validationActions": ["Deny"],
                     "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}}}},
        }
        for kind, body in (("validatingadmissionpolicies", policy), ("validatingadmissionpolicybindings", binding)):
            status, answer = self.kube.request("POST", f"{base}/{kind}", body)
            assert status == 201, answer
        probe = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                 "metadata": {"name": self.vs_name, "namespace": self.namespace},
                 "spec": {"hosts": [self.vs_name], "http": [{"route": [{"destination": {"host": self.vs_name}}]}]}}
        deadline = time.monotonic() + timeout
        while True:  # policies take effect asynchronously: wait until the apiserver applies it
            status, answer = self.kube.request(
                "POST", f"/apis/networking.istio.io/v1/namespaces/{self.namespace}/virtualservices?dryRun=All", probe)
            if status in (403, 422) and self.name in str(answer):
                return
            assert time.monotonic() < deadline, f"policy {self.name} not in effect after {timeout}s: {status} {answer}"
            time.sleep(0.1)

    def remove(self) -> None:
        base = "/apis/admissionregistration.k8s.io/v1"
        for kind in ("validatingadmissionpolicybindings", "validatingadmissionpolicies"):
            self.kube.request("DELETE", f"{base}/{kind}/{self.name}")


@pytest.fixture
def refuse_writes(kube):
    """refuse_writes(namespace, vs_name) -> an installed RefusedWrites (removed after the test)."""
    made: list[RefusedWrites] = []

    def install(namespace: str, vs_name: str) -> RefusedWrites:
        refusal = RefusedWrites(kube, namespace, vs_name)
        refusal.install()
        made.append(refusal)
        return refusal

    yield install
    for refusal in made:
        refusal.remove()
