"""`graysteps render --env ENV --image IMAGE`: the manifests deploy applies, offline."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.fixtures.workloads import assert_refused

CATALOG = "examples/catalog.yaml"


def render(*args: str, catalog: str = CATALOG) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graysteps", "render", "--catalog", catalog, *args],
                          capture_output=True, text=True, timeout=60)


def test_render_prints_the_deployment_and_service_as_multi_document_yaml():
    done = render("--service", "test-a", "--env", "gray", "--image", "registry.example:5000/test-a:1.4.2",
                  "--replicas", "3")
    assert done.returncode == 0, done.stderr
    deployment, service = yaml.safe_load_all(done.stdout)
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    assert deployment["metadata"]["namespace"] == service["metadata"]["namespace"] == "gray"
    assert deployment["metadata"]["labels"] == {
        "app": "test-a", "profile": "gray", "version": "1.4.2",
        "app.kubernetes.io/name": "test-a", "app.kubernetes.io/instance": "test-a-gray",
        "app.kubernetes.io/version": "1.4.2", "app.kubernetes.io/managed-by": "graysteps"}
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "test-a", "profile": "gray"}
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example:5000/test-a:1.4.2"
    assert container["ports"][0]["containerPort"] == 8080 == service["spec"]["ports"][0]["port"]


def test_prod_renders_into_the_prod_namespace_with_profile_prod():
    deployment, service = yaml.safe_load_all(render("--service", "test-b", "--env", "prod", "--image",
                                                    "test-b@sha256:" + "c" * 64).stdout)
    assert deployment["metadata"]["namespace"] == "prod"
    assert deployment["metadata"]["labels"]["profile"] == "prod"
    assert deployment["metadata"]["labels"]["version"] == "c" * 12  # a digest-only image: its short digest
    assert service["spec"]["selector"] == {"app": "test-b", "profile": "prod"}


def test_subsets_layout_names_deployments_per_profile_behind_one_service(tmp_path):
    from ruamel.yaml import YAML

    rt = YAML(typ="rt")
    data = rt.load(open(CATALOG, encoding="utf-8"))
    data["services"]["test-a"]["layout"] = "subsets"
    data["services"]["test-a"]["namespace"] = "shop"
    catalog = tmp_path / "catalog.yaml"
    rt.dump(data, catalog.open("w", encoding="utf-8"))
    done = render("--service", "test-a", "--env", "gray", "--image", "test-a:2", catalog=str(catalog))
    assert done.returncode == 0, done.stderr
    deployment, service = yaml.safe_load_all(done.stdout)
    assert deployment["metadata"]["name"] == "test-a-gray" and deployment["metadata"]["namespace"] == "shop"
    assert service["metadata"]["name"] == "test-a"
    assert service["spec"]["selector"] == {"app": "test-a"}  # both profiles; DestinationRule subsets split them
    assert "profile" not in service["metadata"]["labels"]


@pytest.mark.parametrize("args, named", [
    (["--service", "test-a", "--env", "staging", "--image", "test-a:1"], "'staging'"),
    (["--service", "test-a", "--env", "gray", "--image", "Test-A:1"], "'Test-A:1'"),
    (["--service", "test-a", "--env", "gray", "--image", "test-a:1 ; rm -rf /"], "'test-a:1 ; rm -rf /'"),
    (["--service", "test-A", "--env", "gray", "--image", "test-a:1"], "'test-A'"),
    (["--service", "test-z", "--env", "gray", "--image", "test-a:1"], "test-z"),
    (["--service", "test-a", "--env", "gray", "--image", "test-a:1", "--replicas", "-1"], "'-1'"),
    (["--service", "test-a", "--env", "gray"], "--image"),
])
def test_bad_input_exits_non_zero_with_one_line_and_nothing_on_stdout(args, named):
    done = render(*args)
    assert_refused(done, named)
    assert done.stderr.startswith("graysteps render: ")
