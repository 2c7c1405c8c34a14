"""The seed's three scenarios (§3.4), end to end: `graysteps release --plan`
writes the VirtualServices into the real apiserver; istiod serves those live
objects to real Envoys (a gateway for users, one sidecar per caller profile, so
`sourceLabels` see who calls); backends for test-a and test-b in prod and gray
answer, and A calls B. Each request's
answer names the profile that served each hop: "test-a:gray>test-b:prod"."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from graysteps.adapters.probe import by_path
from graysteps_lab.world.istiod import analyze
from graysteps_lab.world.mesh import LocalMesh
from tests.fixtures.failing import fail_loudly
from tests.fixtures.plans import PLANS, run_cli

pytestmark = pytest.mark.world

CHAIN = {"test-a": ["test-b"], "test-b": []}
GRAY_COOKIE = {"Cookie": "rememberMe=; tenantGray=1; channel=web"}
OTHER_COOKIE = {"Cookie": "rememberMe=; tenantGray=0; channel=web"}
N = 40


def path(a: str, b: str) -> str:
    return f"test-a:{a}>test-b:{b}"


def live_virtual_services(kube, catalog_path: str) -> list[dict]:
    """test-a's and test-b's VirtualServices as the apiserver holds them now."""
    from kubernetes import client

    from graysteps.model.catalog import load_catalog

    catalog = load_catalog(catalog_path)
    out = []
    with kube.api_client() as api:
        for name in ("test-a", "test-b"):
            s = catalog.service(name)
            group, version = s.api_version.split("/", 1)
            out.append(client.CustomObjectsApi(api).get_namespaced_custom_object(group, version, s.vs_namespace, "virtualservices", s.vs_name))
    return out


@pytest.fixture
def release(kube, make_catalog, audit_db, tmp_path):
    """release("scenario-1") applies the example plan to the apiserver; returns the live VirtualServices."""
    catalog = make_catalog()

    def apply(scenario: str) -> list[dict]:
        done = run_cli("release", "--plan", str(PLANS / f"{scenario}.yaml"), "--catalog", catalog,
                       "--kubeconfig", kube.kubeconfig, "--db", audit_db, "--report", str(tmp_path / f"{scenario}.json"))
        assert done.returncode == 0, done.stderr
        assert f"plan {scenario}: succeeded" in done.stdout
        return live_virtual_services(kube, catalog)

    return apply


@pytest.fixture
def mesh_for(kube, istiod, envoy_binary, profile_namespaces, tmp_path):
    """mesh_for(vss, forward) -> a mesh where A forwards the cookie to B (or not); the
    previous one is stopped first (one mesh at a time: they share the namespaces)."""
    started: list[LocalMesh] = []

    def destination(service: str, profile: str) -> dict:
        return {"host": f"{service}.{profile_namespaces[profile]}.svc.cluster.local"}

    def start(vss: list[dict], forward: bool) -> LocalMesh:
        while started:
            started.pop().stop()
        mesh = LocalMesh(CHAIN, vss, tmp_path / f"mesh-{forward}", kube=kube, istiod=istiod, destination=destination,
                         forward_cookie={"test-a": forward}, envoy_binary=envoy_binary)
        started.append(mesh)
        with fail_loudly("the mesh (istiod + Envoy)"):
            mesh.start()
        # Istio's own analyzers find nothing wrong with the plan's routes (Services and endpoints in place).
        assert analyze(istiod, sorted(profile_namespaces.values())) == []
        return mesh

    yield start
    for mesh in started:
        mesh.stop()


def paths(mesh: LocalMesh, headers: dict | None = None, n: int = N) -> Counter:
    return mesh.probe("test-a", n, headers or {}, key=by_path)


def test_scenario_1_whitelisted_tenant_reaches_a_gray_while_b_stays_on_prod(release, mesh_for):
    vss = release("scenario-1")
    for forward in (True, False):
        mesh = mesh_for(vss, forward)
        assert paths(mesh) == {path("prod", "prod"): N}
        assert paths(mesh, OTHER_COOKIE) == {path("prod", "prod"): N}
        # B is on prod for everyone: forwarding the cookie changes nothing.
        assert paths(mesh, GRAY_COOKIE) == {path("gray", "prod"): N}


def test_scenario_2_linked_b_follows_its_caller_with_or_without_the_cookie(release, mesh_for):
    vss = release("scenario-2")
    for forward in (False, True):
        mesh = mesh_for(vss, forward)
        assert paths(mesh) == {path("prod", "prod"): N}
        assert paths(mesh, OTHER_COOKIE) == {path("prod", "prod"): N}
        # A's gray pods (profile: gray) call B's gray, whether or not A forwards the cookie.
        assert paths(mesh, GRAY_COOKIE) == {path("gray", "gray"): N}
    # The link is the caller's labels, not the cookie: a user calling B directly stays on prod.
    direct = mesh.probe("test-b", N, GRAY_COOKIE)
    assert direct == {"prod": N}


def within_binomial_bound(hits: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    return abs(hits / n - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def test_scenario_3_a_splits_80_20_and_b_keeps_a_tenant_gray_only_if_a_forwards_the_cookie(release, mesh_for):
    vss = release("scenario-3")
    n = 400
    mesh = mesh_for(vss, True)
    plain = paths(mesh, n=n)
    assert set(plain) <= {path("prod", "prod"), path("gray", "prod")}, plain
    assert within_binomial_bound(plain[path("gray", "prod")], n, 0.20), plain
    forwarded = paths(mesh, GRAY_COOKIE, n=n)
    assert set(forwarded) <= {path("prod", "gray"), path("gray", "gray")}, forwarded
    assert within_binomial_bound(forwarded[path("gray", "gray")], n, 0.20), forwarded

    mesh = mesh_for(vss, False)
    plain = paths(mesh, n=n)
    assert set(plain) <= {path("prod", "prod"), path("gray", "prod")}, plain
    assert within_binomial_bound(plain[path("gray", "prod")], n, 0.20), plain
    dropped = paths(mesh, GRAY_COOKIE, n=n)
    assert set(dropped) <= {path("prod", "prod"), path("gray", "prod")}, dropped
    assert within_binomial_bound(dropped[path("gray", "prod")], n, 0.20), dropped


def test_applying_the_next_plan_moves_live_traffic(release, mesh_for):
    """One mesh, plans applied one after the other: traffic follows the apiserver."""
    mesh = mesh_for(release("scenario-1"), True)
    assert paths(mesh, GRAY_COOKIE) == {path("gray", "prod"): N}
    mesh.update(release("scenario-2"))
    assert analyze(mesh.istiod, [mesh.destination("test-a", p)["host"].split(".")[1] for p in ("prod", "gray")]) == []
    assert paths(mesh, GRAY_COOKIE) == {path("gray", "gray"): N}
    assert paths(mesh) == {path("prod", "prod"): N}
