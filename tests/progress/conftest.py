"""A progressive-delivery lab per test: two fresh namespaces in the session's
apiserver, test-a behind the lab's Envoy (routed by the VirtualService watch),
scraped every second by the session's Prometheus."""

from __future__ import annotations

import pytest

from graysteps_lab.world.progressive import MeshUnderWatch
from tests.plans.conftest import audit_db, make_catalog, profile_namespaces  # noqa: F401 - the plans' fixtures, shared


@pytest.fixture
def services():
    """The catalog's services for this test's lab (override with @pytest.mark.parametrize("services", ...))."""
    return ["test-a"]


@pytest.fixture
def lab(kube, prometheus, make_catalog, tmp_path, services):
    from graysteps.model.catalog import load_catalog

    catalog_path = make_catalog(services)
    with kube.api_client() as api, MeshUnderWatch(api, load_catalog(catalog_path), tmp_path / "mesh", prometheus) as m:
        m.catalog_path = catalog_path
        m.kube = kube
        yield m

