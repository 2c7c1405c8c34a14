"""The lab's Prometheus scrapes Envoy's cluster stats, and a backend can be told to misbehave."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from graysteps.adapters.prometheus import PrometheusClient, PrometheusError
from graysteps_lab.world.backend import MISBEHAVE_PATH
from graysteps_lab.world.mesh import LocalMesh
from graysteps_lab.world.ports import free_port

pytestmark = pytest.mark.world

WEIGHTED = {
    "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
    "metadata": {"name": "test-a", "namespace": "prod"},
    "spec": {"hosts": ["test-a"], "http": [{"route": [
        {"destination": {"host": "test-a.gray.svc.cluster.local"}, "weight": 50},
        {"destination": {"host": "test-a.prod.svc.cluster.local"}, "weight": 50}]}]},
}
GRAY = 'cluster_name=~"outbound\\\\|([0-9]+\\\\|[^|]*\\\\|)?test-a\\\\.gray\\\\.svc\\\\.cluster\\\\.local"'


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, envoy_binary, prometheus):
    with LocalMesh({"test-a": []}, [WEIGHTED], tmp_path_factory.mktemp("mesh"), envoy_binary=envoy_binary) as m:
        prometheus.scrape_envoy("prom-test", m.envoy.admin_port)
        prometheus.wait_scraped("prom-test")
        yield m


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_prometheus_counts_gray_answers_and_errors_per_envoy_cluster(mesh, prometheus):
    client = PrometheusClient(prometheus.url)
    gray = mesh.backend("test-a", "gray")
    gray.misbehave(error_rate=0.5, seed=7)
    try:
        before = client.scalar(f'sum(envoy_cluster_upstream_rq{{{GRAY},response_code_class="5xx"}})')
        answers = mesh.probe("test-a", 200, key=lambda status, headers, body: f"{headers['x-graysteps-profile']} {status}")
    finally:
        gray.misbehave()
    errors = answers["gray 503"]  # what the callers saw; Envoy retried some 503s, so it counts at least these
    assert 10 < errors < answers["gray 200"] + errors and answers["prod 503"] == 0
    seen = wait_for(lambda: client.scalar(
        f'sum(envoy_cluster_upstream_rq{{{GRAY},response_code_class="5xx"}})') - before >= errors)
    assert seen, "Prometheus did not see gray's errors within 10 s"


def test_a_backend_misbehaves_when_told_over_http(mesh):
    gray = mesh.backend("test-a", "gray")
    request = urllib.request.Request(f"http://127.0.0.1:{gray.port}{MISBEHAVE_PATH}", method="POST",
                                     data=json.dumps({"error_rate": 1.0, "latency_ms": 50}).encode())
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.load(answer)["error_rate"] == 1.0
    try:
        answers = mesh.probe("test-a", 40, key=lambda status, headers, body: f"{headers['x-graysteps-profile']} {status}")
        assert set(answers) == {"gray 503", "prod 200"}
    finally:
        gray.misbehave()
    bad = urllib.request.Request(f"http://127.0.0.1:{gray.port}{MISBEHAVE_PATH}", method="POST",
                                 data=json.dumps({"error_rate": 2}).encode())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=5)
    assert e.value.code == 400


def test_an_unreachable_prometheus_is_one_clear_line():
    client = PrometheusClient(f"http://user:s3cret@127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(PrometheusError) as e:
        client.scalar("vector(1)")
    message = e.value.message
    assert "unreachable" in message and "s3cret" not in message and "user:***@" in message and "\n" not in message


def test_a_bad_query_names_the_query(prometheus):
    with pytest.raises(PrometheusError) as e:
        PrometheusClient(prometheus.url).scalar("sum(")
    assert "sum(" in e.value.message and "\n" not in e.value.message
