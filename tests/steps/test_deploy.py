"""`graysteps deploy` on the real apiserver: server-side apply, digest pinning, following the rollout.

No kubelet or controllers run: the tests move the Deployment's status through
the /status subresource, the way a controller would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from kubernetes import client

from graysteps.model.images import BuildResult, write_build_record
from graysteps.adapters.kube.workloads import FIELD_MANAGER, RolloutStatus, wait_for_rollout
from graysteps.model.manifests import render_manifests
from graysteps.steps.deploy import deploy
from graysteps.errors import GraystepsError
from tests.fixtures.workloads import argv_with, assert_refused, rolled_out, set_deployment_status

DIGEST = "sha256:" + "ab" * 32


def read(api, namespace, name) -> dict:
    return json.loads(client.AppsV1Api(api).read_namespaced_deployment(name, namespace, _preload_content=False).data)


@pytest.mark.world
def test_deploy_applies_labelled_deployment_and_service_with_field_manager_graysteps(api, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-a", "unused-prod", fresh_namespace)
    result = deploy(render_manifests(spec, "gray", "registry.example:5000/test-a:1.4.2", replicas=2), api_client=api)
    assert result.changed and [o.kind for o in result.objects] == ["Deployment", "Service"]
    dep = read(api, fresh_namespace, "test-a")
    labels = dep["metadata"]["labels"]
    assert labels["app"] == "test-a" and labels["profile"] == "gray" and labels["version"] == "1.4.2"
    assert labels["app.kubernetes.io/name"] == "test-a" and labels["app.kubernetes.io/managed-by"] == "graysteps"
    assert dep["spec"]["template"]["metadata"]["labels"]["profile"] == "gray"
    assert dep["spec"]["replicas"] == 2
    assert {m["manager"] for m in dep["metadata"]["managedFields"]} == {FIELD_MANAGER}
    assert all(m["operation"] == "Apply" for m in dep["metadata"]["managedFields"])
    svc = json.loads(client.CoreV1Api(api).read_namespaced_service("test-a", fresh_namespace,
                                                                   _preload_content=False).data)
    assert svc["spec"]["selector"] == {"app": "test-a", "profile": "gray"}
    assert svc["spec"]["ports"][0]["name"] == "http"


@pytest.mark.world
def test_deploying_the_same_thing_twice_changes_nothing(api, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-a", fresh_namespace, "unused-gray")
    manifests = render_manifests(spec, "prod", "registry.example:5000/test-a:1.0")
    deploy(manifests, api_client=api)
    before = read(api, fresh_namespace, "test-a")["metadata"]["resourceVersion"]
    again = deploy(manifests, api_client=api)
    assert again.changed is False
    assert read(api, fresh_namespace, "test-a")["metadata"]["resourceVersion"] == before


@pytest.mark.world
def test_a_new_image_bumps_the_generation_and_keeps_fields_other_managers_own(api, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-a", fresh_namespace, "unused-gray")
    deploy(render_manifests(spec, "prod", "registry.example:5000/test-a:1.0"), api_client=api)
    # Someone else (another field manager) adds an annotation graysteps does not own.
    client.AppsV1Api(api).patch_namespaced_deployment(
        "test-a", fresh_namespace, {"metadata": {"annotations": {"team.example/owner": "payments"}}},
        field_manager="kubectl-edit", _content_type="application/merge-patch+json", _preload_content=False)
    generation = read(api, fresh_namespace, "test-a")["metadata"]["generation"]
    result = deploy(render_manifests(spec, "prod", "registry.example:5000/test-a:1.1"), api_client=api)
    dep = read(api, fresh_namespace, "test-a")
    assert result.objects[0].generation == generation + 1
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example:5000/test-a:1.1"
    assert dep["metadata"]["annotations"]["team.example/owner"] == "payments"


@pytest.mark.world
def test_deploy_pins_the_image_to_the_digest_build_recorded(fresh_namespace, service_in_namespaces, kube, tmp_path):
    write_build_record(BuildResult("test-a", "gray", "registry.example:5000/test-a:1.4.2", "sha256:" + "0" * 64, {},
                                   pushed=True, digest=DIGEST), tmp_path / ".graysteps" / "build-test-a.json")
    catalog = write_catalog(tmp_path, service_in_namespaces, "test-a", "unused-prod", fresh_namespace)
    done = run_cli("deploy", "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--service", "test-a",
                   "--env", "gray", "--image", "registry.example:5000/test-a:1.4.2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with kube.api_client() as api:
        image = read(api, fresh_namespace, "test-a")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"registry.example:5000/test-a:1.4.2@{DIGEST}"
    # Another tag than the one built is not pinned with that digest.
    done = run_cli("deploy", "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--service", "test-a",
                   "--env", "gray", "--image", "registry.example:5000/test-a:1.4.3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with kube.api_client() as api:
        image = read(api, fresh_namespace, "test-a")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example:5000/test-a:1.4.3"


@pytest.mark.world
def test_create_namespace_creates_the_missing_namespace(api, service_in_namespaces):
    import uuid

    namespace = f"gray-{uuid.uuid4().hex[:8]}"
    spec = service_in_namespaces("test-b", "unused-prod", namespace)
    with pytest.raises(GraystepsError, match="--create-namespace"):
        deploy(render_manifests(spec, "gray", "test-b:1"), api_client=api)
    result = deploy(render_manifests(spec, "gray", "test-b:1"), api_client=api, create_namespace=True)
    assert result.namespace_created and result.changed
    client.CoreV1Api(api).delete_namespace(namespace)


@pytest.mark.world
def test_wait_follows_the_rollout_until_every_replica_is_updated_and_available(api, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-a", "unused-prod", fresh_namespace)
    deploy(render_manifests(spec, "gray", "test-a:2", replicas=2), api_client=api)
    seen: list[str] = []
    outcome: dict = {}

    def waiter():
        try:
            outcome["status"] = wait_for_rollout(api, fresh_namespace, "test-a", timeout=30, interval=0.05,
                                                 log=seen.append)
        except Exception as e:  # noqa: BLE001 (reported by the assertion below)
            outcome["error"] = e

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    steps = [
        {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 0, "availableReplicas": 0},
        {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1},
    ]
    for status in steps:
        set_deployment_status(api, fresh_namespace, "test-a", **status)
        time.sleep(0.5)
        assert thread.is_alive(), outcome  # still waiting: not every replica is there yet
    set_deployment_status(api, fresh_namespace, "test-a", **rolled_out(1, 2))
    thread.join(timeout=10)
    assert outcome.get("status") and outcome["status"].done, outcome
    assert any("1 out of 2 new replicas have been updated" in line for line in seen), seen
    assert any("1 of 2 updated replicas are available" in line for line in seen), seen
    assert seen[-1] == "deployment 'test-a' successfully rolled out"


@pytest.mark.world
def test_wait_via_the_cli_fails_with_conditions_and_events_when_the_progress_deadline_passes(
        fresh_namespace, service_in_namespaces, kube, tmp_path):
    catalog = write_catalog(tmp_path, service_in_namespaces, "test-a", "unused-prod", fresh_namespace)
    proc = subprocess.Popen(
        [sys.executable, "-m", "graysteps", "deploy", "--catalog", catalog, "--kubeconfig", kube.kubeconfig,
         "--service", "test-a", "--env", "gray", "--image", "registry.example:5000/test-a:9", "--replicas", "3",
         "--wait", "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        with kube.api_client() as api:
            wait_until(lambda: exists(api, fresh_namespace, "test-a"))
            client.CoreV1Api(api).create_namespaced_event(fresh_namespace, {
                "metadata": {"name": "test-a-7d9c.1"},
                "involvedObject": {"kind": "ReplicaSet", "name": "test-a-7d9c", "namespace": fresh_namespace},
                "reason": "FailedCreate", "type": "Warning",
                "message": 'pods "test-a-7d9c-x" is forbidden: exceeded quota: compute',
            }, _preload_content=False)
            set_deployment_status(api, fresh_namespace, "test-a", observedGeneration=1, replicas=1, updatedReplicas=1,
                                  readyReplicas=0, availableReplicas=0, conditions=[{
                                      "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                      "message": 'ReplicaSet "test-a-7d9c" has timed out progressing.'}])
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert out == ""
    assert "exceeded its progress deadline" in err
    assert 'ReplicaSet "test-a-7d9c" has timed out progressing.' in err
    assert "exceeded quota: compute" in err  # the events say why


@pytest.mark.world
def test_wait_times_out_with_a_hint_when_no_controller_observes_the_deployment(api, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-a", "unused-prod", fresh_namespace)
    with pytest.raises(GraystepsError) as caught:
        deploy(render_manifests(spec, "gray", "test-a:3"), api_client=api, wait=True, timeout=1)
    assert "timed out after 1s" in caught.value.message
    assert "spec update to be observed" in caught.value.message
    assert "kube-controller-manager" in caught.value.message


def test_rollout_status_reads_like_kubectl():
    base = {"metadata": {"name": "d", "generation": 2}, "spec": {"replicas": 3}}
    assert "spec update to be observed" in RolloutStatus.of({**base, "status": {"observedGeneration": 1}}).message
    old = RolloutStatus.of({**base, "status": {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3,
                                               "availableReplicas": 3}})
    assert not old.done and "1 old replicas are pending termination" in old.message
    assert RolloutStatus.of({**base, "status": rolled_out(2, 3)}).done


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def exists(api, namespace, name) -> bool:
    try:
        read(api, namespace, name)
        return True
    except client.exceptions.ApiException:
        return False


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.getcwd()})


def write_catalog(tmp_path, service_in_namespaces, name: str, prod: str, gray: str) -> str:
    """A copy of the example catalog with `name` living in the given namespaces (edited round-trip)."""
    from tests.fixtures.workloads import catalog_with_namespaces

    return catalog_with_namespaces(tmp_path / "catalog.yaml", name, prod, gray)


@pytest.mark.parametrize("args, named", [
    (["--env", "staging"], "'staging'"),
    (["--image", "registry.example:5000/Test-A:1"], "Test-A"),
    (["--service", "test-A"], "'test-A'"),
    (["--replicas", "many"], "'many'"),
])
def test_bad_deploy_input_is_refused_before_any_cluster_call(args, named, tmp_path):
    argv = argv_with({"--service": "test-a", "--env": "gray", "--image": "registry.example:5000/test-a:1"}, args)
    # The kubeconfig does not exist: reaching the cluster would be a different error.
    done = run_cli("deploy", *argv, "--catalog", os.path.abspath("examples/catalog.yaml"),
                   "--kubeconfig", str(tmp_path / "missing"), cwd=tmp_path)
    assert_refused(done, named)


def deploy_gray(api, spec, tag: str, replicas: int, **kw):
    """Deploy test-a:`tag` to gray with `replicas`."""
    return deploy(render_manifests(spec, "gray", f"registry.example:5000/test-a:{tag}", replicas=replicas), api_client=api, **kw)


def make_autoscaler(api, namespace: str, deployment: str, min_replicas: int = 2, max_replicas: int = 10) -> None:
    client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(namespace, {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"{deployment}-hpa"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
                 "minReplicas": min_replicas, "maxReplicas": max_replicas,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                               "target": {"type": "Utilization", "averageUtilization": 70}}}]},
    }, _preload_content=False)


def scale_as_the_autoscaler_does(api, namespace: str, deployment: str, replicas: int) -> None:
    """What the HPA controller does: write the /scale subresource."""
    client.AppsV1Api(api).patch_namespaced_deployment_scale(
        deployment, namespace, {"spec": {"replicas": replicas}}, field_manager="horizontal-pod-autoscaler",
        _content_type="application/merge-patch+json", _preload_content=False)


@pytest.mark.world
def test_a_release_never_scales_back_a_deployment_its_autoscaler_scaled(api, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-a", "unused-prod", fresh_namespace)
    deploy_gray(api, spec, "1.0", 2)
    make_autoscaler(api, fresh_namespace, "test-a")
    scale_as_the_autoscaler_does(api, fresh_namespace, "test-a", 7)
    lines = []
    result = deploy_gray(api, spec, "1.1", 2, log=lines.append)
    dep = read(api, fresh_namespace, "test-a")
    assert dep["spec"]["replicas"] == 7
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example:5000/test-a:1.1"
    assert result.autoscaler == "test-a-hpa" and result.to_json()["autoscaler"] == "test-a-hpa"
    assert "deployment/test-a: replicas left to HorizontalPodAutoscaler test-a-hpa (now 7)" in lines
    scale_as_the_autoscaler_does(api, fresh_namespace, "test-a", 4)  # and it keeps scaling freely
    deploy_gray(api, spec, "1.2", 2)
    assert read(api, fresh_namespace, "test-a")["spec"]["replicas"] == 4


@pytest.mark.world
def test_a_count_graysteps_still_owns_is_handed_over_not_reset_to_one(api, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-a", "unused-prod", fresh_namespace)
    deploy_gray(api, spec, "1.0", 3)
    make_autoscaler(api, fresh_namespace, "test-a")  # it has not scaled anything yet
    deploy_gray(api, spec, "1.1", 1)
    dep = read(api, fresh_namespace, "test-a")
    assert dep["spec"]["replicas"] == 3
    owners = {m["manager"] for m in dep["metadata"]["managedFields"] if "f:replicas" in m.get("fieldsV1", {}).get("f:spec", {})}
    assert owners == {"graysteps-handover-to-hpa"}  # graysteps let go of it
    scale_as_the_autoscaler_does(api, fresh_namespace, "test-a", 6)
    deploy_gray(api, spec, "1.2", 1)
    assert read(api, fresh_namespace, "test-a")["spec"]["replicas"] == 6


@pytest.mark.world
def test_a_dry_run_under_an_autoscaler_previews_the_count_kept_and_changes_nothing(api, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-a", "unused-prod", fresh_namespace)
    deploy_gray(api, spec, "1.0", 3)
    make_autoscaler(api, fresh_namespace, "test-a")  # graysteps still owns the count
    before = read(api, fresh_namespace, "test-a")
    result = deploy_gray(api, spec, "1.1", 1, dry_run=True)
    preview = result.objects[0].object
    assert preview["spec"]["replicas"] == 3
    assert preview["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example:5000/test-a:1.1"
    assert read(api, fresh_namespace, "test-a")["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


@pytest.mark.world
def test_a_new_deployment_under_an_autoscaler_starts_at_its_minimum(api, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-a", "unused-prod", fresh_namespace)
    make_autoscaler(api, fresh_namespace, "test-a", min_replicas=3)
    deploy_gray(api, spec, "1.0", 1)
    assert read(api, fresh_namespace, "test-a")["spec"]["replicas"] == 3


@pytest.mark.world
def test_without_an_autoscaler_deploy_sets_the_replica_count_given(api, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-a", "unused-prod", fresh_namespace)
    make_autoscaler(api, fresh_namespace, "test-b")  # scales another Deployment
    deploy_gray(api, spec, "1.0", 2)
    result = deploy_gray(api, spec, "1.0", 4)
    assert read(api, fresh_namespace, "test-a")["spec"]["replicas"] == 4 and result.autoscaler is None


@pytest.mark.world
def test_without_the_right_to_list_autoscalers_deploy_warns_and_sets_the_count_given(kube, api, fresh_namespace,
                                                                                      service_in_namespaces):
    from graysteps.adapters.kube.client import api_client

    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(fresh_namespace, {"metadata": {"name": "deployer"}, "rules": [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch", "create"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "patch", "create"]},
    ]}, _preload_content=False)  # no rule for autoscaling/horizontalpodautoscalers
    rbac.create_namespaced_role_binding(fresh_namespace, {
        "metadata": {"name": "deployer"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ci-deployer"}],
    }, _preload_content=False)
    make_autoscaler(api, fresh_namespace, "test-a")
    spec = service_in_namespaces("test-a", "unused-prod", fresh_namespace)
    lines = []
    with api_client(kube.user_kubeconfig("ci-deployer")) as narrow:
        result = deploy_gray(narrow, spec, "1.0", 2, log=lines.append)
    assert result.autoscaler is None and read(api, fresh_namespace, "test-a")["spec"]["replicas"] == 2
    assert any(line.startswith(f"warning: may not list HorizontalPodAutoscalers in {fresh_namespace} (403)") for line in lines)
