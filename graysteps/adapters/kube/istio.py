"""VirtualServices and DestinationRules: the only product code that reads or writes them.

Every call takes a *target*, anything with `vs_namespace`, `vs_name` and
`api_version` (a catalog ServiceSpec is one), and an apiserver transport:
`connect()`'s lean urllib3 one, or a kubernetes ApiClient (wrapped to the same
`request()` interface). Failures become GraystepsErrors through
`errors.apiserver_error`.

The one thing to know: `update_virtual_service(target, mutate)` is the only
write of a VirtualService's content. It reads the object with its
resourceVersion, applies `mutate` to a copy and writes it back carrying that
resourceVersion; on 409 (another writer got there first) it reads again and
re-applies `mutate`, up to `max_attempts` times with jittered backoff. No update
is lost and nothing is written over a version graysteps did not read. A live
object keeps the API version it was created with (read from managedFields).
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from graysteps.adapters.kube.errors import apiserver_error
from graysteps.adapters.kube.rest import as_transport
from graysteps.errors import ConflictRetriesExhausted, GraystepsError

GROUP = "networking.istio.io"
FIELD_MANAGER = "graysteps"
MAX_ATTEMPTS = 10
BACKOFF_BASE = 0.05  # seconds; attempt n sleeps uniform(0, base * 2**n), capped
BACKOFF_CAP = 1.0
_SERVER_FIELDS = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields")


class Target(Protocol):
    vs_namespace: str
    vs_name: str
    api_version: str  # networking.istio.io/<version>


@dataclass
class WriteResult:
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
    added_subsets: list = field(default_factory=list)  # subsets --create-subsets added to the DestinationRule
    warnings: list = field(default_factory=list)  # what the user should know (routing.operations.warnings)


def where(target: Target) -> str:
    return f"VirtualService {target.vs_namespace}/{target.vs_name}"


def path(version: str, namespace: str | None, plural: str = "virtualservices", name: str = "") -> str:
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/{GROUP}/{version}{scope}/{plural}" + (f"/{name}" if name else "")


def _version(target: Target) -> str:
    return target.api_version.split("/", 1)[1]


def _query(dry_run: bool) -> dict:
    return {"fieldManager": FIELD_MANAGER, "dryRun": "All" if dry_run else ""}


# ---------------------------------------------------------------- reads


def _get(api: Any, target: Target, version: str) -> dict | None:
    try:
        return api.request("GET", path(version, target.vs_namespace, name=target.vs_name))
    except Exception as e:  # noqa: BLE001 - ApiException or KubeRestError, both with .status
        if getattr(e, "status", None) == 404:
            return None
        raise


def created_with(obj: dict | None) -> str | None:
    """The API version the object was created with (its oldest managedFields entry)."""
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    for entry in sorted(entries, key=lambda e: e.get("time") or ""):
        group, _, version = str(entry.get("apiVersion", "")).partition("/")
        if group == GROUP and version:
            return version
    return None


def _read(api: Any, target: Target) -> tuple[dict | None, str]:
    """The live object and the API version to use for it: the catalog's for a
    new object, else the version the object was created with."""
    version = _version(target)
    current = _get(api, target, version)
    live = created_with(current)
    if live and live != version:
        version = live
        current = _get(api, target, version)
    return current, version


def read_virtual_service(target: Target, *, api_client: Any = None) -> dict | None:
    """The live VirtualService (None when missing), in the API version it was created with."""
    with as_transport(api_client) as api:
        try:
            return _read(api, target)[0]
        except Exception as e:  # noqa: BLE001
            raise apiserver_error(f"failed to read {where(target)}", e) from e


def list_virtual_services(targets: Iterable[Target], api: Any) -> dict[tuple[str, str], dict]:
    """Every VirtualService the targets use, by (namespace, name): one LIST per
    API version (cluster-wide when the targets span several namespaces)."""
    found: dict[tuple[str, str], dict] = {}
    by_version: dict[str, set[str]] = {}
    for t in targets:
        by_version.setdefault(_version(t), set()).add(t.vs_namespace)
    with as_transport(api) as api:
        for version, namespaces in by_version.items():
            listing = api.request("GET", path(version, next(iter(namespaces)) if len(namespaces) == 1 else None))
            for item in listing.get("items", []):
                md = item.get("metadata", {})
                item.setdefault("apiVersion", f"{GROUP}/{version}")
                item.setdefault("kind", "VirtualService")
                found[(md.get("namespace"), md.get("name"))] = item
    return found


def list_labelled_virtual_services(namespace: str, selector: str, api: Any) -> list[dict]:
    """The VirtualServices in `namespace` that match the label `selector`."""
    with as_transport(api) as api:
        return api.request("GET", path("v1", namespace), labelSelector=selector).get("items", [])


# ---------------------------------------------------------------- writes


def update_virtual_service(
    target: Target,
    mutate: Callable[[dict | None], dict | None],
    *,
    api_client: Any = None,
    dry_run: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> WriteResult:
    """Read-modify-write `target`'s VirtualService with `mutate(current or None) -> new`.

    `mutate` gets a copy and may return None to write nothing. It is called
    again after every 409, on the fresh object, so it must be a function of its
    argument. `dry_run` sends the same requests with dryRun=All: the apiserver
    (and its admission webhooks) validate, nothing is stored.
    """
    with as_transport(api_client) as api:
        conflicts = 0
        for attempt in range(1, max_attempts + 1):
            try:
                current, version = _read(api, target)
            except Exception as e:  # noqa: BLE001
                raise apiserver_error(f"failed to read {where(target)}", e) from e
            new = mutate(copy.deepcopy(current))
            if new is None or new == current:
                return WriteResult(False, current, current, "", conflicts, dry_run)
            new = _addressed(new, target, current, version)
            verb = "create" if current is None else "update"
            try:
                if current is None:
                    written = api.request("POST", path(version, target.vs_namespace), new, **_query(dry_run))
                else:
                    written = api.request("PUT", path(version, target.vs_namespace, name=target.vs_name), new,
                                          **_query(dry_run))
            except Exception as e:  # noqa: BLE001
                if getattr(e, "status", None) == 409 and attempt < max_attempts:
                    conflicts += 1
                    time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
                    continue
                if getattr(e, "status", None) == 409:
                    raise ConflictRetriesExhausted(
                        f"failed to update {where(target)}: still conflicting with other writers after "
                        f"{max_attempts} attempts; rerun the step (every step is safe to repeat)") from e
                raise apiserver_error(f"failed to {verb} {where(target)}", e) from e
            return WriteResult(True, current, written, yaml_diff(current, written, where(target)), conflicts, dry_run)
    raise AssertionError("unreachable")  # pragma: no cover


def replace_listed(target: Target, wanted: dict, api: Any, *, dry_run: bool = False) -> dict:
    """PUT `wanted` (a listed object, changed) as it is: it carries the listed
    resourceVersion, so the apiserver answers 409 if anyone wrote since. The
    fast path of a fleet rollback; raises the transport's error (with .status)."""
    wanted = copy.deepcopy(wanted)
    wanted["metadata"].pop("managedFields", None)  # left out of a PUT, the server keeps them
    version = wanted.get("apiVersion", target.api_version).split("/", 1)[1]
    with as_transport(api) as api:
        return api.request("PUT", path(version, target.vs_namespace, name=target.vs_name), wanted, **_query(dry_run))


