"""The sandbox end to end: `graysteps sandbox up` left running in the background,
VirtualServices changed in its real apiserver, and live traffic through its
istiod-configured Envoys following them without a restart; then `status` and `down`."""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest

from graysteps.adapters.probe import probe
from graysteps_lab.sandbox.client import seconds_until_profile
from graysteps_lab.sandbox.state import pid_alive
from tests.fixtures.sandbox import graysteps

pytestmark = pytest.mark.world

GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"
EXPECTED_COMPONENTS = {
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "istiod",
    "envoy", "envoy outbound-prod", "envoy outbound-gray",
    "backend test-a/prod", "backend test-a/gray", "backend test-b/prod", "backend test-b/gray",
    "route-sync", "cookie-service", "prometheus",
}


class Ingress:
    """Requests to the sandbox's ingress listener."""

    def __init__(self, url: str):
        self.url = url

    def profile(self, host: str = "test-a.prod.svc.cluster.local", headers: dict | None = None) -> str:
        counts = probe(self.url, host, 1, headers)
        return next(iter(counts))

    def seconds_until(self, profile: str, since: float) -> float:
        return seconds_until_profile(self.url, "test-a.prod.svc.cluster.local", profile, since)


def all_to(profile: str) -> dict:
    return {"spec": {"http": [{"name": "test-a", "route": [
        {"destination": {"host": f"test-a.{profile}.svc.cluster.local"}}]}]}}


def patch_vs(api, name: str, body: dict) -> None:
    from kubernetes import client

    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, "prod", PLURAL, name, body, _content_type="application/merge-patch+json")


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout}s")


def test_status_lists_every_component_alive_with_its_pid_and_port(sandbox):
    done = graysteps("sandbox", "status", "--dir", str(sandbox.dir))
    assert done.returncode == 0, done.stdout + done.stderr
    components = {c["name"]: c for c in sandbox.state["components"]}
    assert set(components) == EXPECTED_COMPONENTS
    for name, c in components.items():
        assert pid_alive(c["pid"]), name
        line = next(l for l in done.stdout.splitlines() if l.strip().startswith(name + " "))
        assert str(c["pid"]) in line and " ok " in line, line
        if c.get("port"):
            assert str(c["port"]) in line
    # the backends really are the services and profiles they claim
    assert "answers as test-b/gray for test-b.gray.svc.cluster.local" in done.stdout
    # the supervisor outlived `up` and is not its child: it is in a session of its own
    supervisor = int((sandbox.dir / "supervisor.pid").read_text())
    assert os.getsid(supervisor) == supervisor


def test_the_sandbox_starts_on_prod_and_the_cookie_service_answers_from_the_whitelist(sandbox):
    state = sandbox.state
    ingress = Ingress(state["ingress"])
    assert {ingress.profile(headers={"Cookie": "tenantGray=1"}) for _ in range(20)} == {"prod"}
    done = graysteps("whitelist", "add", "acme", "--db", state["env"]["GRAYSTEPS_DB"])
    assert done.returncode == 0, done.stderr
    import urllib.request

    for tenant, gray in (("acme", True), ("initech", False)):
        def answer():
            with urllib.request.urlopen(f"{state['cookie_service']}/v1/gray-cookie?tenant={tenant}") as r:
                return json.loads(r.read())["gray"] == gray and r.headers["Set-Cookie"]
        cookie = wait_for(answer, what=f"cookie service answering gray={gray} for {tenant}")
        assert cookie.startswith(f"tenantGray={int(gray)};")


def test_a_virtual_service_patched_in_the_apiserver_moves_live_traffic_within_a_measured_time(sandbox):
    state = sandbox.state
    envoy_pid = next(c["pid"] for c in state["components"] if c["name"] == "envoy")
    ingress = Ingress(state["ingress"])
    seconds = []
    with sandbox.api_client() as api:
        for profile in ("gray", "prod") * 4:
            t0 = time.monotonic()
            patch_vs(api, "test-a", all_to(profile))
            seconds.append(ingress.seconds_until(profile, t0))
    assert sandbox.state["components"][0]  # still readable
    assert next(c["pid"] for c in sandbox.state["components"] if c["name"] == "envoy") == envoy_pid
    assert pid_alive(envoy_pid), "Envoy was restarted or died: the change must be live, pushed by istiod"
    ms = sorted(round(s * 1000, 1) for s in seconds)
    report = {"patches": len(ms), "median_ms": statistics.median(ms), "min_ms": ms[0], "max_ms": ms[-1], "all_ms": ms}
    (sandbox.dir / "propagation.json").write_text(json.dumps(report))
    print(f"\npropagation apiserver patch -> live traffic: {report}")


