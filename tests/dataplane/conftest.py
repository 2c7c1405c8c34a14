"""Data-plane fixtures: a LocalMesh (backends for prod and gray behind a real
Envoy) routed by VirtualServices made by graysteps' own strategies."""

from __future__ import annotations

import pytest

from graysteps_lab.world.mesh import LocalMesh
from tests.dataplane.virtual_services import endpoint_key
from tests.fixtures.failing import fail_loudly


@pytest.fixture
def start_mesh(envoy_binary, tmp_path):
    """start_mesh(services, virtual_services, **kw) -> a started LocalMesh, stopped after the test."""
    meshes: list[LocalMesh] = []

    def start(services, virtual_services, **kw) -> LocalMesh:
        kw.setdefault("endpoint_key", endpoint_key("namespaces"))
        mesh = LocalMesh(services, virtual_services, tmp_path / f"mesh{len(meshes)}", envoy_binary=envoy_binary, **kw)
        with fail_loudly("envoy"):
            mesh.start()
        meshes.append(mesh)
        return mesh

    yield start
    for mesh in meshes:
        mesh.stop()
