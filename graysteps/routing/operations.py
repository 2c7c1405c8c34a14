"""The strategies as pure, repeatable operations on a VirtualService.

`apply_strategy(vs, service, strategy)` returns a new VirtualService; it never
changes its argument, and applying it twice gives the same object as once.

The one thing to know: graysteps owns *destinations*, not routes. In every http
route, a destination is the service's prod (the catalog's prod host, or its prod
subset), its gray (gray host or subset), or something else (another version's
subset, another service). A strategy moves only the share that prod and gray
hold together; every other destination keeps its place and weight, so the
weights add up to what they added up to before. The rest of a route (name,
match, retries, headers, per-destination headers, port) is kept.

- *service routes* hold at least one prod or gray destination; routes named in
  the catalog's `optOutRoutes` are left alone;
- *graysteps routes* are named `graysteps-gray-<route>`: the gray copy of a
  service route that whitelist/linked insert just before it (same fields, plus
  the cookie / sourceLabels condition). They are removed before every strategy
  is applied and re-added if the strategy wants them;
- the service routes as they were before graysteps first touched them are
  recorded on the object (annotation `graysteps.io/original-routes`). Every
  strategy is computed from them, so chains never drift and `rollback` puts
  exactly those routes back. Routes added since are taken as they are.
The applied strategy is recorded in the annotation `graysteps.io/strategy`.
"""

from __future__ import annotations

import copy
import json
import re
from typing import TYPE_CHECKING, Any

from graysteps.errors import GraystepsError, InvalidInput
from graysteps.model.strategy import BALANCED, LINKED, PROMOTE, ROLLBACK, WEIGHT, WHITELIST, Strategy, from_label

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.model.catalog import ServiceSpec

GRAY_ROUTE_PREFIX = "graysteps-gray-"
STRATEGY_ANNOTATION = "graysteps.io/strategy"
ORIGINAL_ROUTES_ANNOTATION = "graysteps.io/original-routes"
MANAGED_BY_LABEL = "graysteps.io/managed-by"
MANAGED_BY_VALUE = "graysteps"
SERVICE_LABEL = "graysteps.io/service"
PROFILE_LABEL = "profile"
MESH_GATEWAY = "mesh"

