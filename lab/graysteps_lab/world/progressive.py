"""A mesh for progressive delivery: the catalog's services behind the lab's
gateway Envoy and sidecars, configured by the session's istiod from the
VirtualServices in the real apiserver, every Envoy scraped by a real Prometheus.

    with MeshUnderWatch(api_client, catalog, workdir, prometheus, kube=kube, istiod=istiod) as lab:
        lab.ingress                      # http://127.0.0.1:PORT/
        lab.host("test-a")               # the Host header Istio serves test-a's VirtualService under
        lab.istiod_url                   # for `graysteps progress --istiod` (wait until Istio serves a step)
        lab.backend("test-a", "gray").misbehave(error_rate=0.05)

Each service starts with a VirtualService sending all traffic to prod, bound
to the lab's gateway and to the sidecars (as the sandbox seeds it). The one
thing to know: nothing of the lab relays routes: istiod watches the apiserver
and pushes what `graysteps progress` writes to every Envoy, as in a cluster;
istiod names each destination's cluster `outbound|<port>||<fqdn>`, and the
Envoys tag their stats the way Istio's proxy does, so the analysis' default
PromQL tells gray from prod.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path


class MeshUnderWatch:
    def __init__(self, api_client, catalog, workdir: str | Path, prometheus, *, kube, istiod,
                 name: str | None = None, envoy_binary: str | None = None):
        self.api_client, self.catalog, self.workdir, self.prometheus = api_client, catalog, Path(workdir), prometheus
        self.kube, self.istiod = kube, istiod
        self.name = name or f"mesh-{self.workdir.name}"
        self.envoy_binary = envoy_binary
        self.mesh = None
        self.targets: list[str] = []  # Prometheus' scrape targets of this mesh (one per Envoy)
        self._stack = ExitStack()

    def start(self) -> "MeshUnderWatch":
        from graysteps.adapters.kube.istio import update_virtual_service
        from graysteps.model.strategy import parse_strategy
        from graysteps.routing.operations import new_virtual_service
        from graysteps.steps.route import route
        from graysteps_lab.world.istiod import NAMESPACE as ISTIO_NAMESPACE
        from graysteps_lab.world.mesh import GATEWAY_NAME, LocalMesh

        catalog = self.catalog
        names = catalog.names()

        def destination(service: str, profile: str) -> dict:
            return catalog.service(service).destination(profile)

        try:
            for name in names:
                spec = catalog.service(name)

                def bound(current, spec=spec):
                    vs = current or new_virtual_service(spec)
                    vs["spec"].setdefault("gateways", [f"{ISTIO_NAMESPACE}/{GATEWAY_NAME}", "mesh"])
                    return vs

                update_virtual_service(spec, bound, api_client=self.api_client)
                route(spec, parse_strategy("rollback"), api_client=self.api_client)
            self.mesh = self._stack.enter_context(
                LocalMesh({n: [] for n in names}, [], self.workdir, kube=self.kube, istiod=self.istiod,
                          destination=destination, envoy_binary=self.envoy_binary))
            self.mesh.wait_served([], None)  # every Envoy serves the seeded routes
            for key, envoy in self.mesh.envoys.items():
                target = f"{self.name}-{key}"
                self.prometheus.scrape_envoy(target, envoy.admin_port)
                self.targets.append(target)
            self._stack.callback(self._forget_targets)
            for target in self.targets:
                self.prometheus.wait_scraped(target)
        except BaseException:
            self._stack.close()
            raise
        return self

    def _forget_targets(self) -> None:
        forget = getattr(self.prometheus, "forget", None)
        if forget is not None:
            for target in self.targets:
                forget(target)

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> "MeshUnderWatch":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def ingress(self) -> str:
        return self.mesh.url("ingress")

    @property
    def istiod_url(self) -> str:
        return self.istiod.debug_url

    def host(self, service: str) -> str:
        return self.catalog.service(service).served_host

    def backend(self, service: str, profile: str):
        return self.mesh.backend(service, profile)
