"""istiod runs against the lab apiserver and validates every Istio write."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.world

GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"


def test_istiod_sees_the_apiservers_services(istiod):
    services = istiod.debug("/debug/registryz")
    assert "kubernetes.default.svc.cluster.local" in {s["hostname"] for s in services}


def test_istio_refuses_a_virtual_service_the_crd_schema_accepts(kube, fresh_namespace):
    vs = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualService", "metadata": {"name": "everything"},
          "spec": {"hosts": ["*"], "http": [{"route": [{"destination": {"host": "test-a"}}]}]}}
    with kube.api_client() as api:
        objects = client.CustomObjectsApi(api)
        with pytest.raises(ApiException) as refused:
            objects.create_namespaced_custom_object(GROUP, VERSION, fresh_namespace, PLURAL, vs)
        assert objects.list_namespaced_custom_object(GROUP, VERSION, fresh_namespace, PLURAL)["items"] == []
    message = json.loads(refused.value.body)["message"]
    assert refused.value.status == 400
    assert message == ('admission webhook "rev.validation.istio.io" denied the request: configuration is invalid: '
                       "wildcard host * is not allowed for virtual services bound to the mesh gateway")


def test_a_valid_virtual_service_passes_istios_validation(kube, fresh_namespace):
    vs = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualService", "metadata": {"name": "test-a"},
          "spec": {"hosts": ["test-a"], "http": [{"route": [{"destination": {"host": "test-a"}}]}]}}
    with kube.api_client() as api:
        created = client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, fresh_namespace, PLURAL, vs)
    assert created["spec"] == vs["spec"]


def test_after_an_apiserver_restart_istiod_is_restarted_on_the_same_ports_and_holds_new_config(
        kube, istiod, fresh_namespace):
    from graysteps.adapters.istiod import wait_until_served, written_change

    ports = (istiod.http_port, istiod.xds_port, istiod.webhook_port, istiod.monitoring_port)
    generation = kube.apiserver_generation
    assert istiod.follow_apiserver_restart() is None  # nothing restarted since istiod started
    kube.stop_apiserver()
    kube.start_apiserver()
    assert kube.apiserver_generation == generation + 1

    seconds = istiod.follow_apiserver_restart()
    assert seconds is not None and seconds < 30
    assert istiod.follow_apiserver_restart() is None
    assert (istiod.http_port, istiod.xds_port, istiod.webhook_port, istiod.monitoring_port) == ports
    vs = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualService", "metadata": {"name": "test-a"},
          "spec": {"hosts": ["test-a"], "http": [{"route": [{"destination": {"host": "test-a"}}]}]}}
    with kube.api_client() as api:
        created = client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, fresh_namespace, PLURAL, vs)
    # istiod's fresh watches hold it at once (no backoff left over from the outage)
    wait_until_served([written_change(created)], istiod.debug, after_push=None, timeout=5)
    # and its validating webhook answers on the same port again
    with kube.api_client() as api, pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, fresh_namespace, PLURAL, {**vs, "metadata": {"name": "everything"},
                                                      "spec": {**vs["spec"], "hosts": ["*"]}})
    assert refused.value.status == 400 and "rev.validation.istio.io" in refused.value.body
