"""`istioctl analyze` (Istio's own analyzers) over the lab cluster after each strategy:
no error and no warning about what graysteps wrote."""

from __future__ import annotations

import pytest

from graysteps.steps.route import route
from graysteps.model.strategy import parse_strategy
from graysteps.model.manifests import render_manifests
from graysteps.steps.deploy import deploy
from graysteps_lab.world.istiod import analyze
from tests.routing.fixture_pairs import CATALOGS

pytestmark = pytest.mark.world

STRATEGIES = [("whitelist", None), ("weight", 20), ("balanced", None), ("linked", None), ("promote", None),
              ("rollback", None)]


@pytest.fixture
def deployed(kube, api, service_in):
    """deployed(layout) -> test-a's ServiceSpec, with its prod and gray Deployments and Services
    (`graysteps deploy`'s manifests) in place, as in a real release, and a pod of each (no
    kubelet here: the Deployment's pod template, written as a Pod, which stays Pending)."""
    from kubernetes import client

    def make(layout: str):
        spec = service_in(catalog=str(CATALOGS / "subsets.yaml")) if layout == "subsets" else service_in()
        for env in ("prod", "gray"):
            namespace = spec.namespaces[env]
            if kube.request("GET", f"/api/v1/namespaces/{namespace}")[0] == 404:
                client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
            manifests = render_manifests(spec, env, f"registry.example:5000/test-a:{env}-1")
            deploy(manifests, api_client=api)
            template = manifests.deployment["spec"]["template"]
            pod = {"metadata": {**template["metadata"], "name": f"test-a-{env}-0"}, "spec": template["spec"]}
            kube.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)  # 409: there from an earlier test
        return spec

    return make


@pytest.mark.parametrize("layout", ["namespaces", "subsets"])
def test_every_strategy_leaves_nothing_for_istioctl_analyze_to_warn_about(istiod, api, deployed, layout):
    spec = deployed(layout)
    namespaces = sorted(set(spec.namespaces.values()))
    for name, weight in STRATEGIES:
        route(spec, parse_strategy(name, weight), api_client=api)
        assert analyze(istiod, namespaces) == [], f"after {name}"


def test_analyze_does_see_a_broken_route(istiod, api, deployed):
    """The check can fail: a destination host with no Service is an Istio error (IST0101)."""
    spec = deployed("namespaces")
    route(spec, parse_strategy("rollback"), api_client=api)
    group, version = spec.api_version.split("/")
    from kubernetes import client

    objects = client.CustomObjectsApi(api)
    vs = objects.get_namespaced_custom_object(group, version, spec.vs_namespace, "virtualservices", spec.vs_name)
    vs["spec"]["http"][0]["route"][0]["destination"]["host"] = "nowhere.nowhere.svc.cluster.local"
    objects.replace_namespaced_custom_object(group, version, spec.vs_namespace, "virtualservices", spec.vs_name, vs)
    messages = analyze(istiod, [spec.vs_namespace])
    assert [(m["code"], m["level"]) for m in messages] == [("IST0101", "Error")], messages
