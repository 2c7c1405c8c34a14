"""`graysteps verify` against the real apiserver (Deployments, VirtualService written
by `route`) and real Envoys, configured by istiod from that VirtualService, routing to prod/gray backends."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest
from kubernetes import client

from graysteps.model.manifests import render_manifests
from graysteps.steps.deploy import deploy
from graysteps.steps.route import route
from graysteps.model.strategy import Strategy
from graysteps_lab.world.mesh import LocalMesh
from graysteps.adapters.kube.istio import read_virtual_service
from graysteps.steps.verify import FAILED, PASSED, SKIPPED, ProbeSettings, verify
from tests.fixtures.workloads import argv_with, assert_refused, catalog_with_namespaces, rolled_out, set_deployment_status


@pytest.fixture
def release(kube, fresh_namespace, service_in_namespaces):
    """test-a deployed to a prod and a gray namespace, both rolled out; `.spec`, `.api`."""
    gray_ns = f"{fresh_namespace[:50]}-g"
    with kube.api_client() as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": gray_ns}}, _preload_content=False)
        spec = service_in_namespaces("test-a", fresh_namespace, gray_ns)
        for env in ("prod", "gray"):
            deploy(render_manifests(spec, env, f"registry.example:5000/test-a:{env}-1", replicas=2), api_client=api)
            set_deployment_status(api, spec.namespaces[env], "test-a", **rolled_out(1, 2))
        yield Release(spec, api)
        client.CoreV1Api(api).delete_namespace(gray_ns, _preload_content=False)


class Release:
    def __init__(self, spec, api):
        self.spec, self.api = spec, api

    def route(self, strategy: Strategy) -> dict:
        return route(self.spec, strategy, api_client=self.api).after


@pytest.fixture
def start_gateway(start_mesh):
    """start_gateway(spec, virtual_service) -> a LocalMesh whose ingress routes by that VirtualService."""

    def start(spec, vs) -> LocalMesh:
        return start_mesh({spec.name: []}, [vs], destination=lambda service, profile: spec.destination(profile))

    return start


def serves_prod_build(mesh: LocalMesh) -> None:
    """The routes are right, but the gray workload answers as prod (e.g. its Deployment
    runs the prod build): what verify's probes must catch on the data plane."""
    mesh.backend("test-a", "gray").profile = "prod"


