"""Envoys as Istio proxies in the lab: the bootstrap that has istiod configure an
Envoy over ADS (a gateway, node type `router`, or a sidecar without iptables), and
the waits before traffic: listening, and an endpoint for every cluster wanted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Mapping

from graysteps_lab.world.envoy import Envoy
from graysteps_lab.world.istiod import Istiod
from graysteps_lab.world.process import WorldError

ISTIO_VERSION = "1.31.0"

# Istio's proxy bootstrap tags stats this way (tools/packaging/common/envoy_bootstrap.json
# of the Istio built for the lab): istiod gives every cluster an `alt_stat_name` ending
# in ";" (outbound|8080||test-a.gray.svc.cluster.local;), so the whole cluster name is
# one `cluster_name` label (Envoy's default would cut it at the first dot), and
# upstream_rq_5xx becomes envoy_cluster_upstream_rq{response_code_class="5xx"}. The
# lab's Envoys do the same, so the analysis' default PromQL works on the lab and on a
# real mesh alike. Stats are flushed every second (see proxy_bootstrap).
ENVOY_STATS_CONFIG = {
    "use_all_default_tags": False,
    "stats_tags": [
        {"tag_name": "cluster_name", "regex": r"^cluster(\.(.+);)"},
        {"tag_name": "response_code", "regex": r"_rq(_(\d{3}))$"},
        {"tag_name": "response_code_class", "regex": r"_rq(_(\dxx))$"},
    ],
}


def proxy_bootstrap(kind: str, name: str, namespace: str, labels: Mapping[str, str], *, node_address: str,
                    xds_port: int) -> dict:
    """An Envoy bootstrap that takes everything from istiod over ADS (plaintext gRPC on `xds_port`)."""
    metadata = {"NAMESPACE": namespace, "LABELS": dict(labels), "CLUSTER_ID": "Kubernetes", "NAME": name,
                "ISTIO_VERSION": ISTIO_VERSION, "WORKLOAD_NAME": name}
    if kind == "sidecar":
        metadata["INTERCEPTION_MODE"] = "NONE"
    ads = {"ads": {}, "resource_api_version": "V3"}
    return {
        "stats_config": ENVOY_STATS_CONFIG,
        "stats_flush_interval": "1s",  # latency histograms in /stats/prometheus lag by at most 1 s
        "node": {"id": f"{kind}~{node_address}~{name}.{namespace}~{namespace}.svc.cluster.local",
                 "cluster": f"{name}.{namespace}", "metadata": metadata},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3", "set_node_on_first_message_only": True,
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
            "cds_config": ads, "lds_config": ads,
        },
        "static_resources": {"clusters": [{
            "name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}}},
            "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": xds_port}}}}]}]},
        }]},
    }


def start_proxy(kind: str, name: str, namespace: str, labels: Mapping[str, str], workdir: Path, *,
                node_address: str, istiod: Istiod, binary: str | None) -> Envoy:
    """A started Envoy that istiod configures as `kind` (router or sidecar) `name` in `namespace`."""
    bootstrap = proxy_bootstrap(kind, name, namespace, labels, node_address=node_address, xds_port=istiod.xds_port)
    return Envoy(bootstrap, workdir, binary=binary).start()


def wait_listening(envoy: Envoy, address: str, port: int, what: str, istiod: Istiod, timeout: float = 30.0) -> None:
    """Until `envoy` listens on address:port (the listener istiod gave it for `what`)."""
    try:
        envoy.wait_listening(address, port, what, timeout=timeout)
    except WorldError as e:
        raise WorldError(f"{e.message}; istiod's log: {istiod.log_path}", step="testworld") from e


def wait_clusters_ready(envoys: Mapping[str, Envoy], wanted: Iterable[str], istiod: Istiod,
                        timeout: float = 90.0) -> None:
    """Until every Envoy has an endpoint for every cluster in `wanted` (`outbound|PORT|SUBSET|HOST`),
    so no first request meets 503 (no healthy upstream)."""
    wanted = set(wanted)
    deadline = time.monotonic() + timeout
    for key, envoy in envoys.items():
        while True:
            statuses = json.loads(envoy.admin_get("/clusters?format=json")).get("cluster_statuses", [])
            ready = {c["name"] for c in statuses if c.get("host_statuses")}
            if wanted <= ready:
                break
            if time.monotonic() > deadline:
                raise WorldError(f"the {key} Envoy has no endpoint for {sorted(wanted - ready)} after "
                                 f"{timeout:.0f}s; see {istiod.log_path}", step="testworld")
            time.sleep(0.05)


def stop_servers(envoys: dict, backends: dict) -> None:
    """Stop a mesh's Envoys (and forget them) and its backends."""
    for server in [*envoys.values(), *backends.values()]:
        server.stop()
    envoys.clear()
