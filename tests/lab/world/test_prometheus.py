"""The lab's Prometheus scrapes the Envoys' cluster stats (istiod's cluster names, tagged as Istio's
proxy tags them), and a backend can be told to misbehave."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from graysteps.adapters.prometheus import PrometheusClient
from graysteps_lab.world.backend import MISBEHAVE_PATH

pytestmark = pytest.mark.world

WEIGHTED = {
    "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
    "metadata": {"name": "test-a", "namespace": "prod"},
    "spec": {"hosts": ["test-a"], "http": [{"route": [
        {"destination": {"host": "test-a.gray.svc.cluster.local"}, "weight": 50},
        {"destination": {"host": "test-a.prod.svc.cluster.local"}, "weight": 50}]}]},
}
GRAY = 'cluster_name=~"outbound\\\\|([0-9]+\\\\|[^|]*\\\\|)?test-a\\\\.gray\\\\.svc\\\\.cluster\\\\.local"'


@pytest.fixture
def mesh(start_mesh, prometheus):
    m = start_mesh({"test-a": []}, [WEIGHTED])
    prometheus.scrape_envoy("prom-test", m.envoy.admin_port)
    prometheus.wait_scraped("prom-test")
    yield m
    prometheus.forget("prom-test")


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
    # one series per destination, named as istiod names the cluster (not cut at the first dot)
    names = {r["metric"]["cluster_name"] for r in prometheus.query(
        'envoy_cluster_upstream_rq{instance_name="prom-test",response_code_class="5xx"}')}
    assert "outbound|8080||test-a.gray.svc.cluster.local" in names


def test_a_backend_misbehaves_when_told_over_http(mesh):
    gray = mesh.backend("test-a", "gray")
    request = urllib.request.Request("http://%s:%d%s" % (*gray.address, MISBEHAVE_PATH), method="POST",
                                     data=json.dumps({"error_rate": 1.0, "latency_ms": 50}).encode())
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.load(answer)["error_rate"] == 1.0
    try:
        answers = mesh.probe("test-a", 40, key=lambda status, headers, body: f"{headers['x-graysteps-profile']} {status}")
        assert set(answers) == {"gray 503", "prod 200"}
    finally:
        gray.misbehave()
    bad = urllib.request.Request("http://%s:%d%s" % (*gray.address, MISBEHAVE_PATH), method="POST",
                                 data=json.dumps({"error_rate": 2}).encode())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=5)
    assert e.value.code == 400
