"""A local mesh: istiod configures real Envoys, which route real HTTP to a
backend for every service x profile.

- **The gateway**: one Envoy with node type `router` and the labels of a
  `Gateway` (istio-system/graysteps-gateway, HTTP on a free loopback port). A
  user's request enters there. The mesh binds every VirtualService it writes to
  that Gateway and to `mesh` (its `gateways:` field), as a user's must be to
  reach both the ingress gateway and the sidecars.
- **The callers**: one sidecar Envoy per profile (labels `{app: graysteps-caller,
  <profile_label>: <profile>}`), whose `Sidecar` resource gives it an egress
  listener on its own 127.x.y.z address and the services' port (captureMode
  NONE: no iptables here). Each backend calls its downstream services through
  the caller of its own profile, as through its sidecar: `sourceLabels` routes
  see who is calling.
- **The services**: a WorkloadEntry per backend (labelled `app`,
  `<profile_label>`, at the machine's own address: the apiserver refuses
  loopback endpoints), selected by the Kubernetes Service of its destination
  host: graysteps' own (`graysteps deploy`) when there is one, else one the
  mesh makes of the same shape; and a DestinationRule with subsets when
  destinations name one. No endpoint controller runs in the lab, so the pods
  kwok fakes are never endpoints: the backends are.

Hosts: the mesh sends the fully qualified name (`test-a.prod.svc.cluster.local`)
for a service's short name, because that is the name Istio serves a
VirtualService host `test-a` of namespace `prod` under, at a gateway and to a
caller in another namespace.

    with LocalMesh({"test-a": ["test-b"], "test-b": []}, [vs_a, vs_b], workdir, kube=kube, istiod=istiod) as mesh:
        mesh.probe("test-a", 100, {"Cookie": "tenantGray=1"}, key=by_path)
        mesh.update([vs_a2, vs_b])   # returns once every Envoy serves them
"""

from __future__ import annotations

import copy
import json
import random
import socket
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from graysteps.adapters.istiod import ConfigChange, newest_push, wait_until_served
from graysteps.adapters.probe import KeyFunction, by_profile, probe
from graysteps_lab.world.backend import Backend
from graysteps_lab.world.envoy import Envoy
from graysteps_lab.world.istiod import NAMESPACE as ISTIO_NAMESPACE
from graysteps_lab.world.istiod import Istiod
from graysteps_lab.world.kube import KubeWorld
from graysteps_lab.world.ports import free_port
from graysteps_lab.world.process import WorldError

PROFILES = ("prod", "gray")
GATEWAY_NAME = "graysteps-gateway"
CALLERS_NAMESPACE = "graysteps-callers"
CALLER_APP = "graysteps-caller"
LAB_LABEL = "graysteps.io/lab-mesh"  # on every object the mesh writes, so stop() deletes exactly those
ISTIO_VERSION = "1.31.0"
NETWORKING = "networking.istio.io/v1"

Destination = Callable[[str, str], dict]

# Istio's proxy bootstrap tags stats this way (tools/packaging/common/envoy_bootstrap.json
# of the Istio built for the lab): istiod gives every cluster an `alt_stat_name` ending
# in ";" (outbound|8080||test-a.gray.svc.cluster.local;), so the whole cluster name is
# one `cluster_name` label (Envoy's default would cut it at the first dot), and
# upstream_rq_5xx becomes envoy_cluster_upstream_rq{response_code_class="5xx"}. The
# lab's Envoys do the same, so the analysis' default PromQL works on the lab and on a
# real mesh alike. Stats are flushed every second (see _bootstrap).
ENVOY_STATS_CONFIG = {
    "use_all_default_tags": False,
    "stats_tags": [
        {"tag_name": "cluster_name", "regex": r"^cluster(\.(.+);)"},
        {"tag_name": "response_code", "regex": r"_rq(_(\d{3}))$"},
        {"tag_name": "response_code_class", "regex": r"_rq(_(\dxx))$"},
    ],
}


def namespace_layout(service: str, profile: str) -> dict:
    """The seed's layout: one namespace per profile."""
    return {"host": f"{service}.{profile}.svc.cluster.local"}


