"""The strategies as pure, repeatable operations on a VirtualService.

`apply_strategy(vs, service, strategy)` returns a new VirtualService; it never
changes its argument and applying it twice gives the same object as once.

What graysteps touches (as argo-rollouts' traffic routers do):
- a *service route* is an http route whose every destination is this service
  (its prod or gray host). The strategy rewrites only its `route`
  (destinations and weights); its name, match, retries, timeout, fault,
  headers, everything else, and its position stay as they were;
- *graysteps routes* are named `graysteps-gray-<route>`: the gray copy of a
  service route that whitelist/linked insert just before it, with the same
  fields plus the cookie / sourceLabels condition. They are removed before
  every strategy is applied and re-added if the strategy wants them, so
  repeating is safe and rollback leaves none;
- routes to other services, routes named in the catalog's `optOutRoutes`,
  and all metadata except graysteps' own labels/annotation stay untouched.
The applied strategy is recorded in the annotation `graysteps.io/strategy`.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from graysteps.errors import GraystepsError, InvalidInput
from graysteps.model.strategy import BALANCED, LINKED, PROMOTE, ROLLBACK, WEIGHT, WHITELIST, Strategy, from_label

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.model.catalog import ServiceSpec

GRAY_ROUTE_PREFIX = "graysteps-gray-"
STRATEGY_ANNOTATION = "graysteps.io/strategy"
MANAGED_BY_LABEL = "graysteps.io/managed-by"
MANAGED_BY_VALUE = "graysteps"
SERVICE_LABEL = "graysteps.io/service"
PROFILE_LABEL = "profile"


def cookie_regex(name: str, value: str) -> str:
    """RE2 full-match regex for a Cookie header that carries the cookie
    `name=value` as one of its cookies: not `name=10`, not `xname=value`,
    not `name=value` inside another cookie's value."""
    return rf"(.*;\s*)?{_literal(name)}={_literal(value)}(\s*;.*)?"


def _literal(text: str) -> str:
    """`text` as a literal in both RE2 and Python regex syntax (catalog cookie
    names and values are letters, digits, '_', '.', '-')."""
    return re.sub(r"([.\\^$*+?()\[\]{}|])", r"\\\1", text)


def new_virtual_service(service: "ServiceSpec") -> dict:
    """The seed's base VirtualService (3.2.1): one route, everything to prod."""
    return {
        "apiVersion": service.api_version,
        "kind": "VirtualService",
        "metadata": {"name": service.vs_name, "namespace": service.vs_namespace},
        "spec": {
            "hosts": service.hosts,
            "http": [{"name": service.name, "route": [{"destination": service.destination("prod")}]}],
        },
    }


