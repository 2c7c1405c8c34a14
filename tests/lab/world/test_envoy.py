"""Envoy from the wheel really routes requests, and takes new routes live from files."""

from __future__ import annotations

import urllib.request

import pytest

from graysteps_lab.world.envoy import Envoy
from graysteps_lab.world.ports import free_port, wait_for_port

pytestmark = pytest.mark.world


def _cluster(name: str, port: int) -> dict:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}],
        },
    }


def _listener(port: int, cluster: str) -> dict:
    route_config = {
        "name": "local",
        "virtual_hosts": [{"name": "all", "domains": ["*"],
                           "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}],
    }
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network"
                 ".http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "route_config": route_config,
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    return {
        "name": "ingress",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": manager}]}],
    }


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/anything", timeout=5) as response:
        return response.read().decode()


def test_envoy_routes_a_request_to_the_backend_its_route_names(envoy_binary, tmp_path, http_backend):
    backend = http_backend("backend-a")
    port = free_port()
    bootstrap = {"static_resources": {"listeners": [_listener(port, "a")], "clusters": [_cluster("a", backend)]}}
    with Envoy(bootstrap, tmp_path, binary=envoy_binary) as envoy:
        assert _get(port) == "backend-a"
        assert envoy.stats()["cluster.a.upstream_rq_200"] >= 1


def test_a_mesh_whose_listener_port_is_taken_fails_to_start_and_names_the_port(kube, istiod, envoy_binary, tmp_path):
    # Envoy itself stays up when it cannot bind a listener; the mesh must not.
    import socket

    from graysteps_lab.world.mesh import LocalMesh
    from graysteps_lab.world.process import WorldError

    mesh = LocalMesh({"test-a": []}, [], tmp_path, kube=kube, istiod=istiod, envoy_binary=envoy_binary)
    port = mesh.listener("ingress").port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(WorldError, match=rf"ingress Envoy is not listening on 127.0.0.1:{port} .*cannot bind '127.0.0.1:{port}'"):
            mesh.start()
    assert mesh.envoys == {}  # stopped, not left running
    assert not any(wait_for_port(b.port, host=b.address[0]) for b in mesh.backends.values())  # backends closed too