def test_route_wait_with_the_sandbox_env_returns_once_the_next_requests_meet_the_new_route(sandbox):
    env = sandbox.state["env"]
    assert env["GRAYSTEPS_ISTIOD"] == sandbox.state["istiod"]
    ingress = Ingress(sandbox.state["ingress"])
    for strategy, profile in (("promote", "gray"), ("rollback", "prod")):
        done = graysteps("route", "--service", "test-a", "--strategy", strategy, "--wait", env=env)
        assert done.returncode == 0, done.stderr
        assert "served by Istio: 3 proxies acknowledged istiod's push" in done.stdout
        assert {ingress.profile() for _ in range(20)} == {profile}


def test_a_virtual_service_istio_refuses_is_refused_at_write_time_and_the_others_keep_routing(sandbox):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    bad = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualService",
           "metadata": {"name": "everything", "namespace": "prod"},
           "spec": {"hosts": ["*"], "http": [{"route": [{"destination": {"host": "test-a"}}]}]}}
    ingress = Ingress(sandbox.state["ingress"])
    with sandbox.api_client() as api:
        with pytest.raises(ApiException) as refused:
            client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, "prod", PLURAL, bad)
        assert "wildcard host * is not allowed for virtual services bound to the mesh gateway" in refused.value.body
        try:
            t0 = time.monotonic()
            patch_vs(api, "test-a", all_to("gray"))
            ingress.seconds_until("gray", t0)
        finally:
            patch_vs(api, "test-a", all_to("prod"))
    ingress.seconds_until("prod", time.monotonic())


def test_up_again_reports_the_running_sandbox_and_starts_nothing_new(sandbox):
    before = (sandbox.dir / "supervisor.pid").read_text()
    done = graysteps("sandbox", "up", "--dir", str(sandbox.dir))
    assert done.returncode == 0, done.stderr
    assert f"sandbox already running in {sandbox.dir} (supervisor pid {before})" in done.stdout
    assert (sandbox.dir / "supervisor.pid").read_text() == before


def test_when_the_apiserver_dies_envoy_keeps_the_last_routes_and_status_says_what_is_wrong(sandbox):
    import signal

    state = sandbox.state
    apiserver = next(c["pid"] for c in state["components"] if c["name"] == "kube-apiserver")
    ingress = Ingress(state["ingress"])
    assert ingress.profile() == "prod"
    os.kill(apiserver, signal.SIGKILL)
    wait_for(lambda: (sandbox.state.get("route_sync") or {}).get("watching") is False,
             what="the watch noticing the apiserver is gone")
    status = graysteps("sandbox", "status", "--dir", str(sandbox.dir))
    assert status.returncode == 1
    lines = {l.split()[0]: l for l in status.stdout.splitlines()[2:] if l.startswith("  ") and not l.startswith("   ")}
    assert " BAD " in lines["kube-apiserver"] and " BAD " in lines["route-sync"]
    assert "istiod and Envoy keep the last routes" in lines["route-sync"]
    assert " ok " in lines["envoy"]
    assert {ingress.profile() for _ in range(20)} == {"prod"}


def test_down_stops_every_process_and_status_then_says_not_running(sandbox):
    state = sandbox.state
    pids = {c["name"]: c["pid"] for c in state["components"]} | {"supervisor": state["pid"]}
    done = graysteps("sandbox", "down", "--dir", str(sandbox.dir))
    assert done.returncode == 0, done.stderr
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    assert not (sandbox.dir / "supervisor.pid").exists()
    status = graysteps("sandbox", "status", "--dir", str(sandbox.dir))
    assert status.returncode == 3 and "sandbox not running" in status.stdout
    again = graysteps("sandbox", "down", "--dir", str(sandbox.dir))
    assert again.returncode == 0 and "not running" in again.stdout
