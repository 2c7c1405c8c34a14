"""`graysteps status` on the real apiserver: each service's strategy, whether its routes are as set,
and its gray and prod versions."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.workloads import rolled_out, set_deployment_status
from tests.fixtures.plans import run_cli
from tests.steps.test_release import objects, put_vs

pytestmark = pytest.mark.world


@pytest.fixture
def fleet(kube, make_catalog):
    """svc-a on whitelist with gray 1.4.2 rolled out and prod 1.4.1 rolling out; svc-b at weight 20; svc-c untouched."""
    from graysteps.model.catalog import load_catalog
    from graysteps.model.manifests import render_manifests
    from graysteps.steps.deploy import deploy

    catalog = make_catalog(["svc-a", "svc-b", "svc-c"])
    cat = load_catalog(catalog)
    put_vs(kube, cat.service("svc-a"), "whitelist")
    put_vs(kube, cat.service("svc-b"), "weight", 20)
    a = cat.service("svc-a")
    with kube.api_client() as api:
        deploy(render_manifests(a, "gray", "registry.example:5000/svc-a:1.4.2", replicas=2), api_client=api)
        set_deployment_status(api, a.namespaces["gray"], "svc-a", **rolled_out(1, 2))
        deploy(render_manifests(a, "prod", "registry.example:5000/svc-a:1.4.1", replicas=3), api_client=api)
    return catalog, cat


def test_status_shows_each_services_strategy_routes_and_versions(kube, fleet, tmp_path):
    catalog, cat = fleet
    done = run_cli("status", "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["service"]: r for r in json.loads(done.stdout)}
    assert [(rows[s]["strategy"], rows[s]["routes"]) for s in ("svc-a", "svc-b", "svc-c")] == [
        ("whitelist", "as set"), ("weight=20", "as set"), ("-", "no VirtualService")]
    assert rows["svc-a"]["gray"] | {"message": ""} == {"present": True, "version": "1.4.2", "ready": "2/2",
                                                       "rolled_out": True, "message": ""}
    assert rows["svc-a"]["prod"]["version"] == "1.4.1" and not rows["svc-a"]["prod"]["rolled_out"]
    assert rows["svc-b"]["gray"] == {"present": False, "version": "", "ready": "", "rolled_out": False, "message": ""}

    text = run_cli("status", "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--service", "svc-a",
                   "--report", str(tmp_path / "reports" / "status.json"))
    assert text.returncode == 0, text.stderr
    assert json.loads((tmp_path / "reports" / "status.json").read_text()) == [rows["svc-a"]]
    header, line = text.stdout.splitlines()
    assert header.split() == ["SERVICE", "STRATEGY", "ROUTES", "GRAY", "PROD", "VIRTUALSERVICE"]
    assert line.startswith("svc-a") and "1.4.2 2/2 ready" in line and "1.4.1 0/3 ready (rolling out)" in line


def test_routes_changed_by_hand_are_named_and_fail_the_command(kube, fleet):
    catalog, cat = fleet
    b = cat.service("svc-b")
    group, version = b.api_version.split("/", 1)
    live = objects(kube).get_namespaced_custom_object(group, version, b.vs_namespace, "virtualservices", b.vs_name)
    for route in live["spec"]["http"]:
        for destination in route["route"]:
            destination["weight"] = 50  # someone edits 80/20 to 50/50 with kubectl
    objects(kube).replace_namespaced_custom_object(group, version, b.vs_namespace, "virtualservices", b.vs_name, live)
    done = run_cli("status", "--catalog", catalog, "--kubeconfig", kube.kubeconfig)
    assert done.returncode == 1
    assert any(line.split()[:2] == ["svc-b", "weight=20"] and "CHANGED BY HAND" in line for line in done.stdout.splitlines())
    assert "routes changed by hand (not what their strategy makes): svc-b" in done.stderr


def test_an_unknown_service_is_refused(kube, fleet):
    catalog, _ = fleet
    done = run_cli("status", "--catalog", catalog, "--kubeconfig", kube.kubeconfig, "--service", "nosuch")
    assert done.returncode == 2 and done.stdout == "" and "nosuch" in done.stderr
