"""The service catalog: which services graysteps manages and how each one's
prod and gray profiles are reached (see examples/catalog.yaml, which documents
every key).

The file is read with ruamel.yaml round-trip, so a job can change it and
`Catalog.save()` keeps its comments and key order. Every validation error names
the file and line: `catalog.yaml:12: services.test-b.port: ...`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from graysteps.errors import InvalidInput

LAYOUTS = ("namespaces", "subsets")
PROFILES = ("prod", "gray")
API_VERSIONS = ("networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3")
DEFAULT_API_VERSION = API_VERSIONS[0]
DEFAULT_COOKIE_NAME = "tenantGray"
DEFAULT_COOKIE_VALUE = "1"
DEFAULT_PORT = 8080
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_SUBSETS = {"prod": "prod", "gray": "gray"}

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_COOKIE_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")
DNS1123_RULE = "Kubernetes names must be lowercase DNS-1123 labels (a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)"

_SERVICE_KEYS = {
    "layout", "namespaces", "namespace", "port", "apiVersion", "cookie",
    "optOutRoutes", "virtualService", "hosts", "destinationRule", "subsets", "clusterDomain",
    "destinationHosts",
}
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def is_dns1123_label(name: object) -> bool:
    return isinstance(name, str) and len(name) <= 63 and _DNS1123_LABEL.fullmatch(name) is not None


def check_service_name(name: str) -> None:
    """InvalidInput unless `name` is a lowercase DNS-1123 label (`test-A` is not)."""
    if not is_dns1123_label(name):
        hint = f"; did you mean {name.lower()!r}?" if is_dns1123_label(str(name).lower()) else ""
        raise InvalidInput(f"service name {name!r} is not allowed: {DNS1123_RULE}{hint}")


@dataclass(frozen=True)
class ServiceSpec:
    """One catalog service, resolved (defaults applied) and validated.

    `namespaces` maps each profile to its namespace; in the `subsets` layout
    both are the same namespace. Derived values (`vs_namespace`, `hosts`,
    `destination()`) follow `namespaces`, so `dataclasses.replace(spec,
    namespaces=...)` moves the whole service.
    """

    name: str
    layout: str = "namespaces"
    namespaces: dict = field(default_factory=lambda: {"prod": "prod", "gray": "gray"})
    port: int = DEFAULT_PORT
    api_version: str = DEFAULT_API_VERSION
    cookie_name: str = DEFAULT_COOKIE_NAME
    cookie_value: str = DEFAULT_COOKIE_VALUE
    opt_out_routes: tuple = ()
    virtual_service: str | None = None  # default: the service name
    host_names: tuple = ()  # spec.hosts of a new VS; default: (name,)
    destination_rule: str | None = None  # subsets layout; default: the service name
    subsets: dict = field(default_factory=lambda: dict(DEFAULT_SUBSETS))  # subsets layout: profile -> subset name
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    destination_hosts: dict = field(default_factory=dict)  # profile -> Kubernetes Service name (default: `name`)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.namespaces.items())), self.layout))

    @property
    def vs_name(self) -> str:
        return self.virtual_service or self.name

    @property
    def vs_namespace(self) -> str:
        """The VirtualService lives with prod (the one namespace for `subsets`)."""
        return self.namespaces["prod"]

    @property
    def hosts(self) -> list[str]:
        return list(self.host_names or (self.name,))

    @property
    def served_host(self) -> str:
        """The name Istio serves the VirtualService's first host under, at a gateway and
        to callers in other namespaces: a short name is qualified with the
        VirtualService's namespace (`test-a` in `prod`: test-a.prod.svc.<clusterDomain>)."""
        host = self.hosts[0]
        return host if "." in host or "*" in host else f"{host}.{self.vs_namespace}.svc.{self.cluster_domain}"

    @property
    def dr_name(self) -> str:
        return self.destination_rule or self.name

    def service_host(self, profile: str) -> str:
        """The Kubernetes Service (FQDN) that serves `profile`."""
        return f"{self._service_name(profile)}.{self.namespaces[profile]}.svc.{self.cluster_domain}"

    def _service_name(self, profile: str) -> str:
        return self.destination_hosts.get(profile) or self.name

    def subset(self, profile: str) -> str | None:
        """The DestinationRule subset of `profile` (subsets layout), else None."""
        return self.subsets[profile] if self.layout == "subsets" else None

    def destination(self, profile: str) -> dict:
        """The Istio route destination for `profile` (prod|gray)."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be prod or gray, not {profile!r}")
        if self.layout == "subsets":
            return {"host": self.service_host(profile), "subset": self.subsets[profile]}
        return {"host": self.service_host(profile)}

    def profile_hosts(self, profile: str) -> set[str]:
        """Every way a route destination may name the host serving `profile`
        (short names are relative to the VirtualService's namespace)."""
        ns, name = self.namespaces[profile], self._service_name(profile)
        names = {f"{name}.{ns}", f"{name}.{ns}.svc", self.service_host(profile)}
        if ns == self.vs_namespace:
            names.add(name)
        return names

    def own_hosts(self) -> set[str]:
        """Every way a route destination may name this service's prod or gray host."""
        return self.profile_hosts("prod") | self.profile_hosts("gray")


@dataclass
class Catalog:
    """A loaded catalog file. `data` is the ruamel round-trip document."""

    path: str
    data: Any
    services: dict[str, ServiceSpec]

    def names(self) -> list[str]:
        """The service names, in file order."""
        return list(self.services)

    def service(self, name: str) -> ServiceSpec:
        check_service_name(name)
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(self.services) or "none"
            raise InvalidInput(f"unknown service {name!r}: catalog {self.path} has {known}") from None

    def save(self, path: str | None = None) -> None:
        """Write the document back (comments and order kept)."""
        with open(path or self.path, "w", encoding="utf-8") as f:
            _yaml().dump(self.data, f)


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    return yaml


def catalog_path(path: str | None) -> str:
    """`path`, else $GRAYSTEPS_CATALOG, else ./catalog.yaml (if it exists)."""
    chosen = path or os.environ.get("GRAYSTEPS_CATALOG")
    if chosen:
        return chosen
    if os.path.exists("catalog.yaml"):
        return "catalog.yaml"
    raise InvalidInput("no catalog: pass --catalog FILE, set GRAYSTEPS_CATALOG, or put catalog.yaml in the working directory")


def load_catalog(path: str | None = None) -> Catalog:
    """Read and validate a catalog; InvalidInput (naming file and line) if it is wrong."""
    from graysteps.adapters import reading

    path = catalog_path(path)
    if not os.path.lexists(path):
        raise InvalidInput(f"catalog file {path} not found; pass --catalog FILE or set GRAYSTEPS_CATALOG")
    text = reading.read_text(path, what="catalog file")
    data = reading.parse_yaml(text, what="", name=path, round_trip=True)  # errors read `path:line: …`
    return Catalog(path=path, data=data, services=_Validator(path).services(data))


class _Validator:
    def __init__(self, path: str):
        self.path = path

    def fail(self, node: Any, key: Any, where: str, message: str) -> None:
        line = _line(node, key)
        raise InvalidInput(f"{self.path}{f':{line}' if line else ''}: {where}: {message}")

    def mapping(self, node: Any, key: Any, value: Any, where: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(node, key, where, f"must be a mapping, not {type(value).__name__}")
        return value

    def per_profile(self, node: Any, key: str, value: Any, where: str, layout_fits: bool, wrong_layout: str) -> dict:
        """A `{prod: …, gray: …}` mapping (either may be left out) of a key only one layout takes."""
        if not layout_fits:
            self.fail(node, key, where, wrong_layout)
        given = self.mapping(node, key, value, where)
        for profile in given:
            if profile not in PROFILES:
                self.fail(given, profile, f"{where}.{profile}", "unknown profile; allowed: prod, gray")
        return given

    def services(self, data: Any) -> dict[str, ServiceSpec]:
        if not isinstance(data, dict):
            raise InvalidInput(f"{self.path}: a catalog is a mapping with `services:` (see examples/catalog.yaml)")
        for key in data:
            if key not in ("defaults", "services"):
                self.fail(data, key, str(key), "unknown top-level key; allowed: defaults, services")
        defaults = self.mapping(data, "defaults", data.get("defaults"), "defaults")
        self.keys(defaults, "defaults")
        services = self.mapping(data, "services", data.get("services"), "services")
        if not services:
            self.fail(data, "services", "services", "no services declared")
        out = {}
        for name, body in services.items():
            where = f"services.{name}"
            if not is_dns1123_label(name):
                self.fail(services, name, where, f"service name {name!r} is not allowed: {DNS1123_RULE}")
            body = self.mapping(services, name, body, where)
            self.keys(body, where)
            out[name] = self.service(name, defaults, body, where)
        return out

    def keys(self, body: dict, where: str) -> None:
        for key in body:
            if key not in _SERVICE_KEYS:
                self.fail(body, key, f"{where}.{key}", f"unknown key; allowed: {', '.join(sorted(_SERVICE_KEYS))}")

    def service(self, name: str, defaults: dict, body: dict, where: str) -> ServiceSpec:
        def pick(key: str, default: Any = None) -> tuple[Any, Any, str]:
            if key in body:
                return body[key], body, f"{where}.{key}"
            if key in defaults:
                return defaults[key], defaults, f"defaults.{key}"
            return default, None, f"{where}.{key}"

        layout, node, w = pick("layout", "namespaces")
        if layout not in LAYOUTS:
            self.fail(node, "layout", w, f"{layout!r} is not a layout; allowed: {', '.join(LAYOUTS)}")
        namespaces = self.namespaces(layout, body, defaults, where)

        port, node, w = pick("port", DEFAULT_PORT)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            self.fail(node, "port", w, f"{port!r} is not a port; use an integer 1-65535")

        api_version, node, w = pick("apiVersion", DEFAULT_API_VERSION)
        if api_version not in API_VERSIONS:
            self.fail(node, "apiVersion", w, f"{api_version!r} is not allowed; use one of {', '.join(API_VERSIONS)}")

        cookie = dict(self.mapping(defaults, "cookie", defaults.get("cookie"), "defaults.cookie"))
        cookie_node = defaults.get("cookie")
        if "cookie" in body:
            cookie_node = body["cookie"]
            cookie.update(self.mapping(body, "cookie", body["cookie"], f"{where}.cookie"))
        cookie_where = f"{where}.cookie" if "cookie" in body else "defaults.cookie"
        for key in cookie:
            if key not in ("name", "value"):
                self.fail(cookie_node, key, f"{cookie_where}.{key}", "unknown key; allowed: name, value")
        cookie_name = cookie.get("name", DEFAULT_COOKIE_NAME)
        cookie_value = cookie.get("value", DEFAULT_COOKIE_VALUE)
        if isinstance(cookie_value, int) and not isinstance(cookie_value, bool):
            cookie_value = str(cookie_value)
        for key, value in (("name", cookie_name), ("value", cookie_value)):
            if not isinstance(value, str) or not _COOKIE_TOKEN.fullmatch(value):
                self.fail(cookie_node, key, f"{cookie_where}.{key}",
                          f"{value!r} is not allowed; use letters, digits, '_', '.', '-'")

        opt_out, node, w = pick("optOutRoutes", [])
        if opt_out is None:
            opt_out = []
        if not isinstance(opt_out, list) or not all(isinstance(r, str) and r for r in opt_out):
            self.fail(node, "optOutRoutes", w, "must be a list of route names")

        vs_name, node, w = pick("virtualService", None)
        if vs_name is not None and not is_dns1123_label(vs_name):
            self.fail(node, "virtualService", w, f"{vs_name!r}: {DNS1123_RULE}")
        dr_name, node, w = pick("destinationRule", None)
        if dr_name is not None and not is_dns1123_label(dr_name):
            self.fail(node, "destinationRule", w, f"{dr_name!r}: {DNS1123_RULE}")
        hosts, node, w = pick("hosts", None)
        if hosts is not None and (not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts)):
            self.fail(node, "hosts", w, "must be a non-empty list of host names")

        subsets, node, w = pick("subsets", None)
        if subsets is not None:
            given = self.per_profile(node, "subsets", subsets, w, layout == "subsets",
                                     "only the subsets layout names subsets; add `layout: subsets` or drop it")
            subsets = {**DEFAULT_SUBSETS, **given}
            for profile in PROFILES:
                if not is_dns1123_label(subsets[profile]):
                    self.fail(given if profile in given else node, profile, f"{w}.{profile}",
                              f"subset {subsets[profile]!r} is not allowed: {DNS1123_RULE}")
            if subsets["prod"] == subsets["gray"]:
                self.fail(node, "subsets", w, "prod and gray need two different subsets")
        hosts_by_profile, node, w = pick("destinationHosts", None)
        if hosts_by_profile is not None:
            given = self.per_profile(node, "destinationHosts", hosts_by_profile, w, layout == "namespaces",
                                     "only the namespaces layout names hosts; the subsets layout names subsets")
            for key, value in given.items():
                if not is_dns1123_label(value):
                    self.fail(given, key, f"{w}.{key}", f"{value!r} is not a Service name: {DNS1123_RULE}")
            hosts_by_profile = dict(given)
            if namespaces["prod"] == namespaces["gray"] and (hosts_by_profile.get("prod") or name) == (hosts_by_profile.get("gray") or name):
                self.fail(node, "destinationHosts", w, "prod and gray name the same Service in the same namespace")
        domain, node, w = pick("clusterDomain", DEFAULT_CLUSTER_DOMAIN)
        if not isinstance(domain, str) or len(domain) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(domain):
            self.fail(node, "clusterDomain", w, f"{domain!r} is not a DNS domain (lowercase labels joined by '.', e.g. cluster.local)")

        return ServiceSpec(
            name=name, layout=layout, namespaces=namespaces, port=port, api_version=api_version,
            cookie_name=cookie_name, cookie_value=cookie_value, opt_out_routes=tuple(opt_out),
            virtual_service=vs_name, host_names=tuple(hosts or ()), destination_rule=dr_name,
            subsets=dict(subsets or DEFAULT_SUBSETS), cluster_domain=domain,
            destination_hosts=dict(hosts_by_profile or {}),
        )

    def namespaces(self, layout: str, body: dict, defaults: dict, where: str) -> dict:
        source = body if ("namespaces" in body or "namespace" in body) else defaults
        swhere = where if source is body else "defaults"
        if layout == "subsets":
            if "namespace" in source:
                ns = source["namespace"]
                node, key = source, "namespace"
            elif "namespaces" in source:
                given = self.mapping(source, "namespaces", source["namespaces"], f"{swhere}.namespaces")
                if given.get("prod") != given.get("gray"):
                    self.fail(source, "namespaces", f"{swhere}.namespaces",
                              "the subsets layout uses one namespace: give `namespace: NAME`")
                ns, node, key = given.get("prod"), source, "namespaces"
            else:
                ns, node, key = "prod", None, "namespace"
            if not is_dns1123_label(ns):
                self.fail(node, key, f"{swhere}.{key}", f"namespace {ns!r} is not allowed: {DNS1123_RULE}")
            return {"prod": ns, "gray": ns}
        if "namespace" in source:
            self.fail(source, "namespace", f"{swhere}.namespace",
                      "the namespaces layout takes `namespaces: {prod: NAME, gray: NAME}`")
        given = self.mapping(source, "namespaces", source.get("namespaces"), f"{swhere}.namespaces")
        result = {}
        for profile in PROFILES:
            ns = given.get(profile, profile)
            if not is_dns1123_label(ns):
                self.fail(given if profile in given else source, profile, f"{swhere}.namespaces.{profile}",
                          f"namespace {ns!r} is not allowed: {DNS1123_RULE}")
            result[profile] = ns
        for key in given:
            if key not in PROFILES:
                self.fail(given, key, f"{swhere}.namespaces.{key}", "unknown profile; allowed: prod, gray")
        if result["prod"] == result["gray"] and "destinationHosts" not in body and "destinationHosts" not in defaults:
            self.fail(source, "namespaces", f"{swhere}.namespaces",
                      "prod and gray share a namespace: use `layout: subsets`, or name two Services in `destinationHosts`")
        return result


def _line(node: Any, key: Any) -> int | None:
    """1-based line of `key` in a ruamel mapping (None when unknown)."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if key is not None and key in node:
            return lc.key(key)[0] + 1
    except (KeyError, TypeError, AttributeError):
        pass
    return (lc.line + 1) if lc.line is not None else None
