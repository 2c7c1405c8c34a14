"""What the DestinationMesh reads from user-written VirtualServices (the traffic it
sends is tested on the corpus: tests/routing/test_corpus_traffic.py)."""

from graysteps_lab.world.destination_mesh import (Target, concrete_host, destinations_of, gateways_of, mesh_hosts,
                                                  qualified)


def vs(spec: dict, namespace: str | None = "shop") -> dict:
    metadata = {"name": "x", **({"namespace": namespace} if namespace else {})}
    return {"metadata": metadata, "spec": spec}


def test_a_short_host_is_qualified_in_the_namespace_of_the_object_and_a_dotted_one_is_kept():
    assert qualified("reviews", "shop") == "reviews.shop.svc.cluster.local"
    assert qualified("reviews", "shop", "k8s.corp") == "reviews.shop.svc.k8s.corp"
    assert qualified("reviews.other", "shop") == "reviews.other"
    assert qualified("*.example.com", "shop") == "*.example.com"


def test_destinations_come_from_every_kind_of_route_with_the_ports_they_name():
    spec = {
        "http": [{"route": [{"destination": {"host": "a", "subset": "v1"}, "weight": 80},
                            {"destination": {"host": "a", "subset": "v2", "port": {"number": 9080}}, "weight": 20}],
                  "mirror": {"host": "m"}},
                 {"route": [{"destination": {"host": "b.other.svc.cluster.local"}}],
                  "mirrors": [{"destination": {"host": "n", "subset": "s"}}]}],
        "tcp": [{"route": [{"destination": {"host": "t", "port": {"number": 31400}}}]}],
        "tls": [{"route": [{"destination": {"host": "a", "subset": "v1", "port": {"number": 443}}}]}],
    }
    assert destinations_of(vs(spec)) == {
        Target("a.shop.svc.cluster.local", "v1"): {443},
        Target("a.shop.svc.cluster.local", "v2"): {9080},
        Target("m.shop.svc.cluster.local"): set(),
        Target("b.other.svc.cluster.local"): set(),
        Target("n.shop.svc.cluster.local", "s"): set(),
        Target("t.shop.svc.cluster.local"): {31400},
    }


def test_gateways_are_namespaced_from_the_object_and_mesh_is_not_one():
    spec = {"gateways": ["gw", "istio-system/ingress", "mesh"],
            "http": [{"match": [{"gateways": ["other/gw2"]}, {"uri": {"prefix": "/"}}]}]}
    assert gateways_of(vs(spec)) == {"shop/gw", "istio-system/ingress", "other/gw2"}
    assert gateways_of(vs({"hosts": ["a"]}, namespace=None)) == set()


def test_the_hosts_sidecars_route_are_qualified_lowercase_and_a_wildcard_is_made_concrete():
    routed = [vs({"hosts": ["Reviews", "*.example.com", "ratings.other"]}),
              vs({"hosts": ["productpage"], "gateways": ["gw"]}),
              vs({"hosts": ["details", "*"]}, namespace=None)]
    assert mesh_hosts(routed) == {"reviews.shop.svc.cluster.local", "any.example.com", "ratings.other",
                                  "details.default.svc.cluster.local", "any.graysteps.test"}
    assert concrete_host("*.example.com") == "any.example.com" and concrete_host("a.b") == "a.b"


def test_tls_settings_leave_a_destination_rule_and_nothing_left_empty_stays():
    from graysteps_lab.world.destination_mesh import _without_tls

    spec = {"host": "reviews", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
            "subsets": [{"name": "v1", "labels": {"version": "v1"},
                         "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}, "tls": {"mode": "SIMPLE"},
                                           "portLevelSettings": [{"port": {"number": 80}, "tls": {"mode": "SIMPLE"}},
                                                                 {"port": {"number": 81}, "tls": {"mode": "SIMPLE"},
                                                                  "connectionPool": {"tcp": {"maxConnections": 1}}}]}}]}
    assert _without_tls(spec) == {"host": "reviews", "subsets": [{
        "name": "v1", "labels": {"version": "v1"},
        "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"},
                          "portLevelSettings": [{"port": {"number": 81},
                                                 "connectionPool": {"tcp": {"maxConnections": 1}}}]}}]}
    assert spec["trafficPolicy"] == {"tls": {"mode": "ISTIO_MUTUAL"}}, "the given spec is not changed"
