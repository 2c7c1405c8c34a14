"""The model of prod and gray: graysteps moves only the share of the catalog's prod and
gray destinations, and rollback gives back the routes it found (bookinfo's reviews)."""

from __future__ import annotations


import pytest

from graysteps.errors import GraystepsError
from graysteps.model.catalog import load_catalog
from graysteps.model.strategy import STRATEGIES, parse_strategy
from graysteps.routing.operations import (
    ORIGINAL_ROUTES_ANNOTATION,
    apply_strategy,
    conforms,
    missing_subsets,
    traffic_problem,
    warnings,
    with_subsets,
)
from tests.routing.fixture_pairs import CATALOGS, EXAMPLE_CATALOG, without_graysteps_marks

BOOKINFO = load_catalog(str(CATALOGS / "bookinfo.yaml"))
REVIEWS = BOOKINFO.service("reviews")
TEST_A = load_catalog(str(EXAMPLE_CATALOG)).service("test-a")


def every_strategy(weight=20):
    return [parse_strategy(n, weight if n == "weight" else None) for n in STRATEGIES]


def reviews_vs(*http) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "default"},
            "spec": {"hosts": ["reviews"], "http": list(http)}}


def to(subset, weight=None, host="reviews", **extra):
    entry = {"destination": {"host": host, "subset": subset}, **extra}
    if weight is not None:
        entry["weight"] = weight
    return entry


PINNED = {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "route": [to("v2")]}
SPLIT = {"route": [to("v1", 80), to("v3", 20)]}


def test_the_catalog_names_prod_and_gray_subsets_and_the_cluster_domain():
    assert REVIEWS.destination("prod") == {"host": "reviews.default.svc.cluster.local", "subset": "v1"}
    assert REVIEWS.destination("gray") == {"host": "reviews.default.svc.cluster.local", "subset": "v2"}
    ratings = BOOKINFO.service("ratings")
    assert ratings.destination("gray") == {"host": "ratings.default.svc.corp.example", "subset": "v2"}
    assert "ratings.default.svc.corp.example" in ratings.own_hosts()
    assert "ratings.default.svc.cluster.local" not in ratings.own_hosts()
    assert TEST_A.subsets == {"prod": "prod", "gray": "gray"} and TEST_A.cluster_domain == "cluster.local"


@pytest.mark.parametrize("text, message", [
    ("services:\n  a:\n    subsets: {prod: v1}\n", "only the subsets layout names subsets"),
    ("services:\n  a:\n    layout: subsets\n    subsets: {prod: v1, gray: v1}\n", "two different subsets"),
    ("services:\n  a:\n    layout: subsets\n    subsets: {prod: V1}\n", "subset 'V1' is not allowed"),
    ("services:\n  a:\n    layout: subsets\n    subsets: {canary: v2}\n", "unknown profile; allowed: prod, gray"),
    ("services:\n  a:\n    clusterDomain: Corp_Example\n", "'Corp_Example' is not a DNS domain"),
])
def test_bad_subsets_and_cluster_domains_are_refused_by_file_and_line(tmp_path, text, message):
    from graysteps.errors import InvalidInput

    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message) as caught:
        load_catalog(str(path))
    assert f"{path}:3" in str(caught.value) or f"{path}:4" in str(caught.value)


def test_a_weight_moves_only_the_prod_share_and_v3_keeps_its_place_and_weight():
    after = apply_strategy(reviews_vs(SPLIT), REVIEWS, parse_strategy("weight", 50))
    assert after["spec"]["http"][0]["route"] == [to("v2", 40), to("v1", 40), to("v3", 20)]


def test_whitelist_keeps_v1_for_everyone_else_and_sends_gray_tenants_to_v2_with_v3_unchanged():
    http = apply_strategy(reviews_vs(SPLIT), REVIEWS, parse_strategy("whitelist"))["spec"]["http"]
    assert http[0]["route"] == [to("v2", 80), to("v3", 20)]
    assert http[1] == SPLIT


@pytest.mark.parametrize("strategy", every_strategy(), ids=lambda s: s.label)
def test_a_route_pinned_to_a_version_by_header_is_left_alone(strategy):
    http = apply_strategy(reviews_vs(PINNED, {"route": [to("v1")]}), REVIEWS, strategy)["spec"]["http"]
    assert PINNED in http and http.index(PINNED) == 0


@pytest.mark.parametrize("strategy", every_strategy(), ids=lambda s: s.label)
def test_prod_keeps_its_subset(strategy):
    http = apply_strategy(reviews_vs({"route": [to("v1")]}), REVIEWS, strategy)["spec"]["http"]
    for route in http:
        for entry in route["route"]:
            assert entry["destination"]["subset"] in ("v1", "v2")


