"""Real HTTP through a real Envoy, routed by the VirtualServices graysteps
writes, to a prod and a gray backend: where does each request land?"""

from __future__ import annotations

import math
import time

import pytest

from graysteps.adapters.probe import by_path, probe
from tests.lab.dataplane.virtual_services import destination, strategy_vs

pytestmark = pytest.mark.world

SINGLE = {"test-a": []}
CHAIN = {"test-a": ["test-b"], "test-b": []}


def within_binomial_bound(hits: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    """|hits/n - p| within `sigmas` standard errors (false alarm ~1e-5 at 4.5σ)."""
    return abs(hits / n - p) <= sigmas * math.sqrt(p * (1 - p) / n)


@pytest.fixture
def whitelist_mesh(start_mesh):
    return start_mesh(SINGLE, [strategy_vs("test-a", "whitelist")])


@pytest.mark.parametrize("cookie, expected", [
    ("tenantGray=1", "gray"),
    ("a=b; tenantGray=1", "gray"),
    ("tenantGray=1; c=d", "gray"),
    ("a=b; tenantGray=1; c=d", "gray"),
    ("tenantGray=10", "prod"),
    ("xtenantGray=1", "prod"),
    ("foo=tenantGray=1", "prod"),
    ("foo=tenantGray=1; c=d", "prod"),
    ("tenantGray=0", "prod"),
    ("tenantGray=0; rememberMe=; channel=", "prod"),
    (None, "prod"),
])
def test_whitelist_sends_only_the_tenantgray_cookie_to_gray(whitelist_mesh, cookie, expected):
    headers = {"Cookie": cookie} if cookie is not None else {}
    assert whitelist_mesh.probe("test-a", 20, headers) == {expected: 20}


@pytest.mark.parametrize("strategy, weight, gray_share", [("weight", 20, 0.20), ("balanced", None, 0.50)])
def test_weights_split_traffic_within_a_binomial_bound(start_mesh, strategy, weight, gray_share):
    mesh = start_mesh(SINGLE, [strategy_vs("test-a", strategy, weight)])
    n = 2000
    counts = mesh.probe("test-a", n, concurrency=8)
    assert set(counts) <= {"gray", "prod"}, counts
    assert sum(counts.values()) == n
    assert within_binomial_bound(counts["gray"], n, gray_share), (counts, gray_share)


@pytest.mark.parametrize("strategy, everything_to", [("promote", "gray"), ("rollback", "prod")])
def test_promote_and_rollback_send_every_request_to_one_profile(start_mesh, strategy, everything_to):
    mesh = start_mesh(SINGLE, [strategy_vs("test-a", strategy)])
    assert mesh.probe("test-a", 200, {"Cookie": "tenantGray=1"}) == {everything_to: 200}
    assert mesh.probe("test-a", 200) == {everything_to: 200}


def test_linked_routing_follows_the_profile_of_the_caller(start_mesh):
    mesh = start_mesh(SINGLE, [strategy_vs("test-a", "linked")])
    assert mesh.probe("test-a", 50, listener="outbound-gray") == {"gray": 50}
    assert mesh.probe("test-a", 50, listener="outbound-prod") == {"prod": 50}
    assert mesh.probe("test-a", 50, {"Cookie": "tenantGray=1"}, listener="ingress") == {"prod": 50}


def test_linked_service_follows_a_whitelisted_caller_to_gray_across_hops(start_mesh):
    """Seed scenario 2: A on whitelist, B linked to A by labels."""
    mesh = start_mesh(CHAIN, [strategy_vs("test-a", "whitelist"), strategy_vs("test-b", "linked")],
                      forward_cookie=False)
    assert mesh.probe("test-a", 30, {"Cookie": "tenantGray=1"}, key=by_path) == {"test-a:gray>test-b:gray": 30}
    assert mesh.probe("test-a", 30, {"Cookie": "tenantGray=0"}, key=by_path) == {"test-a:prod>test-b:prod": 30}


@pytest.mark.parametrize("forward_cookie, whitelisted_path", [
    (True, "test-a:gray>test-b:gray"),
    (False, "test-a:gray>test-b:prod"),
])
def test_a_whitelisted_tenant_stays_on_gray_across_hops_only_if_the_cookie_is_forwarded(
        start_mesh, forward_cookie, whitelisted_path):
    mesh = start_mesh(CHAIN, [strategy_vs("test-a", "whitelist"), strategy_vs("test-b", "whitelist")],
                      forward_cookie=forward_cookie)
    assert mesh.probe("test-a", 30, {"Cookie": "tenantGray=1"}, key=by_path) == {whitelisted_path: 30}
    assert mesh.probe("test-a", 30, key=by_path) == {"test-a:prod>test-b:prod": 30}


def _vs_with(http_extras: dict) -> dict:
    base = strategy_vs("test-a", "rollback")
    for route in base["spec"]["http"]:
        route.update(http_extras)
    return base


def test_a_backend_that_fails_once_is_retried_by_the_route_retries(start_mesh):
    vs = strategy_vs("test-a", "whitelist", base=_vs_with({"retries": {"attempts": 2, "retryOn": "5xx"}}))
    mesh = start_mesh(SINGLE, [vs])
    for cookie, profile in (("tenantGray=1", "gray"), ("tenantGray=0", "prod")):
        backend = mesh.backend("test-a", profile)
        before = backend.requests
        backend.fail_next(1, status=500)
        assert mesh.probe("test-a", 1, {"Cookie": cookie}, concurrency=1) == {profile: 1}
        assert backend.requests - before == 2  # the failed try and its retry


def test_without_retries_the_failure_reaches_the_caller(start_mesh):
    vs = strategy_vs("test-a", "whitelist", base=_vs_with({"retries": {"attempts": 0}}))
    mesh = start_mesh(SINGLE, [vs])
    mesh.backend("test-a", "gray").fail_next(1, status=500)
    assert mesh.probe("test-a", 1, {"Cookie": "tenantGray=1"}, concurrency=1) == {"HTTP 500": 1}


def test_a_slow_backend_hits_the_route_timeout(start_mesh):
    vs = strategy_vs("test-a", "whitelist", base=_vs_with({"timeout": "300ms", "retries": {"attempts": 0}}))
    mesh = start_mesh(SINGLE, [vs])
    mesh.backend("test-a", "gray").delay = 2.0
    t0 = time.monotonic()
    assert mesh.probe("test-a", 1, {"Cookie": "tenantGray=1"}, concurrency=1) == {"HTTP 504": 1}
    assert time.monotonic() - t0 < 1.5
    assert mesh.probe("test-a", 3, concurrency=1) == {"prod": 3}  # the fast prod backend is unaffected


def test_a_new_virtual_service_changes_live_traffic_without_restarting_envoy(start_mesh):
    mesh = start_mesh(SINGLE, [strategy_vs("test-a", "rollback")])
    pid = mesh.envoy.pid
    assert mesh.probe("test-a", 20) == {"prod": 20}
    seconds = mesh.update([strategy_vs("test-a", "promote")])
    assert mesh.probe("test-a", 20) == {"gray": 20}
    assert mesh.envoy.pid == pid
    assert seconds < 5


def test_requests_for_an_unknown_host_are_not_routed(whitelist_mesh):
    assert probe(whitelist_mesh.url(), "test-zzz", 3) == {"HTTP 404": 3}


def test_a_fault_abort_on_a_route_is_served_by_envoy(start_mesh):
    vs = strategy_vs("test-a", "whitelist", base=_vs_with({"fault": {"abort": {"httpStatus": 418, "percentage": {"value": 100}}}}))
    mesh = start_mesh(SINGLE, [vs])
    assert mesh.probe("test-a", 5, {"Cookie": "tenantGray=1"}) == {"HTTP 418": 5}
    assert mesh.probe("test-a", 5) == {"HTTP 418": 5}
    assert mesh.backend("test-a", "gray").requests == mesh.backend("test-a", "prod").requests == 0


def test_destination_rule_subsets_route_like_namespaces(start_mesh):
    mesh = start_mesh(SINGLE, [strategy_vs("test-a", "whitelist", layout="subsets")],
                      destination=destination("subsets"))
    assert mesh.probe("test-a", 10, {"Cookie": "a=b; tenantGray=1"}) == {"gray": 10}
    assert mesh.probe("test-a.shop.svc.cluster.local", 10, {"Cookie": "tenantGray=10"}) == {"prod": 10}
    n = 2000
    mesh.update([strategy_vs("test-a", "weight", 20, layout="subsets")])
    counts = mesh.probe("test-a", n, concurrency=8)
    assert set(counts) <= {"gray", "prod"} and within_binomial_bound(counts["gray"], n, 0.20), counts


def test_a_foreign_route_in_the_virtual_service_keeps_routing_to_its_service(start_mesh):
    base = strategy_vs("test-a", "rollback")
    base["spec"]["http"].insert(0, {"name": "to-b", "match": [{"uri": {"prefix": "/b/"}}],
                                    "route": [{"destination": {"host": "test-b.prod.svc.cluster.local"}}]})
    mesh = start_mesh({"test-a": [], "test-b": []}, [strategy_vs("test-a", "whitelist", base=base)])
    cookie = {"Cookie": "tenantGray=1"}
    assert mesh.probe("test-a", 10, cookie, path="/b/x", key=by_path) == {"test-b:prod": 10}
    assert mesh.probe("test-a", 10, cookie, path="/a", key=by_path) == {"test-a:gray": 10}


def test_at_the_gateway_a_short_host_is_served_under_the_virtual_services_namespace(whitelist_mesh):
    """Istio reads host `test-a` of a VirtualService in `prod` as test-a.prod.svc.cluster.local."""
    assert probe(whitelist_mesh.url(), "test-a.prod.svc.cluster.local", 3) == {"prod": 3}
    assert probe(whitelist_mesh.url(), "test-a", 3) == {"HTTP 404": 3}


def test_a_virtual_service_bound_only_to_the_sidecars_is_not_served_at_the_gateway(start_mesh):
    vs = strategy_vs("test-a", "promote")
    vs["spec"]["gateways"] = ["mesh"]
    mesh = start_mesh(SINGLE, [vs])
    assert mesh.probe("test-a", 3, listener="outbound-prod") == {"gray": 3}
    assert mesh.probe("test-a", 3) == {"HTTP 404": 3}