def subsets_layout(namespace: str) -> Destination:
    """DestinationRule subsets named after the profile, in one namespace."""
    return lambda service, profile: {"host": f"{service}.{namespace}.svc.cluster.local", "subset": profile}


def machine_address() -> str:
    """The machine's own non-loopback IPv4 address (`hostname -I`), where workloads are reached."""
    try:
        words = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        words = []
    for word in words:
        if "." in word and not word.startswith("127."):
            return word
    raise WorldError("the machine has no non-loopback IPv4 address (`hostname -I`): Kubernetes refuses "
                     "loopback endpoints, so the lab's backends need one", step="testworld")


def free_loopback_address(port: int) -> str:
    """A 127.x.y.z address other than 127.0.0.1 where `port` is free (the whole 127/8 is loopback)."""
    rng = random.SystemRandom()
    for _ in range(100):
        address = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((address, port))
            except OSError:
                continue
        return address
    raise WorldError(f"no free loopback address for port {port}", step="testworld")


@dataclass(frozen=True)
class Listener:
    """Where a caller sends requests: `ingress` (the gateway) or `outbound-<profile>`."""

    name: str
    address: str
    port: int


class LocalMesh:
    def __init__(self, services: Mapping[str, Sequence[str]], virtual_services: Sequence[Mapping[str, Any]],
                 workdir: str | Path, *, kube: KubeWorld, istiod: Istiod, profiles: Sequence[str] = PROFILES,
                 destination: Destination = namespace_layout, forward_cookie: bool | Mapping[str, bool] = True,
                 profile_label: str = "profile", service_port: int = 8080, envoy_binary: str | None = None,
                 gateway_name: str = GATEWAY_NAME, callers_namespace: str = CALLERS_NAMESPACE):
        self.workdir = Path(workdir)
        self.kube, self.istiod = kube, istiod
        self.services = dict(services)
        self.profiles = list(profiles)
        self.destination = destination
        self.profile_label = profile_label
        self.service_port = service_port
        self.gateway_name = gateway_name
        self.callers_namespace = callers_namespace
        self.virtual_services = [copy.deepcopy(dict(vs)) for vs in virtual_services]
        self.address = machine_address()
        self.listeners = [Listener("ingress", "127.0.0.1", free_port())] + [
            Listener(f"outbound-{p}", free_loopback_address(service_port), service_port) for p in self.profiles]
        self.backends: dict[tuple[str, str], Backend] = {}
        for service, downstream in self.services.items():
            forward = forward_cookie if isinstance(forward_cookie, bool) else forward_cookie.get(service, True)
            for profile in self.profiles:
                out = self.listener(f"outbound-{profile}")
                self.backends[(service, profile)] = Backend(
                    service, profile, downstream=downstream, outbound=(out.address, out.port), forward_cookie=forward,
                    host=self.address, hosts={d: self.host(d) for d in downstream})
        self._envoy_binary = envoy_binary
        self.envoys: dict[str, Envoy] = {}
        self._written: dict[str, set[str]] = {}  # API path of a collection -> names the mesh wrote there

    # -- addresses ------------------------------------------------------------

    def listener(self, name: str) -> Listener:
        for spec in self.listeners:
            if spec.name == name:
                return spec
        raise KeyError(f"no listener {name!r}; have {[l.name for l in self.listeners]}")

    def backend(self, service: str, profile: str) -> Backend:
        return self.backends[(service, profile)]

    def url(self, listener: str = "ingress", path: str = "/") -> str:
        spec = self.listener(listener)
        return f"http://{spec.address}:{spec.port}{path}"

    def host(self, service: str) -> str:
        """The name Istio serves `service`'s VirtualService under: its prod Service's FQDN."""
        return self.destination(service, self.profiles[0])["host"] if service in self.services else service

    @property
    def envoy(self) -> Envoy | None:
        """The gateway's Envoy."""
        return self.envoys.get("ingress")

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> "LocalMesh":
        try:
            for b in self.backends.values():
                b.start()
            self._istio_writes: list[ConfigChange] = []
            self._write_workloads()
            self._write_proxies_config()
            # istiod holds them all before any Envoy connects (after an apiserver restart its
            # watches may still be backing off for a while)
            wait_until_served(self._istio_writes, self.istiod.debug, after_push=None, timeout=90, step="testworld")
            self._start_envoys()
            self._wait_endpoints()
            self.update(self.virtual_services)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for envoy in self.envoys.values():
            envoy.stop()
        self.envoys.clear()
        for b in self.backends.values():
            b.stop()
        if self.kube.apiserver_running:
            for collection, names in self._written.items():
                for name in names:
                    self.kube.request("DELETE", f"{collection}/{name}")
        self._written.clear()

    def __enter__(self) -> "LocalMesh":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def update(self, virtual_services: Sequence[Mapping[str, Any]], timeout: float = 30.0) -> float:
        """Route by these VirtualServices from now on (the mesh's earlier ones are deleted):
        write them, bound to the gateway and the mesh; returns the seconds until istiod had
        every Envoy serving them."""
        changes = []
        keep = set()
        floor = newest_push(self.istiod.debug)
        for vs in virtual_services:
            vs = self._bound(vs)
            md = vs["metadata"]
            collection = f"/apis/{NETWORKING}/namespaces/{md['namespace']}/virtualservices"
            keep.add((collection, md["name"]))
            before = self.kube.request("GET", f"{collection}/{md['name']}")[1]
            written = self._apply(collection, vs)
            version = written["metadata"]["resourceVersion"]
            if not isinstance(before, dict) or (before.get("metadata") or {}).get("resourceVersion") != version:
                changes.append(ConfigChange("VirtualService", md["namespace"], md["name"], version))
        for collection, names in list(self._written.items()):
            if not collection.endswith("/virtualservices"):
                continue
            for name in sorted(names - {n for c, n in keep if c == collection}):
                self.kube.request("DELETE", f"{collection}/{name}")
                names.discard(name)
                changes.append(ConfigChange("VirtualService", collection.split("/")[5], name, None))
        self.virtual_services = [copy.deepcopy(dict(vs)) for vs in virtual_services]
        return self.wait_served(changes, floor, timeout)

    def wait_served(self, changes: list[ConfigChange], after_push: int | None, timeout: float = 30.0) -> float:
        """Seconds until istiod had every Envoy of the mesh serving `changes` (written after `after_push`)."""
        return wait_until_served(changes, self.istiod.debug, after_push=after_push, timeout=timeout,
                                 step="testworld").seconds

    def probe(self, host: str, n: int, headers: Mapping[str, str] | None = None, *, listener: str = "ingress",
              path: str = "/", key: KeyFunction = by_profile, concurrency: int = 4) -> Counter:
        return probe(self.url(listener, path), self.host(host), n, headers, concurrency, key=key)

    # -- what istiod is told ----------------------------------------------------

    def _bound(self, vs: Mapping[str, Any]) -> dict:
        """`vs` bound to the mesh's gateway and to the sidecars (`mesh`), unless it names gateways itself."""
        vs = copy.deepcopy(dict(vs))
        vs.setdefault("apiVersion", NETWORKING)
        vs.setdefault("kind", "VirtualService")
        vs["metadata"] = {k: v for k, v in (vs.get("metadata") or {}).items()
                          if k in ("name", "namespace", "labels", "annotations")}
        vs["metadata"].setdefault("namespace", "default")
        vs["metadata"].setdefault("labels", {})[LAB_LABEL] = "true"
        spec = vs.setdefault("spec", {})
        if not spec.get("gateways"):
            spec["gateways"] = [f"{ISTIO_NAMESPACE}/{self.gateway_name}", "mesh"]
        return vs

    def _write_workloads(self) -> None:
        """Namespaces, a Service per destination host, a WorkloadEntry per backend, DestinationRules for subsets."""
        hosts: dict[str, dict] = {}
        for (service, profile), backend in self.backends.items():
            dest = self.destination(service, profile)
            name, namespace = dest["host"].split(".")[:2]
            self._namespace(namespace)
            entry = hosts.setdefault(dest["host"], {"service": service, "name": name, "namespace": namespace,
                                                    "subsets": set()})
            if "subset" in dest:
                entry["subsets"].add((dest["subset"], profile))
            labels = {"app": name, self.profile_label: profile, LAB_LABEL: "true"}
            self._apply(f"/apis/{NETWORKING}/namespaces/{namespace}/workloadentries", {
                "apiVersion": NETWORKING, "kind": "WorkloadEntry",
                "metadata": {"name": f"{name}-{profile}", "namespace": namespace, "labels": labels},
                "spec": {"address": self.address, "labels": {"app": name, self.profile_label: profile},
                         "ports": {"http": backend.port}},
            })
        for host, entry in hosts.items():
            name, namespace = entry["name"], entry["namespace"]
            self._apply(f"/api/v1/namespaces/{namespace}/services", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": namespace, "labels": {LAB_LABEL: "true"}},
                "spec": {"selector": {"app": name} if entry["subsets"] else
                         {"app": name, self.profile_label: self._profile_of(entry["service"], host)},
                         "ports": [{"name": "http", "port": self.service_port, "protocol": "TCP",
                                    "targetPort": "http"}]},
            }, replace=False)
            if entry["subsets"]:
                self._apply(f"/apis/{NETWORKING}/namespaces/{namespace}/destinationrules", {
                    "apiVersion": NETWORKING, "kind": "DestinationRule",
                    "metadata": {"name": entry["service"], "namespace": namespace, "labels": {LAB_LABEL: "true"}},
                    "spec": {"host": host, "subsets": [{"name": subset, "labels": {self.profile_label: profile}}
                                                       for subset, profile in sorted(entry["subsets"])]},
                })

    def _profile_of(self, service: str, host: str) -> str:
        return next(p for p in self.profiles if self.destination(service, p)["host"] == host)

    def _write_proxies_config(self) -> None:
        """The Gateway the gateway Envoy serves, and each caller's Sidecar (its egress listener)."""
        self._namespace(self.callers_namespace)
        ingress = self.listener("ingress")
        self._apply(f"/apis/{NETWORKING}/namespaces/{ISTIO_NAMESPACE}/gateways", {
            "apiVersion": NETWORKING, "kind": "Gateway",
            "metadata": {"name": self.gateway_name, "namespace": ISTIO_NAMESPACE, "labels": {LAB_LABEL: "true"}},
            "spec": {"selector": {"istio": self.gateway_name},
                     "servers": [{"port": {"number": ingress.port, "name": "http", "protocol": "HTTP"},
                                  "bind": ingress.address, "hosts": ["*/*"]}]},
        })
        for profile in self.profiles:
            out = self.listener(f"outbound-{profile}")
            self._apply(f"/apis/{NETWORKING}/namespaces/{self.callers_namespace}/sidecars", {
                "apiVersion": NETWORKING, "kind": "Sidecar",
                "metadata": {"name": f"caller-{profile}", "namespace": self.callers_namespace,
                             "labels": {LAB_LABEL: "true"}},
                "spec": {"workloadSelector": {"labels": {"app": CALLER_APP, self.profile_label: profile}},
                         "egress": [{"port": {"number": out.port, "protocol": "HTTP", "name": "http"},
                                     "bind": out.address, "captureMode": "NONE", "hosts": ["*/*"]}]},
            })

    # -- the Envoys -------------------------------------------------------------

    def _start_envoys(self) -> None:
        ingress = self.listener("ingress")
        proxies = {"ingress": ("router", self.gateway_name, ISTIO_NAMESPACE, {"istio": self.gateway_name}, ingress)}
        for profile in self.profiles:
            proxies[f"outbound-{profile}"] = ("sidecar", f"caller-{profile}", self.callers_namespace,
                                              {"app": CALLER_APP, self.profile_label: profile},
                                              self.listener(f"outbound-{profile}"))
        for key, (kind, name, namespace, labels, _) in proxies.items():
            self.envoys[key] = Envoy(self._bootstrap(kind, name, namespace, labels), self.workdir / key,
                                     binary=self._envoy_binary).start()
        for key, (*_, listener) in proxies.items():
            try:
                self.envoys[key].wait_listening(listener.address, listener.port, listener.name)
            except WorldError as e:
                raise WorldError(f"{e.message}; istiod's log: {self.istiod.log_path}", step="testworld") from e

    def _bootstrap(self, kind: str, name: str, namespace: str, labels: dict) -> dict:
        """An Envoy bootstrap that takes everything from istiod over ADS (plaintext gRPC)."""
        metadata = {"NAMESPACE": namespace, "LABELS": labels, "CLUSTER_ID": "Kubernetes", "NAME": name,
                    "ISTIO_VERSION": ISTIO_VERSION, "WORKLOAD_NAME": name}
        if kind == "sidecar":
            metadata["INTERCEPTION_MODE"] = "NONE"
        ads = {"ads": {}, "resource_api_version": "V3"}
        return {
            "stats_config": ENVOY_STATS_CONFIG,
            "stats_flush_interval": "1s",  # latency histograms in /stats/prometheus lag by at most 1 s
            "node": {"id": f"{kind}~{self.address}~{name}.{namespace}~{namespace}.svc.cluster.local",
                     "cluster": f"{name}.{namespace}", "metadata": metadata},
            "dynamic_resources": {
                "ads_config": {"api_type": "GRPC", "transport_api_version": "V3", "set_node_on_first_message_only": True,
                               "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
                "cds_config": ads, "lds_config": ads,
            },
            "static_resources": {"clusters": [{
                "name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
                "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}}},
                "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": self.istiod.xds_port}}}}]}]},
            }]},
        }

    def _wait_endpoints(self, timeout: float = 90.0) -> None:
        """Until every Envoy has an endpoint for every destination (each backend's cluster:
        `outbound|PORT|SUBSET|HOST`), so no first request meets 503 (no healthy upstream)."""
        import time

        wanted = set()
        for service, profile in self.backends:
            dest = self.destination(service, profile)
            wanted.add(f"outbound|{self.service_port}|{dest.get('subset', '')}|{dest['host']}")
        deadline = time.monotonic() + timeout
        for key, envoy in self.envoys.items():
            while True:
                statuses = json.loads(envoy.admin_get("/clusters?format=json")).get("cluster_statuses", [])
                ready = {c["name"] for c in statuses if c.get("host_statuses")}
                if wanted <= ready:
                    break
                if time.monotonic() > deadline:
                    raise WorldError(f"the {key} Envoy has no endpoint for {sorted(wanted - ready)} after "
                                     f"{timeout:.0f}s; see {self.istiod.log_path}", step="testworld")
                time.sleep(0.05)

    # -- apiserver writes ---------------------------------------------------------

    def _namespace(self, name: str) -> None:
        status, answer = self.kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        if status not in (201, 409):
            raise WorldError(f"namespace {name} could not be created ({status}): {answer}", step="testworld")

    def _apply(self, collection: str, obj: dict, *, replace: bool = True) -> dict:
        """Create `obj` in `collection`, or replace the one there (carrying its resourceVersion);
        with `replace=False` one already there is left as it is (and not deleted by stop())."""
        name = obj["metadata"]["name"]
        status, answer = self.kube.request("POST", collection, obj)
        if status == 409 and not replace:
            return self.kube.request("GET", f"{collection}/{name}")[1]
        if status == 409:
            status, current = self.kube.request("GET", f"{collection}/{name}")
            if status == 200:
                obj = copy.deepcopy(obj)
                obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                status, answer = self.kube.request("PUT", f"{collection}/{name}", obj)
        if status not in (200, 201):
            message = answer.get("message", answer) if isinstance(answer, dict) else answer
            raise WorldError(f"{obj.get('kind')} {obj['metadata'].get('namespace')}/{name} was refused ({status}): "
                             f"{message}", step="testworld")
        self._written.setdefault(collection, set()).add(name)
        if obj.get("apiVersion", "").startswith("networking.istio.io/") and hasattr(self, "_istio_writes"):
            self._istio_writes.append(ConfigChange(obj["kind"], obj["metadata"]["namespace"], name,
                                                   answer["metadata"]["resourceVersion"]))
        return answer