CHAINS = [[s] for s in every_strategy()] + [
    [parse_strategy("whitelist"), parse_strategy("weight", 10), parse_strategy("promote")],
    [parse_strategy("weight", 30), parse_strategy("linked"), parse_strategy("balanced")],
    [parse_strategy("promote"), parse_strategy("rollback"), parse_strategy("weight", 70)],
]


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: "-".join(s.label for s in c))
@pytest.mark.parametrize("original", [
    reviews_vs(PINNED, SPLIT),
    reviews_vs({"name": "all", "route": [to("v1", 100, headers={"request": {"set": {"x-v": "1"}}})]}),
    reviews_vs({"route": [{"destination": {"host": "reviews"}}]}),
], ids=["pinned+split", "weighted-with-headers", "no-subset"])
def test_rollback_after_any_chain_gives_back_exactly_the_original_routing(chain, original):
    vs = original
    for strategy in chain:
        vs = apply_strategy(vs, REVIEWS, strategy)
    rolled = apply_strategy(vs, REVIEWS, parse_strategy("rollback"))
    assert without_graysteps_marks(rolled) == original
    assert conforms(rolled, REVIEWS, parse_strategy("rollback"))


def test_per_destination_headers_and_ports_are_kept_on_prod_and_copied_to_gray():
    entry = {"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}},
             "headers": {"request": {"add": {"x-tier": "a"}}}}
    http = apply_strategy(reviews_vs({"route": [entry]}), REVIEWS, parse_strategy("weight", 25))["spec"]["http"]
    gray, prod = http[0]["route"]
    assert prod == {**entry, "weight": 75}
    assert gray == {"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}},
                    "headers": {"request": {"add": {"x-tier": "a"}}}, "weight": 25}


def test_a_virtualservice_an_older_graysteps_wrote_rolls_back_to_prod():
    legacy = reviews_vs({"name": "r", "route": [to("v2", 20), to("v1", 80)]})
    legacy["metadata"]["annotations"] = {"graysteps.io/strategy": "weight=20"}
    rolled = apply_strategy(legacy, REVIEWS, parse_strategy("rollback"))
    assert rolled["spec"]["http"] == [{"name": "r", "route": [to("v1")]}]


def test_a_route_added_by_hand_after_graysteps_is_kept_under_the_next_strategy():
    vs = apply_strategy(reviews_vs({"route": [to("v1")]}), REVIEWS, parse_strategy("weight", 20))
    vs["spec"]["http"].insert(0, {"match": [{"uri": {"prefix": "/new"}}], "route": [to("v3")]})
    after = apply_strategy(vs, REVIEWS, parse_strategy("promote"))
    assert after["spec"]["http"][0] == {"match": [{"uri": {"prefix": "/new"}}], "route": [to("v3")]}
    assert after["spec"]["http"][1]["route"] == [to("v2")]


# --- the other kinds of VirtualService ------------------------------------------------


@pytest.mark.parametrize("kind", ["tcp", "tls"])
@pytest.mark.parametrize("strategy", every_strategy(), ids=lambda s: s.label)
def test_tcp_only_and_tls_only_virtualservices_are_refused_in_one_line(kind, strategy):
    vs = reviews_vs()
    del vs["spec"]["http"]
    vs["spec"][kind] = [{"match": [{"port": 9080, "sniHosts": ["reviews"]}], "route": [to("v1")]}]
    with pytest.raises(GraystepsError, match=rf"routes only {kind.upper()} .*graysteps splits HTTP routes only") as caught:
        apply_strategy(vs, REVIEWS, strategy)
    assert "\n" not in caught.value.message


def test_linked_on_a_virtualservice_bound_only_to_gateways_is_refused_with_the_way_out():
    vs = reviews_vs({"route": [to("v1")]})
    vs["spec"]["gateways"] = ["istio-system/public"]
    with pytest.raises(GraystepsError, match=r"bound only to gateways.*sourceLabels.*add `mesh`.*whitelist"):
        apply_strategy(vs, REVIEWS, parse_strategy("linked"))
    assert apply_strategy(vs, REVIEWS, parse_strategy("whitelist"))
    vs["spec"]["gateways"].append("mesh")
    assert apply_strategy(vs, REVIEWS, parse_strategy("linked"))


def test_whitelist_on_a_delegate_uses_the_cookie_regex_and_warns_about_the_root():
    vs = reviews_vs({"route": [to("v1")]})
    del vs["spec"]["hosts"]
    after = apply_strategy(vs, REVIEWS, parse_strategy("whitelist"))
    assert "regex" in after["spec"]["http"][0]["match"][0]["headers"]["cookie"]
    assert any("delegate VirtualService" in w for w in warnings(after, REVIEWS, parse_strategy("whitelist")))


def test_a_catch_all_route_to_another_service_before_the_service_routes_is_warned_about_and_named():
    catch_all = {"name": "legacy", "route": [{"destination": {"host": "legacy"}}]}
    vs = apply_strategy(reviews_vs(catch_all, {"name": "main", "route": [to("v1")]}), REVIEWS, parse_strategy("weight", 20))
    found = warnings(vs, REVIEWS)
    assert any("route 'legacy' matches every request" in w and "'main'" in w for w in found), found
    assert "route 'legacy' matches every request" in traffic_problem(vs, REVIEWS)
    fine = apply_strategy(reviews_vs({"name": "main", "route": [to("v1")]}, catch_all), REVIEWS, parse_strategy("weight", 20))
    assert traffic_problem(fine, REVIEWS) is None


