"""Translate Istio VirtualServices into Envoy v3 configuration.

This is how graysteps proves a routing change on a real data plane (tests,
`verify`, `preview`, the sandbox) without an Istio control plane: the
VirtualServices, exactly as stored in the apiserver (v1, v1beta1 or v1alpha3;
the HTTP part of the schema is the same), become Envoy listeners, route
configurations and clusters, the way istiod builds a sidecar's outbound config.

Caller identity. Istio keeps or drops a `match` block with `sourceLabels` /
`sourceNamespace` / `gateways` depending on WHICH proxy the config is for. We
model each caller as one outbound listener (`ListenerSpec`) with its workload
labels; a match block that does not apply to a listener's caller is left out of
that listener, and a route whose every match block was left out is dropped
there, as in Istio.

Hosts. Requests are routed by their Host/authority header: a VirtualService's
hosts become the domains of one virtual host (with and without `:port`), a
short host `test-a` also answers as `test-a.<ns>`, `test-a.<ns>.svc` and the
FQDN. Destinations are resolved like Istio does (a short name is relative to the
VirtualService's namespace) and looked up in `endpoints`, keyed by the FQDN, or
`"<fqdn>|<subset>"` for DestinationRule subsets. A service with endpoints but no
VirtualService gets a default route to itself, as in the mesh.

Anything this translator does not model is refused, naming the field
(`UnsupportedField`), so a preview never silently shows a route Istio would not
take.

API:
    resources = translate(virtual_services, endpoints, listeners)
    destination_key(destination, namespace) -> the endpoints key of a destination
    resources.static_bootstrap(admin_port=None) -> dict    # everything inline
    resources.write_dynamic(directory) -> DynamicFiles      # lds/cds/rds files, atomic
    dynamic_bootstrap(directory, listeners, admin_port=None) -> dict  # reads those files, live reload
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from graysteps.adapters.files import write_json_atomically
from graysteps.errors import GraystepsError

STEP = "envoy config"
CLUSTER_DOMAIN = "svc.cluster.local"

# Istio's mesh-wide default retry policy (meshConfig.defaultHttpRetryPolicy),
# applied when a route has no `retries` field.
ISTIO_DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
ISTIO_DEFAULT_RETRY_ATTEMPTS = 2
ISTIO_DEFAULT_RETRIABLE_CODES = (503,)

_ENVOY_RETRY_ON = {
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
    "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
    "retriable-headers", "http3-post-connect-failure",
    # gRPC policies
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
}

_FAULT_FILTER = "envoy.filters.http.fault"
_ROUTER_FILTER = "envoy.filters.http.router"

Endpoint = tuple[str, int]


class UnsupportedField(GraystepsError):
    """The VirtualService uses something the translator does not model."""


class TranslationError(GraystepsError):
    """The VirtualService cannot be turned into Envoy config (bad value, unknown destination)."""


@dataclass(frozen=True)
class ListenerSpec:
    """One outbound listener = one kind of caller.

    `source_labels` are the caller workload's labels (matched against
    `sourceLabels`), `namespace` its namespace (`sourceNamespace`, short host
    names, `exportTo`; None = do not filter on it), `gateway` the gateway name
    this listener plays ("mesh" for a sidecar).
    """

    name: str
    port: int
    source_labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str | None = None
    gateway: str = "mesh"
    address: str = "127.0.0.1"


@dataclass(frozen=True)
class DynamicFiles:
    """Paths written by `EnvoyResources.write_dynamic`."""

    directory: str
    lds: str
    cds: str
    rds: dict[str, str]  # listener name -> file of its RouteConfiguration
    route_versions: dict[str, str]  # route config name -> version_info written


@dataclass
class EnvoyResources:
    """Envoy v3 resources: listeners (each with an inline route config) and clusters."""

    listeners: list[dict]
    route_configs: dict[str, dict]  # listener name -> RouteConfiguration
    clusters: list[dict]

    def static_bootstrap(self, admin_port: int | None = None) -> dict:
        """A bootstrap with everything inline (static_resources)."""
        listeners = [_with_inline_routes(l, self.route_configs[l["name"]]) for l in self.listeners]
        boot: dict[str, Any] = {
            "node": {"id": "graysteps", "cluster": "graysteps"},
            "static_resources": {"listeners": listeners, "clusters": self.clusters},
        }
        _add_admin(boot, admin_port)
        return boot

    def write_dynamic(self, directory: str) -> DynamicFiles:
        """Write cds.json, then one rds_<listener>.json each, then lds.json, each by
        atomic rename so a running Envoy (see `dynamic_bootstrap`) picks them up live.

        Listeners take their routes through RDS files, so a route change does not
        replace (and drain) the listeners and their keep-alive connections."""
        os.makedirs(directory, exist_ok=True)
        cds = os.path.join(directory, "cds.json")
        lds = os.path.join(directory, "lds.json")
        write_json_atomically(cds, discovery_response("envoy.config.cluster.v3.Cluster", self.clusters), indent=1)
        rds, versions = {}, {}
        for name, rc in self.route_configs.items():
            rds[name] = os.path.join(directory, f"rds_{name}.json")
            response = discovery_response("envoy.config.route.v3.RouteConfiguration", [rc])
            versions[rc["name"]] = response["version_info"]
            write_json_atomically(rds[name], response, indent=1)
        listeners = [_with_rds_routes(l, rds[l["name"]], directory) for l in self.listeners]
        write_json_atomically(lds, discovery_response("envoy.config.listener.v3.Listener", listeners), indent=1)
        return DynamicFiles(directory=directory, lds=lds, cds=cds, rds=rds, route_versions=versions)


def applied_route_versions(config_dump: Mapping[str, Any]) -> dict[str, str]:
    """Route config name -> version_info Envoy is using, from its admin
    `/config_dump?resource=dynamic_route_configs` JSON. When it equals
    `DynamicFiles.route_versions`, the new routes are live."""
    out = {}
    for entry in config_dump.get("configs", []):
        rc = entry.get("route_config", {})
        if rc.get("name"):
            out[rc["name"]] = entry.get("version_info", "")
    return out


def dynamic_bootstrap(directory: str, admin_port: int | None = None) -> dict:
    """A bootstrap that reads listeners and clusters from the files
    `EnvoyResources.write_dynamic(directory)` writes, and reloads them when they
    are replaced."""
    def source(name: str) -> dict:
        return {
            "path_config_source": {
                "path": os.path.join(directory, name),
                "watched_directory": {"path": directory},
            },
            "resource_api_version": "V3",
        }

    boot: dict[str, Any] = {
        "node": {"id": "graysteps", "cluster": "graysteps"},
        "dynamic_resources": {"lds_config": source("lds.json"), "cds_config": source("cds.json")},
    }
    _add_admin(boot, admin_port)
    return boot


def translate(
    virtual_services: Iterable[Mapping[str, Any]],
    endpoints: Mapping[str, Endpoint],
    listeners: Iterable[ListenerSpec],
) -> EnvoyResources:
    """Build Envoy resources for `listeners` from `virtual_services`.

    `endpoints` maps a destination (FQDN, or "<fqdn>|<subset>") to the
    (ip, port) that serves it. Raises UnsupportedField / TranslationError naming
    the VirtualService and field."""
    vss = [_VS(vs) for vs in virtual_services]
    endpoints = dict(endpoints)
    clusters: dict[str, dict] = {}

    def cluster_for(key: str, where: str) -> str:
        if key not in endpoints:
            known = ", ".join(sorted(endpoints)) or "none"
            raise TranslationError(
                f"{where}: no endpoint for destination {key!r} (known: {known}); "
                "add it to the endpoints map",
                step=STEP,
            )
        name = f"outbound|{key}"
        if name not in clusters:
            ip, port = endpoints[key]
            clusters[name] = _cluster(name, ip, int(port))
        return name

    specs = list(listeners)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise TranslationError(f"listener names must be unique, got {names}", step=STEP)
    out_listeners, route_configs = [], {}
    for spec in specs:
        vhosts = _virtual_hosts(vss, endpoints, spec, cluster_for)
        route_configs[spec.name] = {"name": f"routes_{spec.name}", "virtual_hosts": vhosts}
        out_listeners.append(_listener(spec))
    return EnvoyResources(listeners=out_listeners, route_configs=route_configs, clusters=list(clusters.values()))


# --- VirtualService reading ------------------------------------------------------

_VS_SPEC_FIELDS = {"hosts", "gateways", "http", "tcp", "tls", "exportTo"}
_ROUTE_FIELDS = {
    "name", "match", "route", "timeout", "retries", "headers", "fault", "rewrite",
    "mirror", "mirrorPercentage", "mirrorPercent", "mirror_percent", "mirrors",
    "redirect", "directResponse", "delegate", "corsPolicy",
}
_SUPPORTED_ROUTE_FIELDS = _ROUTE_FIELDS - {"delegate", "corsPolicy", "mirror_percent"}
_MATCH_FIELDS = {
    "name", "uri", "scheme", "method", "authority", "headers", "withoutHeaders", "queryParams",
    "sourceLabels", "sourceNamespace", "gateways", "ignoreUriCase", "port", "statPrefix",
}
_SUPPORTED_MATCH_FIELDS = _MATCH_FIELDS - {"port"}


class _VS:
    def __init__(self, obj: Mapping[str, Any]):
        meta = obj.get("metadata") or {}
        self.name = meta.get("name", "<unnamed>")
        self.namespace = meta.get("namespace") or "default"
        self.where = f"VirtualService {self.namespace}/{self.name}"
        kind = obj.get("kind", "VirtualService")
        if kind != "VirtualService":
            raise TranslationError(f"{self.where}: kind is {kind!r}, expected VirtualService", step=STEP)
        api = obj.get("apiVersion", "networking.istio.io/v1")
        if api not in ("networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"):
            raise TranslationError(
                f"{self.where}: apiVersion {api!r} is not one of networking.istio.io/v1, v1beta1, v1alpha3",
                step=STEP,
            )
        spec = obj.get("spec") or {}
        self.field(spec, _VS_SPEC_FIELDS, _VS_SPEC_FIELDS, "spec")
        for section in ("tcp", "tls"):
            if spec.get(section):
                self.unsupported(f"spec.{section}", "only spec.http routes are translated")
        self.hosts: list[str] = list(spec.get("hosts") or [])
        if not self.hosts:
            raise TranslationError(f"{self.where}: spec.hosts is empty", step=STEP)
        self.gateways: list[str] = list(spec.get("gateways") or ["mesh"])
        self.export_to: list[str] = list(spec.get("exportTo") or ["*"])
        self.http: list[dict] = list(spec.get("http") or [])
        for i, route in enumerate(self.http):
            where = f"spec.http[{i}]"
            self.field(route, _ROUTE_FIELDS, _SUPPORTED_ROUTE_FIELDS, where)
            for j, match in enumerate(route.get("match") or []):
                self.field(match, _MATCH_FIELDS, _SUPPORTED_MATCH_FIELDS, f"{where}.match[{j}]")

    def field(self, obj: Mapping, known: set, supported: set, where: str) -> None:
        for key in obj:
            if key not in known:
                raise UnsupportedField(
                    f"{self.where}: unknown field {where}.{key}; the translator knows {sorted(known)}",
                    step=STEP,
                )
            if key not in supported:
                self.unsupported(f"{where}.{key}", "not modelled by the Envoy translator")

    def unsupported(self, path: str, why: str) -> None:
        raise UnsupportedField(f"{self.where}: field {path} is not supported ({why})", step=STEP)

    def fail(self, path: str, message: str) -> None:
        raise TranslationError(f"{self.where}: {path}: {message}", step=STEP)

    def visible_to(self, spec: ListenerSpec) -> bool:
        if spec.gateway not in self.gateways:
            return False
        if spec.namespace is None or "*" in self.export_to:
            return True
        allowed = {self.namespace if e == "." else e for e in self.export_to}
        return spec.namespace in allowed


# --- hosts -------------------------------------------------------------------


def fqdn(host: str, namespace: str) -> str:
    """Resolve a service host the way Istio does, relative to `namespace`."""
    if host.startswith("*"):
        return host
    if "." not in host:
        return f"{host}.{namespace}.{CLUSTER_DOMAIN}"
    parts = host.split(".")
    if len(parts) == 2:
        return f"{host}.{CLUSTER_DOMAIN}"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{host}.cluster.local"
    return host


def _aliases(host: str, namespace: str, caller_namespace: str | None) -> list[str]:
    """The domains a caller may use for a host of a VirtualService in `namespace`
    (each also as `name:port`). As in Istio, the short name of a cluster service
    only works for callers in its namespace (caller_namespace None: any caller)."""
    full = fqdn(host, namespace)
    if full.endswith("." + CLUSTER_DOMAIN):
        name, ns = full[: -len(CLUSTER_DOMAIN) - 1].split(".", 1)
        names = [full, f"{name}.{ns}", f"{name}.{ns}.svc"]
        if caller_namespace is None or caller_namespace == ns:
            names.insert(0, name)
    else:
        names = [host]
    out: list[str] = []
    for n in names:
        out.append(n)
        if not n.startswith("*") and not n.endswith("*"):
            out.append(f"{n}:*")
    return out


def _virtual_hosts(vss: list[_VS], endpoints: Mapping[str, Endpoint], spec: ListenerSpec, cluster_for) -> list[dict]:
    visible = [vs for vs in vss if vs.visible_to(spec)]
    # Istio merges the VirtualServices of one host into one virtual host, in the
    # order given (it uses creation time); the first to claim a domain keeps it,
    # because Envoy refuses a domain in two virtual hosts.
    groups: dict[str, list[_VS]] = {}
    owner: dict[str, str] = {}
    for vs in visible:
        keys = {fqdn(h, vs.namespace) for h in vs.hosts}
        key = next((owner[k] for k in keys if k in owner), min(keys))
        for k in keys:
            owner.setdefault(k, key)
        groups.setdefault(key, [])
        if vs not in groups[key]:
            groups[key].append(vs)
    taken: set[str] = set()
    vhosts: list[dict] = []
    for members in groups.values():
        domains = []
        for member in members:
            for h in member.hosts:
                for d in _aliases(h, member.namespace, spec.namespace):
                    if d not in taken:
                        domains.append(d)
                        taken.add(d)
        routes = [r for member in members for r in _routes(member, spec, cluster_for)]
        if domains:
            first = members[0]
            vhosts.append({"name": f"{first.namespace}/{first.name}", "domains": domains, "routes": routes})
    # Services without a VirtualService: a default route to themselves, as in the mesh.
    for key in endpoints:
        if "|" in key or key in owner:
            continue
        ns = key[: -len(CLUSTER_DOMAIN) - 1].split(".", 1)[1] if key.endswith("." + CLUSTER_DOMAIN) else "default"
        domains = [d for d in _aliases(key, ns, spec.namespace) if d not in taken]
        if not domains:
            continue
        taken.update(domains)
        vhosts.append({
            "name": f"default/{key}",
            "domains": domains,
            "routes": [{"name": "default", "match": {"prefix": "/"},
                        "route": {"cluster": cluster_for(key, f"service {key}"), "timeout": "0s",
                                  "retry_policy": _retry_policy(None, None, "")}}],
        })
    return vhosts


# --- routes ------------------------------------------------------------------


def _routes(vs: _VS, spec: ListenerSpec, cluster_for) -> list[dict]:
    out = []
    for i, http in enumerate(vs.http):
        where = f"spec.http[{i}]"
        matches = http.get("match") or []
        if matches:
            kept = [(j, m) for j, m in enumerate(matches) if _match_applies(m, spec)]
            if not kept:
                continue  # every match block is for other callers: Istio drops the route here
            envoy_matches = [_route_match(vs, m, f"{where}.match[{j}]") for j, m in kept]
        else:
            envoy_matches = [{"prefix": "/"}]
        action = _route_action(vs, http, where, cluster_for)
        for m in envoy_matches:
            route = {"match": m, **action}
            if http.get("name"):
                route["name"] = http["name"]
            out.append(route)
    return out


def _match_applies(match: Mapping, spec: ListenerSpec) -> bool:
    labels = match.get("sourceLabels") or {}
    if any(spec.source_labels.get(k) != v for k, v in labels.items()):
        return False
    ns = match.get("sourceNamespace")
    if ns and spec.namespace is not None and ns != spec.namespace:
        return False
    if ns and spec.namespace is None:
        return False
    gateways = match.get("gateways")
    if gateways and spec.gateway not in gateways:
        return False
    return True


def _string_match(vs: _VS, sm: Any, where: str, *, ignore_case: bool = False) -> dict | None:
    """Istio StringMatch -> Envoy StringMatcher. None means 'present' (empty match)."""
    if not isinstance(sm, Mapping):
        vs.fail(where, f"expected a StringMatch (exact/prefix/regex), got {sm!r}")
    kinds = [k for k in sm if k in ("exact", "prefix", "regex")]
    extra = [k for k in sm if k not in ("exact", "prefix", "regex")]
    if extra:
        vs.unsupported(f"{where}.{extra[0]}", "a StringMatch has exact, prefix or regex")
    if not kinds:
        return None
    if len(kinds) > 1:
        vs.fail(where, f"a StringMatch takes one of exact/prefix/regex, got {kinds}")
    kind = kinds[0]
    value = sm[kind]
    if kind == "regex":
        _check_re2(vs, value, where)
        return {"safe_regex": {"regex": value}}
    out: dict[str, Any] = {kind: value}
    if ignore_case:
        out["ignore_case"] = True
    return out


def _check_re2(vs: _VS, pattern: str, where: str) -> None:
    """Reject what RE2 rejects and Python would accept, so the error names the field
    instead of Envoy refusing the whole config."""
    if re.search(r"\(\?[=!<]|\\[1-9]", pattern):
        vs.fail(where, f"regex {pattern!r} uses lookaround or backreferences, which RE2 (Istio/Envoy) does not support")
    try:
        re.compile(pattern)
    except re.error as e:
        vs.fail(where, f"regex {pattern!r} does not compile: {e}")


def _header_matcher(vs: _VS, name: str, sm: Any, where: str, *, invert: bool = False) -> dict:
    m = _string_match(vs, sm, where)
    out: dict[str, Any] = {"name": name}
    if m is None:
        out["present_match"] = True
    else:
        out["string_match"] = m
    if invert:
        out["invert_match"] = True
    return out


def _route_match(vs: _VS, match: Mapping, where: str) -> dict:
    out: dict[str, Any] = {}
    uri = match.get("uri")
    if uri is None or not any(k in uri for k in ("exact", "prefix", "regex")):
        if uri:
            _string_match(vs, uri, f"{where}.uri")
        out["prefix"] = "/"
    else:
        m = _string_match(vs, uri, f"{where}.uri")
        if "exact" in m:
            out["path"] = m["exact"]
        elif "prefix" in m:
            out["prefix"] = m["prefix"]
        else:
            out["safe_regex"] = m["safe_regex"]
        if match.get("ignoreUriCase") and "safe_regex" not in out:
            out["case_sensitive"] = False
    headers = []
    for name, sm in (match.get("headers") or {}).items():
        headers.append(_header_matcher(vs, name.lower(), sm, f"{where}.headers.{name}"))
    for name, sm in (match.get("withoutHeaders") or {}).items():
        headers.append(_header_matcher(vs, name.lower(), sm, f"{where}.withoutHeaders.{name}", invert=True))
    for key, pseudo in (("method", ":method"), ("scheme", ":scheme"), ("authority", ":authority")):
        if match.get(key) is not None:
            headers.append(_header_matcher(vs, pseudo, match[key], f"{where}.{key}"))
    if headers:
        out["headers"] = headers
    params = []
    for name, sm in (match.get("queryParams") or {}).items():
        m = _string_match(vs, sm, f"{where}.queryParams.{name}")
        params.append({"name": name, "present_match": True} if m is None else {"name": name, "string_match": m})
    if params:
        out["query_parameters"] = params
    return out


def _route_action(vs: _VS, http: Mapping, where: str, cluster_for) -> dict:
    """The action part of an Envoy route (route / redirect / direct_response + extras)."""
    out: dict[str, Any] = {}
    kinds = [k for k in ("route", "redirect", "directResponse") if http.get(k)]
    if len(kinds) != 1:
        vs.fail(where, f"needs exactly one of route, redirect, directResponse; has {kinds or 'none'}")
    req_add, req_remove, resp_add, resp_remove = _header_ops(vs, http.get("headers"), f"{where}.headers")
    if kinds[0] == "redirect":
        out["redirect"] = _redirect(vs, http["redirect"], f"{where}.redirect")
    elif kinds[0] == "directResponse":
        out["direct_response"] = _direct_response(vs, http["directResponse"], f"{where}.directResponse")
    else:
        action: dict[str, Any] = {}
        dests = []
        for k, d in enumerate(http["route"]):
            dw = f"{where}.route[{k}]"
            for key in d:
                if key not in ("destination", "weight", "headers"):
                    vs.unsupported(f"{dw}.{key}", "a route destination has destination, weight, headers")
            weight = d.get("weight")
            if weight is not None and (not isinstance(weight, int) or isinstance(weight, bool) or weight < 0):
                vs.fail(f"{dw}.weight", f"must be a non-negative integer, got {weight!r}")
            dests.append((dw, d, weight))
        if len(dests) > 1:
            dests = [x for x in dests if x[2]]  # Istio drops 0-weight destinations
            if not dests:
                vs.fail(f"{where}.route", "every destination has weight 0")
        if len(dests) == 1:
            dw, d, _ = dests[0]
            action["cluster"] = cluster_for(_destination_key(vs, d.get("destination"), f"{dw}.destination"), f"{vs.where} {dw}")
            a, r, ra, rr = _header_ops(vs, d.get("headers"), f"{dw}.headers")
            req_add, req_remove, resp_add, resp_remove = req_add + a, req_remove + r, resp_add + ra, resp_remove + rr
        else:
            clusters = []
            for dw, d, weight in dests:
                entry: dict[str, Any] = {
                    "name": cluster_for(_destination_key(vs, d.get("destination"), f"{dw}.destination"), f"{vs.where} {dw}"),
                    "weight": weight,
                }
                a, r, ra, rr = _header_ops(vs, d.get("headers"), f"{dw}.headers")
                for key, val in (("request_headers_to_add", a), ("request_headers_to_remove", r),
                                 ("response_headers_to_add", ra), ("response_headers_to_remove", rr)):
                    if val:
                        entry[key] = val
                clusters.append(entry)
            action["weighted_clusters"] = {"clusters": clusters}
        action["timeout"] = _duration(vs, http["timeout"], f"{where}.timeout") if http.get("timeout") else "0s"
        policy = _retry_policy(vs, http.get("retries"), f"{where}.retries")
        if policy:
            action["retry_policy"] = policy
        rewrite = http.get("rewrite")
        if rewrite:
            for key in rewrite:
                if key not in ("uri", "authority"):
                    vs.unsupported(f"{where}.rewrite.{key}", "rewrite supports uri and authority")
            if rewrite.get("uri") is not None:
                action["prefix_rewrite"] = rewrite["uri"]
            if rewrite.get("authority"):
                action["host_rewrite_literal"] = rewrite["authority"]
        mirrors = _mirrors(vs, http, where, cluster_for)
        if mirrors:
            action["request_mirror_policies"] = mirrors
        out["route"] = action
    if http.get("fault"):
        out["typed_per_filter_config"] = {_FAULT_FILTER: _fault(vs, http["fault"], f"{where}.fault")}
    for key, val in (("request_headers_to_add", req_add), ("request_headers_to_remove", req_remove),
                     ("response_headers_to_add", resp_add), ("response_headers_to_remove", resp_remove)):
        if val:
            out[key] = val
    return out


def _destination_key(vs: _VS, dest: Any, where: str) -> str:
    if not isinstance(dest, Mapping) or not dest.get("host"):
        vs.fail(where, "needs a destination with a host")
    for key in dest:
        if key not in ("host", "subset", "port"):
            vs.unsupported(f"{where}.{key}", "a destination has host, subset, port")
    return destination_key(dest, vs.namespace)


def destination_key(destination: Mapping[str, Any], namespace: str) -> str:
    """The `endpoints` key of an Istio destination ({host, subset?}) written in a
    VirtualService in `namespace`: its FQDN, or "<fqdn>|<subset>"."""
    host = fqdn(destination["host"], namespace)
    return f"{host}|{destination['subset']}" if destination.get("subset") else host


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """Parse an Istio/Go duration ("1.5s", "100ms", "1m30s") into seconds."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"not a duration: {text!r}")
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 1.5s, 100ms, 1m30s)")
    return total


