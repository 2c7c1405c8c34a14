"""The VirtualService → Envoy translator: what it builds, and what it refuses."""

from __future__ import annotations

import json
import subprocess

import pytest

from graysteps_lab.envoy_config import (
    ListenerSpec,
    TranslationError,
    UnsupportedField,
    duration_seconds,
    translate,
)

ENDPOINTS = {
    "test-a.prod.svc.cluster.local": ("127.0.0.1", 8001),
    "test-a.gray.svc.cluster.local": ("127.0.0.1", 8002),
    "test-b.prod.svc.cluster.local": ("127.0.0.1", 8003),
    "test-b.gray.svc.cluster.local": ("127.0.0.1", 8004),
    "test-a.shop.svc.cluster.local|gray": ("127.0.0.1", 8005),
    "test-a.shop.svc.cluster.local|prod": ("127.0.0.1", 8006),
}
INGRESS = ListenerSpec("ingress", 15000)
GRAY = ListenerSpec("outbound-gray", 15001, source_labels={"profile": "gray", "app": "test-b"})
PROD = ListenerSpec("outbound-prod", 15002, source_labels={"profile": "prod"})


def vs(http, hosts=("test-a",), namespace="prod", name="test-a", **spec):
    return {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"hosts": list(hosts), "http": http, **spec}}


def to(host, weight=None, headers=None, **extra):
    d = {"destination": {"host": host, **extra}}
    if weight is not None:
        d["weight"] = weight
    if headers is not None:
        d["headers"] = headers
    return d


def vhost(resources, listener, name="prod/test-a"):
    for v in resources.route_configs[listener]["virtual_hosts"]:
        if v["name"] == name:
            return v
    raise AssertionError(f"no virtual host {name}")


def test_a_source_labels_route_is_kept_only_for_callers_with_those_labels():
    res = translate([vs([
        {"name": "linked", "match": [{"sourceLabels": {"profile": "gray"}}], "route": [to("test-a.gray")]},
        {"name": "rest", "route": [to("test-a.prod")]},
    ])], ENDPOINTS, [INGRESS, GRAY, PROD])
    assert [r["name"] for r in vhost(res, "outbound-gray")["routes"]] == ["linked", "rest"]
    assert [r["name"] for r in vhost(res, "outbound-prod")["routes"]] == ["rest"]
    assert [r["name"] for r in vhost(res, "ingress")["routes"]] == ["rest"]


def test_each_match_block_becomes_one_envoy_route_in_order():
    res = translate([vs([
        {"name": "two", "match": [{"uri": {"exact": "/x"}}, {"headers": {"cookie": {"regex": "(.*; )?g=1(;.*)?"}},
                                                              "uri": {"prefix": "/api"}}],
         "route": [to("test-a.gray")]},
        {"name": "re", "match": [{"uri": {"regex": "/v[0-9]+/.*"}, "queryParams": {"q": {"exact": "1"}}}],
         "route": [to("test-a.prod")]},
    ])], ENDPOINTS, [INGRESS])
    routes = vhost(res, "ingress")["routes"]
    assert [r["match"] for r in routes] == [
        {"path": "/x"},
        {"prefix": "/api", "headers": [{"name": "cookie", "string_match": {"safe_regex": {"regex": "(.*; )?g=1(;.*)?"}}}]},
        {"safe_regex": {"regex": "/v[0-9]+/.*"}, "query_parameters": [{"name": "q", "string_match": {"exact": "1"}}]},
    ]


def test_weights_become_weighted_clusters_and_zero_weights_are_dropped():
    res = translate([vs([{"route": [to("test-a.gray", 20), to("test-a.prod", 80)]}]),
                     vs([{"route": [to("test-b.gray", 0), to("test-b.prod", 100)]}], hosts=["test-b"], name="test-b")],
                    ENDPOINTS, [INGRESS])
    a = vhost(res, "ingress")["routes"][0]["route"]
    assert a["weighted_clusters"] == {"clusters": [
        {"name": "outbound|test-a.gray.svc.cluster.local", "weight": 20},
        {"name": "outbound|test-a.prod.svc.cluster.local", "weight": 80}]}
    b = vhost(res, "ingress", "prod/test-b")["routes"][0]["route"]
    assert b["cluster"] == "outbound|test-b.prod.svc.cluster.local"


