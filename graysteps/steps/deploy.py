"""Deploy a service to its prod or gray environment: render the Deployment and
Service from the templates in resources/k8s/, apply them with server-side
apply (field manager `graysteps`), and follow the rollout.

    manifests = render_manifests(spec, "gray", "registry:5000/test-a:1.4.2", replicas=2)
    result = apply_manifests(manifests, api_client=api)              # -> DeployResult
    wait_for_rollout(api, "gray", "test-a", timeout=300)              # like kubectl rollout status

Templates are parsed first (yaml.safe_load) and filled afterwards, value by
value, so no input can add or change YAML structure. Groovy reads the same
files with libraryResource.

A HorizontalPodAutoscaler that scales the Deployment owns its replica count:
deploy then leaves `spec.replicas` out of what it applies, so a release never
scales the service back to `--replicas`. If graysteps still owns the field
(the autoscaler has not changed it yet), the live count is first handed over
to a field manager of its own, as the Kubernetes docs show ("Transferring
ownership"), so that dropping it does not reset it to the default of 1.
"""

from __future__ import annotations

import json
import os
import re
import string
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from graysteps.steps.build import ImageReference, parse_image, read_build_record
from graysteps.errors import GraystepsError, InvalidInput

STEP = "deploy"
FIELD_MANAGER = "graysteps"
HANDOVER_MANAGER = "graysteps-handover-to-hpa"
ENVIRONMENTS = ("prod", "gray")
TEMPLATES = ("deployment.yaml", "service.yaml")
DEFAULT_PROGRESS_DEADLINE = 600
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def resources_dir() -> Path:
    """resources/k8s: $GRAYSTEPS_RESOURCES/k8s, else the checkout's (next to the package), else the
    copy a wheel installs under <prefix>/share/graysteps/resources (setup.cfg's data_files)."""
    candidates = []
    if os.environ.get("GRAYSTEPS_RESOURCES"):
        candidates.append(Path(os.environ["GRAYSTEPS_RESOURCES"]) / "k8s")
    checkout = Path(__file__).resolve().parents[2]  # graysteps/steps/deploy.py -> the checkout
    candidates += [checkout / "resources" / "k8s",
                   Path(sys.prefix) / "share" / "graysteps" / "resources" / "k8s"]
    for candidate in candidates:
        if all((candidate / t).is_file() for t in TEMPLATES):
            return candidate
    raise GraystepsError(f"the Kubernetes templates {', '.join(TEMPLATES)} were not found in "
                         f"{', '.join(map(str, candidates))}; set GRAYSTEPS_RESOURCES to the library's resources/",
                         step=STEP)


def check_environment(env: str) -> str:
    if env not in ENVIRONMENTS:
        raise InvalidInput(f"--env {env!r} is not allowed: use one of {', '.join(ENVIRONMENTS)}")
    return env


def parse_replicas(value: object) -> int:
    """A replica count 0-1000 (int or its decimal text); InvalidInput otherwise."""
    from graysteps.model.numbers import parse_int

    return parse_int(value, "--replicas", 0, 1000)


def label_value(text: str) -> str:
    """`text` made a valid label value (≤63 chars of [A-Za-z0-9-_.], alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63].strip("-_.")
    return value if _LABEL_VALUE_RE.match(value) else "unknown"


def image_version(image: ImageReference) -> str:
    """The `version` label: the tag, else the digest's first 12 hex digits."""
    if image.tag:
        return label_value(image.tag)
    if image.digest:
        return image.digest.split(":", 1)[1][:12]
    return "latest"


def pin_image(image: ImageReference, service: str, record_path: str | None = None) -> ImageReference:
    """`image` pinned by the digest `graysteps build --push` recorded for the same repository:tag."""
    if image.digest:
        return image
    record = read_build_record(service, record_path)
    if record is None or not record.digest:
        return image
    built = parse_image(record.image, what="build record image")
    if (built.repository, built.tag) != (image.repository, image.tag):
        return image
    return image.pinned(record.digest)


def deployment_ref(spec: Any, env: str) -> tuple[str, str]:
    """(namespace, name) of the Deployment of catalog service `spec` in `env`.

    Namespace layout (the seed's): `<service>` in the env's namespace. Subsets
    layout (one namespace): `<service>-<env>`.
    """
    check_environment(env)
    name = f"{spec.name}-{env}" if getattr(spec, "layout", "namespaces") == "subsets" else spec.name
    return spec.namespaces[env], name


@dataclass(frozen=True)
class Manifests:
    """The rendered objects of one service in one environment."""

    service: str
    env: str
    image: str
    deployment: dict
    service_object: dict

    @property
    def objects(self) -> list[dict]:
        return [self.deployment, self.service_object]

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump_all(self.objects, sort_keys=False, default_flow_style=False)


