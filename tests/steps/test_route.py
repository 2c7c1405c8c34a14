"""`route` and `update_virtual_service` on the real apiserver (Istio CRDs installed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from graysteps.adapters.kube.istio import update_virtual_service
from graysteps.steps.route import route
from graysteps.routing.operations import apply_strategy
from graysteps.model.strategy import parse_strategy
from tests.fixtures.virtual_services import create_vs, get_vs, routing
from tests.routing.fixture_pairs import CATALOGS, FIXTURES

pytestmark = pytest.mark.world


def test_route_creates_the_virtualservice_when_missing_and_repeating_changes_nothing(api, service_in):
    service = service_in()
    first = route(service, parse_strategy("whitelist"), api_client=api)
    assert first.changed and first.before is None
    live = get_vs(api, service)
    assert routing(live) == routing(apply_strategy(None, service, parse_strategy("whitelist")))
    assert "+  name: test-a" in first.diff and "graysteps.io/strategy: whitelist" in first.diff

    again = route(service, parse_strategy("whitelist"), api_client=api)
    assert (again.changed, again.diff) == (False, "")
    assert get_vs(api, service)["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


def test_route_updates_an_existing_virtualservice_keeping_its_version_routes_and_metadata(api, service_in):
    service = service_in(catalog=str(CATALOGS / "options.yaml"), api_version="networking.istio.io/v1")
    before = yaml.safe_load((FIXTURES / "rich-weight-20" / "before.yaml").read_text())
    before["metadata"]["namespace"] = service.vs_namespace
    create_vs(api, before)  # written as v1beta1 by another tool

    result = route(service, parse_strategy("weight", 20), api_client=api)
    assert result.changed and result.before is not None
    assert result.after["apiVersion"] == "networking.istio.io/v1beta1"  # the live object's version wins
    managers = {(m["manager"], m["apiVersion"]) for m in result.after["metadata"]["managedFields"]}
    assert ("graysteps", "networking.istio.io/v1beta1") in managers
    live = get_vs(api, service, "v1beta1")
    assert routing(live) == routing(apply_strategy(before, service, parse_strategy("weight", 20)))
    assert live["metadata"]["labels"]["team"] == "payments"
    assert live["metadata"]["annotations"]["note"] == "keep me"


@pytest.mark.parametrize("version", ["v1alpha3", "v1beta1", "v1"])
def test_the_catalog_api_version_is_used_for_a_new_virtualservice(api, service_in, version):
    service = service_in(api_version=f"networking.istio.io/{version}")
    result = route(service, parse_strategy("linked"), api_client=api)
    assert result.after["apiVersion"] == f"networking.istio.io/{version}"
    assert [m["apiVersion"] for m in result.after["metadata"]["managedFields"]] == [f"networking.istio.io/{version}"]


def test_dry_run_shows_the_diff_and_changes_nothing(api, service_in):
    service = service_in()
    created = route(service, parse_strategy("promote"), api_client=api, dry_run=True)
    assert created.changed and created.dry_run and "test-a.gray.svc.cluster.local" in created.diff
    assert get_vs(api, service) is None

    route(service, parse_strategy("rollback"), api_client=api)
    live = get_vs(api, service)
    updated = route(service, parse_strategy("weight", 40), api_client=api, dry_run=True)
    assert updated.changed and "+      weight: 40" in updated.diff
    assert get_vs(api, service) == live


def test_the_subsets_layout_creates_a_missing_destination_rule_and_keeps_an_existing_one(api, service_in):
    from kubernetes import client

    service = service_in(catalog=str(CATALOGS / "subsets.yaml"))
    result = route(service, parse_strategy("balanced"), api_client=api)
    assert result.created_destination_rule
    dr = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "networking.istio.io", "v1", service.vs_namespace, "destinationrules", service.dr_name)
    assert [s["name"] for s in dr["spec"]["subsets"]] == ["prod", "gray"]
    assert not route(service, parse_strategy("whitelist"), api_client=api).created_destination_rule


def test_an_object_the_apiserver_rejects_fails_naming_the_object(api, service_in):
    from graysteps.errors import GraystepsError

    service = service_in()

    def broken(current):
        vs = apply_strategy(current, service, parse_strategy("rollback"))
        vs["spec"]["http"][0]["route"][0]["weight"] = "lots"
        return vs

    with pytest.raises(GraystepsError, match=rf"failed to create VirtualService {service.vs_namespace}/test-a: 422"):
        update_virtual_service(service, broken, api_client=api)
    assert get_vs(api, service) is None


# --- the command ---------------------------------------------------------------------


def catalog_for(tmp_path, namespace: str) -> str:
    path = tmp_path / "catalog.yaml"
    path.write_text(f"defaults:\n  namespaces: {{prod: {namespace}, gray: gray}}\nservices:\n  test-a:\n    port: 8080\n")
    return str(path)


def graysteps(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"})


def test_route_command_applies_prints_and_bad_input_changes_nothing(kube, api, fresh_namespace, tmp_path):
    from graysteps.model.catalog import load_catalog

    catalog = catalog_for(tmp_path, fresh_namespace)
    service = load_catalog(catalog).service("test-a")
    base = ["route", "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--service", "test-a"]
    done = graysteps(*base, "--strategy", "weight", "--weight", "20")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"VirtualService {fresh_namespace}/test-a: created; strategy weight=20\n")
    live = get_vs(api, service)

    dry = graysteps(*base, "--strategy", "promote", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "-      weight: 20" in dry.stdout and dry.stdout.endswith("would be updated; strategy promote\n")

    for bad in (["--strategy", "weight", "--weight", "101"], ["--strategy", "weight", "--weight", "12.5"]):
        refused = graysteps(*base, *bad)
        assert (refused.returncode, refused.stdout, len(refused.stderr.splitlines())) == (2, "", 1)
    again = graysteps(*base, "--strategy", "weight", "--weight", "20")
    assert again.stdout.endswith("unchanged (already as the strategy demands); strategy weight=20\n")
    now = get_vs(api, service)
    assert now["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


def test_a_virtual_service_istio_refuses_is_refused_at_dry_run_with_istios_message_and_nothing_is_written(
        kube, api, fresh_namespace, tmp_path):
    """The CRD schema accepts host `*`; Istio's validation (istiod's webhook, as on a real cluster) does not."""
    from graysteps.model.catalog import load_catalog

    path = tmp_path / "catalog.yaml"
    path.write_text(f"defaults:\n  namespaces: {{prod: {fresh_namespace}, gray: gray}}\n"
                    "services:\n  test-a:\n    port: 8080\n    hosts: ['*']\n")
    service = load_catalog(str(path)).service("test-a")
    for extra in (["--dry-run"], []):
        done = graysteps("route", "--catalog", str(path), "--kubeconfig", kube.kubeconfig, "--service", "test-a",
                         "--strategy", "whitelist", *extra)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr.splitlines() == [
            f"graysteps route: failed to create VirtualService {fresh_namespace}/test-a: 400 Bad Request: "
            'admission webhook "rev.validation.istio.io" denied the request: configuration is invalid: '
            "wildcard host * is not allowed for virtual services bound to the mesh gateway; "
            "an admission webhook (Istio's validation) refused the object; fix the VirtualService or the catalog"]
        assert get_vs(api, service) is None
