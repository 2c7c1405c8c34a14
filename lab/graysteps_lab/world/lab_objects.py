"""The objects a lab mesh writes to the apiserver: created or replaced, remembered,
and deleted again by `delete_all()`, so a mesh leaves the cluster as it found it.

Every Istio write is also recorded as a `ConfigChange` (`changes`), which is what
`graysteps.adapters.istiod.wait_until_served` waits for.
"""

from __future__ import annotations

import copy

from graysteps.adapters.istiod import ConfigChange
from graysteps_lab.world.kube import KubeWorld
from graysteps_lab.world.process import WorldError

LAB_LABEL = "graysteps.io/lab-mesh"  # on every object a lab mesh writes
NETWORKING = "networking.istio.io/v1"
_ISTIO_KINDS = {"virtualservices": "VirtualService", "destinationrules": "DestinationRule", "gateways": "Gateway",
                "serviceentries": "ServiceEntry", "workloadentries": "WorkloadEntry", "sidecars": "Sidecar"}


def istio_collection(namespace: str, plural: str) -> str:
    """The API path of a collection of Istio networking objects."""
    return f"/apis/{NETWORKING}/namespaces/{namespace}/{plural}"


class LabObjects:
    def __init__(self, kube: KubeWorld):
        self.kube = kube
        self.written: dict[str, set[str]] = {}  # collection path -> names written there
        self.changes: list[ConfigChange] = []  # every Istio write, in order

    def namespace(self, name: str) -> None:
        """Create namespace `name` unless it exists (namespaces are never deleted)."""
        status, answer = self.kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        if status not in (201, 409):
            raise WorldError(f"namespace {name} could not be created ({status}): {answer}", step="testworld")

    def apply(self, collection: str, obj: dict, *, replace: bool = True) -> dict:
        """Create `obj` in `collection`, or replace the one there (carrying its resourceVersion);
        with `replace=False` one already there is left as it is (and not deleted by delete_all())."""
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
        self.written.setdefault(collection, set()).add(name)
        if obj.get("apiVersion", "").startswith("networking.istio.io/"):
            self.changes.append(ConfigChange(obj["kind"], obj["metadata"]["namespace"], name,
                                             answer["metadata"]["resourceVersion"]))
        return answer

    def delete(self, collection: str, name: str) -> ConfigChange:
        """Delete one object this lab wrote; the change istiod must see."""
        self.kube.request("DELETE", f"{collection}/{name}")
        self.written.get(collection, set()).discard(name)
        parts = collection.split("/")
        namespace, plural = parts[parts.index("namespaces") + 1], parts[-1]
        return ConfigChange(_ISTIO_KINDS.get(plural, plural), namespace, name, None)

    def replace_virtual_services(self, virtual_services: list[dict]) -> list[ConfigChange]:
        """Write these VirtualServices (each with metadata name and namespace) and delete every other
        one this lab wrote; the changes istiod must see (an unchanged object is none)."""
        changes, keep = [], set()
        for vs in virtual_services:
            md = vs["metadata"]
            collection = istio_collection(md["namespace"], "virtualservices")
            keep.add((collection, md["name"]))
            before = self.kube.request("GET", f"{collection}/{md['name']}")[1]
            written = self.apply(collection, vs)
            version = written["metadata"]["resourceVersion"]
            if not isinstance(before, dict) or (before.get("metadata") or {}).get("resourceVersion") != version:
                changes.append(ConfigChange("VirtualService", md["namespace"], md["name"], version))
        for collection, names in list(self.written.items()):
            if collection.endswith("/virtualservices"):
                for name in sorted(names - {n for c, n in keep if c == collection}):
                    changes.append(self.delete(collection, name))
        return changes

    def delete_all(self, *, keep: tuple[str, ...] = ()) -> list[ConfigChange]:
        """Delete everything written, but for collections ending in one of `keep` (e.g. "/gateways")."""
        changes = []
        if not self.kube.apiserver_running:
            self.written.clear()
            return changes
        for collection, names in list(self.written.items()):
            if collection.endswith(keep) and keep:
                continue
            for name in sorted(names):
                changes.append(self.delete(collection, name))
        return changes


def lab_object(kind: str, name: str, namespace: str, spec: dict) -> dict:
    """An Istio networking object carrying the lab's label."""
    return {"apiVersion": NETWORKING, "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": {LAB_LABEL: "true"}}, "spec": spec}


def as_lab_object(obj: dict, default_namespace: str = "default") -> dict:
    """A copy of a user's Istio object as the lab writes it: its name, namespace, labels and
    annotations (not its server-set metadata), the lab's label added, as networking.istio.io/v1
    (the schema of v1alpha3 and v1beta1 too: one collection per kind, whatever the file said)."""
    obj = copy.deepcopy(dict(obj))
    obj["apiVersion"] = NETWORKING
    obj["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items()
                       if k in ("name", "namespace", "labels", "annotations")}
    obj["metadata"].setdefault("namespace", default_namespace)
    obj["metadata"]["labels"] = {**(obj["metadata"].get("labels") or {}), LAB_LABEL: "true"}
    obj.setdefault("spec", {})
    return obj


def http_gateway(name: str, namespace: str, selector: dict, address: str, port: int) -> dict:
    """A Gateway with one plain-HTTP server on address:port for every host of every namespace."""
    return lab_object("Gateway", name, namespace, {
        "selector": selector,
        "servers": [{"port": {"number": port, "name": f"http-{port}", "protocol": "HTTP"}, "bind": address,
                     "hosts": ["*/*"]}]})


def caller_sidecar(name: str, namespace: str, labels: dict, address: str, port: int) -> dict:
    """The Sidecar of a caller without iptables: one HTTP egress listener on address:port
    (captureMode NONE) that reaches every host of every namespace."""
    return lab_object("Sidecar", name, namespace, {
        "workloadSelector": {"labels": labels},
        "egress": [{"port": {"number": port, "protocol": "HTTP", "name": "http"}, "bind": address,
                    "captureMode": "NONE", "hosts": ["*/*"]}]})
