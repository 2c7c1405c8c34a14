"""istiod's debug API: waiting until Istio serves a change (`--wait`).

The one thing to know: a write to the apiserver is not yet traffic. istiod
must receive the object, debounce (about 100 ms), push, and every Envoy must
acknowledge the push. `wait_until_served` asks istiod itself: /debug/configz
(does istiod hold the object at the resourceVersion written?) and /debug/syncz
(has every proxy ACKed clusters, listeners and routes of a newer push? what
`istioctl proxy-status` shows). Reads are bounded in size and time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from graysteps.adapters.urls import mask_url
from graysteps.errors import GraystepsError

XDS_TYPES = ("type.googleapis.com/envoy.config.cluster.v3.Cluster",
             "type.googleapis.com/envoy.config.listener.v3.Listener",
             "type.googleapis.com/envoy.config.route.v3.RouteConfiguration")
_UUID_LENGTH = 36  # istiod's nonce is its push version ("<RFC3339 time>/<push number>") followed by a UUID


@dataclass(frozen=True)
class ConfigChange:
    """One Istio object as written: `resource_version` None when it was deleted."""

    kind: str
    namespace: str
    name: str
    resource_version: str | None


@dataclass
class Served:
    """What `wait_until_served` saw: the seconds it took, istiod's push number that
    carried the change, and the proxies that acknowledged it."""

    seconds: float
    push: int
    proxies: list[str]

    def describe(self) -> str:
        return (f"served by Istio: {len(self.proxies)} proxies acknowledged istiod's push {self.push} "
                f"in {self.seconds:.3f}s")


def written_change(obj: dict | None, *, kind: str = "VirtualService") -> ConfigChange | None:
    """The ConfigChange of an object a write returned (None for a dry run or no object)."""
    md = (obj or {}).get("metadata") or {}
    if not md.get("resourceVersion"):
        return None
    return ConfigChange(obj.get("kind", kind), md.get("namespace", ""), md["name"], md["resourceVersion"])


def push_number(nonce: str) -> int:
    """The push number in an istiod nonce, -1 when it has none."""
    try:
        return int(nonce[:-_UUID_LENGTH].rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return -1


def newest_push(debug_get: Callable[[str], Any]) -> int:
    """The newest push number istiod has sent any proxy (/debug/syncz): read it before a write."""
    return max([_newest_push(p) for p in debug_get("/debug/syncz")] or [-1])


def wait_until_served(changes: list[ConfigChange], debug_get: Callable[[str], Any], *, after_push: int | None,
                      timeout: float = 30.0, poll: float = 0.02, step: str | None = None) -> Served:
    """Return once Istio serves `changes`: istiod holds every object at its written
    resourceVersion (/debug/configz), and every proxy connected to istiod has
    acknowledged (ACK, not NACK) clusters, listeners and routes of a push newer than
    `after_push` (`newest_push()` read before the writes) (/debug/syncz, what
    `istioctl proxy-status` shows). With no changes (nothing was written), or
    `after_push` None (the writes are older than any push one could read), return
    once every proxy has acknowledged what it was sent.

    Every proxy the change concerns, that is: istiod pushes a VirtualService change
    to every gateway (`router`), but to a sidecar only when the sidecar routes by it,
    so when every VirtualService changed is bound only to gateways (no `mesh`, read
    from the object istiod holds) sidecars are not waited for.

    `debug_get(path)` answers istiod's debug endpoints, decoded from JSON. Raises
    GraystepsError after `timeout` seconds naming what was still missing.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    floor = after_push if changes else None
    while True:
        try:
            configz = debug_get("/debug/configz") if changes else []
            missing = _not_in_istiod(changes, configz)
            in_istiod = not missing
            if in_istiod:
                sidecars = not changes or _concerns_sidecars(changes, configz)
                proxies = [p for p in debug_get("/debug/syncz") if sidecars or p.get("proxy_type") != "sidecar"]
                missing = [p.get("proxy", "?") for p in proxies if not _acked_after(p, floor)]
                if not missing:
                    pushes = [_newest_push(p) for p in proxies]
                    return Served(time.monotonic() - t0, min(pushes or [-1]), sorted(p.get("proxy", "?") for p in proxies))
        except (OSError, ValueError) as e:
            in_istiod, missing = False, [f"an answer from istiod's debug endpoint ({type(e).__name__}: {e})"]
        if time.monotonic() > deadline:
            what = "istiod has not received " if not in_istiod else "these proxies have not acknowledged it: "
            raise GraystepsError(
                f"Istio did not serve the change within {timeout:g}s; {what}{', '.join(missing[:10])}"
                f"{' …' if len(missing) > 10 else ''}; check istiod's log and `istioctl proxy-status`, "
                "then retry (the step is safe to repeat)", step=step)
        time.sleep(poll)


