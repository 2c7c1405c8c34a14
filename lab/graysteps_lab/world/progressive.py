"""A mesh for progressive delivery: the catalog's services behind the lab's
Envoy, routed live by the VirtualServices in a real apiserver, scraped by a
real Prometheus.

    with MeshUnderWatch(api_client, catalog, workdir, prometheus) as lab:
        lab.ingress                      # http://127.0.0.1:PORT/ (send Host: test-a)
        lab.backend("test-a", "gray").misbehave(error_rate=0.05)

Each service starts with a VirtualService sending all traffic to prod (as the
sandbox seeds it). The one thing to know: routes reach Envoy through the
VirtualService watch (graysteps_lab.sandbox.vs_watch), as in the sandbox, so
what `graysteps progress` writes is what the traffic sees, tens of
milliseconds later.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path


class MeshUnderWatch:
    def __init__(self, api_client, catalog, workdir: str | Path, prometheus, *, name: str | None = None):
        self.api_client, self.catalog, self.workdir, self.prometheus = api_client, catalog, Path(workdir), prometheus
        self.name = name or f"mesh-{self.workdir.name}"
        self.mesh = None
        self.sync = None
        self._stack = ExitStack()

    def start(self) -> "MeshUnderWatch":
        from graysteps.adapters.kube.istio import route
        from graysteps.model.strategy import parse_strategy
        from graysteps_lab.envoy_config import destination_key
        from graysteps_lab.sandbox.vs_watch import RouteSync
        from graysteps_lab.world.mesh import LocalMesh

        catalog = self.catalog
        names = catalog.names()

        def endpoint_key(service: str, profile: str) -> str:
            spec = catalog.service(service)
            return destination_key(spec.destination(profile), spec.vs_namespace)

        try:
            for name in names:
                route(catalog.service(name), parse_strategy("rollback"), api_client=self.api_client)
            self.mesh = self._stack.enter_context(
                LocalMesh({n: [] for n in names}, [], self.workdir, endpoint_key=endpoint_key))
            self.sync = RouteSync(self.api_client, self.mesh).start()
            self._stack.callback(self.sync.stop)
            self.sync.wait_synced()
            self.prometheus.scrape_envoy(self.name, self.mesh.envoy.admin_port)
            self.prometheus.wait_scraped(self.name)
        except BaseException:
            self._stack.close()
            raise
        return self

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> "MeshUnderWatch":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def ingress(self) -> str:
        return self.mesh.url("ingress")

    def backend(self, service: str, profile: str):
        return self.mesh.backend(service, profile)
