"""A local mesh: a backend for every service × profile behind one real Envoy.

The Envoy has an `ingress` listener (a caller with no labels, i.e. a user's
request) and one outbound listener per profile (`outbound-prod`,
`outbound-gray`), whose caller labels are `{profile_label: profile}`: that is
how `sourceLabels` routes see who is calling. Each backend calls its
downstream services through the outbound listener of its own profile, like
through its sidecar.

Routes come from VirtualServices through `graysteps_lab.envoy_config`, in files
Envoy watches: `update(virtual_services)` changes live routing without a
restart and returns once Envoy serves the new routes.

    with LocalMesh({"test-a": ["test-b"], "test-b": []}, [vs_a, vs_b], workdir) as mesh:
        mesh.probe("test-a", 100, {"Cookie": "tenantGray=1"}, key=by_path)
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from graysteps_lab.envoy_config import ListenerSpec, applied_route_versions, dynamic_bootstrap, translate
from graysteps.adapters.probe import KeyFunction, by_profile, probe
from graysteps_lab.world.backend import Backend
from graysteps_lab.world.envoy import Envoy
from graysteps_lab.world.ports import free_port
from graysteps_lab.world.process import WorldError

PROFILES = ("prod", "gray")
# Istio's proxy bootstrap tags stats this way (tools/packaging/common/envoy_bootstrap.json):
# a cluster name ending in <svc>.<ns>.svc.cluster.local stays one `cluster_name`
# label (Envoy's default would cut it at the first dot) and upstream_rq_5xx becomes
# envoy_cluster_upstream_rq{response_code_class="5xx"}. The lab's Envoy does the
# same, so the analysis' default PromQL works on the lab and on a real mesh alike.
ENVOY_STATS_CONFIG = {
    "use_all_default_tags": False,
    "stats_tags": [
        {"tag_name": "cluster_name", "regex": r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"},
        {"tag_name": "response_code", "regex": r"_rq(_(\d{3}))$"},
        {"tag_name": "response_code_class", "regex": r"_rq(_(\dxx))$"},
    ],
}


def namespace_layout(service: str, profile: str) -> str:
    """The seed's layout: one namespace per profile."""
    return f"{service}.{profile}.svc.cluster.local"


def subsets_layout(namespace: str) -> Callable[[str, str], str]:
    """DestinationRule subsets named after the profile, in one namespace."""
    return lambda service, profile: f"{service}.{namespace}.svc.cluster.local|{profile}"


class LocalMesh:
    def __init__(self, services: Mapping[str, Sequence[str]], virtual_services: Sequence[Mapping[str, Any]],
                 workdir: str | Path, *, profiles: Sequence[str] = PROFILES,
                 endpoint_key: Callable[[str, str], str] = namespace_layout,
                 forward_cookie: bool | Mapping[str, bool] = True, profile_label: str = "profile",
                 envoy_binary: str | None = None):
        self.workdir = Path(workdir)
        self.virtual_services = list(virtual_services)
        self.listeners = [ListenerSpec("ingress", free_port())] + [
            ListenerSpec(f"outbound-{p}", free_port(), source_labels={profile_label: p}) for p in profiles
        ]
        self.backends: dict[tuple[str, str], Backend] = {}
        for service, downstream in services.items():
            forward = forward_cookie if isinstance(forward_cookie, bool) else forward_cookie.get(service, True)
            for profile in profiles:
                self.backends[(service, profile)] = Backend(
                    service, profile, downstream=downstream,
                    outbound=("127.0.0.1", self.listener(f"outbound-{profile}").port), forward_cookie=forward,
                )
        self.endpoints = {endpoint_key(s, p): b.address for (s, p), b in self.backends.items()}
        self._envoy_binary = envoy_binary
        self.envoy: Envoy | None = None

    def listener(self, name: str) -> ListenerSpec:
        for spec in self.listeners:
            if spec.name == name:
                return spec
        raise KeyError(f"no listener {name!r}; have {[l.name for l in self.listeners]}")

    def backend(self, service: str, profile: str) -> Backend:
        return self.backends[(service, profile)]

    def url(self, listener: str = "ingress", path: str = "/") -> str:
        return f"http://127.0.0.1:{self.listener(listener).port}{path}"

    def start(self) -> "LocalMesh":
        started = []
        try:
            for b in self.backends.values():
                started.append(b.start())
            config = self.workdir / "xds"
            translate(self.virtual_services, self.endpoints, self.listeners).write_dynamic(str(config))
            bootstrap = dynamic_bootstrap(str(config))
            bootstrap["stats_flush_interval"] = "1s"  # latency histograms in /stats/prometheus lag by at most 1 s
            bootstrap["stats_config"] = ENVOY_STATS_CONFIG
            self.envoy = Envoy(bootstrap, self.workdir, binary=self._envoy_binary)
            self.envoy.start()
            self.envoy.wait_listening({spec.name: spec.port for spec in self.listeners})
        except BaseException:
            if self.envoy:
                self.envoy.stop()
            for b in started:
                b.stop()
            raise
        return self

    def stop(self) -> None:
        if self.envoy:
            self.envoy.stop()
        for b in self.backends.values():
            b.stop()

    def __enter__(self) -> "LocalMesh":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def update(self, virtual_services: Sequence[Mapping[str, Any]], timeout: float = 10.0) -> float:
        """Route by these VirtualServices from now on; returns the seconds until Envoy served them."""
        assert self.envoy is not None, "start the mesh first"
        t0 = time.monotonic()
        files = translate(virtual_services, self.endpoints, self.listeners).write_dynamic(str(self.workdir / "xds"))
        self.virtual_services = list(virtual_services)
        while True:
            dump = json.loads(self.envoy.admin_get("/config_dump?resource=dynamic_route_configs"))
            applied = applied_route_versions(dump)
            if all(applied.get(name) == v for name, v in files.route_versions.items()):
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise WorldError(
                    f"envoy did not apply the new routes within {timeout:.0f}s (rejected? see {self.envoy.log_path})",
                    step="testworld",
                )
            time.sleep(0.005)

    def probe(self, host: str, n: int, headers: Mapping[str, str] | None = None, *, listener: str = "ingress",
              path: str = "/", key: KeyFunction = by_profile, concurrency: int = 4) -> Counter:
        return probe(self.url(listener, path), host, n, headers, concurrency, key=key)
