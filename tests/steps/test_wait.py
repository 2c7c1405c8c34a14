"""`--wait` on route, release and rollback: the command returns only once Istio
serves the change (istiod holds it, every Envoy acknowledged a push carrying it),
so what follows it (the next request, scaling gray down) meets the new routes."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from graysteps.adapters.probe import probe
from graysteps_lab.world.mesh import LocalMesh
from tests.lab.dataplane.virtual_services import CATALOG, strategy_vs
from tests.fixtures.failing import fail_loudly
from tests.fixtures.plans import PLANS, run_cli

pytestmark = pytest.mark.world

HOST = "test-a.prod.svc.cluster.local"


@pytest.fixture
def mesh(kube, istiod, envoy_binary, tmp_path):
    """test-a (prod and gray, the example catalog's namespaces) behind the gateway, split 50/50."""
    started = LocalMesh({"test-a": []}, [strategy_vs("test-a", "balanced")], tmp_path / "mesh", kube=kube,
                        istiod=istiod, envoy_binary=envoy_binary)
    with fail_loudly("the mesh (istiod + Envoy)"):
        started.start()
    yield started
    started.stop()


def cli(kube, istiod, *args: str):
    return run_cli(*args, "--catalog", CATALOG, "--kubeconfig", kube.kubeconfig, "--istiod", istiod.debug_url)


class Traffic:
    """Requests sent through the gateway without a pause, from a thread, counted by answer."""

    def __init__(self, url: str):
        self.url, self.counts, self._stop = url, Counter(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.counts.update(probe(self.url, HOST, 20, concurrency=4, timeout=5))

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def until(self, condition, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.counts):
            assert time.monotonic() < deadline, f"traffic did not get there: {self.counts}"
            time.sleep(0.01)

    def lost(self) -> int:
        return sum(n for answer, n in self.counts.items() if answer not in ("prod", "gray"))


def scale_gray_to_zero(mesh: LocalMesh) -> None:
    """Gray's pods go away: its backend fails every request from now on (also on the
    connections Envoy keeps open to it) and stops, and its endpoint leaves the registry."""
    gray = mesh.backend("test-a", "gray")
    gray.fail_all = 503
    gray.stop()
    mesh.kube.request("DELETE", "/apis/networking.istio.io/v1/namespaces/gray/workloadentries/test-a-gray")


def test_rollback_with_wait_then_scaling_gray_to_zero_loses_no_request(kube, istiod, mesh):
    with Traffic(mesh.url()) as traffic:
        traffic.until(lambda counts: counts["gray"] >= 50)  # traffic flows to both sides first
        done = cli(kube, istiod, "rollback", "--service", "test-a", "--wait")
        scale_gray_to_zero(mesh)
        after = sum(traffic.counts.values())
        traffic.until(lambda counts: sum(counts.values()) >= after + 500)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rollback: served by Istio: 3 proxies acknowledged istiod's push" in done.stdout
    assert traffic.lost() == 0, traffic.counts


def test_a_rollback_not_waited_for_then_scaling_gray_to_zero_loses_requests(kube, mesh):
    """What --wait prevents. The rollback step called in-process (no CLI start-up or exit in
    between): gray is scaled down right after the apiserver took the write, while the Envoys
    still send gray its share until istiod's push (its 100 ms debounce included)."""
    from graysteps.model.catalog import load_catalog
    from graysteps.steps.rollback import connect, rollback_fleet, select_services

    services = select_services(load_catalog(CATALOG), names=["test-a"], all_services=False, namespaces=[])
    api = connect(kube.kubeconfig, 1)
    with Traffic(mesh.url()) as traffic:
        traffic.until(lambda counts: counts["gray"] >= 50)
        result = rollback_fleet(services, api=api, workers=1, dry_run=False, unmanaged=[])
        scale_gray_to_zero(mesh)
        after = sum(traffic.counts.values())
        traffic.until(lambda counts: sum(counts.values()) >= after + 500)
    assert result.ok, result.to_dict()
    print(f"\nrollback not waited for, then gray scaled to zero: {dict(traffic.counts)}")
    assert traffic.lost() > 0, traffic.counts


def test_route_with_wait_returns_when_the_next_request_meets_the_new_route(kube, istiod, mesh):
    done = cli(kube, istiod, "route", "--service", "test-a", "--strategy", "promote", "--wait")
    assert done.returncode == 0, done.stderr
    assert "VirtualService prod/test-a: served by Istio: 3 proxies acknowledged istiod's push" in done.stdout
    assert probe(mesh.url(), HOST, 200, concurrency=8) == {"gray": 200}


def test_release_with_wait_returns_when_every_service_of_the_plan_is_served(kube, istiod, mesh, audit_db, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text((PLANS / "scenario-1.yaml").read_text())
    done = cli(kube, istiod, "release", "--plan", str(plan), "--db", audit_db, "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "plan scenario-1: served by Istio: 3 proxies acknowledged istiod's push" in done.stdout
    assert probe(mesh.url(), HOST, 100, {"Cookie": "tenantGray=1"}) == {"gray": 100}
    assert probe(mesh.url(), HOST, 100) == {"prod": 100}


@pytest.mark.parametrize("args, named", [
    (["--wait"], "--wait needs istiod's debug address"),
    (["--wait", "--istiod", "istiod:15014"], "argument --istiod: 'istiod:15014' is not allowed"),
    (["--wait", "--istiod", "http://127.0.0.1:1", "--wait-timeout", "0"], "--wait-timeout 0"),
])
def test_bad_wait_input_is_one_line_on_stderr_and_nothing_is_written(args, named, tmp_path, monkeypatch):
    monkeypatch.delenv("GRAYSTEPS_ISTIOD", raising=False)
    done = run_cli("route", "--service", "test-a", "--strategy", "promote", "--catalog", CATALOG,
                   "--kubeconfig", str(tmp_path / "none"), *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert len(done.stderr.splitlines()) == 1 and named in done.stderr and done.stderr.startswith("graysteps route: ")


def test_wait_fails_clearly_when_istiod_does_not_answer_and_writes_nothing(kube, fresh_namespace, tmp_path):
    from graysteps_lab.world.ports import free_port

    path = tmp_path / "catalog.yaml"
    path.write_text(f"defaults:\n  namespaces: {{prod: {fresh_namespace}, gray: gray}}\nservices:\n  test-a: {{}}\n")
    done = run_cli("route", "--service", "test-a", "--strategy", "promote", "--catalog", str(path),
                   "--kubeconfig", kube.kubeconfig, "--wait", "--istiod", f"http://127.0.0.1:{free_port()}")
    assert (done.returncode, done.stdout) == (1, "")
    assert "--wait: istiod's debug endpoint http://127.0.0.1:" in done.stderr and "nothing was written" in done.stderr
    listed = kube.request("GET", f"/apis/networking.istio.io/v1/namespaces/{fresh_namespace}/virtualservices")[1]
    assert listed["items"] == []


def test_an_emergency_rollback_rolls_back_even_when_it_cannot_wait_and_then_says_so(kube, mesh, monkeypatch):
    monkeypatch.delenv("GRAYSTEPS_ISTIOD", raising=False)
    done = run_cli("rollback", "--service", "test-a", "--catalog", CATALOG, "--kubeconfig", kube.kubeconfig, "--wait")
    assert done.returncode == 1
    assert "rolled-back" in done.stdout
    assert done.stderr.strip() == ("graysteps rollback: all 1 services are on prod in the apiserver, but it was not "
                                   "checked that Istio serves it: --wait needs istiod's debug address: "
                                   "--istiod http://HOST:15014 or $GRAYSTEPS_ISTIOD")
    vs = kube.request("GET", "/apis/networking.istio.io/v1/namespaces/prod/virtualservices/test-a")[1]
    assert vs["metadata"]["annotations"]["graysteps.io/strategy"] == "rollback"


def test_a_wait_that_times_out_fails_naming_what_istio_has_not_done_yet(kube, istiod, mesh):
    done = cli(kube, istiod, "route", "--service", "test-a", "--strategy", "promote", "--wait", "--wait-timeout", "0.001")
    assert done.returncode == 1
    assert "VirtualService prod/test-a: updated; strategy promote" in done.stdout  # written, not yet served
    assert done.stderr.startswith("graysteps route: Istio did not serve the change within 0.001s; ")
    # istiod has it within milliseconds; its push waits for its 100 ms debounce
    assert ("istiod has not received VirtualService prod/test-a at resourceVersion " in done.stderr
            or "these proxies have not acknowledged it: caller-gray.graysteps-callers, caller-prod.graysteps-callers, "
               "graysteps-gateway.istio-system;" in done.stderr), done.stderr
    assert "then retry (the step is safe to repeat)" in done.stderr
    again = cli(kube, istiod, "route", "--service", "test-a", "--strategy", "promote", "--wait")
    assert again.returncode == 0 and "unchanged" in again.stdout and "served by Istio" in again.stdout