def _duration(vs: _VS, text: Any, where: str) -> str:
    try:
        seconds = duration_seconds(text)
    except ValueError as e:
        vs.fail(where, str(e))
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _retry_policy(vs: _VS | None, retries: Mapping | None, where: str) -> dict | None:
    """Istio HTTPRetry -> Envoy RetryPolicy (None: retries disabled)."""
    if retries is None:
        attempts, on, per_try = ISTIO_DEFAULT_RETRY_ATTEMPTS, ISTIO_DEFAULT_RETRY_ON, None
    else:
        for key in retries:
            if key not in ("attempts", "perTryTimeout", "retryOn", "retryRemoteLocalities"):
                vs.unsupported(f"{where}.{key}", "retries has attempts, perTryTimeout, retryOn, retryRemoteLocalities")
        attempts = retries.get("attempts", 0)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
            vs.fail(f"{where}.attempts", f"must be a non-negative integer, got {attempts!r}")
        if attempts == 0:
            return None
        on = retries.get("retryOn") or ISTIO_DEFAULT_RETRY_ON
        per_try = retries.get("perTryTimeout")
    # Istio keeps the default 503 unless retryOn is given; then its numbers are the codes.
    custom_on = retries is not None and bool(retries.get("retryOn"))
    policies: list[str] = []
    codes = [] if custom_on else list(ISTIO_DEFAULT_RETRIABLE_CODES)
    for token in (t.strip() for t in on.split(",")):
        if not token:
            continue
        if token.isdigit():
            codes.append(int(token))
            if "retriable-status-codes" not in policies:
                policies.append("retriable-status-codes")
        elif token in _ENVOY_RETRY_ON:
            if token not in policies:
                policies.append(token)
        else:
            vs.fail(f"{where}.retryOn", f"unknown retry condition {token!r}; allowed: {sorted(_ENVOY_RETRY_ON)} or an HTTP status code")
    policy: dict[str, Any] = {
        "retry_on": ",".join(policies),
        "num_retries": attempts,
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"},
        }],
        "host_selection_retry_max_attempts": "5",
    }
    if codes:
        policy["retriable_status_codes"] = codes
    if per_try:
        policy["per_try_timeout"] = _duration(vs, per_try, f"{where}.perTryTimeout")
    return policy


