"""Deploy a service to its prod or gray environment: apply the rendered
Deployment and Service (server-side apply), optionally create the namespace
first, and follow the rollout.

    manifests = render_manifests(spec, "gray", "registry:5000/test-a:1.4.2", replicas=2)
    result = deploy(manifests, api_client=api, wait=True)      # -> DeployResult

A HorizontalPodAutoscaler that scales the Deployment keeps its replica count:
a release never scales the service back to `--replicas`
(see graysteps.adapters.kube.workloads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from graysteps.adapters.kube.workloads import (
    AppliedObject, RolloutStatus, apply_object, ensure_namespace, leave_replicas_to_autoscaler, wait_for_rollout,
)
from graysteps.model.manifests import Manifests

STEP = "deploy"


@dataclass(frozen=True)
class DeployResult:
    service: str
    env: str
    image: str
    changed: bool
    objects: list[AppliedObject]
    namespace_created: bool = False
    rollout: RolloutStatus | None = None
    autoscaler: str | None = None  # the HorizontalPodAutoscaler that owns the replica count, if any

    def to_json(self) -> dict:
        return {
            "service": self.service, "env": self.env, "image": self.image, "changed": self.changed,
            "namespace_created": self.namespace_created, "autoscaler": self.autoscaler,
            "objects": [{"kind": o.kind, "namespace": o.namespace, "name": o.name, "changed": o.changed,
                         "generation": o.generation} for o in self.objects],
            "rollout": self.rollout.message if self.rollout else None,
        }


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
