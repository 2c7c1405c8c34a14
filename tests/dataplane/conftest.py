"""Data-plane fixtures: a LocalMesh (istiod configuring a gateway Envoy and a
sidecar Envoy per caller profile, in front of prod and gray backends) routed by
VirtualServices made by graysteps' own strategies."""

from __future__ import annotations

import pytest

from graysteps_lab.world.mesh import LocalMesh
from tests.dataplane.virtual_services import destination
from tests.fixtures.failing import fail_loudly


@pytest.fixture
def start_mesh(kube, istiod, envoy_binary, tmp_path):
    """start_mesh(services, virtual_services, **kw) -> a started LocalMesh, stopped after the test."""
    meshes: list[LocalMesh] = []

    def start(services, virtual_services, **kw) -> LocalMesh:
        kw.setdefault("destination", destination("namespaces"))
        mesh = LocalMesh(services, virtual_services, tmp_path / f"mesh{len(meshes)}", kube=kube, istiod=istiod,
                         envoy_binary=envoy_binary, **kw)
        meshes.append(mesh)
        with fail_loudly("the mesh (istiod + Envoy)"):
            mesh.start()
        return mesh

    yield start
    for mesh in meshes:
        mesh.stop()
