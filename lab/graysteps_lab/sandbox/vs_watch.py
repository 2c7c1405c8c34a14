"""Follow the VirtualServices in the apiserver until istiod serves them to the mesh's Envoys.

istiod itself watches the apiserver and configures every Envoy; this module
only knows, and records, which VirtualServices the Envoys serve now and how
long each change took. `RouteSync(api_client, mesh)` runs two threads:

- the watcher lists every VirtualService (cluster-wide, through the storage
  version networking.istio.io/v1, which serves objects created as v1alpha3 or
  v1beta1 too), then follows a watch from that list's resourceVersion. An
  expired watch (410 Gone), a closed stream or an unreachable apiserver lead
  to a fresh list, so no change is ever lost;
- the applier takes the latest set of objects (bursts of events coalesce)
  and waits until istiod holds them and every Envoy acknowledged a push
  newer than the one istiod had sent when the first event of the set arrived
  (`LocalMesh.wait_served`). Envoy is never restarted.

A VirtualService Istio refuses never gets there: istiod's validating webhook
refuses it at write time. Each served set is passed to `on_applied(AppliedRoutes)`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from graysteps.adapters.istiod import ConfigChange
from graysteps.errors import GraystepsError

GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"
WATCH_SECONDS = 30  # each watch request ends after this; the next one starts from a fresh list


def object_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"


def resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


@dataclass
class AppliedRoutes:
    """One set of VirtualServices that Envoy now routes by."""

    virtual_services: dict[str, str]  # "ns/name" -> resourceVersion
    rejected: dict[str, str]  # always empty: Istio's webhook refuses what it cannot serve at write time
    applied_at: float  # time.time() when the Envoys served it
    seconds_from_event: float  # from the watch event that made it to every Envoy serving it
    seconds_in_envoy: float  # the part of that spent waiting for istiod and the Envoys


@dataclass
class SyncStatus:
    watching: bool = False
    lists: int = 0
    events: int = 0
    applied: int = 0
    last_error: str = ""
    last: AppliedRoutes | None = None
    history_ms: list[float] = field(default_factory=list)  # seconds_from_event of recent applies, in ms


class RouteSync:
    """Watch VirtualServices in the apiserver and apply them to `mesh` (a started LocalMesh)."""

    def __init__(self, api_client, mesh, *, on_applied: Callable[[AppliedRoutes], None] = lambda a: None,
                 log: Callable[[str], None] = lambda line: None):
        self.api_client = api_client
        self.mesh = mesh
        self.on_applied = on_applied
        self.log = log
        self.status = SyncStatus()
        self._objects: dict[str, dict] = {}
        self._pending_since: float | None = None
        self._pending_floor: int | None = None  # istiod's newest push when the first pending event came
        self._applied_signature: tuple | None = None
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._response = None  # the open watch request (a urllib3 response)

    def start(self) -> "RouteSync":
        for name, target in (("vs-watch", self._watch_loop), ("vs-apply", self._apply_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        self._abort_watch()  # ends the watch request now: the apiserver then stops without waiting for it
        for thread in self._threads:
            thread.join(timeout=2)

    def wait_synced(self, timeout: float = 30.0) -> AppliedRoutes:
        """Block until the first listing has been applied to Envoy."""
        deadline = time.monotonic() + timeout
        while self.status.last is None:
            if time.monotonic() > deadline:
                raise GraystepsError(f"routes from the apiserver were not applied to Envoy within {timeout:.0f}s: "
                                     f"{self.status.last_error or 'no list yet'}", step="sandbox")
            time.sleep(0.02)
        return self.status.last

    # -- watching ------------------------------------------------------------------

    def _changed(self, update: Callable[[dict[str, dict]], None]) -> None:
        floor = self._newest_push()
        with self._lock:
            update(self._objects)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
                self._pending_floor = floor
        self._dirty.set()

    def _newest_push(self) -> int:
        from graysteps.adapters.istiod import newest_push

        try:
            return newest_push(self.mesh.istiod.debug)
        except (OSError, ValueError):
            return -1

    def _watch_loop(self) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        api = client.CustomObjectsApi(self.api_client)
        while not self._stop.is_set():
            try:
                listing = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
                objects = {object_key(o): o for o in listing.get("items", [])}
                self._changed(lambda current: (current.clear(), current.update(objects)))
                self.status.lists += 1
                self.status.watching = True
                if self.status.last_error.startswith("watch:"):
                    self.status.last_error = ""
                # The raw response (not kubernetes.watch.Watch) so that stop() can close it: an open
                # watch would hold the apiserver's graceful shutdown until it times out.
                self._response = api.list_cluster_custom_object(
                    GROUP, VERSION, PLURAL, watch=True, resource_version=listing["metadata"]["resourceVersion"],
                    allow_watch_bookmarks=True, timeout_seconds=WATCH_SECONDS, _preload_content=False)
                for line in iter_resp_lines(self._response):
                    if self._stop.is_set():
                        return
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":  # e.g. 410 Gone: the resourceVersion is too old; list again
                        break
                    if kind not in ("ADDED", "MODIFIED", "DELETED"):
                        continue
                    self.status.events += 1
                    key = object_key(obj)
                    if kind == "DELETED":
                        self._changed(lambda current: current.pop(key, None))
                    else:
                        self._changed(lambda current: current.__setitem__(key, obj))
            except ApiException as e:
                self._watch_failed(f"apiserver answered {e.status} {e.reason}")
            except Exception as e:  # noqa: BLE001 - an unreachable apiserver, a closed stream: keep trying
                if not self._stop.is_set():
                    self._watch_failed(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            finally:
                self._close_response()

    def _close_response(self) -> None:
        """Close the watch response (from the watch thread, which is not reading it any more)."""
        response, self._response = self._response, None
        if response is not None:
            try:
                response.close()
            except Exception:  # noqa: BLE001 - closing a broken stream
                pass

    def _abort_watch(self) -> None:
        """Shut the watch's socket down from another thread: the blocked read in the watch
        thread returns at once (closing the response here would wait for that read)."""
        response = self._response
        connection = getattr(response, "connection", None) or getattr(response, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _watch_failed(self, why: str) -> None:
        self.status.watching = False
        self.status.last_error = f"watch: {why}"
        self.log(f"VirtualService watch interrupted ({why}); listing again in 1s")
        self._stop.wait(1.0)

    # -- applying ------------------------------------------------------------------

    def _apply_loop(self) -> None:
        while not self._stop.is_set():
            if not self._dirty.wait(0.5):
                continue
            self._dirty.clear()
            if self._stop.is_set():
                return
            with self._lock:
                snapshot = list(self._objects.values())
                since, self._pending_since = self._pending_since, None
                floor, self._pending_floor = self._pending_floor, None
            signature = tuple(sorted((object_key(o), resource_version(o)) for o in snapshot))
            if signature == self._applied_signature:
                continue  # a relist that changed nothing
            try:
                self._apply(snapshot, signature, since if since is not None else time.monotonic(),
                            floor if floor is not None else -1)
            except Exception as e:  # noqa: BLE001 - keep serving the last good routes
                message = e.message if isinstance(e, GraystepsError) else f"{type(e).__name__}: {e}"
                self.status.last_error = f"apply: {message}"
                self.log(f"istiod did not serve the VirtualServices to every Envoy: {message}\n"
                         + traceback.format_exc())

    def _apply(self, snapshot: list[dict], signature: tuple, since: float, floor: int) -> None:
        served = dict(self._applied_signature or ())
        now = {object_key(o): resource_version(o) for o in snapshot}
        changes = [ConfigChange("VirtualService", *key.split("/", 1), version)
                   for key, version in now.items() if served.get(key) != version]
        changes += [ConfigChange("VirtualService", *key.split("/", 1), None) for key in served if key not in now]
        # The first listing holds objects written before the Envoys connected: no push to wait for.
        in_envoy = self.mesh.wait_served(changes, None if self._applied_signature is None else floor)
        applied = AppliedRoutes(virtual_services=now, rejected={}, applied_at=time.time(),
                                seconds_from_event=time.monotonic() - since, seconds_in_envoy=in_envoy)
        self._applied_signature = signature
        self.status.applied += 1
        self.status.last = applied
        self.status.last_error = ""
        self.status.history_ms = (self.status.history_ms + [round(applied.seconds_from_event * 1000, 1)])[-50:]
        self.log(f"istiod serves {len(now)} VirtualService(s) to every Envoy "
                 f"({applied.seconds_from_event * 1000:.0f} ms after the change)")
        self.on_applied(applied)
