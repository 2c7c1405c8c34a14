"""Route one service: apply a strategy to its VirtualService in the cluster.

The strategy is a pure transform (graysteps.routing.operations); the write is
the kube adapter's safe read-modify-write, so routing is safe to repeat and
safe beside other writers. In the `subsets` layout the DestinationRule is
created first when it is missing. `dry_run` has the apiserver (and Istio's
validating webhook, where installed) check the result; nothing is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graysteps.adapters.kube import istio
from graysteps.routing.operations import MANAGED_BY_LABEL, MANAGED_BY_VALUE, apply_strategy, destination_rule

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.model.catalog import ServiceSpec
    from graysteps.model.strategy import Strategy

MANAGED_BY_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"


def route(
    service: "ServiceSpec",
    strategy: "Strategy",
    *,
    api_client: Any = None,
    dry_run: bool = False,
    max_attempts: int = istio.MAX_ATTEMPTS,
) -> istio.WriteResult:
    """Apply `strategy` to `service`'s VirtualService (creating it when missing)."""
    created_dr = False
    if service.layout == "subsets":
        created_dr = istio.ensure_destination_rule(service.vs_namespace, service.dr_name, service.api_version,
                                                   destination_rule(service), api_client=api_client, dry_run=dry_run)
    result = istio.update_virtual_service(service, lambda current: apply_strategy(current, service, strategy),
                                          api_client=api_client, dry_run=dry_run, max_attempts=max_attempts)
    result.created_destination_rule = created_dr
    return result