def statuses(report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


@pytest.mark.world
def test_whitelist_release_passes_every_check(release, start_gateway):
    live = release.route(Strategy("whitelist"))
    mesh = start_gateway(release.spec, read_virtual_service(release.spec, api_client=release.api))
    report = verify(release.spec, api_client=release.api, settings=ProbeSettings(mesh.url()))
    assert report.passed, [c.line() for c in report.checks]
    names = [c.name for c in report.checks]
    assert any(n.startswith("rollout gray") for n in names) and any(n.startswith("rollout prod") for n in names)
    assert "probe with the gray cookie -> gray" in names and "probe without the gray cookie -> prod" in names
    assert live["metadata"]["annotations"]["graysteps.io/strategy"] == "whitelist"


@pytest.mark.world
@pytest.mark.parametrize("strategy, probes", [
    (Strategy("balanced"), ["probe gray share 50% ± 5"]),
    (Strategy("weight", 0), ["probe all traffic -> prod"]),
    (Strategy("weight", 100), ["probe all traffic -> gray"]),
    (Strategy("linked"), ["probe gateway traffic (no profile label) -> prod",
                          "probe from a gray caller (profile: gray) -> gray"]),  # skipped: no gray caller given
    (Strategy("promote"), ["probe without the gray cookie -> gray", "probe with the gray cookie -> gray"]),
    (Strategy("rollback"), ["probe without the gray cookie -> prod", "probe with the gray cookie -> prod"]),
])
def test_every_strategy_verifies_against_a_data_plane_that_follows_it(release, start_gateway, strategy, probes):
    release.route(strategy)
    mesh = start_gateway(release.spec, read_virtual_service(release.spec, api_client=release.api))
    report = verify(release.spec, api_client=release.api, settings=ProbeSettings(mesh.url()))
    assert report.passed, [c.line() for c in report.checks]
    assert [c.name for c in report.checks if c.name.startswith("probe")] == probes


@pytest.mark.world
def test_linked_is_probed_from_the_gray_side_through_a_gray_caller(release, start_gateway):
    release.route(Strategy("linked"))
    mesh = start_gateway(release.spec, read_virtual_service(release.spec, api_client=release.api))
    report = verify(release.spec, api_client=release.api,
                    settings=ProbeSettings(mesh.url(), gray_caller=mesh.url("outbound-gray")))
    assert report.passed, [c.line() for c in report.checks]
    assert statuses(report)["probe from a gray caller (profile: gray) -> gray"] == PASSED
    assert statuses(report)["probe gateway traffic (no profile label) -> prod"] == PASSED


@pytest.mark.world
def test_the_gray_caller_probe_fails_when_gray_callers_do_not_reach_gray(release, start_gateway):
    release.route(Strategy("linked"))
    mesh = start_gateway(release.spec, read_virtual_service(release.spec, api_client=release.api))
    serves_prod_build(mesh)
    report = verify(release.spec, api_client=release.api,
                    settings=ProbeSettings(mesh.url(), gray_caller=mesh.url("outbound-gray")))
    assert not report.passed
    failed = next(c for c in report.checks if c.name == "probe from a gray caller (profile: gray) -> gray")
    assert failed.status == FAILED and "prod: 20" in failed.message


@pytest.mark.world
def test_without_a_gray_caller_the_gray_side_of_linked_is_reported_skipped(release, start_gateway):
    release.route(Strategy("linked"))
    mesh = start_gateway(release.spec, read_virtual_service(release.spec, api_client=release.api))
    report = verify(release.spec, api_client=release.api, settings=ProbeSettings(mesh.url()))
    skipped = next(c for c in report.checks if c.name == "probe from a gray caller (profile: gray) -> gray")
    assert skipped.status == SKIPPED and "--gray-caller" in skipped.message


@pytest.mark.world
def test_cookie_probe_fails_when_the_data_plane_sends_whitelisted_tenants_to_prod(release, start_gateway):
    release.route(Strategy("whitelist"))
    mesh = start_gateway(release.spec, read_virtual_service(release.spec, api_client=release.api))
    serves_prod_build(mesh)
    report = verify(release.spec, api_client=release.api, settings=ProbeSettings(mesh.url()))
    assert not report.passed
    assert statuses(report)["probe with the gray cookie -> gray"] == FAILED
    assert statuses(report)["probe without the gray cookie -> prod"] == PASSED
    failed = next(c for c in report.checks if c.name == "probe with the gray cookie -> gray")
    assert "prod: 20" in failed.message


@pytest.mark.world
def test_weight_20_passes_the_sequential_test_and_reports_its_confidence(release, start_gateway):
    release.route(Strategy("weight", 20))
    mesh = start_gateway(release.spec, read_virtual_service(release.spec, api_client=release.api))
    report = verify(release.spec, api_client=release.api, settings=ProbeSettings(mesh.url()))
    assert report.passed, [c.line() for c in report.checks]
    share = next(c for c in report.checks if c.name.startswith("probe gray share"))
    assert share.details["decision"] == "pass" and share.details["confidence"] == 0.99
    assert share.requests == share.details["requests"] < 20000  # stopped early, well before the bound
    low, high = share.details["interval_percent"]
    assert 15 <= low < 20 < high <= 25


@pytest.mark.world
def test_weight_check_fails_when_the_gray_share_is_not_served_by_gray(release, start_gateway):
    release.route(Strategy("weight", 20))
    mesh = start_gateway(release.spec, read_virtual_service(release.spec, api_client=release.api))
    serves_prod_build(mesh)
    report = verify(release.spec, api_client=release.api, settings=ProbeSettings(mesh.url()))
    assert not report.passed
    share = next(c for c in report.checks if c.name.startswith("probe gray share"))
    assert share.status == FAILED and share.details["decision"] == "fail"
    assert share.requests <= 1000  # a far-off share is clear quickly
    assert "NOT within 20% ± 5" in share.message


@pytest.mark.world
def test_a_hand_edited_virtual_service_does_not_conform(release, start_gateway):
    live = release.route(Strategy("weight", 20))
    for destination in live["spec"]["http"][0]["route"]:  # someone moves the split by hand to 30/70
        destination["weight"] = 30 if "gray" in destination["destination"]["host"] else 70
    group, version = release.spec.api_version.split("/")
    client.CustomObjectsApi(release.api).replace_namespaced_custom_object(
        group, version, release.spec.vs_namespace, "virtualservices", release.spec.vs_name, live,
        _preload_content=False)
    report = verify(release.spec, api_client=release.api)  # no gateway: probes are skipped
    check = next(c for c in report.checks if c.name.startswith("virtualservice"))
    assert check.status == FAILED
    assert "not what strategy weight=20 demands" in check.message
    assert "graysteps route --service test-a --strategy weight --weight 20" in check.message


@pytest.mark.world
def test_an_unfinished_gray_rollout_fails_verification(release):
    release.route(Strategy("whitelist"))
    set_deployment_status(release.api, release.spec.namespaces["gray"], "test-a", observedGeneration=1, replicas=2,
                          updatedReplicas=2, readyReplicas=1, availableReplicas=1)
    report = verify(release.spec, api_client=release.api)
    rollout = next(c for c in report.checks if c.name.startswith("rollout gray"))
    assert rollout.status == FAILED and "1 of 2 updated replicas are available" in rollout.message
    assert next(c for c in report.checks if c.name.startswith("rollout prod")).status == PASSED


@pytest.mark.world
def test_cli_writes_junit_and_exits_non_zero_on_failure(release, start_gateway, kube, tmp_path):
    release.route(Strategy("weight", 20))
    mesh = start_gateway(release.spec, read_virtual_service(release.spec, api_client=release.api))
    serves_prod_build(mesh)
    catalog = catalog_with_namespaces(tmp_path / "catalog.yaml", "test-a", release.spec.namespaces["prod"],
                                      release.spec.namespaces["gray"])
    junit = tmp_path / "reports" / "verify.xml"
    done = subprocess.run([sys.executable, "-m", "graysteps", "verify", "--service", "test-a", "--catalog", catalog,
                           "--kubeconfig", kube.kubeconfig, "--gateway", mesh.url(), "--junit", str(junit)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "graysteps verify: 1 of 4 checks failed for test-a: probe gray share 20% ± 5" in done.stderr
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite.get("name") == "graysteps.steps.verify.test-a"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "0")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    share = cases["probe gray share 20% ± 5"]
    assert "NOT within 20% ± 5 with 99% confidence" in share.find("failure").get("message")
    assert all(cases[n].find("failure") is None for n in cases if n != "probe gray share 20% ± 5")

    # Gray serves the gray build again: the same command passes, exit 0.
    mesh.backend("test-a", "gray").profile = "gray"
    done = subprocess.run([sys.executable, "-m", "graysteps", "verify", "--service", "test-a", "--catalog", catalog,
                           "--kubeconfig", kube.kubeconfig, "--gateway", mesh.url(), "--junit", str(junit), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["passed"] is True
    assert ElementTree.parse(junit).getroot().find("testsuite").get("failures") == "0"


@pytest.mark.world
def test_verify_without_a_virtual_service_says_to_route_first(kube, fresh_namespace, service_in_namespaces):
    spec = service_in_namespaces("test-b", fresh_namespace, f"{fresh_namespace[:50]}-none")
    with kube.api_client() as api:
        report = verify(spec, api_client=api)
    check = next(c for c in report.checks if c.name.startswith("virtualservice"))
    assert check.status == FAILED and "graysteps route --service test-b" in check.message
    assert {c.status for c in report.checks if c.name.startswith("rollout")} == {FAILED}  # nothing deployed either


@pytest.mark.parametrize("args, named", [
    (["--gateway", "ftp://x"], "ftp://x"),
    (["--gray-caller", "localhost:15001"], "--gray-caller: 'localhost:15001'"),
    (["--gateway", "http://127.0.0.1:99999/"], "--gateway: 'http://127.0.0.1:99999/' is not allowed: the port"),
    (["--path", "a b"], "--path 'a b' is not allowed"),
    (["--tolerance", "0"], "--tolerance 0"),
    (["--confidence", "1.5"], "--confidence 1.5"),
    (["--service", "test-A"], "test-A"),
])
def test_bad_verify_input_is_one_line_on_stderr(args, named, tmp_path):
    argv = argv_with({"--service": "test-a", "--gateway": "http://127.0.0.1:1"}, args)
    junit = tmp_path / "v.xml"
    done = subprocess.run([sys.executable, "-m", "graysteps", "verify", *argv, "--catalog",
                           "examples/catalog.yaml", "--kubeconfig", str(tmp_path / "none"), "--junit", str(junit)],
                          capture_output=True, text=True, timeout=60)
    assert_refused(done, named)
    assert not junit.exists()


@pytest.mark.parametrize("settings, named", [
    (ProbeSettings("http://127.0.0.1:99999/"), "--gateway 'http://127.0.0.1:99999/' is not allowed: the port"),
    (ProbeSettings("http://127.0.0.1:1/", gray_caller="http://127.0.0.1:0/"), "--gray-caller 'http://127.0.0.1:0/'"),
    (ProbeSettings("http://[::1]x/"), "no valid host"),
])
def test_probe_settings_given_in_python_are_checked_like_the_options(settings, named):
    from graysteps.errors import InvalidInput
    from graysteps.steps.verify import validate_settings

    with pytest.raises(InvalidInput, match=re.escape(named)):
        validate_settings(settings)


def test_a_gray_caller_without_a_gateway_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "graysteps", "verify", "--service", "test-a", "--gray-caller",
                           "http://127.0.0.1:15001", "--catalog", "examples/catalog.yaml",
                           "--kubeconfig", str(tmp_path / "none")], capture_output=True, text=True, timeout=60)
    assert_refused(done, "--gray-caller needs --gateway")