def test_retries_and_timeout_are_carried_over():
    res = translate([vs([{"route": [to("test-a.prod")], "timeout": "1.5s",
                          "retries": {"attempts": 3, "perTryTimeout": "200ms", "retryOn": "5xx,connect-failure,409"}},
                         ])], ENDPOINTS, [INGRESS])
    action = vhost(res, "ingress")["routes"][0]["route"]
    assert action["timeout"] == "1.5s"
    policy = action["retry_policy"]
    assert (policy["num_retries"], policy["per_try_timeout"]) == (3, "0.2s")
    assert policy["retry_on"] == "5xx,connect-failure,retriable-status-codes"
    assert policy["retriable_status_codes"] == [409]


def test_istio_defaults_apply_when_a_route_has_no_retries_or_timeout():
    res = translate([vs([{"route": [to("test-a.prod")]}, ])], ENDPOINTS, [INGRESS])
    action = vhost(res, "ingress")["routes"][0]["route"]
    assert action["timeout"] == "0s"  # Istio disables Envoy's 15 s default
    assert action["retry_policy"]["num_retries"] == 2
    assert action["retry_policy"]["retriable_status_codes"] == [503]


def test_hosts_answer_by_short_name_namespace_name_fqdn_and_with_a_port():
    res = translate([vs([{"route": [to("test-a.prod")]}])], ENDPOINTS, [INGRESS])
    domains = vhost(res, "ingress")["domains"]
    for name in ("test-a", "test-a:*", "test-a.prod", "test-a.prod.svc", "test-a.prod.svc.cluster.local:*"):
        assert name in domains


def test_a_short_host_is_only_a_short_name_for_callers_in_its_namespace():
    other = ListenerSpec("other", 15003, namespace="gray")
    res = translate([vs([{"route": [to("test-a.prod")]}])], ENDPOINTS, [other])
    assert "test-a" not in vhost(res, "other")["domains"]
    assert "test-a.prod.svc.cluster.local" in vhost(res, "other")["domains"]
    # the gray caller's own test-a (no VirtualService) takes the short name
    assert "test-a" in vhost(res, "other", "default/test-a.gray.svc.cluster.local")["domains"]


def test_subset_destinations_are_looked_up_by_host_and_subset():
    res = translate([vs([{"route": [to("test-a", 30, subset="gray"), to("test-a", 70, subset="prod")]}],
                        namespace="shop")], ENDPOINTS, [INGRESS])
    clusters = vhost(res, "ingress", "shop/test-a")["routes"][0]["route"]["weighted_clusters"]["clusters"]
    assert [c["name"] for c in clusters] == ["outbound|test-a.shop.svc.cluster.local|gray",
                                            "outbound|test-a.shop.svc.cluster.local|prod"]


@pytest.mark.parametrize("http, named", [
    ([{"route": [to("test-a.prod")], "corsPolicy": {"allowOrigins": [{"exact": "x"}]}}], "spec.http[0].corsPolicy"),
    ([{"route": [to("test-a.prod")], "mtch": []}], "spec.http[0].mtch"),
    ([{"match": [{"port": 80}], "route": [to("test-a.prod")]}], "spec.http[0].match[0].port"),
    ([{"match": [{"uri": {"suffix": "x"}}], "route": [to("test-a.prod")]}], "spec.http[0].match[0].uri.suffix"),
    ([{"route": [to("test-a.prod")], "retries": {"attempts": 1, "backoff": "1s"}}], "spec.http[0].retries.backoff"),
])
def test_an_unsupported_field_fails_loudly_naming_it(http, named):
    with pytest.raises(UnsupportedField, match=r"prod/test-a.*" + named.replace("[", r"\[").replace("]", r"\]")):
        translate([vs(http)], ENDPOINTS, [INGRESS])