def destination_rule(service: "ServiceSpec") -> dict:
    """The DestinationRule the `subsets` layout needs: subsets prod and gray by pod label `profile`."""
    return {
        "apiVersion": service.api_version,
        "kind": "DestinationRule",
        "metadata": {"name": service.dr_name, "namespace": service.vs_namespace,
                     "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVICE_LABEL: service.name}},
        "spec": {
            "host": service.service_host("prod"),
            "subsets": [{"name": p, "labels": {PROFILE_LABEL: p}} for p in ("prod", "gray")],
        },
    }


def apply_strategy(vs: dict | None, service: "ServiceSpec", strategy: Strategy) -> dict:
    """A new VirtualService: `vs` (or the seed's base one when None) with
    `strategy` applied to every route of `service`."""
    vs = new_virtual_service(service) if vs is None else copy.deepcopy(vs)
    _check_shape(vs, service)
    spec = vs["spec"]
    base = [r for r in spec.get("http") or [] if not is_graysteps_route(r)]
    if not base:
        base = new_virtual_service(service)["spec"]["http"]
    if not any(_serves(r, service) for r in base):
        raise GraystepsError(
            f"VirtualService {_where(vs)} has no http route to {service.name} (hosts {', '.join(sorted(service.own_hosts()))}); "
            "nothing to apply the strategy to: add a route to the service or check the catalog",
            step="route")
    http: list[dict] = []
    ordinal = 0
    for r in base:
        if not _serves(r, service) or r.get("name") in service.opt_out_routes:
            http.append(r)
            continue
        ordinal += 1
        http.extend(_apply_to_route(r, ordinal, service, strategy, _where(vs)))
    spec["http"] = http
    _record(vs, service, strategy)
    return vs


def current_strategy(vs: dict | None) -> Strategy | None:
    """The strategy graysteps last applied to `vs` (its annotation), if any."""
    annotations = ((vs or {}).get("metadata") or {}).get("annotations") or {}
    label = annotations.get(STRATEGY_ANNOTATION)
    return from_label(label) if isinstance(label, str) else None


def conforms(vs: dict | None, service: "ServiceSpec", strategy: Strategy) -> bool:
    """True when `vs` is exactly what `strategy` makes of it (nobody changed it by hand)."""
    if vs is None:
        return False
    try:
        return apply_strategy(vs, service, strategy) == vs
    except GraystepsError:
        return False


def is_graysteps_route(route: Any) -> bool:
    return isinstance(route, dict) and str(route.get("name", "")).startswith(GRAY_ROUTE_PREFIX)


# ----------------------------------------------------------------- internals


def _where(vs: dict) -> str:
    md = vs.get("metadata") or {}
    return f"{md.get('namespace', '?')}/{md.get('name', '?')}"


def _check_shape(vs: Any, service: "ServiceSpec") -> None:
    if not isinstance(vs, dict):
        raise InvalidInput(f"a VirtualService must be a mapping, not {type(vs).__name__}")
    api_version, kind = vs.get("apiVersion"), vs.get("kind")
    if kind != "VirtualService" or not str(api_version).startswith("networking.istio.io/"):
        raise InvalidInput(f"expected an Istio VirtualService (networking.istio.io), got {api_version}/{kind}")
    if not isinstance(vs.get("metadata"), dict) or not vs["metadata"].get("name"):
        raise InvalidInput("the VirtualService has no metadata.name")
    if vs.get("spec") is None:
        vs["spec"] = {}
    if not isinstance(vs["spec"], dict) or not isinstance(vs["spec"].get("http") or [], list):
        raise InvalidInput(f"VirtualService {_where(vs)}: spec.http must be a list of routes")


def _serves(route: Any, service: "ServiceSpec") -> bool:
    """Every destination of this http route is the service (prod or gray)."""
    if not isinstance(route, dict) or not isinstance(route.get("route"), list) or not route["route"]:
        return False
    hosts = service.own_hosts()
    return all(isinstance(d, dict) and (d.get("destination") or {}).get("host") in hosts for d in route["route"])


def _profile_of(entry: dict, service: "ServiceSpec", gray_hosts: set[str]) -> str:
    dest = entry.get("destination") or {}
    if service.layout == "subsets":
        return "gray" if dest.get("subset") == "gray" else "prod"
    host = dest.get("host", "")
    return "gray" if host in gray_hosts or host.startswith(f"{service.name}.{service.namespaces['gray']}") else "prod"


def _destinations(route: dict, service: "ServiceSpec", shares: list[tuple[str, int | None]]) -> list[dict]:
    """The route's destination list for [(profile, weight or None)], each entry
    based on the route's existing entry for that profile (keeps its port, headers).
    A single destination has no weight, so rollback(apply(vs, s)) == rollback(vs)."""
    existing = route["route"]
    gray_hosts = {service.service_host("gray")}
    out = []
    for profile, weight in shares:
        template = next((e for e in existing if _profile_of(e, service, gray_hosts) == profile), existing[0])
        entry = copy.deepcopy(template)
        dest = {**service.destination(profile)}
        if "port" in (template.get("destination") or {}):
            dest["port"] = copy.deepcopy(template["destination"]["port"])
        entry["destination"] = dest
        if weight is None:
            entry.pop("weight", None)  # a single destination takes all traffic
        else:
            entry["weight"] = weight
        out.append(entry)
    return out


def _with_route(route: dict, destinations: list[dict]) -> dict:
    new = dict(route)  # same key order; only `route` changes
    new["route"] = destinations
    return new


def _apply_to_route(route: dict, ordinal: int, service: "ServiceSpec", strategy: Strategy, where: str) -> list[dict]:
    to_prod = _with_route(route, _destinations(route, service, [("prod", None)]))
    name = strategy.name
    if name == ROLLBACK:
        return [to_prod]
    if name == PROMOTE:
        return [_with_route(route, _destinations(route, service, [("gray", None)]))]
    if name in (WEIGHT, BALANCED):
        gray = strategy.gray_weight()
        return [_with_route(route, _destinations(route, service, [("gray", gray), ("prod", 100 - gray)]))]
    if name in (WHITELIST, LINKED):
        return [_gray_copy(route, ordinal, service, strategy, where), to_prod]
    raise GraystepsError(f"unknown strategy {name!r}", step="route")


def _gray_copy(route: dict, ordinal: int, service: "ServiceSpec", strategy: Strategy, where: str) -> dict:
    """The route, only for gray requests (cookie or source label), to gray."""
    label = route.get("name") or f"{service.name}-{ordinal}"
    clauses = []
    for clause in route.get("match") or [{}]:
        clause = copy.deepcopy(clause)
        if strategy.name == WHITELIST:
            headers = clause.get("headers") or {}
            if any(k.lower() == "cookie" for k in headers):
                raise GraystepsError(
                    f"VirtualService {where}: route {label!r} already matches on the Cookie header, so the "
                    f"{service.cookie_name} cookie cannot be added to it; add {label!r} to optOutRoutes "
                    "in the catalog or drop that match", step="route")
            clause["headers"] = {**headers, "cookie": {"regex": cookie_regex(service.cookie_name, service.cookie_value)}}
        else:
            labels = clause.get("sourceLabels") or {}
            if labels.get(PROFILE_LABEL, "gray") != "gray":
                raise GraystepsError(
                    f"VirtualService {where}: route {label!r} matches sourceLabels {PROFILE_LABEL}="
                    f"{labels[PROFILE_LABEL]}, which cannot also be gray; add it to optOutRoutes", step="route")
            clause["sourceLabels"] = {**labels, PROFILE_LABEL: "gray"}
        clauses.append(clause)
    gray = {"name": GRAY_ROUTE_PREFIX + label, "match": clauses}
    for key, value in route.items():
        if key not in ("name", "match"):
            gray[key] = copy.deepcopy(value)
    gray["route"] = _destinations(route, service, [("gray", None)])
    return gray


def _record(vs: dict, service: "ServiceSpec", strategy: Strategy) -> None:
    md = vs["metadata"]
    labels = md.get("labels") or {}
    labels = {**labels, MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVICE_LABEL: service.name}
    annotations = {**(md.get("annotations") or {}), STRATEGY_ANNOTATION: strategy.label}
    if md.get("labels") != labels:
        md["labels"] = labels
    if md.get("annotations") != annotations:
        md["annotations"] = annotations