def test_a_mixed_route_says_graysteps_moves_only_its_share():
    vs = apply_strategy(reviews_vs(SPLIT), REVIEWS, parse_strategy("weight", 20))
    assert any("also sends traffic to reviews subset v3 (20%)" in w for w in warnings(vs, REVIEWS))


def test_the_record_of_the_original_routes_lives_on_the_object():
    vs = apply_strategy(reviews_vs(SPLIT), REVIEWS, parse_strategy("weight", 20))
    assert ORIGINAL_ROUTES_ANNOTATION in vs["metadata"]["annotations"]


# --- DestinationRule subsets ------------------------------------------------------------


def test_missing_subsets_are_named_and_added_without_renaming_or_removing_any():
    dr = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
          "metadata": {"name": "reviews", "namespace": "default"},
          "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                  {"name": "v3", "labels": {"version": "v3"}}]}}
    assert missing_subsets(dr, REVIEWS) == ["v2"]
    added = with_subsets(dr, REVIEWS)
    assert added["spec"]["subsets"] == dr["spec"]["subsets"] + [{"name": "v2", "labels": {"profile": "gray"}}]
    assert missing_subsets(added, REVIEWS) == [] and with_subsets(added, REVIEWS) == added


def test_rollback_says_when_the_routes_it_restores_already_sent_traffic_to_gray():
    found = reviews_vs({"route": [to("v1", 80), to("v2", 20)]})
    rolled = apply_strategy(apply_strategy(found, REVIEWS, parse_strategy("promote")), REVIEWS, parse_strategy("rollback"))
    assert rolled["spec"]["http"] == found["spec"]["http"]
    assert any("sent traffic to gray (reviews subset v2 (20%)) before graysteps first touched it" in w
               for w in warnings(rolled, REVIEWS, parse_strategy("rollback")))
    assert not warnings(apply_strategy(reviews_vs({"route": [to("v1")]}), REVIEWS, parse_strategy("rollback")),
                        REVIEWS, parse_strategy("rollback"))


def test_verify_fails_conformance_when_a_catch_all_route_takes_the_traffic_before_graysteps_routes():
    from graysteps.steps.verify import check_virtual_service

    catch_all = {"name": "legacy", "route": [{"destination": {"host": "legacy"}}]}
    vs = apply_strategy(reviews_vs(catch_all, {"name": "main", "route": [to("v1")]}), REVIEWS, parse_strategy("weight", 20))
    check, strategy = check_virtual_service(vs, REVIEWS)
    assert strategy == parse_strategy("weight", 20)
    assert check.status == "failed" and "route 'legacy' matches every request" in check.message, check
    fine = apply_strategy(reviews_vs({"name": "main", "route": [to("v1")]}, catch_all), REVIEWS, parse_strategy("weight", 20))
    assert check_virtual_service(fine, REVIEWS)[0].status == "passed"


def test_in_the_subsets_layout_a_route_to_the_whole_host_is_pinned_to_prod_while_gray_is_live():
    whole = reviews_vs({"route": [{"destination": {"host": "reviews"}}]})
    http = apply_strategy(whole, REVIEWS, parse_strategy("whitelist"))["spec"]["http"]
    assert http[1]["route"] == [to("v1")]  # not every pod of reviews: gray's pods would answer too
    assert apply_strategy(apply_strategy(whole, REVIEWS, parse_strategy("whitelist")), REVIEWS,
                          parse_strategy("rollback"))["spec"]["http"] == whole["spec"]["http"]


@pytest.mark.parametrize("name", ["new-weight-20", "new-whitelist", "new-linked", "new-promote", "seed-v1alpha3-weight-20"])
def test_a_virtualservice_an_older_graysteps_wrote_still_conforms_to_its_strategy(name):
    """What graysteps wrote before it kept the original routes: the same object without that record."""
    from tests.routing.fixture_pairs import FIXTURES, Case

    case = Case(name, FIXTURES / name)
    legacy = case.after()
    del legacy["metadata"]["annotations"][ORIGINAL_ROUTES_ANNOTATION]
    assert conforms(legacy, case.service(), case.strategy())
    assert not conforms(legacy, case.service(), parse_strategy("balanced"))


def test_two_prod_destinations_with_their_own_headers_each_keep_them_and_their_proportion():
    a = to("v1", 60, headers={"request": {"set": {"x-a": "1"}}})
    b = to("v1", 40, headers={"request": {"set": {"x-b": "2"}}}, **{"destination": {"host": "reviews", "subset": "v1",
                                                                                     "port": {"number": 9080}}})
    http = apply_strategy(reviews_vs({"route": [a, b]}), REVIEWS, parse_strategy("weight", 50))["spec"]["http"]
    assert http[0]["route"] == [
        {**a, "destination": {"host": "reviews", "subset": "v2"}, "weight": 30}, {**a, "weight": 30},
        {**b, "destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}, "weight": 20}, {**b, "weight": 20}]
    promoted = apply_strategy(reviews_vs({"route": [a, b]}), REVIEWS, parse_strategy("promote"))["spec"]["http"]
    assert [e["headers"] for e in promoted[0]["route"]] == [a["headers"], b["headers"]]
