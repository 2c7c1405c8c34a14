"""`route` on the real apiserver with a DestinationRule a team already has (bookinfo's
reviews: v1, v3 and no v2), and rollback restoring the team's routes exactly."""

from __future__ import annotations

import copy

import pytest

from graysteps.adapters.kube.istio import read_destination_rule
from graysteps.steps.route import route
from graysteps.errors import GraystepsError
from graysteps.model.strategy import parse_strategy
from tests.fixtures.virtual_services import create_vs, get_vs
from tests.routing.fixture_pairs import CATALOGS

pytestmark = pytest.mark.world


def reviews_world(api, service):
    from kubernetes import client

    ns = service.vs_namespace
    dr = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews", "namespace": ns},
          "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                                                  {"name": "v3", "labels": {"version": "v3"}}]}}
    client.CustomObjectsApi(api).create_namespaced_custom_object("networking.istio.io", "v1", ns, "destinationrules", dr)
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews", "namespace": ns},
          "spec": {"hosts": ["reviews"], "http": [
              {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "route": [{"destination": {"host": "reviews", "subset": "v3"}}]},
              {"route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": 80},
                         {"destination": {"host": "reviews", "subset": "v3"}, "weight": 20}]}]}}
    return create_vs(api, vs)


def test_a_missing_gray_subset_stops_the_route_naming_it_and_nothing_is_written(api, service_in):
    service = service_in("reviews", catalog=str(CATALOGS / "bookinfo.yaml"))
    written = reviews_world(api, service)
    with pytest.raises(GraystepsError, match=r"DestinationRule .*/reviews has no subset v2.*--create-subsets"):
        route(service, parse_strategy("weight", 20), api_client=api)
    assert get_vs(api, service)["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]


def test_create_subsets_adds_v2_keeping_v1_and_v3_then_rollback_restores_the_team_routes(api, service_in):
    service = service_in("reviews", catalog=str(CATALOGS / "bookinfo.yaml"))
    original = reviews_world(api, service)
    result = route(service, parse_strategy("weight", 50), api_client=api, create_subsets=True)
    assert result.added_subsets == ["v2"]
    dr = read_destination_rule(service.vs_namespace, "reviews", "v1", api_client=api)
    assert [s["name"] for s in dr["spec"]["subsets"]] == ["v1", "v3", "v2"]
    assert dr["spec"]["subsets"][0] == {"name": "v1", "labels": {"version": "v1"}}
    live = get_vs(api, service)
    assert live["spec"]["http"][0] == original["spec"]["http"][0]  # jason's pin to v3 untouched
    assert [(d["destination"]["subset"], d["weight"]) for d in live["spec"]["http"][1]["route"]] == [
        ("v2", 40), ("v1", 40), ("v3", 20)]
    assert any("also sends traffic to reviews subset v3" in w for w in result.warnings)

    for strategy in (parse_strategy("whitelist"), parse_strategy("promote"), parse_strategy("rollback")):
        route(service, strategy, api_client=api)
    rolled = get_vs(api, service)
    assert rolled["spec"] == original["spec"]
    theirs = {k: v for k, v in (rolled["metadata"].get("annotations") or {}).items() if not k.startswith("graysteps.io/")}
    assert theirs == {}


def test_without_create_subsets_an_existing_subset_set_is_never_changed(api, service_in):
    service = service_in("reviews", catalog=str(CATALOGS / "bookinfo.yaml"))
    reviews_world(api, service)
    before = copy.deepcopy(read_destination_rule(service.vs_namespace, "reviews", "v1", api_client=api))
    with pytest.raises(GraystepsError):
        route(service, parse_strategy("promote"), api_client=api, dry_run=True)
    assert read_destination_rule(service.vs_namespace, "reviews", "v1", api_client=api) == before


def test_the_route_command_names_the_missing_subset_then_adds_it_with_create_subsets_and_reports_json(
        kube, api, service_in, tmp_path):
    import json

    from tests.steps.test_route import graysteps

    service = service_in("reviews", catalog=str(CATALOGS / "bookinfo.yaml"))
    reviews_world(api, service)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("defaults:\n  layout: subsets\n  namespace: %s\n  subsets: {prod: v1, gray: v2}\n"
                       "services:\n  reviews:\n    port: 9080\n" % service.vs_namespace)
    base = ["route", "--catalog", str(catalog), "--kubeconfig", kube.kubeconfig, "--service", "reviews",
            "--strategy", "weight", "--weight", "50"]
    refused = graysteps(*base)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (f"graysteps route: DestinationRule {service.vs_namespace}/reviews has no subset v2, so routes to "
                              "it would fail (503); rerun with --create-subsets to add it (pods labelled profile: "
                              "prod|gray), or fix the catalog's subsets\n")
    done = graysteps(*base, "--create-subsets", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["changed"], result["addedSubsets"], result["strategy"]) == (True, ["v2"], "weight=50")
    assert any("also sends traffic to reviews subset v3 (20%)" in w for w in result["warnings"])
    text = graysteps(*base)
    assert text.returncode == 0 and "unchanged" in text.stdout
    assert "warning: route #1 also sends traffic to reviews subset v3 (20%)" in text.stdout


def test_a_release_carries_routes_warnings_to_its_output_json_and_junit(api, service_in, tmp_path):
    """The warning `route` gives (v3 keeps 20% beside prod and gray) reaches whoever reads the release."""
    import json
    import xml.etree.ElementTree as ET

    from graysteps.commands.release import format_outcomes
    from graysteps.model.plan import Plan, PlanStep
    from graysteps.steps.release import apply_plan, write_json_report, write_junit_report
    from graysteps.steps.route import check_subsets

    service = service_in("reviews", catalog=str(CATALOGS / "bookinfo.yaml"))
    reviews_world(api, service)
    check_subsets(service, api_client=api, create=True)  # v2 added: the plan itself never adds subsets
    plan = Plan("reviews-half", "plan.yaml", "", (PlanStep(service, parse_strategy("weight", 50), 1),), "0" * 64)
    result = apply_plan(plan, api_client=api, actor="tester")
    assert result.result == "succeeded", result.error
    [outcome] = result.outcomes
    assert any("also sends traffic to reviews subset v3 (20%)" in w for w in outcome.warnings), outcome.warnings
    assert any(line.startswith("warning: reviews: ") and "subset v3 (20%)" in line for line in format_outcomes(result))
    write_json_report(result, str(tmp_path / "release.json"))
    write_junit_report(result, str(tmp_path / "release.xml"))
    assert json.loads((tmp_path / "release.json").read_text())["services"][0]["warnings"] == outcome.warnings
    out = ET.parse(tmp_path / "release.xml").getroot().find("testcase/system-out").text
    assert out.startswith(f"warning: {outcome.warnings[0]}\n")
