"""A mesh for VirtualServices as users wrote them: istiod configures a gateway
Envoy and one sidecar Envoy per caller profile, and every destination the
VirtualServices name gets a backend that answers with who it is.

LocalMesh (mesh.py) serves graysteps' own layout: services x profiles. This
mesh serves any routes: `load()` reads the destinations (host, subset) of a set
of VirtualServices and makes Istio know them, the way a cluster would:

- **a ServiceEntry per host** (resolution STATIC, one endpoint per subset: a
  backend at the machine's address), so hosts of any cluster domain resolve;
- **the DestinationRules given**, with each subset a destination names and the
  rule lacks added (the endpoint of a subset carries that subset's labels);
- **a Gateway for each gateway the routes name** (`bookinfo-gateway` of the
  VirtualService's namespace), each one its own port on the gateway Envoy.

Then `route()` writes VirtualServices and returns once every Envoy serves them,
and `send()` sends requests through a gateway or a caller's sidecar and counts
the answers by the destination that served them ("host|subset"), or "HTTP 404".

    with DestinationMesh(workdir, kube=kube, istiod=istiod) as mesh:
        mesh.load([vs_before, vs_after], destination_rules)
        mesh.route([vs_after])
        mesh.send("reviews.default.svc.cluster.local", n=10, gateway="mesh", profile="gray")
"""

from __future__ import annotations

import copy
import hashlib
import http.client
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence
from urllib.parse import urlencode

from graysteps.adapters.istiod import binds_mesh, newest_push, wait_until_served
from graysteps.adapters.probe import probe
from graysteps_lab.world.backend import PROFILE_HEADER, SERVICE_HEADER, Backend
from graysteps_lab.world.envoy import Envoy
from graysteps_lab.world.istiod import NAMESPACE as ISTIO_NAMESPACE
from graysteps_lab.world.istiod import Istiod
from graysteps_lab.world.kube import KubeWorld
from graysteps_lab.world.lab_objects import (LabObjects, as_lab_object, caller_sidecar, http_gateway,
                                              istio_collection, lab_object)
from graysteps_lab.world.mesh import free_loopback_address, machine_address
from graysteps_lab.world.ports import free_port
from graysteps_lab.world.proxies import start_proxy, stop_servers, wait_clusters_ready, wait_listening

GATEWAY_NAME = "graysteps-destination-gateway"
GATEWAY_LABELS = {"istio": GATEWAY_NAME}
CALLERS_NAMESPACE = "default"  # where Request.source_namespace says callers are (corpus_cases)
CALLER_APP = "graysteps-destination-caller"
DESTINATIONS_NAMESPACE = "graysteps-destinations"  # where the ServiceEntries and added DestinationRules live
SUBSET_LABEL = "graysteps.io/subset"  # tells the endpoints of subsets apart (see _destination_rules)
NO_SUBSET = "-"


@dataclass(frozen=True)
class Target:
    """A destination as Istio resolves it: a fully qualified host, a subset or None."""

    host: str
    subset: str | None = None

    @property
    def key(self) -> str:
        """How `send()` counts an answer from this destination."""
        return f"{self.host}|{self.subset or NO_SUBSET}"


def qualified(host: str, namespace: str, domain: str = "cluster.local") -> str:
    """A host as Istio resolves it for an object in `namespace` (a short name: <name>.<namespace>.svc.<domain>)."""
    return host if "." in host or "*" in host else f"{host}.{namespace}.svc.{domain}"


def namespace_of(obj: Mapping) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def destinations_of(vs: Mapping) -> dict[Target, set[int]]:
    """Every destination of a VirtualService's routes (http, tls, tcp, mirrors) with the port numbers it names."""
    namespace, out = namespace_of(vs), {}
    spec = vs.get("spec") or {}
    for section in ("http", "tls", "tcp"):
        for route in spec.get(section) or []:
            named = [e["destination"] for e in route.get("route") or []]
            named += [m for m in [route.get("mirror")] if m] + [m["destination"] for m in route.get("mirrors") or []]
            for d in named:
                target = Target(qualified(d["host"], namespace), d.get("subset"))
                port = (d.get("port") or {}).get("number")
                out.setdefault(target, set()).update([port] if port else [])
    return out


