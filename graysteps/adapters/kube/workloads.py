"""Namespaces, Deployments, Services and HorizontalPodAutoscalers: the only product
code that reads or writes them.

Deployments and Services are written with server-side apply (field manager
`graysteps`). The one thing to know: a HorizontalPodAutoscaler that scales a
Deployment owns its replica count, so `leave_replicas_to_autoscaler` drops
`spec.replicas` from what is applied; a count graysteps still owns is first
handed to a field manager of its own at its live value ("Transferring
ownership" in the Kubernetes docs), so that dropping it does not reset it to 1.
A rollout is judged as `kubectl rollout status` judges it (`RolloutStatus.of`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from graysteps.adapters.kube.errors import apiserver_error
from graysteps.errors import GraystepsError

FIELD_MANAGER = "graysteps"
HANDOVER_MANAGER = "graysteps-handover-to-hpa"
DEPLOY_HINTS = {404: "create the namespace first, or pass --create-namespace",
                422: "the rendered object is invalid; run `graysteps render` with the same arguments to see it"}


def _api_error(action: str, kind: str, namespace: str, name: str, error: Exception) -> GraystepsError:
    return apiserver_error(f"{action} {kind} {namespace}/{name} failed", error, hints=DEPLOY_HINTS)


@dataclass(frozen=True)
class AppliedObject:
    kind: str
    namespace: str
    name: str
    changed: bool  # the apiserver's resourceVersion moved (or the object was created)
    generation: int | None
    object: dict = field(repr=False)


def _raw(call: Callable, *args, **kwargs) -> dict:
    """Call a kubernetes client method and return the JSON answer as a dict."""
    response = call(*args, _preload_content=False, **kwargs)
    return json.loads(response.data)


def ensure_namespace(api_client, namespace: str) -> bool:
    """Create `namespace` if it is missing; True when it was created."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api_client)
    try:
        core.read_namespace(namespace, _preload_content=False)
        return False
    except ApiException as e:
        if e.status != 404:
            raise _api_error("reading", "Namespace", "", namespace, e) from e
    try:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": namespace, "labels": {"istio-injection": "enabled"}}},
                              field_manager=FIELD_MANAGER, _preload_content=False)
    except ApiException as e:
        if e.status == 409:
            return False
        raise _api_error("creating", "Namespace", "", namespace, e) from e
    return True


def apply_object(api_client, obj: dict, *, dry_run: bool = False) -> AppliedObject:
    """Server-side apply of one Deployment or Service (field manager graysteps, force)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    kind, meta = obj["kind"], obj["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if kind == "Deployment":
        api = client.AppsV1Api(api_client)
        read, patch = api.read_namespaced_deployment, api.patch_namespaced_deployment
    elif kind == "Service":
        api = client.CoreV1Api(api_client)
        read, patch = api.read_namespaced_service, api.patch_namespaced_service
    else:
        raise GraystepsError(f"cannot apply kind {kind}: graysteps deploys Deployments and Services")
    try:
        before = _raw(read, name, namespace)
    except ApiException as e:
        if e.status != 404:
            raise _api_error("reading", kind, namespace, name, e) from e
        before = None
    extra = {"dry_run": "All"} if dry_run else {}
    try:
        after = _raw(patch, name, namespace, body=obj, field_manager=FIELD_MANAGER, force=True,
                     _content_type="application/apply-patch+yaml", **extra)
    except ApiException as e:
        raise _api_error("applying", kind, namespace, name, e) from e
    changed = before is None or before["metadata"]["resourceVersion"] != after["metadata"]["resourceVersion"]
    return AppliedObject(kind, namespace, name, changed, after["metadata"].get("generation"), after)


def find_autoscaler(api_client, namespace: str, deployment: str,
                    log: Callable[[str], None] = lambda line: None) -> dict | None:
    """The HorizontalPodAutoscaler (autoscaling/v2) that scales this Deployment, if any.

    Without the right to list autoscalers, says so and returns None: deploy
    then sets the replica count as it always did.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        found = _raw(client.AutoscalingV2Api(api_client).list_namespaced_horizontal_pod_autoscaler, namespace)
    except ApiException as e:
        if e.status != 403:
            raise _api_error("listing", "HorizontalPodAutoscalers", namespace, "*", e) from e
        log(f"warning: may not list HorizontalPodAutoscalers in {namespace} (403): replicas are set as given; "
            "grant list on horizontalpodautoscalers so that deploy leaves them to an autoscaler")
        return None
    for hpa in found.get("items", []):
        target = hpa["spec"]["scaleTargetRef"]
        if (target.get("kind"), target.get("name")) == ("Deployment", deployment) \
                and target.get("apiVersion", "apps/v1").split("/")[0] == "apps":
            return hpa
    return None


