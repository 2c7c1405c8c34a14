"""Talking to a running sandbox from outside: its settings, and waiting until a
VirtualService change is live in its Envoy.

    state = running_state(SandboxDir(d))          # or GraystepsError "not running"
    wait_live(sandbox, {"prod/test-a": "1234"})   # returns the seconds it took
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

from graysteps.errors import GraystepsError
from graysteps_lab.sandbox.state import READY, SandboxDir

STEP = "sandbox"


def running_state(sandbox: SandboxDir) -> dict[str, Any]:
    if sandbox.running_pid() is None:
        raise GraystepsError(f"no sandbox runs in {sandbox}; start it with `graysteps sandbox up --dir {sandbox}`",
                             step=STEP)
    state = sandbox.read_state()
    if state.get("phase") != READY:
        raise GraystepsError(f"the sandbox in {sandbox} is {state.get('phase', 'starting')}, not ready; "
                             "see `graysteps sandbox status`", step=STEP)
    return state


def command_env(state: Mapping[str, Any]) -> dict[str, str]:
    """This process's environment plus the sandbox's KUBECONFIG, GRAYSTEPS_CATALOG, GRAYSTEPS_DB."""
    return {**os.environ, **(state.get("env") or {})}


def live_versions(sandbox: SandboxDir) -> dict[str, str]:
    """"ns/name" -> resourceVersion of each VirtualService Envoy routes by now."""
    return dict((sandbox.read_state().get("routes") or {}).get("virtual_services") or {})


def wait_live(sandbox: SandboxDir, versions: Mapping[str, str], timeout: float = 10.0) -> float:
    """Block until Envoy routes by (at least) these resourceVersions; the seconds waited.

    resourceVersions are compared as numbers: a later write also satisfies the wait."""
    t0 = time.monotonic()
    while True:
        live = live_versions(sandbox)
        if all(_at_least(live.get(k), v) for k, v in versions.items()):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise GraystepsError(f"Envoy in the sandbox did not take {dict(versions)} within {timeout:.0f}s "
                                 f"(it routes by {live}); see {sandbox.log_file}", step=STEP)
        time.sleep(0.005)


def _at_least(have: str | None, want: str) -> bool:
    if have is None:
        return False
    try:
        return int(have) >= int(want)
    except ValueError:
        return have == want


def virtual_service_versions(api_client, specs) -> dict[str, str]:
    """"ns/name" -> resourceVersion of the VirtualServices of these catalog services, as stored now."""
    from kubernetes import client

    api = client.CustomObjectsApi(api_client)
    out = {}
    for spec in specs:
        group, version = spec.api_version.split("/", 1)
        obj = api.get_namespaced_custom_object(group, version, spec.vs_namespace, "virtualservices", spec.vs_name)
        out[f"{spec.vs_namespace}/{spec.vs_name}"] = obj["metadata"]["resourceVersion"]
    return out


def seconds_until_profile(url: str, host: str, profile: str, since: float, *, timeout: float = 10.0,
                          streak: int = 20, headers: Mapping[str, str] | None = None) -> float:
    """Send requests to `url` (Host `host`) one after another until `streak` answers in a row
    come from `profile`; the seconds from `since` (a time.monotonic()) to the first of them.
    How the sandbox's tests and bench measure that a change reached live traffic."""
    from urllib.parse import urlsplit

    from graysteps.adapters.probe import PROFILE_HEADER, NoDelayHTTPConnection

    parts = urlsplit(url)
    conn = NoDelayHTTPConnection(parts.hostname, parts.port, timeout=timeout)
    first, in_row = None, 0
    try:
        while in_row < streak:
            now = time.monotonic()
            if now - since > timeout:
                raise GraystepsError(f"traffic to {host} through {url} did not move to {profile} within {timeout:.0f}s",
                                     step=STEP)
            conn.request("GET", parts.path or "/", headers={"Host": host, **(headers or {})})
            resp = conn.getresponse()
            resp.read()
            if resp.headers.get(PROFILE_HEADER) == profile:
                first, in_row = (first or now), in_row + 1
            else:
                first, in_row = None, 0
    finally:
        conn.close()
    return first - since
