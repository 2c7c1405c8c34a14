"""What every catalog service runs and how its traffic is routed, at a glance.

    rows = fleet_status(catalog.services(), api)   # api: graysteps.adapters.kube.rest.connect(...)

For each service: the strategy graysteps recorded on its VirtualService and
whether the live routes still match it (`as set`, or `CHANGED BY HAND`), and
the version and readiness of its gray and prod Deployments. Read-only: one
LIST of VirtualServices per API version and one LIST of Deployments per
namespace, however many services there are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.model.catalog import ServiceSpec

AS_SET, CHANGED, NO_STRATEGY, NO_VS = "as set", "CHANGED BY HAND", "no graysteps strategy", "no VirtualService"


@dataclass(frozen=True)
class Workload:
    """One Deployment: its version label and whether its rollout is done."""

    present: bool
    version: str = ""
    ready: str = ""  # "available/wanted"
    rolled_out: bool = False
    message: str = ""

    def cell(self) -> str:
        if not self.present:
            return "absent"
        return f"{self.version or '?'} {self.ready} ready" + ("" if self.rolled_out else " (rolling out)")


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    virtual_service: str  # namespace/name
    strategy: str  # Strategy.label, or "-"
    routes: str  # AS_SET, CHANGED, NO_STRATEGY or NO_VS
    gray: Workload
    prod: Workload

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fleet_status(services: Sequence["ServiceSpec"], api: Any) -> list[ServiceStatus]:
    """The status of each service, in the order given."""
    from graysteps.adapters.kube.istio import list_virtual_services
    from graysteps.adapters.kube.workloads import list_deployments
    from graysteps.model.manifests import deployment_ref

    virtual_services = list_virtual_services(services, api)
    namespaces = {deployment_ref(s, env)[0] for s in services for env in ("gray", "prod")}
    deployments = list_deployments(namespaces, api)
    return [_status(s, virtual_services.get((s.vs_namespace, s.vs_name)), deployments) for s in services]


def _status(service: "ServiceSpec", vs: dict | None, deployments: dict[tuple[str, str], dict]) -> ServiceStatus:
    from graysteps.model.manifests import deployment_ref
    from graysteps.routing.operations import conforms, current_strategy

    strategy = current_strategy(vs)
    if vs is None:
        routes = NO_VS
    elif strategy is None:
        routes = NO_STRATEGY
    else:
        routes = AS_SET if conforms(vs, service, strategy) else CHANGED
    workloads = {env: _workload(deployments.get(deployment_ref(service, env))) for env in ("gray", "prod")}
    return ServiceStatus(service.name, f"{service.vs_namespace}/{service.vs_name}",
                         strategy.label if strategy else "-", routes, workloads["gray"], workloads["prod"])


def _workload(deployment: dict | None) -> Workload:
    from graysteps.adapters.kube.workloads import RolloutStatus

    if deployment is None:
        return Workload(False)
    labels = deployment["metadata"].get("labels") or {}
    status = deployment.get("status") or {}
    rollout = RolloutStatus.of(deployment)
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    return Workload(True, labels.get("version", ""), f"{status.get('availableReplicas', 0)}/{wanted}",
                    rollout.done, rollout.message)


def table(rows: Sequence[ServiceStatus]) -> list[str]:
    """The rows as an aligned text table, header first."""
    cells = [("SERVICE", "STRATEGY", "ROUTES", "GRAY", "PROD", "VIRTUALSERVICE")] + [
        (r.service, r.strategy, r.routes, r.gray.cell(), r.prod.cell(), r.virtual_service) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