def test_a_tcp_section_is_refused():
    with pytest.raises(UnsupportedField, match=r"spec\.tcp"):
        translate([vs([], tcp=[{"route": [to("test-a.prod")]}])], ENDPOINTS, [INGRESS])


@pytest.mark.parametrize("http, message", [
    ([{"route": [to("test-c.prod")]}], "no endpoint for destination 'test-c.prod.svc.cluster.local'"),
    ([{"match": [{"headers": {"cookie": {"regex": "(?!x)tenantGray=1"}}}], "route": [to("test-a.gray")]}], "RE2"),
    ([{"route": [to("test-a.prod")], "timeout": "soon"}], "spec.http\\[0\\].timeout: not a duration: 'soon'"),
    ([{"route": [to("test-a.prod")], "retries": {"attempts": 1, "retryOn": "sometimes"}}], "unknown retry condition 'sometimes'"),
    ([{"route": [to("test-a.gray", 0), to("test-a.prod", 0)]}], "every destination has weight 0"),
])
def test_a_value_envoy_cannot_take_is_refused_naming_it(http, message):
    with pytest.raises(TranslationError, match=message):
        translate([vs(http)], ENDPOINTS, [INGRESS])


@pytest.mark.parametrize("text, seconds", [("1.5s", 1.5), ("100ms", 0.1), ("1m30s", 90.0), ("2h", 7200.0)])
def test_durations_are_read_like_istio_reads_them(text, seconds):
    assert duration_seconds(text) == pytest.approx(seconds)


EVERYTHING = vs([
    {"name": "all-matches",
     "match": [{"uri": {"prefix": "/api"}, "ignoreUriCase": True, "method": {"exact": "GET"},
                "headers": {"cookie": {"regex": "(.*;\\s*)?tenantGray=1(;.*)?"}, "x-present": {}},
                "withoutHeaders": {"x-skip": {"exact": "1"}}, "queryParams": {"v": {"regex": "[0-9]+"}},
                "sourceLabels": {"profile": "gray"}, "gateways": ["mesh"], "name": "m"}],
     "route": [to("test-a.gray", 90, headers={"request": {"set": {"x-d": "1"}}}), to("test-a.prod", 10)],
     "timeout": "2s", "retries": {"attempts": 2, "perTryTimeout": "1s", "retryOn": "gateway-error,503"},
     "headers": {"request": {"add": {"x-a": "1"}, "remove": ["x-r"]}, "response": {"set": {"x-s": "2"}}},
     "fault": {"delay": {"fixedDelay": "10ms", "percentage": {"value": 0.1}}, "abort": {"httpStatus": 503, "percentage": {"value": 0.1}}},
     "rewrite": {"uri": "/v2", "authority": "test-a.gray"},
     "mirror": {"host": "test-b.gray"}, "mirrorPercentage": {"value": 5.0}},
    {"name": "redirect", "match": [{"uri": {"exact": "/old"}}], "redirect": {"uri": "/new", "redirectCode": 302}},
    {"name": "direct", "match": [{"uri": {"exact": "/ping"}}], "directResponse": {"status": 200, "body": {"string": "pong"}}},
    {"name": "rest", "route": [to("test-a.prod")]},
], exportTo=["*"])


@pytest.mark.world
def test_envoy_accepts_the_config_for_every_supported_field(envoy_binary, tmp_path):
    boot = translate([EVERYTHING, vs([{"route": [to("test-b.prod")]}], hosts=["test-b"], name="test-b")],
                     ENDPOINTS, [INGRESS, GRAY, PROD]).static_bootstrap(admin_port=0)
    path = tmp_path / "bootstrap.json"
    path.write_text(json.dumps(boot))
    done = subprocess.run([envoy_binary, "--mode", "validate", "-c", str(path), "--use-dynamic-base-id"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