def delete_virtual_service(target: Target, resource_version: str | None, *, api_client: Any = None) -> bool:
    """Delete the VirtualService if it is still at `resource_version` (a precondition:
    409 when someone wrote it since). True when deleted, False when already gone."""
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"resourceVersion": resource_version}}
    with as_transport(api_client) as api:
        try:
            api.request("DELETE", path(_version(target), target.vs_namespace, name=target.vs_name), body)
        except Exception as e:  # noqa: BLE001
            if getattr(e, "status", None) == 404:
                return False
            raise
    return True


def ensure_destination_rule(namespace: str, name: str, api_version: str, body: dict, *, api_client: Any = None,
                            dry_run: bool = False) -> bool:
    """Create the DestinationRule `body` when none named `name` exists; an existing
    one is left as it is. True when one was (or, dry run, would be) created."""
    version = api_version.split("/", 1)[1]
    what = f"DestinationRule {namespace}/{name}"
    with as_transport(api_client) as api:
        try:
            api.request("GET", path(version, namespace, "destinationrules", name))
            return False
        except Exception as e:  # noqa: BLE001
            if getattr(e, "status", None) != 404:
                raise apiserver_error(f"failed to read {what}", e) from e
        try:
            api.request("POST", path(version, namespace, "destinationrules"), body, **_query(dry_run))
        except Exception as e:  # noqa: BLE001
            if getattr(e, "status", None) == 409:  # created by someone else meanwhile: it exists
                return False
            raise apiserver_error(f"failed to create {what}", e) from e
    return True


