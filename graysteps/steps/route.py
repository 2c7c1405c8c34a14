"""Route one service: apply a strategy to its VirtualService in the cluster.

The strategy is a pure transform (graysteps.routing.operations); the write is
the kube adapter's safe read-modify-write, so routing is safe to repeat and
safe beside other writers. In the `subsets` layout the DestinationRule is
created first when it is missing, and an existing one must define the
catalog's prod and gray subsets (`create_subsets` adds a missing one; none is
ever renamed or removed). `dry_run` has the apiserver (and Istio's
validating webhook, where installed) check the result; nothing is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graysteps.adapters.kube import istio
from graysteps.errors import GraystepsError
from graysteps.routing.operations import (
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, apply_strategy, destination_rule, missing_subsets, warnings, with_subsets,
)

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
    create_subsets: bool = False,
) -> istio.WriteResult:
    """Apply `strategy` to `service`'s VirtualService (creating it when missing)."""
    created_dr, added = False, []
    if service.layout == "subsets":
        created_dr = istio.ensure_destination_rule(service.vs_namespace, service.dr_name, service.api_version,
                                                   destination_rule(service), api_client=api_client, dry_run=dry_run)
        if not created_dr:
            added = check_subsets(service, api_client=api_client, create=create_subsets, dry_run=dry_run)
    result = istio.update_virtual_service(service, lambda current: apply_strategy(current, service, strategy),
                                          api_client=api_client, dry_run=dry_run, max_attempts=max_attempts)
    result.created_destination_rule = created_dr
    result.added_subsets = added
    result.warnings = warnings(result.after, service, strategy)
    return result


def check_subsets(service: "ServiceSpec", *, api_client: Any = None, create: bool = False,
                  dry_run: bool = False) -> list[str]:
    """Stop, naming them, when the service's DestinationRule lacks the catalog's prod or
    gray subset; with `create`, add them. Returns the subsets added."""
    where = f"DestinationRule {service.vs_namespace}/{service.dr_name}"
    missing = missing_subsets(istio.read_destination_rule(service.vs_namespace, service.dr_name, service.api_version,
                                                          api_client=api_client), service)
    if not missing:
        return []
    if not create:
        raise GraystepsError(
            f"{where} has no subset {' or '.join(missing)}, so routes to it would fail (503); rerun with "
            "--create-subsets to add it (pods labelled profile: prod|gray), or fix the catalog's subsets")
    added: list[str] = []

    def add(dr: dict) -> dict | None:
        added[:] = missing_subsets(dr, service)
        return with_subsets(dr, service) if added else None

    istio.update_destination_rule(service.vs_namespace, service.dr_name, service.api_version, add,
                                  api_client=api_client, dry_run=dry_run)
    return added