def gateways_of(vs: Mapping) -> set[str]:
    """The gateways (namespace/name) a VirtualService or any of its routes binds, `mesh` left out."""
    namespace = namespace_of(vs)
    spec = vs.get("spec") or {}
    names = list(spec.get("gateways") or [])
    for route in spec.get("http") or []:
        for clause in route.get("match") or []:
            names += clause.get("gateways") or []
    return {n if "/" in n else f"{namespace}/{n}" for n in names if n != "mesh"}


def concrete_host(host: str) -> str:
    """A name a wildcard host matches ("*": any.graysteps.test, "*.example.com": any.example.com)."""
    return "any.graysteps.test" if host == "*" else host.replace("*", "any")


def mesh_hosts(virtual_services: Iterable[Mapping]) -> set[str]:
    """The hosts (qualified, lowercase, a wildcard as `concrete_host` names it) of the VirtualServices
    that apply to sidecars: a sidecar routes a host only if it is a service."""
    return {qualified(concrete_host(h.lower()), namespace_of(vs)) for vs in virtual_services if binds_mesh(vs)
            for h in (vs.get("spec") or {}).get("hosts") or []}


def _without_tls(spec: dict) -> dict:
    """A DestinationRule's spec without its `tls` settings (top, per subset, per port), and without
    what that leaves empty (Istio refuses an empty traffic policy)."""
    def policy(p: dict | None) -> dict:
        p = {k: v for k, v in (p or {}).items() if k != "tls"}
        ports = [s for s in ({k: v for k, v in s.items() if k != "tls"} for s in p.pop("portLevelSettings", []))
                 if set(s) - {"port"}]
        return {**p, **({"portLevelSettings": ports} if ports else {})}

    spec = copy.deepcopy(spec)
    for owner in [spec, *(spec.get("subsets") or [])]:
        if "trafficPolicy" in owner:
            owner["trafficPolicy"] = policy(owner["trafficPolicy"])
            if not owner["trafficPolicy"]:
                del owner["trafficPolicy"]
    return spec


def service_entry(name: str, namespace: str, host: str, ports: Iterable[int], endpoints: list[dict] | None = None) -> dict:
    """A ServiceEntry making `host` a service of the mesh on HTTP `ports` (named http-PORT): with
    `endpoints` at those (resolution STATIC), else with none (NONE: a host to route, nothing behind it)."""
    spec = {"hosts": [host], "location": "MESH_INTERNAL", "resolution": "STATIC" if endpoints is not None else "NONE",
            "ports": [{"number": p, "name": f"http-{p}", "protocol": "HTTP"} for p in ports]}
    if endpoints is not None:
        spec["endpoints"] = endpoints
    return lab_object("ServiceEntry", name, namespace, spec)


def _name(host: str, generation: int) -> str:
    """The name of the lab's object for `host` in the `generation`-th load: new names each load, so
    istiod makes a full push of every change (an endpoint-only change of one ServiceEntry would be
    an EDS push, which `wait_until_served` does not see)."""
    return f"d{generation}-" + hashlib.sha256(host.encode()).hexdigest()[:12]


