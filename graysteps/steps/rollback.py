"""Emergency rollback of many services at once: every route back to prod, fast.

`rollback_fleet` takes catalog services and applies the `rollback` strategy to
each VirtualService, in parallel with a bounded number of worker threads that
share one connection pool sized for them (`connect()`: a lean urllib3 transport
when the kubeconfig allows it, else the kubernetes client).

Speed without losing safety:
- one LIST per API version reads every VirtualService with its resourceVersion,
  so each service then costs a single write (PUT carrying that resourceVersion);
- a service already on prod is not written at all, so repeating is cheap and
  changes nothing;
- on a 409 (someone wrote in between) the service falls back to the generic
  read-modify-write of `graysteps.adapters.kube.istio.update_virtual_service`, with
  its bounded retries;
- a failure of one service never stops the others: every service is tried and
  gets its own outcome.

Which services `--all` means: every service in the catalog (the fleet the team
declared, whose prod destinations graysteps knows), plus every VirtualService
that carries graysteps' managed-by label in the namespaces the catalog uses but
that no catalog service owns (e.g. a service dropped from the catalog while it
was on gray). Those are reported as failed ("not in the catalog"): graysteps
cannot know their prod destination, and in an emergency a release manager must
hear about a gray route nobody rolled back, rather than have it silently skipped.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from graysteps.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.model.catalog import Catalog, ServiceSpec

STEP = "rollback"
DEFAULT_WORKERS = 16
MAX_WORKERS = 64

ROLLED_BACK = "rolled-back"
WOULD_ROLL_BACK = "would-roll-back"
ALREADY_PROD = "already-prod"
NO_VIRTUAL_SERVICE = "no-virtualservice"
FAILED = "failed"
OK_STATES = (ROLLED_BACK, WOULD_ROLL_BACK, ALREADY_PROD, NO_VIRTUAL_SERVICE)


@dataclass
class RollbackOutcome:
    service: str
    virtual_service: str
    status: str = FAILED
    message: str = ""
    seconds: float = 0.0
    resource_version: str | None = None  # of the VirtualService this run wrote (None: not written)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATES


@dataclass
class FleetRollbackResult:
    outcomes: list[RollbackOutcome] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def failed(self) -> list[RollbackOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "services": [asdict(o) for o in self.outcomes],
        }


# ---------------------------------------------------------------- choosing services


def catalog_services(catalog: "Catalog") -> list["ServiceSpec"]:
    """Every service the catalog declares, in catalog order."""
    return [catalog.service(name) for name in catalog.names()]


def select_services(
    catalog: "Catalog",
    *,
    names: Sequence[str] = (),
    all_services: bool = False,
    namespaces: Sequence[str] = (),
) -> list["ServiceSpec"]:
    """The services to roll back: `names` (validated) or the whole catalog,
    optionally only those whose VirtualService lives in one of `namespaces`."""
    if bool(names) == bool(all_services):
        raise InvalidInput("give either --all or --service NAME..., not both and not neither", step=STEP)
    services = catalog_services(catalog) if all_services else [catalog.service(n) for n in dict.fromkeys(names)]
    if namespaces:
        wanted = set(namespaces)
        services = [s for s in services if s.vs_namespace in wanted]
        if not services:
            raise InvalidInput(
                f"no catalog service has its VirtualService in namespace(s) {', '.join(sorted(wanted))}; "
                f"the catalog's are: {', '.join(sorted({s.vs_namespace for s in catalog_services(catalog)}))}",
                step=STEP,
            )
    return services


# ---------------------------------------------------------------- cluster access


def connect(kubeconfig: str | None, pool_size: int) -> Any:
    """The apiserver transport for `pool_size` worker threads (graysteps.adapters.kube.rest)."""
    from graysteps.adapters.kube.rest import connect

    return connect(kubeconfig, pool_size)


def managed_outside_catalog(catalog: "Catalog", api: Any, namespaces: Sequence[str] = ()) -> list[dict]:
    """VirtualServices labelled as graysteps-managed that no catalog service uses,
    in `namespaces` (default: the namespaces where the catalog's VirtualServices live)."""
    from graysteps.adapters.kube.istio import list_labelled_virtual_services
    from graysteps.routing.operations import MANAGED_BY_LABEL, MANAGED_BY_VALUE

    services = catalog_services(catalog)
    known = {(s.vs_namespace, s.vs_name) for s in services}
    orphans = []
    for ns in sorted(set(namespaces) or {s.vs_namespace for s in services}):
        listed = list_labelled_virtual_services(ns, f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}", api)
        orphans += [vs for vs in listed if (ns, vs["metadata"]["name"]) not in known]
    return orphans


def _rollback_one(service: "ServiceSpec", live: dict | None, listed: bool, api: Any, strategy: Any, dry_run: bool) -> RollbackOutcome:
    from graysteps.adapters.kube.errors import failure_reason
    from graysteps.adapters.kube.istio import replace_listed, update_virtual_service
    from graysteps.routing.operations import apply_strategy

    started = time.perf_counter()
    out = RollbackOutcome(service.name, f"{service.vs_namespace}/{service.vs_name}")

    def to_prod(current: dict | None) -> dict | None:
        return None if current is None else apply_strategy(current, service, strategy)

    try:
        if listed and live is None:
            out.status = NO_VIRTUAL_SERVICE
            out.message = "no VirtualService: nothing routes to gray"
        elif listed:
            wanted = apply_strategy(live, service, strategy)
            if wanted == live:
                out.status = ALREADY_PROD
            else:
                try:  # the PUT carries the listed resourceVersion: a 409 if anyone wrote since
                    written = replace_listed(service, wanted, api, dry_run=dry_run)
                    out.status = WOULD_ROLL_BACK if dry_run else ROLLED_BACK
                    out.resource_version = None if dry_run else _written_version(written)
                except Exception as e:  # noqa: BLE001 - KubeRestError or ApiException, both with .status
                    if getattr(e, "status", None) not in (404, 409):
                        raise
                    listed = False  # changed or deleted since the LIST: read-modify-write below
        if not listed:
            result = update_virtual_service(service, to_prod, api_client=api, dry_run=dry_run)
            if result.after is None:
                out.status, out.message = NO_VIRTUAL_SERVICE, "no VirtualService: nothing routes to gray"
            elif not result.changed:
                out.status = ALREADY_PROD
            else:
                out.status = WOULD_ROLL_BACK if dry_run else ROLLED_BACK
                out.resource_version = None if dry_run else _written_version(result.after)
    except Exception as e:  # noqa: BLE001 - one service's failure must not stop the others
        out.status, out.message = FAILED, failure_reason(e)
    out.seconds = time.perf_counter() - started
    return out


def _written_version(obj: Any) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion") if isinstance(obj, dict) else None


def rollback_fleet(
    services: Sequence["ServiceSpec"],
    *,
    api: Any,
    workers: int = DEFAULT_WORKERS,
    dry_run: bool = False,
    unmanaged: Sequence[dict] = (),
) -> FleetRollbackResult:
    """Roll every service in `services` back to prod; return each one's outcome.

    `api` comes from `connect()`. Never raises for a cluster failure: every service is tried and the failures
    are in the result (`.ok`, `.failed`). `unmanaged` VirtualServices (managed by
    graysteps but not in the catalog) are reported as failed.
    """
    from graysteps.adapters.kube.istio import list_virtual_services
    from graysteps.model.strategy import parse_strategy

    if not 1 <= workers <= MAX_WORKERS:
        raise InvalidInput(f"--workers {workers} is not allowed; use 1-{MAX_WORKERS}", step=STEP)
    started = time.perf_counter()
    strategy = parse_strategy("rollback", None)
    try:
        live, listed = list_virtual_services(services, api), True
    except Exception:  # noqa: BLE001 - each service then reads its own object and reports its own failure
        live, listed = {}, False

    def one(service: "ServiceSpec") -> RollbackOutcome:
        return _rollback_one(service, live.get((service.vs_namespace, service.vs_name)), listed, api, strategy, dry_run)

    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(services)))) as pool:
        outcomes = list(pool.map(one, services))
    for vs in unmanaged:
        md = vs["metadata"]
        outcomes.append(
            RollbackOutcome(
                md.get("labels", {}).get("graysteps.io/service", md["name"]),
                f"{md['namespace']}/{md['name']}",
                FAILED,
                "managed by graysteps but not in the catalog: its prod destination is unknown; add it to the catalog or fix it by hand",
            )
        )
    return FleetRollbackResult(outcomes=outcomes, seconds=time.perf_counter() - started, dry_run=dry_run)
