"""The strategies' rules, each stated once (the fixture pairs show whole objects)."""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest
import yaml

from graysteps.model.catalog import load_catalog
from graysteps.errors import GraystepsError, InvalidInput
from graysteps.routing.operations import (
    ORIGINAL_ROUTES_ANNOTATION,
    STRATEGY_ANNOTATION,
    apply_strategy,
    conforms,
    cookie_regex,
    current_strategy,
    is_graysteps_route,
)
from graysteps.model.strategy import STRATEGIES, parse_strategy
from tests.routing.fixture_pairs import EXAMPLE_CATALOG, FIXTURES

TEST_A = load_catalog(str(EXAMPLE_CATALOG)).service("test-a")
RICH = yaml.safe_load((FIXTURES / "rich-weight-20" / "before.yaml").read_text())


def every_strategy():
    return [parse_strategy(n, 20 if n == "weight" else None) for n in STRATEGIES]


# --- the whitelist cookie, under Istio's RE2 full-match semantics ------------------

MATCHING = ["tenantGray=1", "a=b; tenantGray=1", "tenantGray=1; c=d", "a=b; tenantGray=1; c=d", "a=b;tenantGray=1",
            "tenantGray=0; rememberMe=; channel=; tenantGray=1"]
NOT_MATCHING = ["tenantGray=10", "xtenantGray=1", "other=tenantGray=1", "other=xtenantGray=1; y=2",
                "tenantGray=0; rememberMe=; channel=", "tenantGray=", "tenantGray=11; a=b", "a=b; tenantGray=1x",
                "TenantGray=1", "tenantgray=1", ""]


@pytest.mark.parametrize("header", MATCHING)
def test_cookie_regex_matches_the_whitelist_cookie_anywhere_in_the_header(header):
    assert re.fullmatch(cookie_regex("tenantGray", "1"), header)


@pytest.mark.parametrize("header", NOT_MATCHING)
def test_cookie_regex_does_not_match_other_values_names_or_cookie_values(header):
    assert not re.fullmatch(cookie_regex("tenantGray", "1"), header)


def test_the_seed_regex_would_have_matched_the_wrong_cookies():
    seed = ".*tenantGray=1.*"  # seed 3.3.1: why graysteps does not use it
    assert all(re.fullmatch(seed, h) for h in ("tenantGray=10", "xtenantGray=1", "other=tenantGray=1"))


def test_cookie_regex_escapes_dots_in_the_name_and_value():
    regex = cookie_regex("gray.tenant", "1.0")
    assert re.fullmatch(regex, "gray.tenant=1.0")
    assert not re.fullmatch(regex, "grayXtenant=1x0")


# --- what stays untouched ----------------------------------------------------------


@pytest.mark.parametrize("strategy", every_strategy(), ids=lambda s: s.label)
def test_routes_to_other_services_and_opted_out_routes_stay_exactly_as_they_were(strategy):
    spec = dataclasses.replace(TEST_A, opt_out_routes=("maintenance",))
    after = apply_strategy(RICH, spec, strategy)
    by_name = {r.get("name"): r for r in after["spec"]["http"]}
    for name in ("reports", "maintenance"):
        assert by_name[name] == next(r for r in RICH["spec"]["http"] if r["name"] == name)


@pytest.mark.parametrize("strategy", every_strategy(), ids=lambda s: s.label)
def test_in_a_mixed_route_another_service_keeps_its_place_and_weight_and_weights_still_add_to_100(strategy):
    after = apply_strategy(RICH, TEST_A, strategy)
    for route in after["spec"]["http"]:
        if route["name"].endswith("split-with-other"):
            assert route["route"][-1] == {"destination": {"host": "legacy.prod.svc.cluster.local"}, "weight": 10}
            assert sum(d["weight"] for d in route["route"]) == 100


@pytest.mark.parametrize("strategy", every_strategy(), ids=lambda s: s.label)
def test_service_routes_keep_name_match_retries_timeout_fault_headers_and_order(strategy):
    after = apply_strategy(RICH, TEST_A, strategy)
    kept = [r for r in after["spec"]["http"] if not is_graysteps_route(r)]
    assert [r["name"] for r in kept] == [r["name"] for r in RICH["spec"]["http"]]
    for old, new in zip(RICH["spec"]["http"], kept):
        assert {k: v for k, v in new.items() if k != "route"} == {k: v for k, v in old.items() if k != "route"}
        assert list(new) == list(old)


@pytest.mark.parametrize("strategy", every_strategy(), ids=lambda s: s.label)
def test_metadata_stays_except_graysteps_own_label_and_annotation(strategy):
    after = apply_strategy(RICH, TEST_A, strategy)
    for part in ("labels", "annotations"):
        for key, value in RICH["metadata"][part].items():
            assert after["metadata"][part][key] == value
    ours = {k for part in ("labels", "annotations") for k in after["metadata"][part] if k.startswith("graysteps.io/")}
    assert ours == {"graysteps.io/managed-by", "graysteps.io/service", STRATEGY_ANNOTATION, ORIGINAL_ROUTES_ANNOTATION}
    assert {k: v for k, v in after.items() if k not in ("metadata", "spec")} == {
        k: v for k, v in RICH.items() if k not in ("metadata", "spec")}
    assert {k: v for k, v in after["spec"].items() if k != "http"} == {k: v for k, v in RICH["spec"].items() if k != "http"}