def _held(configz: list[dict]) -> dict[tuple, dict]:
    """(kind, namespace, name) -> the object istiod holds (/debug/configz)."""
    return {(c.get("kind"), (c.get("metadata") or {}).get("namespace", ""), (c.get("metadata") or {}).get("name")): c
            for c in configz or []}


def _not_in_istiod(changes: list[ConfigChange], configz: list[dict]) -> list[str]:
    held = {key: (c.get("metadata") or {}).get("resourceVersion") for key, c in _held(configz).items()}
    missing = []
    for change in changes:
        key = (change.kind, change.namespace, change.name)
        if change.resource_version is None:
            if key in held:
                missing.append(f"the deletion of {change.kind} {change.namespace}/{change.name}")
        elif held.get(key) != change.resource_version and not _newer(held.get(key), change.resource_version):
            missing.append(f"{change.kind} {change.namespace}/{change.name} at resourceVersion {change.resource_version}")
    return missing


def binds_mesh(vs: dict) -> bool:
    """Whether sidecars route by a VirtualService: it names no gateways, or `mesh` (for all
    its routes or in one route's match)."""
    spec = vs.get("spec") or {}
    if "mesh" in (spec.get("gateways") or ["mesh"]):
        return True
    return any("mesh" in (c.get("gateways") or []) for r in spec.get("http") or [] for c in r.get("match") or [])


def _concerns_sidecars(changes: list[ConfigChange], configz: list[dict]) -> bool:
    """Whether istiod pushes these changes to sidecars: anything but VirtualServices bound only to gateways."""
    held = _held(configz)
    for change in changes:
        vs = held.get((change.kind, change.namespace, change.name))
        if change.kind != "VirtualService" or change.resource_version is None or vs is None or binds_mesh(vs):
            return True
    return False


def _newer(held: str | None, written: str) -> bool:
    """True when istiod holds a later version than the one written (resourceVersions are etcd revisions)."""
    try:
        return held is not None and int(held) > int(written)
    except ValueError:
        return False


def _newest_push(proxy: dict) -> int:
    resources = proxy.get("resources") or {}
    return max([push_number(r.get("sent", "")) for r in resources.values()] or [-1])


def _acked_after(proxy: dict, floor: int | None) -> bool:
    """Every xDS type the proxy watches is acknowledged as sent, from a push after `floor` (if any)."""
    resources = proxy.get("resources") or {}
    watched = [resources[t] for t in XDS_TYPES if t in resources]
    return bool(watched) and all(r.get("sent") == r.get("acked") and not r.get("lastError")
                                 and (floor is None or push_number(r.get("acked", "")) > floor) for r in watched)


ISTIOD_ENV = "GRAYSTEPS_ISTIOD"
DEBUG_READ_LIMIT = 64 * 1024 * 1024  # bytes of one debug answer (configz lists every Istio object)
DEBUG_READ_TIMEOUT = 10.0


def istiod_debug(url: str) -> Callable[[str], Any]:
    """GET istiod's debug endpoints at `url` (its HTTP debug port, e.g. http://istiod.istio-system:15014),
    decoded from JSON, each read bounded in size and time."""
    import urllib.request

    base = url.rstrip("/")

    def get(path: str) -> Any:
        with urllib.request.urlopen(base + path, timeout=DEBUG_READ_TIMEOUT) as answer:
            data = answer.read(DEBUG_READ_LIMIT + 1)
        if len(data) > DEBUG_READ_LIMIT:
            raise ValueError(f"istiod's {path} answered more than {DEBUG_READ_LIMIT} bytes")
        return json.loads(data)

    return get


class IstioWait:
    """`--wait`: read istiod's newest push before the writes (`before()`), then
    `served(changes)` returns once every proxy serves them (see wait_until_served)."""

    def __init__(self, url: str, timeout: float, *, step: str | None = None,
                 debug_get: Callable[[str], Any] | None = None):
        self.get = debug_get or istiod_debug(url)
        self.url, self.timeout, self.step = url, timeout, step
        self.floor: int | None = None

    def before(self) -> None:
        try:
            self.floor = newest_push(self.get)
        except (OSError, ValueError) as e:
            raise GraystepsError(f"--wait: istiod's debug endpoint {mask_url(self.url)} did not answer "
                                 f"({type(e).__name__}); nothing was written. Check --istiod / ${ISTIOD_ENV} "
                                 "(istiod's HTTP debug port, 15014 in a cluster)", step=self.step) from e

    def served(self, changes: list[ConfigChange | None]) -> Served:
        return wait_until_served([c for c in changes if c is not None], self.get, after_push=self.floor,
                                 timeout=self.timeout, step=self.step)
