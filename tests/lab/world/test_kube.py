"""The control plane is real: Istio's schema is enforced and objects survive an apiserver restart."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.world

GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"


def _virtual_service(name: str, http: list[dict]) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualService",
            "metadata": {"name": name}, "spec": {"hosts": [name], "http": http}}


def _route(host: str, weight: int) -> dict:
    return {"destination": {"host": host}, "weight": weight}


def test_a_virtual_service_is_created_and_read_back_through_the_kubernetes_client(kube, fresh_namespace):
    vs = _virtual_service("test-a", [{"name": "weight", "route": [_route("test-a.prod.svc.cluster.local", 80),
                                                                  _route("test-a.gray.svc.cluster.local", 20)]}])
    with kube.api_client() as api:
        objects = client.CustomObjectsApi(api)
        created = objects.create_namespaced_custom_object(GROUP, VERSION, fresh_namespace, PLURAL, vs)
        read = objects.get_namespaced_custom_object(GROUP, VERSION, fresh_namespace, PLURAL, "test-a")
    assert read["metadata"]["uid"] == created["metadata"]["uid"]
    assert read["spec"] == vs["spec"]
    assert read["metadata"]["resourceVersion"]


def test_a_virtual_service_with_a_wrongly_typed_field_is_rejected_with_422_by_istios_schema(kube, fresh_namespace):
    vs = _virtual_service("test-b", [{"route": [{"destination": {"host": "test-b"}, "weight": "eighty"}]}])
    with kube.api_client() as api, pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, fresh_namespace, PLURAL, vs)
    assert refused.value.status == 422
    assert "spec.http[0].route[0].weight" in refused.value.body


def test_a_misspelt_field_is_refused_under_strict_field_validation(kube, fresh_namespace):
    vs = _virtual_service("test-b", [{"route": [{"destination": {"host": "test-b"}, "wieght": 100}]}])
    with kube.api_client() as api, pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, fresh_namespace, PLURAL, vs, field_validation="Strict")
    assert refused.value.status == 400  # strict decoding errors are Bad Request, not Invalid
    assert 'unknown field \\"spec.http[0].route[0].wieght\\"' in refused.value.body


def test_a_virtual_service_breaking_a_cel_rule_of_the_schema_is_rejected_with_422(kube, fresh_namespace):
    # Istio's rule: duration(self) >= duration('1ms'). (Weights have no upper bound in the schema.)
    vs = _virtual_service("test-c", [{"route": [_route("test-c", 100)], "timeout": "0s"}])
    with kube.api_client() as api, pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, fresh_namespace, PLURAL, vs)
    assert refused.value.status == 422
    assert "spec.http[0].timeout" in refused.value.body


def test_objects_survive_an_apiserver_restart_on_the_same_etcd(kube, fresh_namespace):
    with kube.api_client() as api:
        client.CoreV1Api(api).create_namespaced_config_map(
            fresh_namespace, {"metadata": {"name": "kept"}, "data": {"k": "v"}})
    kube.stop_apiserver()
    assert not kube.apiserver_running
    with kube.api_client() as api, pytest.raises(Exception):
        client.CoreV1Api(api).read_namespaced_config_map("kept", fresh_namespace, _request_timeout=2)
    kube.start_apiserver()
    with kube.api_client() as api:
        kept = client.CoreV1Api(api).read_namespaced_config_map("kept", fresh_namespace)
    assert kept.data == {"k": "v"}


def test_istios_crds_are_those_of_the_istio_api_version_istiod_is_built_with():
    import graysteps_lab.world.kube as kube_module

    path = kube_module.istio_crds_path()
    assert path.name == "customresourcedefinitions.gen.yaml"
    assert kube_module.ISTIO_API_MODULE.split("@")[1] in str(path)
    assert "name: virtualservices.networking.istio.io" in path.read_text()
    build_script = (kube_module.REPO_ROOT / "tools" / "testenv" / "build-istio.sh").read_text()
    assert kube_module.ISTIO_API_MODULE.split("@")[1] in build_script


def test_without_go_istios_crds_come_from_the_shared_copy(monkeypatch, tmp_path):
    import graysteps_lab.world.kube as kube_module

    shared = tmp_path / "shared" / "istio" / "crds.yaml"
    shared.parent.mkdir(parents=True)
    shared.write_text("kind: CustomResourceDefinition\n")
    monkeypatch.setattr(kube_module, "REPO_ROOT", tmp_path / "checkout")
    monkeypatch.setenv("PATH", str(tmp_path / "no-go-here"))
    assert kube_module.istio_crds_path() == shared


def test_a_user_outside_system_masters_is_held_to_rbac(kube, fresh_namespace):
    from kubernetes import config

    with config.new_client_from_config(config_file=kube.user_kubeconfig("jenkins-ci")) as api:
        with pytest.raises(ApiException) as refused:
            client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, fresh_namespace, PLURAL)
    assert refused.value.status == 403
    assert 'User \\"jenkins-ci\\"' in refused.value.body