def render_manifests(spec: Any, env: str, image: str, *, replicas: int = 1,
                     progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE,
                     template_dir: str | os.PathLike | None = None) -> Manifests:
    """The Deployment and Service of catalog service `spec` in `env`, running `image`.

    `spec` is a catalog ServiceSpec (name, layout, namespaces, port). Raises
    InvalidInput for an unknown env, a bad image reference or replica count.
    """
    import yaml

    check_environment(env)
    ref = parse_image(image)
    replicas = parse_replicas(replicas)
    service = spec.name
    namespace, deployment_name = deployment_ref(spec, env)
    version = image_version(ref)
    shared_namespace = getattr(spec, "layout", "namespaces") == "subsets"
    selector = {"app": service, "profile": env}
    labels = {
        **selector,
        "version": version,
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/instance": f"{service}-{env}",
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
    }
    # Subsets layout: one Service in front of both profiles; DestinationRule subsets split by `profile`.
    service_labels = ({"app": service, "app.kubernetes.io/name": service, "app.kubernetes.io/managed-by": FIELD_MANAGER}
                      if shared_namespace else labels)
    values = {
        "service": service, "namespace": namespace, "profile": env, "image": str(ref),
        "deployment_name": deployment_name,
        "replicas": replicas, "port": int(spec.port), "progress_deadline_seconds": progress_deadline_seconds,
        "labels": labels, "selector": selector,
        "service_labels": service_labels, "service_selector": {"app": service} if shared_namespace else selector,
    }
    directory = Path(template_dir) if template_dir else resources_dir()
    rendered = []
    for name in TEMPLATES:
        template = yaml.safe_load((directory / name).read_text(encoding="utf-8"))
        rendered.append(fill_template(template, values, where=str(directory / name)))
    return Manifests(service, env, str(ref), rendered[0], rendered[1])


_PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")


def fill_template(node: Any, values: Mapping[str, Any], *, where: str) -> Any:
    """A copy of the parsed template with every `${name}` filled from `values`.

    A scalar that is exactly `${name}` becomes the value itself (any type, a
    deep copy); placeholders inside longer strings are formatted as text.
    """
    if isinstance(node, dict):
        return {fill_template(k, values, where=where): fill_template(v, values, where=where) for k, v in node.items()}
    if isinstance(node, list):
        return [fill_template(v, values, where=where) for v in node]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        for name in _PLACEHOLDER.findall(node):
            if name not in values:
                raise GraystepsError(f"template {where} uses ${{{name}}}, which graysteps does not provide; "
                                     f"known: {', '.join(sorted(values))}", step=STEP)
        if whole:
            return json.loads(json.dumps(values[whole.group(1)]))
        return string.Template(node).substitute({k: str(v) for k, v in values.items()})
    return node


# -- applying --------------------------------------------------------------


@dataclass(frozen=True)
class AppliedObject:
    kind: str
    namespace: str
    name: str
    changed: bool  # the apiserver's resourceVersion moved (or the object was created)
    generation: int | None
    object: dict = field(repr=False)


@dataclass(frozen=True)
class DeployResult:
    service: str
    env: str
    image: str
    changed: bool
    objects: list[AppliedObject]
    namespace_created: bool = False
    rollout: "RolloutStatus | None" = None
    autoscaler: str | None = None  # the HorizontalPodAutoscaler that owns the replica count, if any

    def to_json(self) -> dict:
        return {
            "service": self.service, "env": self.env, "image": self.image, "changed": self.changed,
            "namespace_created": self.namespace_created, "autoscaler": self.autoscaler,
            "objects": [{"kind": o.kind, "namespace": o.namespace, "name": o.name, "changed": o.changed,
                         "generation": o.generation} for o in self.objects],
            "rollout": self.rollout.message if self.rollout else None,
        }


def _raw(call: Callable, *args, **kwargs) -> dict:
    """Call a kubernetes client method and return the JSON answer as a dict."""
    response = call(*args, _preload_content=False, **kwargs)
    return json.loads(response.data)


def _api_error(action: str, kind: str, namespace: str, name: str, error: Exception) -> GraystepsError:
    status = getattr(error, "status", None)
    body = getattr(error, "body", None)
    try:
        detail = json.loads(body).get("message", body) if body else str(error)
    except (ValueError, TypeError, AttributeError):
        detail = str(body or error)
    hint = {403: "check the kubeconfig's permissions (RBAC)",
            404: "create the namespace first, or pass --create-namespace",
            422: "the rendered object is invalid; run `graysteps render` with the same arguments to see it"}.get(
        status, "check the cluster connection (--kubeconfig) and retry")
    return GraystepsError(f"{action} {kind} {namespace}/{name} failed ({status}): {detail}; {hint}", step=STEP)


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
        raise GraystepsError(f"cannot apply kind {kind}: graysteps deploys Deployments and Services", step=STEP)
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


def deploy(manifests: Manifests, *, api_client, create_namespace: bool = False, dry_run: bool = False,
           wait: bool = False, timeout: float = 600.0, log: Callable[[str], None] = lambda line: None) -> DeployResult:
    """Apply `manifests` (namespace first when asked), optionally wait for the rollout."""
    namespace = manifests.deployment["metadata"]["namespace"]
    created = ensure_namespace(api_client, namespace) if create_namespace and not dry_run else False
    deployment, autoscaler = leave_replicas_to_autoscaler(api_client, manifests.deployment, dry_run=dry_run, log=log)
    applied = [apply_object(api_client, obj, dry_run=dry_run) for obj in (deployment, manifests.service_object)]
    for o in applied:
        log(f"{o.kind.lower()}/{o.name} in {o.namespace}: {'configured' if o.changed else 'unchanged'}"
            + (" (dry run)" if dry_run else ""))
    rollout = None
    if wait and not dry_run:
        rollout = wait_for_rollout(api_client, namespace, manifests.deployment["metadata"]["name"],
                                   timeout=timeout, log=log)
    return DeployResult(manifests.service, manifests.env, manifests.image, any(o.changed for o in applied),
                        applied, created, rollout, autoscaler)


# -- a HorizontalPodAutoscaler owns the replica count ------------------------


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


# -- rollout status --------------------------------------------------------


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
                                 step=STEP) from e
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
                step=STEP, result=status)
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