def owns_replicas(live: Mapping[str, Any], manager: str = FIELD_MANAGER) -> bool:
    """`manager` applied `spec.replicas` of this live object (its managedFields say so)."""
    return any(
        m.get("manager") == manager and m.get("operation") == "Apply"
        and "f:replicas" in (m.get("fieldsV1") or {}).get("f:spec", {})
        for m in live["metadata"].get("managedFields") or []
    )


def leave_replicas_to_autoscaler(api_client, deployment: dict, *, dry_run: bool = False,
                                 log: Callable[[str], None] = lambda line: None) -> tuple[dict, str | None]:
    """(the Deployment to apply, the autoscaler's name or None).

    With an autoscaler, `spec.replicas` leaves the applied Deployment, unless
    the Deployment is new: then it starts with the replica count given,
    raised to the autoscaler's minimum. A count graysteps still owns is first
    handed to HANDOVER_MANAGER at its live value (a conflict means the
    autoscaler took the field already: fine).
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    meta = deployment["metadata"]
    hpa = find_autoscaler(api_client, meta["namespace"], meta["name"], log)
    if hpa is None:
        return deployment, None
    name = hpa["metadata"]["name"]
    apps = client.AppsV1Api(api_client)
    try:
        live = _raw(apps.read_namespaced_deployment, meta["name"], meta["namespace"])
    except ApiException as e:
        if e.status != 404:
            raise _api_error("reading", "Deployment", meta["namespace"], meta["name"], e) from e
        live = None
    if live is None:
        first = max(deployment["spec"].get("replicas", 1), hpa["spec"].get("minReplicas") or 1)
        log(f"deployment/{meta['name']}: new, starts with {first} replicas; "
            f"HorizontalPodAutoscaler {name} scales it from then on")
        return {**deployment, "spec": {**deployment["spec"], "replicas": first}}, name
    now = live["spec"].get("replicas", 1)
    log(f"deployment/{meta['name']}: replicas left to HorizontalPodAutoscaler {name} (now {now})")
    if owns_replicas(live):
        if dry_run:  # a dry-run handover is not kept: preview the outcome, the live count unchanged
            return {**deployment, "spec": {**deployment["spec"], "replicas": now}}, name
        handover = {"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                    "spec": {"replicas": now}}
        try:
            apps.patch_namespaced_deployment(meta["name"], meta["namespace"], handover, field_manager=HANDOVER_MANAGER,
                                             _content_type="application/apply-patch+yaml", _preload_content=False)
        except ApiException as e:
            if e.status != 409:
                raise _api_error("handing replicas over to the autoscaler of", "Deployment", meta["namespace"],
                                 meta["name"], e) from e
    spec = {k: v for k, v in deployment["spec"].items() if k != "replicas"}
    return {**deployment, "spec": spec}, name


@dataclass(frozen=True)
class RolloutStatus:
    """One look at a Deployment, judged as `kubectl rollout status` does."""

    done: bool
    failed: bool
    message: str

    @classmethod
    def of(cls, deployment: Mapping[str, Any]) -> "RolloutStatus":
        meta, spec, status = deployment["metadata"], deployment.get("spec", {}), deployment.get("status") or {}
        name = meta["name"]
        if meta.get("generation", 0) > status.get("observedGeneration", 0):
            return cls(False, False, f"waiting for deployment {name!r} spec update to be observed "
                                     f"(generation {meta.get('generation')}, observed {status.get('observedGeneration', 0)})")
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
                return cls(False, True, f"deployment {name!r} exceeded its progress deadline: "
                                        f"{condition.get('message', '')}".rstrip(": "))
        wanted = spec.get("replicas", 1)
        updated = status.get("updatedReplicas", 0)
        replicas = status.get("replicas", 0)
        available = status.get("availableReplicas", 0)
        if updated < wanted:
            return cls(False, False, f"waiting for deployment {name!r} rollout to finish: "
                                     f"{updated} out of {wanted} new replicas have been updated")
        if replicas > updated:
            return cls(False, False, f"waiting for deployment {name!r} rollout to finish: "
                                     f"{replicas - updated} old replicas are pending termination")
        if available < updated:
            return cls(False, False, f"waiting for deployment {name!r} rollout to finish: "
                                     f"{available} of {updated} updated replicas are available")
        return cls(True, False, f"deployment {name!r} successfully rolled out")


def read_rollout(api_client, namespace: str, name: str) -> tuple[dict, RolloutStatus]:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        deployment = _raw(client.AppsV1Api(api_client).read_namespaced_deployment, name, namespace)
    except ApiException as e:
        if e.status == 404:
            raise GraystepsError(f"deployment {namespace}/{name} does not exist; run `graysteps deploy` first",
                                 ) from e
        raise _api_error("reading", "Deployment", namespace, name, e) from e
    return deployment, RolloutStatus.of(deployment)


def wait_for_rollout(api_client, namespace: str, name: str, *, timeout: float = 600.0, interval: float = 0.2,
                     log: Callable[[str], None] = lambda line: None) -> RolloutStatus:
    """Follow the rollout until it is complete; GraystepsError with conditions and events when it fails."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        deployment, status = read_rollout(api_client, namespace, name)
        if status.message != last:
            log(status.message)
            last = status.message
        if status.done:
            return status
        if status.failed or time.monotonic() >= deadline:
            reason = status.message if status.failed else f"timed out after {timeout:g}s: {status.message}"
            raise GraystepsError(
                f"rollout of deployment {namespace}/{name} failed: {reason}\n"
                + describe_failure(api_client, deployment)
                + "\nnext: fix the cause above, then rerun the deploy (or `graysteps route --strategy rollback`)",
                result=status)
        time.sleep(interval)