def test_whitelist_sends_gray_cookies_to_gray_on_every_path():
    after = apply_strategy(RICH, TEST_A, parse_strategy("whitelist"))
    names = [r.get("name") for r in after["spec"]["http"]]
    for path_route in ("api", "chaos", "default", "maintenance"):
        gray = f"graysteps-gray-{path_route}"
        assert names.index(gray) == names.index(path_route) - 1
        route = after["spec"]["http"][names.index(gray)]
        assert all(m["headers"]["cookie"] == {"regex": cookie_regex("tenantGray", "1")} for m in route["match"])
        assert [d["destination"]["host"] for d in route["route"]] == ["test-a.gray.svc.cluster.local"]


def test_a_weight_is_the_same_split_on_every_path():
    after = apply_strategy(RICH, TEST_A, parse_strategy("weight", "35"))
    splits = {r["name"]: [("gray" if ".gray" in d["destination"]["host"] else "prod", d["weight"]) for d in r["route"]]
              for r in after["spec"]["http"] if r["name"] in ("api", "chaos", "default", "maintenance")}
    assert set(map(tuple, splits.values())) == {(("gray", 35), ("prod", 65))}


# --- repeatable, reversible, recorded ----------------------------------------------


@pytest.mark.parametrize("first", every_strategy(), ids=lambda s: s.label)
@pytest.mark.parametrize("second", every_strategy(), ids=lambda s: s.label)
def test_any_strategy_after_any_other_equals_it_applied_to_the_original(first, second):
    """A named graysteps route is removed before it is added again (argo-rollouts)."""
    via_first = apply_strategy(apply_strategy(RICH, TEST_A, first), TEST_A, second)
    assert via_first == apply_strategy(RICH, TEST_A, second)


def test_input_is_not_changed():
    kept = copy.deepcopy(RICH)
    apply_strategy(RICH, TEST_A, parse_strategy("whitelist"))
    assert RICH == kept


def test_current_strategy_reads_the_annotation_and_conforms_detects_hand_edits():
    vs = apply_strategy(None, TEST_A, parse_strategy("weight", 20))
    assert vs["metadata"]["annotations"][STRATEGY_ANNOTATION] == "weight=20"
    assert current_strategy(vs) == parse_strategy("weight", 20)
    assert conforms(vs, TEST_A, parse_strategy("weight", 20))
    edited = copy.deepcopy(vs)
    edited["spec"]["http"][0]["route"][0]["weight"] = 30
    edited["spec"]["http"][0]["route"][1]["weight"] = 70
    assert not conforms(edited, TEST_A, parse_strategy("weight", 20))
    assert not conforms(vs, TEST_A, parse_strategy("weight", 30))
    assert current_strategy(RICH) is None
    assert current_strategy({"metadata": {"annotations": {STRATEGY_ANNOTATION: "weight=500"}}}) is None
    assert not conforms(None, TEST_A, parse_strategy("rollback"))


def test_empty_http_gets_the_seed_base_route():
    vs = apply_strategy(None, TEST_A, parse_strategy("rollback"))
    vs["spec"]["http"] = []
    assert apply_strategy(vs, TEST_A, parse_strategy("promote"))["spec"]["http"] == [
        {"name": "test-a", "route": [{"destination": {"host": "test-a.gray.svc.cluster.local"}}]}]


# --- refusals ------------------------------------------------------------------------


def test_a_virtualservice_without_a_route_to_the_service_is_refused_naming_it():
    vs = copy.deepcopy(RICH)
    vs["spec"]["http"] = [r for r in vs["spec"]["http"] if r["name"] == "reports"]
    with pytest.raises(GraystepsError, match=r"VirtualService prod/test-a has no http route to test-a"):
        apply_strategy(vs, TEST_A, parse_strategy("whitelist"))


def test_whitelist_on_a_route_that_already_matches_the_cookie_names_the_route_and_the_way_out():
    vs = copy.deepcopy(RICH)
    vs["spec"]["http"][1]["match"][0]["headers"] = {"Cookie": {"exact": "x=1"}}
    with pytest.raises(GraystepsError, match=r"route 'api' already matches on the Cookie header.*optOutRoutes"):
        apply_strategy(vs, TEST_A, parse_strategy("whitelist"))
    assert apply_strategy(vs, dataclasses.replace(TEST_A, opt_out_routes=("api",)), parse_strategy("whitelist"))


def test_linked_on_a_route_for_prod_sources_is_refused():
    vs = copy.deepcopy(RICH)
    vs["spec"]["http"][1]["match"][0]["sourceLabels"] = {"profile": "prod"}
    with pytest.raises(GraystepsError, match=r"route 'api' matches sourceLabels profile=prod"):
        apply_strategy(vs, TEST_A, parse_strategy("linked"))


@pytest.mark.parametrize("bad", [[], {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}},
                                 {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {}}])
def test_something_that_is_not_a_virtualservice_is_invalid_input(bad):
    with pytest.raises(InvalidInput):
        apply_strategy(bad, TEST_A, parse_strategy("rollback"))
