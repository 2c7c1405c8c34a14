"""Safe writes of VirtualServices to the cluster.

`update_virtual_service(service, mutate)` is the one read-modify-write: GET the
object (with its resourceVersion), `mutate` a copy, PUT it back carrying that
resourceVersion (or POST it when it is missing). When another writer got there
first the apiserver answers 409; then the object is read again and `mutate`
re-applied, up to `max_attempts` times with jittered backoff. So no update is
ever lost and nothing is written on top of a version graysteps did not read.

`route(service, strategy)` is that with `apply_strategy`, plus (for the
`subsets` layout) the DestinationRule created if it is missing.
`dry_run=True` sends the same requests with the apiserver's dryRun=All: the
server validates, nothing is stored.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from graysteps.errors import ConflictRetriesExhausted, GraystepsError
from graysteps.routing.operations import MANAGED_BY_LABEL, MANAGED_BY_VALUE, apply_strategy, destination_rule

if TYPE_CHECKING:  # pragma: no cover
    from graysteps.model.catalog import ServiceSpec
    from graysteps.model.strategy import Strategy

STEP = "route"
GROUP = "networking.istio.io"
PLURAL = "virtualservices"
FIELD_MANAGER = "graysteps"
MANAGED_BY_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
MAX_ATTEMPTS = 10
BACKOFF_BASE = 0.05  # seconds; attempt n sleeps uniform(0, base * 2**n), capped
BACKOFF_CAP = 1.0
_SERVER_FIELDS = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields")


@dataclass
class RouteResult:
    """What a write did. `before`/`after` are the objects as read and as
    written (None when missing); `diff` is a unified diff of their YAML;
    `conflicts` counts the 409s that made graysteps read and re-apply."""

    changed: bool
    before: dict | None
    after: dict | None
    diff: str
    conflicts: int = 0
    dry_run: bool = False
    created_destination_rule: bool = False


def update_virtual_service(
    service: "ServiceSpec",
    mutate: Callable[[dict | None], dict | None],
    *,
    api_client: Any = None,
    dry_run: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
    step: str = STEP,
) -> RouteResult:
    """Read-modify-write `service`'s VirtualService with `mutate(current or None) -> new`.

    `mutate` gets a copy and may return None to write nothing. It is called
    again after every 409, on the fresh object, so it must be a function of its
    argument. Raises GraystepsError naming the step and the object.
    """
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    where = f"VirtualService {service.vs_namespace}/{service.vs_name}"
    with _client(api_client) as client:
        api = _custom_objects(client)
        conflicts = 0
        for attempt in range(1, max_attempts + 1):
            try:
                current, version = _read(api, service)
            except (ApiException, HTTPError) as e:
                raise _failure(step, f"failed to read {where}", e) from e
            new = mutate(copy.deepcopy(current))
            if new is None or new == current:
                return RouteResult(False, current, current, "", conflicts, dry_run)
            new = _addressed(new, service, current, version)
            try:
                written = _write(api, service, version, new, create=current is None, dry_run=dry_run)
            except ApiException as e:
                if e.status == 409 and attempt < max_attempts:
                    conflicts += 1
                    time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
                    continue
                if e.status == 409:
                    raise ConflictRetriesExhausted(
                        f"failed to update {where}: still conflicting with other writers after {max_attempts} attempts; "
                        "rerun the step (every step is safe to repeat)", step=step) from e
                raise _failure(step, f"failed to {'create' if current is None else 'update'} {where}", e) from e
            except HTTPError as e:
                raise _failure(step, f"failed to {'create' if current is None else 'update'} {where}", e) from e
            return RouteResult(True, current, written, yaml_diff(current, written, where), conflicts, dry_run)
    raise AssertionError("unreachable")  # pragma: no cover


def route(
    service: "ServiceSpec",
    strategy: "Strategy",
    *,
    api_client: Any = None,
    dry_run: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> RouteResult:
    """Apply `strategy` to `service`'s VirtualService (creating it when missing)."""
    with _client(api_client) as client:
        created_dr = ensure_destination_rule(service, api_client=client, dry_run=dry_run) if service.layout == "subsets" else False
        result = update_virtual_service(
            service, lambda current: apply_strategy(current, service, strategy),
            api_client=client, dry_run=dry_run, max_attempts=max_attempts)
    result.created_destination_rule = created_dr
    return result


