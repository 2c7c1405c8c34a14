"""`graysteps render` and `graysteps route` as a user runs them (subprocess)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.routing.fixture_pairs import EXAMPLE_CATALOG, FIXTURES


def graysteps(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "graysteps", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_render_prints_the_virtualservice_as_yaml():
    done = graysteps("render", "--catalog", str(EXAMPLE_CATALOG), "--service", "test-a", "--strategy", "weight", "--weight", "20")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout) == yaml.safe_load((FIXTURES / "new-weight-20" / "after.yaml").read_text())
    assert done.stderr == ""


def test_render_from_an_existing_virtualservice():
    case = FIXTURES / "seed-v1alpha3-whitelist"
    done = graysteps("render", "--catalog", str(EXAMPLE_CATALOG), "--service", "test-a", "--strategy", "whitelist",
                     "--from", str(case / "before.yaml"))
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout) == yaml.safe_load((case / "after.yaml").read_text())


RENDER = ["render", "--catalog", str(EXAMPLE_CATALOG)]
ROUTE = ["route", "--catalog", str(EXAMPLE_CATALOG), "--kubeconfig", "/nonexistent/kubeconfig"]
BAD_INPUT = {
    "upper-case service": (["--service", "test-A", "--strategy", "whitelist"],
                           "service name 'test-A' is not allowed: Kubernetes names must be lowercase DNS-1123 labels"),
    "weight 101": (["--service", "test-a", "--strategy", "weight", "--weight", "101"],
                   "--weight '101' is not allowed: use an integer from 0 to 100"),
    "weight -1": (["--service", "test-a", "--strategy", "weight", "--weight", "-1"], "--weight '-1' is not allowed"),
    "weight abc": (["--service", "test-a", "--strategy", "weight", "--weight", "abc"], "--weight 'abc' is not allowed"),
    "weight 12.5": (["--service", "test-a", "--strategy", "weight", "--weight", "12.5"], "--weight '12.5' is not allowed"),
    "weight missing": (["--service", "test-a", "--strategy", "weight"], "--strategy weight needs --weight N"),
    "unknown service": (["--service", "test-c", "--strategy", "promote"], "unknown service 'test-c': catalog"),
    "unknown strategy": (["--service", "test-a", "--strategy", "canary"],
                         "--strategy 'canary' is not a strategy: use one of whitelist, weight, balanced, linked, promote, rollback"),
}


@pytest.mark.parametrize("command", [RENDER, ROUTE], ids=["render", "route"])
@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_exits_2_with_one_line_naming_the_value_and_nothing_on_stdout(command, case):
    args, message = BAD_INPUT[case]
    done = graysteps(*command, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"graysteps {command[0]}: ") and message in lines[0]


def test_render_from_a_file_that_is_not_a_virtualservice_is_bad_input(tmp_path):
    bad = tmp_path / "svc.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
    done = graysteps(*RENDER, "--service", "test-a", "--strategy", "promote", "--from", str(bad))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"graysteps render: --from {bad}: no VirtualService document; "
                           "give a file with the service's VirtualService\n")


def test_render_finds_the_virtualservice_among_other_documents_by_kind(tmp_path):
    both = tmp_path / "app.yaml"
    both.write_text("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec: {}\n---\n"
                    + (FIXTURES / "rich-weight-20" / "before.yaml").read_text())
    done = graysteps(*RENDER, "--service", "test-a", "--strategy", "promote", "--from", str(both))
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["kind"] == "VirtualService"


def test_render_refuses_duplicate_keys_naming_the_line(tmp_path):
    bad = tmp_path / "vs.yaml"
    bad.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nkind: VirtualService\n")
    done = graysteps(*RENDER, "--service", "test-a", "--strategy", "promote", "--from", str(bad))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"graysteps render: --from {bad}:3: not valid YAML (duplicate key 'kind')\n"


def test_render_refuses_a_tcp_only_virtualservice_in_one_line_and_warns_on_stderr_about_shadowing(tmp_path):
    tcp = tmp_path / "tcp.yaml"
    tcp.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: test-a, namespace: prod}\n"
                   "spec:\n  hosts: [test-a]\n  tcp:\n  - route:\n    - destination: {host: test-a.prod.svc.cluster.local}\n")
    done = graysteps(*RENDER, "--service", "test-a", "--strategy", "promote", "--from", str(tcp))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("graysteps render: VirtualService prod/test-a routes only TCP") and done.stderr.count("\n") == 1
    shadow = tmp_path / "shadow.yaml"
    shadow.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: test-a, namespace: prod}\n"
                      "spec:\n  hosts: [test-a]\n  http:\n  - name: old\n    route:\n    - destination: {host: legacy}\n"
                      "  - name: main\n    route:\n    - destination: {host: test-a.prod.svc.cluster.local}\n")
    done = graysteps(*RENDER, "--service", "test-a", "--strategy", "promote", "--from", str(shadow))
    assert done.returncode == 0 and yaml.safe_load(done.stdout)["kind"] == "VirtualService"
    assert done.stderr.startswith("graysteps render: warning: route 'old' matches every request, so 'main'")


def test_a_bad_catalog_line_is_named_on_the_one_error_line(tmp_path):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("services:\n  test-a:\n    port: 0\n")
    done = graysteps("render", "--catalog", str(catalog), "--service", "test-a", "--strategy", "promote")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"graysteps render: {catalog}:3: services.test-a.port: 0 is not a port; use an integer 1-65535\n"


def test_the_error_file_names_the_step_for_jenkins(tmp_path):
    error_file = tmp_path / "error.json"
    done = graysteps(*ROUTE, "--service", "test-a", "--strategy", "weight", "--weight", "101",
                     env={"GRAYSTEPS_ERROR_FILE": str(error_file)})
    import json

    assert done.returncode == 2
    details = json.loads(error_file.read_text())
    assert details["step"] == "route" and details["type"] == "InvalidInput" and "'101'" in details["message"]