def read_destination_rule(namespace: str, name: str, api_version: str, *, api_client: Any = None) -> dict | None:
    """The DestinationRule `namespace/name` (None when missing); `api_version` as
    `networking.istio.io/v1` or just `v1`."""
    with as_transport(api_client) as api:
        try:
            return api.request("GET", path(api_version.split("/", 1)[-1], namespace, "destinationrules", name))
        except Exception as e:  # noqa: BLE001
            if getattr(e, "status", None) == 404:
                return None
            raise apiserver_error(f"failed to read DestinationRule {namespace}/{name}", e) from e


def update_destination_rule(namespace: str, name: str, api_version: str, mutate: Callable[[dict], dict | None], *,
                            api_client: Any = None, dry_run: bool = False,
                            max_attempts: int = MAX_ATTEMPTS) -> tuple[dict | None, dict | None]:
    """Read-modify-write an existing DestinationRule, as update_virtual_service does a
    VirtualService (resourceVersion, re-read and re-apply on 409). `mutate` may
    return None to write nothing. Returns (as read, as written or None)."""
    version = api_version.split("/", 1)[1]
    what = f"DestinationRule {namespace}/{name}"
    with as_transport(api_client) as api:
        for attempt in range(1, max_attempts + 1):
            current = read_destination_rule(namespace, name, api_version, api_client=api)
            new = None if current is None else mutate(copy.deepcopy(current))
            if new is None or new == current:
                return current, None
            try:
                return current, api.request("PUT", path(version, namespace, "destinationrules", name), new,
                                            **_query(dry_run))
            except Exception as e:  # noqa: BLE001
                if getattr(e, "status", None) == 409 and attempt < max_attempts:
                    time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
                    continue
                raise apiserver_error(f"failed to update {what}", e) from e
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------- helpers


def _addressed(new: dict, target: Target, current: dict | None, version: str) -> dict:
    """The object to send: the target's VS, in the API version it is sent with,
    carrying the resourceVersion that was read."""
    md = new.setdefault("metadata", {})
    if md.get("name", target.vs_name) != target.vs_name or md.get("namespace", target.vs_namespace) != target.vs_namespace:
        raise GraystepsError(
            f"refusing to write {md.get('namespace')}/{md.get('name')} as {where(target)}: "
            "the update changed the object's name")
    md["name"], md["namespace"] = target.vs_name, target.vs_namespace
    new["apiVersion"] = f"{GROUP}/{version}"
    new.setdefault("kind", "VirtualService")
    if current is None:
        md.pop("resourceVersion", None)
    else:
        md["resourceVersion"] = current["metadata"]["resourceVersion"]
    return new


def without_server_fields(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    md = obj.get("metadata") or {}
    for key in _SERVER_FIELDS:
        md.pop(key, None)
    return obj


def yaml_diff(before: dict | None, after: dict | None, label: str = "VirtualService") -> str:
    """Unified diff of the two objects as YAML, without server-managed fields."""
    import difflib

    import yaml

    def text(obj: dict | None) -> list[str]:
        if obj is None:
            return []
        return yaml.safe_dump(without_server_fields(obj), sort_keys=False, default_flow_style=False).splitlines(keepends=True)

    return "".join(difflib.unified_diff(text(before), text(after), f"{label} (live)", f"{label} (graysteps)"))