def ensure_destination_rule(service: "ServiceSpec", *, api_client: Any = None, dry_run: bool = False) -> bool:
    """Create the `subsets` layout's DestinationRule when it is missing; an
    existing one is left as it is. True when one was (or would be) created."""
    from kubernetes.client.exceptions import ApiException

    version = service.api_version.split("/", 1)[1]
    where = f"DestinationRule {service.vs_namespace}/{service.dr_name}"
    with _client(api_client) as client:
        api = _custom_objects(client)
        try:
            api.get_namespaced_custom_object(GROUP, version, service.vs_namespace, "destinationrules", service.dr_name)
            return False
        except ApiException as e:
            if e.status != 404:
                raise _failure(STEP, f"failed to read {where}", e) from e
        try:
            api.create_namespaced_custom_object(GROUP, version, service.vs_namespace, "destinationrules",
                                                destination_rule(service), field_manager=FIELD_MANAGER,
                                                **_dry(dry_run))
        except ApiException as e:
            if e.status == 409:  # created by someone else meanwhile: it exists, which is all we need
                return False
            raise _failure(STEP, f"failed to create {where}", e) from e
        return True


def yaml_diff(before: dict | None, after: dict | None, where: str = "VirtualService") -> str:
    """Unified diff of the two objects as YAML, without server-managed fields."""
    import difflib

    import yaml

    def text(obj: dict | None) -> list[str]:
        if obj is None:
            return []
        return yaml.safe_dump(_without_server_fields(obj), sort_keys=False, default_flow_style=False).splitlines(keepends=True)

    return "".join(difflib.unified_diff(text(before), text(after), f"{where} (live)", f"{where} (graysteps)"))


# ------------------------------------------------------------------ internals


class _client:
    """Use the given ApiClient, or make one from the kubeconfig and close it after."""

    def __init__(self, given: Any):
        self.given, self.own = given, None

    def __enter__(self) -> Any:
        if self.given is not None:
            return self.given
        from graysteps.adapters.kube.client import api_client

        self.own = api_client()
        return self.own

    def __exit__(self, *exc: object) -> None:
        if self.own is not None:
            self.own.close()


def _custom_objects(client: Any) -> Any:
    from kubernetes import client as k8s

    return k8s.CustomObjectsApi(client)


def _dry(dry_run: bool) -> dict:
    return {"dry_run": "All"} if dry_run else {}


def _get(api: Any, service: "ServiceSpec", version: str) -> dict | None:
    from kubernetes.client.exceptions import ApiException

    try:
        response = api.get_namespaced_custom_object(GROUP, version, service.vs_namespace, PLURAL, service.vs_name,
                                                    _preload_content=False)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return json.loads(response.data)


def _read(api: Any, service: "ServiceSpec") -> tuple[dict | None, str]:
    """The live object and the API version to use for it: the catalog's for a
    new object, else the version the object was created with (from its
    managedFields), so a v1alpha3 VirtualService stays v1alpha3."""
    version = service.api_version.split("/", 1)[1]
    current = _get(api, service, version)
    live = _created_with(current)
    if live and live != version:
        version = live
        current = _get(api, service, version)
    return current, version


def _created_with(obj: dict | None) -> str | None:
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    for entry in sorted(entries, key=lambda e: e.get("time") or ""):
        group, _, version = str(entry.get("apiVersion", "")).partition("/")
        if group == GROUP and version:
            return version
    return None


def _addressed(new: dict, service: "ServiceSpec", current: dict | None, version: str) -> dict:
    """The object to send: the service's VS, in the API version it is sent
    with, carrying the resourceVersion that was read."""
    md = new.setdefault("metadata", {})
    if md.get("name", service.vs_name) != service.vs_name or md.get("namespace", service.vs_namespace) != service.vs_namespace:
        raise GraystepsError(
            f"refusing to write {md.get('namespace')}/{md.get('name')} as VirtualService "
            f"{service.vs_namespace}/{service.vs_name}: the update changed the object's name", step=STEP)
    md["name"], md["namespace"] = service.vs_name, service.vs_namespace
    new["apiVersion"] = f"{GROUP}/{version}"
    if current is None:
        md.pop("resourceVersion", None)
    else:
        md["resourceVersion"] = current["metadata"]["resourceVersion"]
    return new


def _write(api: Any, service: "ServiceSpec", version: str, new: dict, *, create: bool, dry_run: bool) -> dict:
    args = (GROUP, version, service.vs_namespace, PLURAL)
    if create:
        response = api.create_namespaced_custom_object(*args, new, field_manager=FIELD_MANAGER,
                                                       _preload_content=False, **_dry(dry_run))
    else:
        response = api.replace_namespaced_custom_object(*args, service.vs_name, new, field_manager=FIELD_MANAGER,
                                                        _preload_content=False, **_dry(dry_run))
    return json.loads(response.data)


