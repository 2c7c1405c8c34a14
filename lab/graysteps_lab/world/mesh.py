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
from graysteps_lab.world.lab_objects import (LAB_LABEL, NETWORKING, LabObjects, as_lab_object, caller_sidecar,
                                              http_gateway, istio_collection)
from graysteps_lab.world.ports import free_port
from graysteps_lab.world.process import WorldError
from graysteps_lab.world.proxies import start_proxy, stop_servers, wait_clusters_ready, wait_listening

PROFILES = ("prod", "gray")
GATEWAY_NAME = "graysteps-gateway"
CALLERS_NAMESPACE = "graysteps-callers"
CALLER_APP = "graysteps-caller"

Destination = Callable[[str, str], dict]


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
        self.objects = LabObjects(kube)  # everything the mesh writes; stop() deletes exactly those

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
            self._write_workloads()
            self._write_proxies_config()
            # istiod holds them all before any Envoy connects (after an apiserver restart its
            # watches may still be backing off for a while)
            wait_until_served(self.objects.changes, self.istiod.debug, after_push=None, timeout=90, step="testworld")
            self._start_envoys()
            self._wait_endpoints()
            self.update(self.virtual_services)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_servers(self.envoys, self.backends)
        self.objects.delete_all()

    def __enter__(self) -> "LocalMesh":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def update(self, virtual_services: Sequence[Mapping[str, Any]], timeout: float = 30.0) -> float:
        """Route by these VirtualServices from now on (the mesh's earlier ones are deleted):
        write them, bound to the gateway and the mesh; returns the seconds until istiod had
        every Envoy serving them."""
        floor = newest_push(self.istiod.debug)
        changes = self.objects.replace_virtual_services([self._bound(vs) for vs in virtual_services])
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
        vs = as_lab_object({"kind": "VirtualService", **vs})
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
            self.objects.namespace(namespace)
            entry = hosts.setdefault(dest["host"], {"service": service, "name": name, "namespace": namespace,
                                                    "subsets": set()})
            if "subset" in dest:
                entry["subsets"].add((dest["subset"], profile))
            labels = {"app": name, self.profile_label: profile, LAB_LABEL: "true"}
            self.objects.apply(istio_collection(namespace, "workloadentries"), {
                "apiVersion": NETWORKING, "kind": "WorkloadEntry",
                "metadata": {"name": f"{name}-{profile}", "namespace": namespace, "labels": labels},
                "spec": {"address": self.address, "labels": {"app": name, self.profile_label: profile},
                         "ports": {"http": backend.port}},
            })
        for host, entry in hosts.items():
            name, namespace = entry["name"], entry["namespace"]
            self.objects.apply(f"/api/v1/namespaces/{namespace}/services", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": namespace, "labels": {LAB_LABEL: "true"}},
                "spec": {"selector": {"app": name} if entry["subsets"] else
                         {"app": name, self.profile_label: self._profile_of(entry["service"], host)},
                         "ports": [{"name": "http", "port": self.service_port, "protocol": "TCP",
                                    "targetPort": "http"}]},
            }, replace=False)
            if entry["subsets"]:
                self.objects.apply(istio_collection(namespace, "destinationrules"), {
                    "apiVersion": NETWORKING, "kind": "DestinationRule",
                    "metadata": {"name": entry["service"], "namespace": namespace, "labels": {LAB_LABEL: "true"}},
                    "spec": {"host": host, "subsets": [{"name": subset, "labels": {self.profile_label: profile}}
                                                       for subset, profile in sorted(entry["subsets"])]},
                })

    def _profile_of(self, service: str, host: str) -> str:
        return next(p for p in self.profiles if self.destination(service, p)["host"] == host)

    def _write_proxies_config(self) -> None:
        """The Gateway the gateway Envoy serves, and each caller's Sidecar (its egress listener)."""
        self.objects.namespace(self.callers_namespace)
        ingress = self.listener("ingress")
        self.objects.apply(istio_collection(ISTIO_NAMESPACE, "gateways"), http_gateway(
            self.gateway_name, ISTIO_NAMESPACE, {"istio": self.gateway_name}, ingress.address, ingress.port))
        for profile in self.profiles:
            out = self.listener(f"outbound-{profile}")
            self.objects.apply(istio_collection(self.callers_namespace, "sidecars"), caller_sidecar(
                f"caller-{profile}", self.callers_namespace, {"app": CALLER_APP, self.profile_label: profile},
                out.address, out.port))

    # -- the Envoys -------------------------------------------------------------

    def _start_envoys(self) -> None:
        ingress = self.listener("ingress")
        proxies = {"ingress": ("router", self.gateway_name, ISTIO_NAMESPACE, {"istio": self.gateway_name}, ingress)}
        for profile in self.profiles:
            proxies[f"outbound-{profile}"] = ("sidecar", f"caller-{profile}", self.callers_namespace,
                                              {"app": CALLER_APP, self.profile_label: profile},
                                              self.listener(f"outbound-{profile}"))
        for key, (kind, name, namespace, labels, _) in proxies.items():
            self.envoys[key] = start_proxy(kind, name, namespace, labels, self.workdir / key,
                                           node_address=self.address, istiod=self.istiod, binary=self._envoy_binary)
        for key, (*_, listener) in proxies.items():
            wait_listening(self.envoys[key], listener.address, listener.port, listener.name, self.istiod)

    def _wait_endpoints(self, timeout: float = 90.0) -> None:
        """Until every Envoy has an endpoint for every destination (each backend's cluster)."""
        wanted = set()
        for service, profile in self.backends:
            dest = self.destination(service, profile)
            wanted.add(f"outbound|{self.service_port}|{dest.get('subset', '')}|{dest['host']}")
        wait_clusters_ready(self.envoys, wanted, self.istiod, timeout)