def describe_failure(api_client, deployment: Mapping[str, Any]) -> str:
    """The Deployment's conditions and the recent events of it and its ReplicaSets/Pods, as text."""
    lines = ["conditions:"]
    for c in (deployment.get("status") or {}).get("conditions") or []:
        lines.append(f"  {c.get('type')}={c.get('status')} {c.get('reason', '')}: {c.get('message', '')}")
    if len(lines) == 1:
        lines.append("  (none: is kube-controller-manager running?)")
    lines.append("events:")
    events = deployment_events(api_client, deployment)
    lines += [f"  {e}" for e in events] or ["  (none)"]
    return "\n".join(lines)


def deployment_events(api_client, deployment: Mapping[str, Any], limit: int = 20) -> list[str]:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    meta = deployment["metadata"]
    name = meta["name"]
    try:
        events = _raw(client.CoreV1Api(api_client).list_namespaced_event, meta["namespace"])["items"]
    except ApiException:
        return ["(events could not be read)"]
    mine = [e for e in events
            if (e.get("involvedObject") or {}).get("name") == name
            or (e.get("involvedObject") or {}).get("name", "").startswith(name + "-")]
    mine.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or e["metadata"].get("creationTimestamp") or "")
    return [f"{e.get('type', '')} {e['involvedObject'].get('kind')}/{e['involvedObject'].get('name')} "
            f"{e.get('reason', '')}: {e.get('message', '')}" for e in mine[-limit:]]


def list_deployments(namespaces, api: Any) -> dict[tuple[str, str], dict]:
    """Every Deployment in `namespaces`, by (namespace, name): one LIST per namespace
    (`api`: a transport from graysteps.adapters.kube.rest, or an ApiClient)."""
    from graysteps.adapters.kube.rest import as_transport

    found = {}
    with as_transport(api) as transport:
        for ns in sorted(namespaces):
            for item in transport.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments").get("items", []):
                found[(ns, item["metadata"]["name"])] = item
    return found