_ALL_GRAY, _NO_GRAY = "all-gray", "no-gray"


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
    """The DestinationRule the `subsets` layout needs: the catalog's prod and gray subsets by pod label `profile`."""
    return {
        "apiVersion": service.api_version,
        "kind": "DestinationRule",
        "metadata": {"name": service.dr_name, "namespace": service.vs_namespace,
                     "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVICE_LABEL: service.name}},
        "spec": {
            "host": service.service_host("prod"),
            "subsets": [subset_for(service, p) for p in ("prod", "gray")],
        },
    }


def subset_for(service: "ServiceSpec", profile: str) -> dict:
    """The subset graysteps adds for `profile`: pods labelled `profile: <profile>` (as `deploy` labels them)."""
    return {"name": service.subsets[profile], "labels": {PROFILE_LABEL: profile}}


def missing_subsets(dr: dict | None, service: "ServiceSpec") -> list[str]:
    """The catalog's prod/gray subset names that DestinationRule `dr` does not define."""
    names = {s.get("name") for s in ((dr or {}).get("spec") or {}).get("subsets") or [] if isinstance(s, dict)}
    return [service.subsets[p] for p in ("prod", "gray") if service.subsets[p] not in names]


def with_subsets(dr: dict, service: "ServiceSpec") -> dict:
    """`dr` with the catalog's missing prod/gray subsets appended; existing subsets are never renamed or removed."""
    dr = copy.deepcopy(dr)
    spec = dr.setdefault("spec", {})
    missing = set(missing_subsets(dr, service))
    spec["subsets"] = list(spec.get("subsets") or []) + [
        subset_for(service, p) for p in ("prod", "gray") if service.subsets[p] in missing]
    return dr


def apply_strategy(vs: dict | None, service: "ServiceSpec", strategy: Strategy) -> dict:
    """A new VirtualService: `vs` (or the seed's base one when None) with
    `strategy` applied to every route of `service`."""
    vs = new_virtual_service(service) if vs is None else copy.deepcopy(vs)
    _check_shape(vs, service)
    _check_strategy_fits(vs, service, strategy)
    spec = vs["spec"]
    base = _original_routes(vs, service)
    if not base:
        base = new_virtual_service(service)["spec"]["http"]
    owned = [r for r in base if _owned(r, service)]
    if not owned:
        raise GraystepsError(
            f"VirtualService {_where(vs)} has no http route to {service.name} "
            f"({_describe_destinations(service)}); nothing to apply the strategy to: "
            "add a route to the service or check the catalog", step="route")
    http: list[dict] = []
    ordinal = 0
    for r in base:
        if not _owned(r, service):
            http.append(r)
            continue
        ordinal += 1
        http.extend(_apply_to_route(r, ordinal, service, strategy, _where(vs)))
    spec["http"] = http
    _record(vs, service, strategy, owned)
    return vs


def current_strategy(vs: dict | None) -> Strategy | None:
    """The strategy graysteps last applied to `vs` (its annotation), if any."""
    annotations = ((vs or {}).get("metadata") or {}).get("annotations") or {}
    label = annotations.get(STRATEGY_ANNOTATION)
    return from_label(label) if isinstance(label, str) else None


def conforms(vs: dict | None, service: "ServiceSpec", strategy: Strategy) -> bool:
    """True when `vs` is exactly what `strategy` makes of it (nobody changed it by hand).
    A VirtualService written before graysteps recorded the original routes is judged
    without that record."""
    if vs is None:
        return False
    try:
        wanted = apply_strategy(vs, service, strategy)
    except GraystepsError:
        return False
    if ORIGINAL_ROUTES_ANNOTATION not in ((vs.get("metadata") or {}).get("annotations") or {}):
        wanted["metadata"]["annotations"].pop(ORIGINAL_ROUTES_ANNOTATION, None)
    return wanted == vs


def is_graysteps_route(route: Any) -> bool:
    return isinstance(route, dict) and str(route.get("name", "")).startswith(GRAY_ROUTE_PREFIX)


def warnings(vs: dict | None, service: "ServiceSpec", strategy: Strategy | None = None) -> list[str]:
    """What a user should know about routing `service` through `vs` (empty: nothing):
    service routes that no request reaches because an earlier route matches every
    request, routes where graysteps moves only part of the traffic, and limits of
    the strategy on this kind of VirtualService."""
    if not isinstance(vs, dict) or not isinstance((vs.get("spec") or {}).get("http"), list):
        return []
    out = []
    http = [r for r in vs["spec"]["http"] if isinstance(r, dict)]
    catch_all = next((i for i, r in enumerate(http) if _matches_everything(r)), None)
    if catch_all is not None:
        shadowed = [_label(r, i) for i, r in enumerate(http) if i > catch_all and _touches(r, service)]
        if shadowed:
            out.append(f"route {_label(http[catch_all], catch_all)} matches every request, so {', '.join(shadowed)} "
                       "after it never get traffic: move it after them or give it a match")
    for i, r in enumerate(http):
        if _touches(r, service):
            others = [e for e in r["route"] if _profile(e, service) is None]
            if others:
                names = ", ".join(_dest_label(e) for e in others)
                out.append(f"route {_label(r, i)} also sends traffic to {names}: graysteps moves only "
                           f"the share of {service.name}'s prod and gray and leaves that one as it is")
    if strategy is not None and strategy.name == ROLLBACK:
        for i, r in enumerate(http):
            gray = [e for e in r.get("route") or [] if _touches(r, service) and _profile(e, service) == "gray"]
            if gray:
                out.append(f"route {_label(r, i)} sent traffic to gray ({', '.join(_dest_label(e) for e in gray)}) "
                           "before graysteps first touched it, and rollback restores it as it was")
    if strategy is not None and strategy.name == WHITELIST and not (vs.get("spec") or {}).get("hosts"):
        out.append("delegate VirtualService: Istio (1.15 and later) accepts the cookie regex here only when "
                   "the root VirtualService's route does not match on the Cookie header too")
    return out


def traffic_problem(vs: dict | None, service: "ServiceSpec") -> str | None:
    """Why requests to `service` do not reach the routes graysteps manages
    (a route before them matches every request and goes elsewhere), or None."""
    if not isinstance(vs, dict):
        return None
    http = [r for r in ((vs.get("spec") or {}).get("http") or []) if isinstance(r, dict)]
    for i, r in enumerate(http):
        if _touches(r, service):
            return None
        if _matches_everything(r):
            if any(_touches(later, service) for later in http[i + 1:]):
                return (f"route {_label(r, i)} matches every request and sends it to "
                        f"{', '.join(_dest_label(e) for e in r.get('route') or []) or 'no destination'}, so "
                        f"the routes graysteps manages after it get no traffic")
            return None
    return None


def profile_of(entry: Any, service: "ServiceSpec") -> str | None:
    """'prod', 'gray' or None (another destination) for one entry of a route's `route` list."""
    return _profile(entry, service)


# ----------------------------------------------------------------- internals


def _where(vs: dict) -> str:
    md = vs.get("metadata") or {}
    return f"{md.get('namespace', '?')}/{md.get('name', '?')}"


def _describe_destinations(service: "ServiceSpec") -> str:
    if service.layout == "subsets":
        return f"host {service.service_host('prod')}, subsets {service.subsets['prod']}/{service.subsets['gray']}"
    return f"hosts {', '.join(sorted(service.own_hosts()))}"


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
    spec = vs["spec"]
    if not spec.get("http") and (spec.get("tcp") or spec.get("tls")):
        kinds = " and ".join(k.upper() for k in ("tcp", "tls") if spec.get(k))
        raise InvalidInput(
            f"VirtualService {_where(vs)} routes only {kinds} (spec.{' / spec.'.join(k for k in ('tcp', 'tls') if spec.get(k))}); "
            "graysteps splits HTTP routes only (cookies and headers do not exist below HTTP): route this service "
            "by hand, or give it an http route")


def _check_strategy_fits(vs: dict, service: "ServiceSpec", strategy: Strategy) -> None:
    gateways = vs["spec"].get("gateways")
    if strategy.name == LINKED and gateways and MESH_GATEWAY not in gateways:
        raise InvalidInput(
            f"VirtualService {_where(vs)} is bound only to gateways ({', '.join(map(str, gateways))}): linked routes "
            f"gray callers by sourceLabels, which Istio applies only to sidecars (the `mesh` gateway), so no request "
            "would ever reach gray; add `mesh` to spec.gateways, or use whitelist for gateway traffic")


def _original_routes(vs: dict, service: "ServiceSpec") -> list[dict]:
    """The live routes (graysteps' gray copies left out), each service route put
    back as it was before graysteps first touched it."""
    live = [r for r in vs["spec"].get("http") or [] if not is_graysteps_route(r)]
    md = vs.get("metadata") or {}
    recorded = _recorded_originals(md)
    pool: dict[str, list[dict]] = {}
    for r in recorded or []:
        pool.setdefault(_identity(r), []).append(r)
    legacy = recorded is None and current_strategy(vs) is not None  # written by a graysteps that kept no record
    out = []
    for r in live:
        same = pool.get(_identity(r)) if isinstance(r, dict) else None
        if same:
            out.append(copy.deepcopy(same.pop(0)))
        elif legacy and _touches(r, service):
            out.append(_reshared(r, service, _NO_GRAY, keep_if_unchanged=False))
        else:
            out.append(r)
    return out


def _recorded_originals(md: dict) -> list[dict] | None:
    text = (md.get("annotations") or {}).get(ORIGINAL_ROUTES_ANNOTATION)
    if not isinstance(text, str):
        return None
    try:
        routes = json.loads(text)
    except ValueError:
        return None
    return [r for r in routes if isinstance(r, dict)] if isinstance(routes, list) else None


def _identity(route: dict) -> str:
    """A route without its destinations: what graysteps never changes, so it finds the route again."""
    return json.dumps({k: v for k, v in route.items() if k != "route"}, sort_keys=True)


def _owned(route: Any, service: "ServiceSpec") -> bool:
    """A service route (judged on the original routes): an http route with at
    least one prod destination, not opted out. A route that never went to prod
    (one pinned to the gray version, say) is not graysteps' to move."""
    return _touches(route, service, ("prod",))


def _touches(route: Any, service: "ServiceSpec", profiles: tuple = ("prod", "gray")) -> bool:
    """An http route (not opted out, not graysteps' own) with a destination of one of `profiles`."""
    if not isinstance(route, dict) or not isinstance(route.get("route"), list) or not route["route"]:
        return False
    if route.get("name") in service.opt_out_routes or is_graysteps_route(route):
        return False
    return any(_profile(e, service) in profiles for e in route["route"])


def _profile(entry: Any, service: "ServiceSpec") -> str | None:
    """'prod', 'gray' or None (another destination) for one entry of a route."""
    if not isinstance(entry, dict) or not isinstance(entry.get("destination"), dict):
        return None
    dest = entry["destination"]
    host, subset = str(dest.get("host", "")).lower(), dest.get("subset")
    if service.layout == "subsets":
        if host not in service.profile_hosts("prod"):
            return None
        if subset == service.subsets["gray"]:
            return "gray"
        return "prod" if subset in (None, service.subsets["prod"]) else None
    if host in service.profile_hosts("gray"):
        return "gray"
    if host in service.profile_hosts("prod"):
        return "prod"
    return None


def _weight(entry: dict, entries: list) -> int:
    if len(entries) == 1:
        return 100
    w = entry.get("weight", 0)
    return w if isinstance(w, int) and not isinstance(w, bool) else 0


def _as_profile(template: dict, service: "ServiceSpec", profile: str, from_profile: str | None) -> dict:
    """A route entry for `profile` built on `template` (an entry of the route):
    its port, per-destination headers and other fields are kept."""
    entry = copy.deepcopy(template)
    dest = entry["destination"]
    if from_profile == profile:
        if service.layout == "subsets":
            dest["subset"] = service.subsets[profile]
        return entry
    new = {**service.destination(profile)}
    if service.layout == "subsets" and dest.get("host") in service.profile_hosts(profile):
        new["host"] = dest["host"]  # the same host, named as the route named it
    for key, value in dest.items():
        if key not in ("host", "subset"):
            new[key] = value
    entry["destination"] = new
    return entry


def _reshared(route: dict, service: "ServiceSpec", gray: Any, keep_if_unchanged: bool = True) -> dict:
    """`route` with its prod+gray share split as `gray` says (_ALL_GRAY, _NO_GRAY
    or a percentage); other destinations keep their place and weight."""
    entries = route["route"]
    kinds = [_profile(e, service) for e in entries]
    # in the subsets layout an entry without a subset reaches every pod of the host, gray ones
    # too: it is prod only once it names the prod subset
    pinned = service.layout != "subsets" or all(
        e["destination"].get("subset") == service.subsets["prod"] for e, k in zip(entries, kinds) if k == "prod")
    if keep_if_unchanged and ((gray == _NO_GRAY and "gray" not in kinds and pinned)
                              or (gray == _ALL_GRAY and "prod" not in kinds)):
        return route
    # each prod or gray entry is split in place into its gray and its prod part, each
    # built on that entry (its port and per-destination headers kept); equal results merge
    out: list[dict] = []
    for e, k in zip(entries, kinds):
        if k is None:
            out.append(copy.deepcopy(e))
            continue
        weight = _weight(e, entries)
        g = weight if gray == _ALL_GRAY else 0 if gray == _NO_GRAY else (weight * gray + 50) // 100
        for profile, part in (("gray", g), ("prod", weight - g)):
            if part or isinstance(gray, int):
                _add(out, _weighted(_as_profile(e, service, profile, k), part))
    if len(out) == 1:
        out[0].pop("weight", None)  # a single destination takes all traffic
    new = dict(route)  # same key order; only `route` changes
    new["route"] = out
    return new


def _add(out: list[dict], entry: dict) -> None:
    """Append `entry`, or add its weight to an equal entry already in `out`."""
    same = {k: v for k, v in entry.items() if k != "weight"}
    for other in out:
        if {k: v for k, v in other.items() if k != "weight"} == same and "weight" in other:
            other["weight"] += entry["weight"]
            return
    out.append(entry)


def _weighted(entry: dict, weight: int) -> dict:
    entry = copy.deepcopy(entry)
    entry["weight"] = weight
    return entry


def _apply_to_route(route: dict, ordinal: int, service: "ServiceSpec", strategy: Strategy, where: str) -> list[dict]:
    name = strategy.name
    if name == ROLLBACK:
        return [route]
    if name == PROMOTE:
        return [_reshared(route, service, _ALL_GRAY)]
    if name in (WEIGHT, BALANCED):
        return [_reshared(route, service, strategy.gray_weight(), keep_if_unchanged=False)]
    if name in (WHITELIST, LINKED):
        return [_gray_copy(route, ordinal, service, strategy, where), _reshared(route, service, _NO_GRAY)]
    raise GraystepsError(f"unknown strategy {name!r}", step="route")


def _gray_copy(route: dict, ordinal: int, service: "ServiceSpec", strategy: Strategy, where: str) -> dict:
    """The route, only for gray requests (cookie or source label), with its prod share on gray."""
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
    gray["route"] = _reshared(route, service, _ALL_GRAY, keep_if_unchanged=False)["route"]
    return gray


def _matches_everything(route: dict) -> bool:
    """No match, or a match clause that any request passes (empty, or only `uri: prefix: /`)."""
    match = route.get("match")
    if not match:
        return True
    for clause in match:
        if not isinstance(clause, dict):
            continue
        rest = {k: v for k, v in clause.items() if k not in ("name", "ignoreUriCase")}
        if not rest or rest == {"uri": {"prefix": "/"}}:
            return True
    return False


def _label(route: dict, index: int) -> str:
    return repr(route["name"]) if route.get("name") else f"#{index}"


def _dest_label(entry: Any) -> str:
    dest = (entry or {}).get("destination") or {} if isinstance(entry, dict) else {}
    text = str(dest.get("host", "?")) + (f" subset {dest['subset']}" if dest.get("subset") else "")
    return text + (f" ({entry['weight']}%)" if isinstance(entry, dict) and "weight" in entry else "")


def _record(vs: dict, service: "ServiceSpec", strategy: Strategy, originals: list[dict]) -> None:
    md = vs["metadata"]
    labels = md.get("labels") or {}
    labels = {**labels, MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVICE_LABEL: service.name}
    annotations = {**(md.get("annotations") or {}), STRATEGY_ANNOTATION: strategy.label,
                   ORIGINAL_ROUTES_ANNOTATION: json.dumps(originals, sort_keys=True, separators=(",", ":"))}
    if md.get("labels") != labels:
        md["labels"] = labels
    if md.get("annotations") != annotations:
        md["annotations"] = annotations
