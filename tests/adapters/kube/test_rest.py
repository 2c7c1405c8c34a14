"""The rollback's lean transport (graysteps/adapters/kube/rest.py) on the real apiserver:
it writes what the kubernetes client path writes, and kubeconfigs it does not
handle go through the client."""

from __future__ import annotations

import base64
import json
import sys

import pytest
import yaml

from graysteps.steps import rollback as fleet
from graysteps.adapters.kube import istio
from graysteps.adapters.kube.rest import ClientRest, KubeRest, KubeRestError, connect
from graysteps.model.strategy import parse_strategy
from tests.steps.test_rollback import prod_only
from tests.steps.test_release import get_vs, objects, put_vs

pytestmark = pytest.mark.world


def delete_vs(kube, service) -> None:
    group, version = service.api_version.split("/", 1)
    objects(kube).delete_namespaced_custom_object(group, version, service.vs_namespace, "virtualservices", service.vs_name)


def without_server_fields(vs: dict) -> dict:
    return {"metadata": {k: vs["metadata"].get(k) for k in ("name", "namespace", "labels", "annotations")}, "spec": vs["spec"]}


def exec_plugin_kubeconfig(kube, tmp_path) -> str:
    """The fixture's kubeconfig, but the client certificate comes from an exec plugin (a real one)."""
    config = yaml.safe_load(open(kube.kubeconfig, encoding="utf-8"))
    user = config["users"][0]["user"]
    credential = {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", "status": {
        "clientCertificateData": base64.b64decode(user.pop("client-certificate-data")).decode(),
        "clientKeyData": base64.b64decode(user.pop("client-key-data")).decode(),
    }}
    plugin = tmp_path / "plugin.py"
    plugin.write_text(f"print({json.dumps(json.dumps(credential))})\n")
    user["exec"] = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable, "args": [str(plugin)]}
    path = tmp_path / "exec-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_the_lean_transport_writes_what_the_kubernetes_client_writes(kube, make_catalog):
    from graysteps.model.catalog import load_catalog

    service = load_catalog(make_catalog(["svc-a"])).service("svc-a")
    results = {}
    for name, api in (("lean", connect(kube.kubeconfig, 4)), ("client", ClientRest(kube.api_client()))):
        put_vs(kube, service, "weight", 30)
        before = get_vs(kube, service)
        result = fleet.rollback_fleet([service], api=api, workers=4)
        after = get_vs(kube, service)
        assert [(o.status, o.message) for o in result.outcomes] == [("rolled-back", "")]
        assert after["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]
        results[name] = without_server_fields(after)
        delete_vs(kube, service)
    assert isinstance(connect(kube.kubeconfig, 4), KubeRest)
    assert results["lean"] == results["client"]
    assert prod_only(results["lean"], service)


def test_a_write_raced_by_someone_else_falls_back_to_the_retrying_update(kube, make_catalog):
    from graysteps.model.catalog import load_catalog

    service = load_catalog(make_catalog(["svc-a"])).service("svc-a")
    put_vs(kube, service, "whitelist")
    api = connect(kube.kubeconfig, 2)
    stale = istio.list_virtual_services([service], api)[(service.vs_namespace, service.vs_name)]
    raced = get_vs(kube, service)
    raced["spec"]["http"][-1]["timeout"] = "9s"  # someone else's write after our LIST
    group, version = service.api_version.split("/", 1)
    objects(kube).replace_namespaced_custom_object(group, version, service.vs_namespace, "virtualservices", service.vs_name, raced)

    with pytest.raises(KubeRestError) as refused:  # the stale resourceVersion really is refused
        istio.replace_listed(service, stale, api, dry_run=True)
    assert refused.value.status == 409

    out = fleet._rollback_one(service, stale, True, api, parse_strategy("rollback"), False)
    live = get_vs(kube, service)
    assert (out.status, out.message) == ("rolled-back", "")
    assert prod_only(live, service)
    assert live["spec"]["http"][-1]["timeout"] == "9s"  # the racing write was read again, not overwritten


def test_an_exec_plugin_kubeconfig_goes_through_the_kubernetes_client(kube, make_catalog, tmp_path):
    from graysteps.model.catalog import load_catalog

    service = load_catalog(make_catalog(["svc-a"])).service("svc-a")
    put_vs(kube, service, "promote")
    api = connect(exec_plugin_kubeconfig(kube, tmp_path), 2)
    assert isinstance(api, ClientRest)
    result = fleet.rollback_fleet([service], api=api, workers=2)
    assert [o.status for o in result.outcomes] == ["rolled-back"]
    assert prod_only(get_vs(kube, service), service)


def test_a_missing_kubeconfig_is_reported_as_before(tmp_path):
    from graysteps.errors import GraystepsError

    with pytest.raises(GraystepsError, match="not found"):
        connect(str(tmp_path / "nope"), 2)