def _header_ops(vs: _VS, ops: Mapping | None, where: str) -> tuple[list, list, list, list]:
    """Istio Headers {request,response}{set,add,remove} -> Envoy header lists."""
    result: list[list] = [[], [], [], []]
    if not ops:
        return tuple(result)  # type: ignore[return-value]
    for direction, (add_i, rm_i) in (("request", (0, 1)), ("response", (2, 3))):
        part = ops.get(direction) or {}
        for key in part:
            if key not in ("set", "add", "remove"):
                vs.unsupported(f"{where}.{direction}.{key}", "header operations are set, add, remove")
        for name, value in (part.get("set") or {}).items():
            result[add_i].append({"header": {"key": name, "value": str(value)}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"})
        for name, value in (part.get("add") or {}).items():
            result[add_i].append({"header": {"key": name, "value": str(value)}, "append_action": "APPEND_IF_EXISTS_OR_ADD"})
        result[rm_i].extend(part.get("remove") or [])
    for key in ops:
        if key not in ("request", "response"):
            vs.unsupported(f"{where}.{key}", "headers has request and response")
    return tuple(result)  # type: ignore[return-value]


def _percent(vs: _VS, obj: Mapping, where: str, *, default: float = 100.0) -> dict:
    value = default
    if "percentage" in obj:
        value = (obj["percentage"] or {}).get("value", 0.0)
    elif "percent" in obj:
        value = obj["percent"]
    if not isinstance(value, (int, float)) or not 0 <= value <= 100:
        vs.fail(f"{where}.percentage", f"must be a number 0-100, got {value!r}")
    return {"numerator": int(round(value * 10000)), "denominator": "MILLION"}


def _fault(vs: _VS, fault: Mapping, where: str) -> dict:
    out: dict[str, Any] = {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}
    for key in fault:
        if key not in ("delay", "abort"):
            vs.unsupported(f"{where}.{key}", "fault has delay and abort")
    delay = fault.get("delay")
    if delay:
        if "fixedDelay" not in delay:
            vs.unsupported(f"{where}.delay", "only fixedDelay is modelled")
        out["delay"] = {"fixed_delay": _duration(vs, delay["fixedDelay"], f"{where}.delay.fixedDelay"),
                        "percentage": _percent(vs, delay, f"{where}.delay")}
    abort = fault.get("abort")
    if abort:
        if "httpStatus" not in abort:
            vs.unsupported(f"{where}.abort", "only httpStatus aborts are modelled")
        out["abort"] = {"http_status": int(abort["httpStatus"]), "percentage": _percent(vs, abort, f"{where}.abort")}
    return out


def _mirrors(vs: _VS, http: Mapping, where: str, cluster_for) -> list[dict]:
    out = []
    if http.get("mirror"):
        pct = http.get("mirrorPercentage")
        if pct is None and http.get("mirrorPercent") is not None:
            pct = {"value": http["mirrorPercent"]}
        frac = _percent(vs, {"percentage": pct} if pct is not None else {}, f"{where}.mirrorPercentage")
        out.append({"cluster": cluster_for(_destination_key(vs, http["mirror"], f"{where}.mirror"), f"{vs.where} {where}.mirror"),
                     "runtime_fraction": {"default_value": frac}})
    for k, m in enumerate(http.get("mirrors") or []):
        mw = f"{where}.mirrors[{k}]"
        for key in m:
            if key not in ("destination", "percentage"):
                vs.unsupported(f"{mw}.{key}", "a mirror has destination and percentage")
        out.append({"cluster": cluster_for(_destination_key(vs, m.get("destination"), f"{mw}.destination"), f"{vs.where} {mw}"),
                    "runtime_fraction": {"default_value": _percent(vs, m, mw)}})
    return out


def _redirect(vs: _VS, redirect: Mapping, where: str) -> dict:
    out: dict[str, Any] = {}
    for key in redirect:
        if key not in ("uri", "authority", "redirectCode", "scheme", "port"):
            vs.unsupported(f"{where}.{key}", "redirect has uri, authority, redirectCode, scheme, port")
    if redirect.get("uri"):
        out["path_redirect"] = redirect["uri"]
    if redirect.get("authority"):
        out["host_redirect"] = redirect["authority"]
    if redirect.get("scheme"):
        out["scheme_redirect"] = redirect["scheme"]
    if redirect.get("port"):
        out["port_redirect"] = int(redirect["port"])
    codes = {301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER", 307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT"}
    code = redirect.get("redirectCode", 301)
    if code not in codes:
        vs.fail(f"{where}.redirectCode", f"must be one of {sorted(codes)}, got {code!r}")
    out["response_code"] = codes[code]
    return out


def _direct_response(vs: _VS, resp: Mapping, where: str) -> dict:
    for key in resp:
        if key not in ("status", "body"):
            vs.unsupported(f"{where}.{key}", "directResponse has status and body")
    out: dict[str, Any] = {"status": int(resp.get("status", 200))}
    body = resp.get("body")
    if body:
        if "string" not in body:
            vs.unsupported(f"{where}.body", "only a string body is modelled")
        out["body"] = {"inline_string": body["string"]}
    return out


# --- listeners, clusters, files -------------------------------------------------


def _listener(spec: ListenerSpec) -> dict:
    return {
        "name": spec.name,
        "address": {"socket_address": {"address": spec.address, "port_value": spec.port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": spec.name,
                "codec_type": "AUTO",
                "route_config": None,  # filled in by static_bootstrap / write_dynamic
                "http_filters": [
                    {"name": _FAULT_FILTER, "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
                    {"name": _ROUTER_FILTER, "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                ],
            },
        }]}],
    }


def _hcm(listener: dict) -> dict:
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def _with_inline_routes(listener: dict, route_config: dict) -> dict:
    out = json.loads(json.dumps(listener))
    _hcm(out)["route_config"] = route_config
    return out


def _with_rds_routes(listener: dict, rds_path: str, directory: str) -> dict:
    out = json.loads(json.dumps(listener))
    hcm = _hcm(out)
    del hcm["route_config"]
    hcm["rds"] = {
        "route_config_name": f"routes_{listener['name']}",
        "config_source": {
            "path_config_source": {"path": rds_path, "watched_directory": {"path": directory}},
            "resource_api_version": "V3",
        },
    }
    return out


def _cluster(name: str, ip: str, port: int) -> dict:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": ip, "port_value": port}}}}]}],
        },
    }


def discovery_response(type_name: str, resources: list[dict]) -> dict:
    """An xDS DiscoveryResponse as Envoy reads it from a path_config_source file."""
    url = f"type.googleapis.com/{type_name}"
    version = hashlib.sha256(json.dumps(resources, sort_keys=True).encode()).hexdigest()[:16]
    return {"version_info": version, "resources": [{"@type": url, **r} for r in resources]}


def _add_admin(boot: dict, admin_port: int | None) -> None:
    if admin_port is not None:
        boot["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}}
