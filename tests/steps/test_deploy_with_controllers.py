"""`deploy --wait` on a control plane where pods really get scheduled and run
(kube-controller-manager, kube-scheduler, kwok's fake nodes)."""

from __future__ import annotations

import json
import uuid

import pytest
from kubernetes import client

from graysteps.model.manifests import render_manifests
from graysteps.steps.deploy import deploy
from graysteps.errors import GraystepsError


@pytest.fixture
def namespace(kube_with_workloads):
    name = f"gray-{uuid.uuid4().hex[:8]}"
    with kube_with_workloads.api_client() as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}}, _preload_content=False)
        yield api, name


@pytest.mark.world
def test_wait_returns_once_the_controllers_rolled_out_every_replica(namespace, service_in_namespaces):
    api, ns = namespace
    spec = service_in_namespaces("test-a", "unused-prod", ns)
    lines: list[str] = []
    result = deploy(render_manifests(spec, "gray", "registry.example:5000/test-a:1", replicas=3), api_client=api,
                    wait=True, timeout=60, log=lines.append)
    assert result.rollout.done, lines
    pods = json.loads(client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="app=test-a,profile=gray",
                                                                 _preload_content=False).data)["items"]
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Running"}
    assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods)

    # A new version rolls out too: the old ReplicaSet's pods go away, the new image runs everywhere.
    result = deploy(render_manifests(spec, "gray", "registry.example:5000/test-a:2", replicas=3), api_client=api,
                    wait=True, timeout=60, log=lines.append)
    assert result.rollout.done, lines
    dep = json.loads(client.AppsV1Api(api).read_namespaced_deployment("test-a", ns, _preload_content=False).data)
    assert dep["status"]["updatedReplicas"] == dep["status"]["availableReplicas"] == 3
    assert dep["status"]["observedGeneration"] == dep["metadata"]["generation"] == 2


@pytest.fixture
def nodes_cordoned(kube_with_workloads):
    """Every fake node tainted NoSchedule for the test (pods stay Pending), untainted afterwards."""
    with kube_with_workloads.api_client() as api:
        core = client.CoreV1Api(api)
        names = [n["metadata"]["name"] for n in json.loads(core.list_node(_preload_content=False).data)["items"]]
        taint = {"spec": {"taints": [{"key": "graysteps.test/maintenance", "effect": "NoSchedule"}]}}
        for name in names:
            core.patch_node(name, taint, _content_type="application/merge-patch+json", _preload_content=False)
        try:
            yield names
        finally:
            for name in names:
                core.patch_node(name, {"spec": {"taints": None}}, _content_type="application/merge-patch+json",
                                _preload_content=False)


@pytest.mark.world
def test_wait_reports_the_real_progress_deadline_and_the_events_that_explain_it(namespace, nodes_cordoned,
                                                                               service_in_namespaces):
    api, ns = namespace
    spec = service_in_namespaces("test-a", "unused-prod", ns)
    with pytest.raises(GraystepsError) as caught:
        deploy(render_manifests(spec, "gray", "registry.example:5000/test-a:1", progress_deadline_seconds=2),
               api_client=api, wait=True, timeout=60)
    message = caught.value.message
    assert "exceeded its progress deadline" in message
    assert "Progressing=False ProgressDeadlineExceeded" in message
    assert "FailedScheduling" in message and "untolerated taint" in message  # the events say why