def _without_server_fields(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    md = obj.get("metadata") or {}
    for key in _SERVER_FIELDS:
        md.pop(key, None)
    return obj


def _failure(step: str, what: str, error: Any) -> GraystepsError:
    """`what: <status> <reason>: <apiserver message>; <what to do>`."""
    status = getattr(error, "status", None)
    if status is None:  # no HTTP answer at all (urllib3 error)
        reason = getattr(error, "reason", None) or error
        return GraystepsError(f"{what}: apiserver unreachable ({type(reason).__name__}); check --kubeconfig and that the "
                              "apiserver is up, then retry (the step is safe to repeat)", step=step)
    detail = ""
    try:
        detail = json.loads(error.body).get("message", "") if getattr(error, "body", None) else ""
    except (ValueError, AttributeError, TypeError):
        detail = str(error.body)[:300]
    hint = {
        400: "an admission webhook (Istio's validation) refused the object; fix the VirtualService or the catalog",
        401: "check the kubeconfig's credentials",
        403: "the account may not read/write virtualservices.networking.istio.io there; grant it RBAC",
        404: "the namespace or the Istio CRDs are missing; create the namespace / install Istio",
        422: "the apiserver rejected the object; fix the VirtualService or the catalog",
    }.get(status, "check the apiserver and retry (the step is safe to repeat)")
    return GraystepsError(f"{what}: {status} {getattr(error, 'reason', '')}: {detail}; {hint}".replace(":  :", ":"), step=step)


# ------------------------------------------------------- waiting for Istio to serve a change

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
                      timeout: float = 30.0, poll: float = 0.02, step: str = STEP) -> Served:
    """Return once Istio serves `changes`: istiod holds every object at its written
    resourceVersion (/debug/configz), and every proxy connected to istiod has
    acknowledged (ACK, not NACK) clusters, listeners and routes of a push newer than
    `after_push` (`newest_push()` read before the writes) (/debug/syncz, what
    `istioctl proxy-status` shows). With no changes (nothing was written), or
    `after_push` None (the writes are older than any push one could read), return
    once every proxy has acknowledged what it was sent.

    `debug_get(path)` answers istiod's debug endpoints, decoded from JSON. Raises
    GraystepsError after `timeout` seconds naming what was still missing.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    floor = after_push if changes else None
    while True:
        try:
            missing = _not_in_istiod(changes, debug_get("/debug/configz")) if changes else []
            in_istiod = not missing
            if in_istiod:
                proxies = debug_get("/debug/syncz")
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


def _not_in_istiod(changes: list[ConfigChange], configz: list[dict]) -> list[str]:
    held = {(c.get("kind"), (c.get("metadata") or {}).get("namespace", ""), (c.get("metadata") or {}).get("name")):
            (c.get("metadata") or {}).get("resourceVersion") for c in configz or []}
    missing = []
    for change in changes:
        key = (change.kind, change.namespace, change.name)
        if change.resource_version is None:
            if key in held:
                missing.append(f"the deletion of {change.kind} {change.namespace}/{change.name}")
        elif held.get(key) != change.resource_version and not _newer(held.get(key), change.resource_version):
            missing.append(f"{change.kind} {change.namespace}/{change.name} at resourceVersion {change.resource_version}")
    return missing


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

    def __init__(self, url: str, timeout: float, *, step: str = STEP,
                 debug_get: Callable[[str], Any] | None = None):
        self.get = debug_get or istiod_debug(url)
        self.url, self.timeout, self.step = url, timeout, step
        self.floor: int | None = None

    def before(self) -> None:
        try:
            self.floor = newest_push(self.get)
        except (OSError, ValueError) as e:
            raise GraystepsError(f"--wait: istiod's debug endpoint {_masked(self.url)} did not answer "
                                 f"({type(e).__name__}); nothing was written. Check --istiod / ${ISTIOD_ENV} "
                                 "(istiod's HTTP debug port, 15014 in a cluster)", step=self.step) from e

    def served(self, changes: list[ConfigChange | None]) -> Served:
        return wait_until_served([c for c in changes if c is not None], self.get, after_push=self.floor,
                                 timeout=self.timeout, step=self.step)


def _masked(url: str) -> str:
    """`url` with any user:password replaced by ***."""
    import re

    return re.sub(r"//[^/@]*@", "//***@", url)