class DestinationMesh:
    def __init__(self, workdir: str | Path, *, kube: KubeWorld, istiod: Istiod, profiles: Sequence[str] = ("prod", "gray"),
                 profile_label: str = "profile", mesh_port: int = 8080, envoy_binary: str | None = None):
        self.workdir = Path(workdir)
        self.kube, self.istiod = kube, istiod
        self.profiles, self.profile_label, self.mesh_port = list(profiles), profile_label, mesh_port
        self.address = machine_address()
        self.callers = {p: free_loopback_address(mesh_port) for p in self.profiles}  # profile -> egress address
        self.gateway_ports: dict[str, int] = {}  # "namespace/name" -> the port its server listens on
        self.backends: dict[Target, Backend] = {}
        self.envoys: dict[str, Envoy] = {}
        self.proxies = LabObjects(kube)  # the callers' Sidecars: kept while the mesh runs
        self.scene = LabObjects(kube)  # what load() and route() write: replaced by the next load()
        self._envoy_binary = envoy_binary
        self._generation = 0

    def __enter__(self) -> "DestinationMesh":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        stop_servers(self.envoys, self.backends)
        self.backends.clear()
        self.scene.delete_all()
        self.proxies.delete_all()

    def start(self) -> "DestinationMesh":
        try:
            self.proxies.namespace(CALLERS_NAMESPACE)
            self.proxies.namespace(DESTINATIONS_NAMESPACE)
            # a service on the callers' port from the start: a sidecar has an egress listener
            # on a port only while some service has that port
            self.proxies.apply(istio_collection(DESTINATIONS_NAMESPACE, "serviceentries"), service_entry(
                "callers-port", DESTINATIONS_NAMESPACE, f"callers-port.{DESTINATIONS_NAMESPACE}.lab", [self.mesh_port]))
            for profile, address in self.callers.items():
                labels = {"app": CALLER_APP, self.profile_label: profile}
                self.proxies.apply(istio_collection(CALLERS_NAMESPACE, "sidecars"), caller_sidecar(
                    f"{CALLER_APP}-{profile}", CALLERS_NAMESPACE, labels, address, self.mesh_port))
            wait_until_served(self.proxies.changes, self.istiod.debug, after_push=None, timeout=90, step="testworld")
            self.envoys["gateway"] = self._proxy("router", GATEWAY_NAME, ISTIO_NAMESPACE,
                                                 GATEWAY_LABELS)
            for profile, address in self.callers.items():
                key = f"caller-{profile}"
                self.envoys[key] = self._proxy("sidecar", f"{CALLER_APP}-{profile}", CALLERS_NAMESPACE,
                                               {"app": CALLER_APP, self.profile_label: profile})
                wait_listening(self.envoys[key], address, self.mesh_port, key, self.istiod)
        except BaseException:
            self.stop()
            raise
        return self


    # -- what the routes need -------------------------------------------------------

    def load(self, virtual_services: Iterable[Mapping], destination_rules: Iterable[Mapping] = ()) -> list[Target]:
        """Make Istio know every destination and gateway of `virtual_services` (the VirtualServices
        themselves are not written: `route()` does that); what an earlier load() made is removed.
        Returns the destinations, each served by its own backend."""
        virtual_services = list(virtual_services)
        floor = newest_push(self.istiod.debug)
        previous, self.scene = self.scene, LabObjects(self.kube)
        self._generation += 1
        self._stop_backends()
        targets: dict[Target, set[int]] = {}
        for vs in virtual_services:
            for target, ports in destinations_of(vs).items():
                targets.setdefault(target, set()).update(ports)
        for target in targets:
            self.backends[target] = Backend(target.host, target.subset or NO_SUBSET, host=self.address).start()
        rules = self._destination_rules(targets, destination_rules)
        for rule in rules.values():
            self.scene.namespace(namespace_of(rule))
            self.scene.apply(istio_collection(namespace_of(rule), "destinationrules"), rule)
        for host in sorted({t.host for t in targets}):
            ports = sorted(set().union(*(p for t, p in targets.items() if t.host == host)) or {self.mesh_port})
            self._service_entry(host, ports, rules.get(host))
        # a sidecar routes only hosts that are services: a VirtualService's host that no route
        # names (Argo Rollouts' `istio-host-split`, split to -stable and -canary) is one too
        for host in sorted(mesh_hosts(virtual_services) - {t.host for t in targets}):
            self.scene.apply(istio_collection(DESTINATIONS_NAMESPACE, "serviceentries"), service_entry(
                _name(host, self._generation), DESTINATIONS_NAMESPACE, host, [self.mesh_port]))
        for gateway in gateways_of_all(virtual_services):
            namespace, name = gateway.split("/", 1)
            port = self.gateway_ports.setdefault(gateway, free_port())
            self.scene.namespace(namespace)
            self.scene.apply(istio_collection(namespace, "gateways"),
                             http_gateway(name, namespace, GATEWAY_LABELS, "127.0.0.1", port))
        changes = list(self.scene.changes)
        for collection, names in previous.written.items():  # what the new scene does not write again
            for name in sorted(names - self.scene.written.get(collection, set())):
                changes.append(previous.delete(collection, name))
        # a caller's sidecar has clusters only for the port of its egress listener: it is pushed,
        # and needs endpoints, only for destinations on that port
        clusters = {f"outbound|{port}|{t.subset or ''}|{t.host}": port
                    for t, ports in targets.items() for port in ports or {self.mesh_port}}
        on_callers_port = {c for c, port in clusters.items() if port == self.mesh_port}
        proxies = {"gateway"} | ({f"caller-{p}" for p in self.callers} if on_callers_port else set())
        wait_until_served(changes, self._debug_of(proxies), after_push=floor, timeout=90, step="testworld")
        for gateway in gateways_of_all(virtual_services):
            wait_listening(self.envoys["gateway"], "127.0.0.1", self.gateway_ports[gateway], gateway, self.istiod)
        wait_clusters_ready({"gateway": self.envoys["gateway"]}, clusters, self.istiod)
        if on_callers_port:
            wait_clusters_ready({k: e for k, e in self.envoys.items() if k != "gateway"}, on_callers_port, self.istiod)
        return sorted(self.backends, key=lambda t: t.key)

    def route(self, virtual_services: Sequence[Mapping], timeout: float = 30.0) -> float:
        """Route by these VirtualServices (and no other the mesh wrote); the seconds until every
        Envoy they concern serves them (graysteps' own `--wait`: istiod pushes a VirtualService
        bound only to gateways to no sidecar)."""
        floor = newest_push(self.istiod.debug)
        written = [as_lab_object({"kind": "VirtualService", **vs}) for vs in virtual_services]
        for vs in written:
            self.scene.namespace(vs["metadata"]["namespace"])
        changes = self.scene.replace_virtual_services(written)
        return wait_until_served(changes, self.istiod.debug, after_push=floor, timeout=timeout,
                                 step="testworld").seconds

    def _debug_of(self, envoys: set[str]):
        """istiod's debug API as seen by a wait for these of the mesh's Envoys only (/debug/syncz filtered)."""
        names = {GATEWAY_NAME if key == "gateway" else f"{CALLER_APP}-{key.removeprefix('caller-')}" for key in envoys}
        proxies = {f"{GATEWAY_NAME}.{ISTIO_NAMESPACE}" if n == GATEWAY_NAME else f"{n}.{CALLERS_NAMESPACE}"
                   for n in names}

        def debug(path: str):
            answer = self.istiod.debug(path)
            if path.startswith("/debug/syncz"):
                return [p for p in answer if p.get("proxy") in proxies]
            return answer
        return debug

    def _destination_rules(self, targets: Mapping[Target, set[int]],
                           given: Iterable[Mapping]) -> dict[str, dict]:
        """host -> the DestinationRule Istio gets for it: the given one (lab-labelled), with each subset
        a destination names and it lacks added; one of the lab's own for a host with no rule.

        TLS settings and `exportTo` are left out: the backends speak plain HTTP, the Envoys hold no
        certificates, and the callers live in `default`; they decide how and for whom, not where.
        Every subset also selects the lab's label SUBSET_LABEL=<its name>, which its endpoint carries:
        a rule may leave subsets alike until a controller labels pods (Argo Rollouts adds its
        pod-template hash to both `stable` and `canary` at run time), and the lab has no controller."""
        rules: dict[str, dict] = {}
        for rule in given:
            rule = as_lab_object({"kind": "DestinationRule", **rule})
            rule["spec"] = _without_tls(rule["spec"])
            rule["spec"].pop("exportTo", None)
            rules[qualified(rule["spec"]["host"], namespace_of(rule))] = rule
        for target in sorted((t for t in targets if t.subset), key=lambda t: t.key):
            rule = rules.setdefault(target.host, lab_object("DestinationRule", _name(target.host, self._generation),
                                                            DESTINATIONS_NAMESPACE, {"host": target.host}))
            subsets = rule["spec"].setdefault("subsets", [])
            if target.subset not in {s["name"] for s in subsets}:
                subsets.append({"name": target.subset})
        for rule in rules.values():
            for subset in rule["spec"].get("subsets") or []:
                subset["labels"] = {**(subset.get("labels") or {}), SUBSET_LABEL: subset["name"]}
        return rules

    def _service_entry(self, host: str, ports: list[int], rule: dict | None) -> None:
        """A ServiceEntry for `host`: an endpoint per backend of the host, with its subset's labels. It
        lives in the namespace of the host's DestinationRule: Istio looks a rule up in the caller's
        namespace, then the service's, then istio-system, so a rule elsewhere would not apply."""
        namespace = namespace_of(rule) if rule else DESTINATIONS_NAMESPACE
        subsets = {s["name"]: s.get("labels") or {} for s in ((rule or {}).get("spec") or {}).get("subsets") or []}
        endpoints = [{"address": self.address, "ports": {f"http-{p}": backend.port for p in ports},
                      "labels": copy.deepcopy(subsets.get(target.subset, {})) if target.subset else {}}
                     for target, backend in sorted(self.backends.items(), key=lambda i: i[0].key)
                     if target.host == host]
        self.scene.apply(istio_collection(namespace, "serviceentries"),
                         service_entry(_name(host, self._generation), namespace, host, ports, endpoints))

    # -- traffic --------------------------------------------------------------------

    def send(self, host: str, n: int, *, gateway: str = "mesh", profile: str = "prod", path: str = "/",
             query: Sequence[tuple[str, str]] = (), headers: Mapping[str, str] | None = None,
             method: str = "GET") -> Counter:
        """Send `n` requests for `host` through `gateway` ("namespace/name" of a loaded gateway) or, for
        "mesh", through the sidecar of a caller of `profile`; count the answers by Target.key."""
        if gateway == "mesh":
            url = f"http://{self.callers[profile]}:{self.mesh_port}"
        else:
            url = f"http://127.0.0.1:{self.gateway_ports[gateway]}"
        url += path + (f"?{urlencode(list(query))}" if query else "")
        return probe(url, host, n, headers, concurrency=min(8, max(1, n)), key=_served_by, method=method)

    def _proxy(self, kind: str, name: str, namespace: str, labels: dict) -> Envoy:
        return start_proxy(kind, name, namespace, labels, self.workdir / name, node_address=self.address,
                           istiod=self.istiod, binary=self._envoy_binary)

    def _stop_backends(self) -> None:
        for backend in self.backends.values():
            backend.stop()
        self.backends.clear()


def gateways_of_all(virtual_services: Iterable[Mapping]) -> list[str]:
    return sorted(set().union(*(gateways_of(vs) for vs in virtual_services)))


def _served_by(status: int, headers: http.client.HTTPMessage, body: bytes) -> str:
    """Target.key of the backend that answered a 2xx, else "HTTP <status>"."""
    service = headers.get(SERVICE_HEADER)
    if 200 <= status < 300 and service:
        return f"{service}|{headers.get(PROFILE_HEADER)}"
    return f"HTTP {status}"
