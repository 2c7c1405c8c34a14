"""Which proxies `--wait` waits for (graysteps.adapters.istiod). Sending traffic through
istiod and Envoy after such a wait is tested on the corpus (tests/routing/test_corpus_traffic.py:
its gateway-only VirtualServices never reach a sidecar, and its waits are this one)."""

import pytest

from graysteps.adapters.istiod import ConfigChange, binds_mesh, wait_until_served
from graysteps.errors import GraystepsError

NONCE = "2026-11-25T21:30:16Z/{push}" + "0" * 36


def vs(spec: dict) -> dict:
    return {"kind": "VirtualService", "metadata": {"namespace": "shop", "name": "cart", "resourceVersion": "7"},
            "spec": spec}


def proxy(name: str, kind: str, push: int) -> dict:
    entry = {"sent": NONCE.format(push=push), "acked": NONCE.format(push=push)}
    return {"proxy": name, "proxy_type": kind, "resources": {
        t: dict(entry) for t in ("type.googleapis.com/envoy.config.cluster.v3.Cluster",
                                 "type.googleapis.com/envoy.config.listener.v3.Listener",
                                 "type.googleapis.com/envoy.config.route.v3.RouteConfiguration")}}


def istiod_holding(held: dict, proxies: list[dict]):
    return lambda path: {"/debug/configz": [held], "/debug/syncz": proxies}[path]


def test_a_virtualservice_binds_sidecars_without_gateways_with_mesh_or_a_route_bound_to_mesh():
    assert binds_mesh(vs({"hosts": ["a"]}))
    assert binds_mesh(vs({"gateways": ["gw", "mesh"]}))
    assert not binds_mesh(vs({"gateways": ["gw"]}))
    assert binds_mesh(vs({"gateways": ["gw"], "http": [{"match": [{"gateways": ["mesh"]}]}]}))


CHANGE = [ConfigChange("VirtualService", "shop", "cart", "7")]


def test_a_change_bound_only_to_gateways_waits_for_the_gateways_not_for_sidecars_istiod_never_pushes():
    proxies = [proxy("gw.istio-system", "router", 5), proxy("a.shop", "sidecar", 3)]  # the sidecar was skipped
    served = wait_until_served(CHANGE, istiod_holding(vs({"gateways": ["gw"]}), proxies), after_push=4, timeout=1)
    assert served.proxies == ["gw.istio-system"]


def test_a_change_sidecars_route_by_waits_for_every_sidecar():
    proxies = [proxy("gw.istio-system", "router", 5), proxy("a.shop", "sidecar", 3)]
    with pytest.raises(GraystepsError, match="these proxies have not acknowledged it: a.shop"):
        wait_until_served(CHANGE, istiod_holding(vs({"gateways": ["gw", "mesh"]}), proxies), after_push=4,
                          timeout=0.2)


def test_a_gateway_that_has_not_acknowledged_is_waited_for_whatever_the_binding():
    proxies = [proxy("gw.istio-system", "router", 3), proxy("a.shop", "sidecar", 5)]
    with pytest.raises(GraystepsError, match="these proxies have not acknowledged it: gw.istio-system"):
        wait_until_served(CHANGE, istiod_holding(vs({"gateways": ["gw"]}), proxies), after_push=4, timeout=0.2)
