"""The catalog: examples/catalog.yaml, validation with file:line, round-trip editing."""

from __future__ import annotations

import dataclasses

import pytest

from graysteps.model.catalog import load_catalog
from graysteps.errors import InvalidInput
from tests.routing.fixture_pairs import CATALOGS, EXAMPLE_CATALOG


def test_the_example_describes_test_a_and_test_b_in_the_seed_namespaces():
    catalog = load_catalog(str(EXAMPLE_CATALOG))
    assert catalog.names() == ["test-a", "test-b"]
    a = catalog.service("test-a")
    assert (a.layout, a.namespaces, a.vs_namespace, a.vs_name, a.hosts) == (
        "namespaces", {"prod": "prod", "gray": "gray"}, "prod", "test-a", ["test-a"])
    assert (a.api_version, a.cookie_name, a.cookie_value, a.opt_out_routes, a.port) == (
        "networking.istio.io/v1", "tenantGray", "1", (), 8080)
    assert a.destination("prod") == {"host": "test-a.prod.svc.cluster.local"}
    assert a.destination("gray") == {"host": "test-a.gray.svc.cluster.local"}


def test_the_subsets_layout_uses_one_namespace_and_subsets():
    b = load_catalog(str(CATALOGS / "subsets.yaml")).service("test-b")
    assert b.namespaces == {"prod": "shop", "gray": "shop"} and b.vs_namespace == "shop"
    assert b.destination("gray") == {"host": "test-b.shop.svc.cluster.local", "subset": "gray"}
    assert b.api_version == "networking.istio.io/v1alpha3" and b.port == 9090


def test_replacing_the_namespaces_moves_every_derived_value():
    a = load_catalog(str(EXAMPLE_CATALOG)).service("test-a")
    moved = dataclasses.replace(a, namespaces={"prod": "p1", "gray": "g1"})
    assert moved.vs_namespace == "p1" and moved.destination("gray")["host"] == "test-a.g1.svc.cluster.local"


@pytest.mark.parametrize("hosts, served", [
    ((), "test-a.prod.svc.cluster.local"),  # Istio qualifies a short host with the VirtualService's namespace
    (("shop.example.com",), "shop.example.com"),
    (("test-a.prod.svc.cluster.local",), "test-a.prod.svc.cluster.local"),
])
def test_the_served_host_is_the_first_host_as_istio_reads_it(hosts, served):
    spec = dataclasses.replace(load_catalog(EXAMPLE_CATALOG).service("test-a"), host_names=hosts)
    assert spec.served_host == served


def test_test_A_is_refused_because_names_must_be_lowercase_dns1123_labels():
    with pytest.raises(InvalidInput, match=r"'test-A' is not allowed: Kubernetes names must be lowercase DNS-1123 labels.*'test-a'"):
        load_catalog(str(EXAMPLE_CATALOG)).service("test-A")


def test_an_unknown_service_lists_the_known_ones():
    with pytest.raises(InvalidInput, match=r"unknown service 'test-c': catalog .* has test-a, test-b"):
        load_catalog(str(EXAMPLE_CATALOG)).service("test-c")


BAD = {
    "upper-case service": ("services:\n  test-A:\n    port: 80\n", 2, "'test-A' is not allowed: Kubernetes names must be lowercase DNS-1123"),
    "unknown key": ("services:\n  test-a:\n    port: 80\n    prot: 80\n", 4, "services.test-a.prot: unknown key"),
    "bad port": ("services:\n  test-a:\n    port: http\n", 3, "'http' is not a port"),
    "bad layout": ("defaults:\n  layout: meshy\nservices:\n  test-a: {}\n", 2, "'meshy' is not a layout; allowed: namespaces, subsets"),
    "bad api version": ("services:\n  test-a:\n    apiVersion: networking.istio.io/v2\n", 3, "use one of networking.istio.io/v1,"),
    "bad namespace": ("services:\n  test-a:\n    namespaces:\n      prod: Prod\n", 4, "namespace 'Prod' is not allowed"),
    "same namespaces": ("services:\n  test-a:\n    namespaces: {prod: x, gray: x}\n", 3, "use `layout: subsets`"),
    "bad cookie": ("services:\n  test-a:\n    cookie:\n      name: 'a b'\n", 4, "'a b' is not allowed"),
    "bad opt-outs": ("services:\n  test-a:\n    optOutRoutes: api\n", 3, "must be a list of route names"),
    "no services": ("defaults: {}\n", 1, "no services declared"),
    "bad yaml": ("services:\n  test-a: [\n", 3, "not valid YAML"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_wrong_catalog_is_refused_naming_file_and_line(tmp_path, case):
    text, line, message = BAD[case]
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as error:
        load_catalog(str(path))
    assert error.value.message.startswith(f"{path}:{line}: ")
    assert message in error.value.message


def test_the_catalog_is_found_through_the_environment_then_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRAYSTEPS_CATALOG", raising=False)
    with pytest.raises(InvalidInput, match="no catalog: pass --catalog FILE, set GRAYSTEPS_CATALOG"):
        load_catalog(None)
    (tmp_path / "catalog.yaml").write_text("services:\n  here: {}\n")
    assert load_catalog(None).names() == ["here"]
    monkeypatch.setenv("GRAYSTEPS_CATALOG", str(EXAMPLE_CATALOG))
    assert load_catalog(None).names() == ["test-a", "test-b"]
    with pytest.raises(InvalidInput, match="catalog file /nope.yaml not found"):
        load_catalog("/nope.yaml")


def test_a_job_can_edit_the_catalog_and_keep_its_comments(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(EXAMPLE_CATALOG.read_text())
    catalog = load_catalog(str(path))
    catalog.data["services"]["test-a"]["optOutRoutes"].append("maintenance")
    catalog.save()
    text = path.read_text()
    assert "# The seed's test-A. Kubernetes names are lowercase DNS-1123 labels, so: test-a." in text
    assert "#   subsets    - one namespace" in text
    assert load_catalog(str(path)).service("test-a").opt_out_routes == ("maintenance",)
    original = EXAMPLE_CATALOG.read_text().splitlines()
    changed = [line for line in text.splitlines() if line not in original]
    assert changed == ["    optOutRoutes:", "    - maintenance"]  # ruamel writes the once-empty list as a block
