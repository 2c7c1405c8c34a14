"""The sandbox supervisor: the long-running process `graysteps sandbox up` leaves behind.

    python -m graysteps_lab.sandbox.supervisor --dir D --catalog FILE [--no-workloads]

It starts every component (see graysteps_lab/sandbox/__init__.py), records each
one in D/state.json, writes D/supervisor.pid, and runs until SIGTERM/SIGINT
(`graysteps sandbox down`); then it stops everything in reverse order and
removes the pid file last.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from graysteps_lab.sandbox.state import FAILED, READY, STARTING, STOPPING, SandboxDir

PROFILES = ("prod", "gray")
PROD_IMAGE_TAG = "1.0.0"
IMAGE_REPOSITORY = "sandbox.local/graysteps"  # never pulled: kwok's pods run nothing


def image_for(service: str, tag: str) -> str:
    return f"{IMAGE_REPOSITORY}/{service}:{tag}"


def default_calls(names: list[str]) -> dict[str, list[str]]:
    """Each service calls the next one in catalog order: test-a → test-b, as the seed's A → B."""
    return {name: names[i + 1:i + 2] for i, name in enumerate(names)}


class Supervisor:
    def __init__(self, sandbox: SandboxDir, catalog_path: str, *, workloads: bool = True):
        self.sandbox = sandbox
        self.catalog_path = catalog_path
        self.workloads = workloads
        self.stop_requested = threading.Event()
        self.sync = None  # the RouteSync, once started
        self._state_lock = threading.Lock()
        self.state: dict[str, Any] = {"phase": STARTING, "pid": os.getpid(), "dir": str(sandbox.path),
                                      "started_at": time.time(), "components": [], "routes": {}}

    # -- state ---------------------------------------------------------------------

    def save(self, **changes: Any) -> None:
        with self._state_lock:
            self.state.update(changes)
            self.sandbox.write_state(self.state)

    def component(self, name: str, **info: Any) -> None:
        with self._state_lock:
            self.state["components"] = [c for c in self.state["components"] if c["name"] != name]
            self.state["components"].append({"name": name, **info})
            self.sandbox.write_state(self.state)

    def step(self, line: str) -> None:
        self.sandbox.progress(line)
        log(line)

    # -- start-up ------------------------------------------------------------------

    def run(self) -> int:
        with ExitStack() as stack:
            try:
                self.start(stack)
            except BaseException as e:  # noqa: BLE001 - reported in the state file, then everything stops
                message = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
                log(traceback.format_exc())
                self.step(f"FAILED: {message}")
                self.save(phase=FAILED, error=message)
                return 1
            self.save(phase=READY, ready_at=time.time())
            self.step(f"sandbox ready in {time.time() - self.state['started_at']:.1f}s")
            while not self.stop_requested.wait(0.5):
                self.record_sync_status()
            self.step("stopping")
            self.save(phase=STOPPING)
        return 0

    def start(self, stack: ExitStack) -> None:
        from graysteps.model.catalog import load_catalog

        work = self.sandbox.path
        catalog_copy = work / "catalog.yaml"
        if Path(self.catalog_path).resolve() != catalog_copy:
            shutil.copyfile(self.catalog_path, catalog_copy)
        catalog = load_catalog(str(catalog_copy))
        db_url = f"sqlite:///{work / 'whitelist.db'}"
        self.save(catalog=str(catalog_copy), env={"GRAYSTEPS_CATALOG": str(catalog_copy), "GRAYSTEPS_DB": db_url})

        binaries = self.control_plane_binaries()
        kube = self.start_kube(stack, binaries)
        self.save(env={**self.state["env"], "KUBECONFIG": kube.kubeconfig})
        api = stack.enter_context(kube.api_client())
        if self.workloads:
            self.start_workloads(stack, kube)
        istiod = self.start_istiod(stack, kube)
        self.seed_cluster(api, catalog)
        mesh = self.start_mesh(stack, catalog, kube, istiod)
        self.start_route_sync(stack, api, mesh)
        self.start_prometheus(stack, mesh)
        self.start_cookie_service(stack, db_url)

    def control_plane_binaries(self) -> Path:
        """etcd + kube-apiserver (+ controllers), built once per machine by tools/testenv/build.sh."""
        from graysteps_lab.world.kube import BUILD_SCRIPT, checked_binaries
        from graysteps_lab.world.process import WorldError

        override = os.environ.get("GRAYSTEPS_KUBE_BINARIES")
        if override:
            return checked_binaries(Path(override))
        self.step("control plane binaries: checking the build cache (a first run builds etcd and "
                  "kube-apiserver from the Go module proxy: about 7 minutes on 2 cores)")
        t0 = time.monotonic()
        with open(self.sandbox.path / "build.log", "ab") as build_log:
            proc = subprocess.Popen(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, text=True)
            for line in proc.stderr:  # build.sh reports each stage on stderr
                build_log.write(line.encode())
                build_log.flush()
                if line.strip():
                    self.step(f"  build: {line.strip()}")
            out = proc.stdout.read()
            if proc.wait() != 0:
                raise WorldError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}); see {self.sandbox.path / 'build.log'}",
                                 step="sandbox")
        found = checked_binaries(Path(out.strip().splitlines()[-1]))
        self.step(f"control plane binaries: {found} ({time.monotonic() - t0:.1f}s)")
        return found

    def start_kube(self, stack: ExitStack, binaries: Path):
        from graysteps_lab.world.kube import KubeWorld

        self.step("starting etcd + kube-apiserver, installing Istio's CRDs")
        kube = stack.enter_context(KubeWorld(self.sandbox.path / "kube", binaries=binaries))
        stack.callback(log, "stopping kube-apiserver and etcd")
        self.component("etcd", pid=kube._etcd.proc.pid, port=kube.etcd_port, url=kube.etcd_url,
                       health=kube.etcd_url + "/health", log=str(kube.workdir / "etcd.log"))
        self.component("kube-apiserver", pid=kube._apiserver.proc.pid, port=kube.port, url=kube.server,
                       health=kube.server + "/readyz", log=str(kube.workdir / "kube-apiserver.log"),
                       pki=str(kube.pki_dir))
        return kube

    def start_istiod(self, stack: ExitStack, kube):
        from graysteps_lab.world.istiod import Istiod

        self.step("starting istiod (pilot-discovery) and registering its validating webhook "
                  "(a first run builds it from the Go module proxy: about 10 minutes on 2 cores)")
        istiod = stack.enter_context(Istiod(kube, self.sandbox.path / "istiod"))
        stack.callback(log, "stopping istiod")
        istiod.register_validation()
        self.component("istiod", pid=istiod._process.proc.pid, port=istiod.http_port, url=istiod.debug_url,
                       health=istiod.debug_url + "/ready", log=str(istiod.log_path), xds_port=istiod.xds_port,
                       webhook_port=istiod.webhook_port)
        # GRAYSTEPS_ISTIOD: `--wait` of route/release/rollback, and `progress` counting each step once Istio serves it
        self.save(istiod=istiod.debug_url, env={**self.state["env"], "GRAYSTEPS_ISTIOD": istiod.debug_url})
        return istiod

    def start_workloads(self, stack: ExitStack, kube) -> None:
        from graysteps_lab.world.workloads import Workloads

        self.step("starting kube-controller-manager, kube-scheduler and kwok (Deployments roll out on a fake node)")
        workloads = stack.enter_context(Workloads(kube, self.sandbox.path / "workloads"))
        stack.callback(log, "stopping kube-controller-manager, kube-scheduler, kwok")
        for process in workloads._processes:
            self.component(process.name, pid=process.proc.pid, log=str(process.log_path))

    def seed_cluster(self, api, catalog) -> None:
        """Namespaces, prod Deployments (with workloads) and an all-prod VirtualService per
        service, bound to the sandbox's gateway and to the sidecars, as a user's would be."""
        from graysteps.adapters.kube.istio import update_virtual_service
        from graysteps.adapters.kube.workloads import ensure_namespace
        from graysteps.model.manifests import render_manifests
        from graysteps.steps.deploy import deploy
        from graysteps.steps.route import route
        from graysteps.model.strategy import parse_strategy
        from graysteps.routing.operations import new_virtual_service
        from graysteps_lab.world.istiod import NAMESPACE as ISTIO_NAMESPACE
        from graysteps_lab.world.mesh import GATEWAY_NAME

        def bound(current):
            vs = current or new_virtual_service(spec)
            vs["spec"].setdefault("gateways", [f"{ISTIO_NAMESPACE}/{GATEWAY_NAME}", "mesh"])
            return vs

        specs = [catalog.service(n) for n in catalog.names()]
        for ns in sorted({ns for s in specs for ns in s.namespaces.values()}):
            ensure_namespace(api, ns)
        if self.workloads:
            for spec in specs:
                self.step(f"deploying {spec.name} {PROD_IMAGE_TAG} to prod")
                deploy(render_manifests(spec, "prod", image_for(spec.name, PROD_IMAGE_TAG)), api_client=api,
                       wait=True, timeout=120)
        for spec in specs:
            update_virtual_service(spec, bound, api_client=api)
            result = route(spec, parse_strategy("rollback"), api_client=api)
            self.step(f"VirtualService {spec.vs_namespace}/{spec.vs_name}: all traffic to prod"
                      + ("" if result.changed else " (already)"))

    def start_mesh(self, stack: ExitStack, catalog, kube, istiod):
        from graysteps_lab.world.mesh import LocalMesh

        names = catalog.names()
        calls = default_calls(names)

        def destination(service: str, profile: str) -> dict:
            return catalog.service(service).destination(profile)

        self.step("starting backends (" + ", ".join(f"{n} -> {', '.join(c)}" if c else n for n, c in calls.items())
                  + "), the gateway Envoy and a sidecar Envoy per profile, all configured by istiod")
        mesh = LocalMesh(calls, [], self.sandbox.path / "envoy", kube=kube, istiod=istiod, destination=destination)
        stack.enter_context(mesh)
        stack.callback(log, "stopping the Envoys and the backends")
        for key, envoy in mesh.envoys.items():
            listener = mesh.listener(key)
            name = "envoy" if key == "ingress" else f"envoy {key}"
            self.component(name, pid=envoy.pid, port=envoy.admin_port, url=f"http://127.0.0.1:{envoy.admin_port}",
                           health=f"http://127.0.0.1:{envoy.admin_port}/ready", log=str(envoy.log_path),
                           listeners={key: f"{listener.address}:{listener.port}"})
        for (service, profile), backend in mesh.backends.items():
            host, port = backend.address
            self.component(f"backend {service}/{profile}", pid=os.getpid(), port=port,
                           url=f"http://{host}:{port}", health=f"http://{host}:{port}/",
                           service=service, profile=profile, endpoint=destination(service, profile)["host"],
                           calls=calls.get(service, []))
        self.save(ingress=mesh.url("ingress"), listeners={l.name: f"{l.address}:{l.port}" for l in mesh.listeners},
                  hosts={n: catalog.service(n).served_host for n in names})
        return mesh

    def start_route_sync(self, stack: ExitStack, api, mesh) -> None:
        from graysteps_lab.sandbox.vs_watch import RouteSync

        def applied(routes) -> None:
            self.save(routes={"virtual_services": routes.virtual_services, "rejected": routes.rejected,
                              "applied_at": routes.applied_at,
                              "ms_from_event": round(routes.seconds_from_event * 1000, 1),
                              "ms_in_envoy": round(routes.seconds_in_envoy * 1000, 1),
                              "applies": sync.status.applied, "events": sync.status.events})

        self.step("watching VirtualServices: recording when istiod serves each change to every Envoy")
        sync = self.sync = RouteSync(api, mesh, on_applied=applied, log=log).start()
        stack.callback(sync.stop)
        stack.callback(log, "stopping the VirtualService watch")
        sync.wait_synced()
        self.component("route-sync", pid=os.getpid(), kind="thread",
                       what="watch VirtualServices -> wait until istiod's sync status shows every Envoy serving them")

    def start_prometheus(self, stack: ExitStack, mesh) -> None:
        """A real Prometheus scraping every Envoy each second: what `graysteps progress` analyses."""
        from graysteps_lab.world.prometheus import Prometheus

        self.step("starting Prometheus (scrapes every Envoy's /stats/prometheus each second; the first run builds it, "
                  "about 5 minutes)")
        prom = stack.enter_context(Prometheus(self.sandbox.path / "prometheus", scrape_interval="1s"))
        stack.callback(log, "stopping Prometheus")
        for key, envoy in mesh.envoys.items():  # the gateway and each caller's sidecar
            prom.scrape_envoy(f"sandbox-{key}", envoy.admin_port)
        for key in mesh.envoys:
            prom.wait_scraped(f"sandbox-{key}")
        self.component("prometheus", pid=prom.pid, port=prom.port, url=prom.url,
                       health=f"{prom.url}/-/ready", log=str(prom.log_path))
        self.save(env={**self.state["env"], "GRAYSTEPS_PROMETHEUS": prom.url})

    def record_sync_status(self) -> None:
        """Put the watch's health in the state file when it changed (for `status`)."""
        sync = self.sync
        if sync is None:
            return
        now = {"watching": sync.status.watching, "last_error": sync.status.last_error, "lists": sync.status.lists}
        if now != self.state.get("route_sync"):
            self.save(route_sync=now)

    def start_cookie_service(self, stack: ExitStack, db_url: str) -> None:
        import urllib.request

        from graysteps_lab.world.ports import free_port
        from graysteps_lab.world.process import ServerProcess

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        self.step(f"starting the cookie service (graysteps serve-cookie, whitelist {db_url})")
        process = ServerProcess("cookie-service", [sys.executable, "-m", "graysteps", "serve-cookie", "--db", db_url,
                                                   "--port", str(port), "--ttl", "5", "--generation-check", "0.5"],
                                self.sandbox.path / "cookie-service.log").start()
        stack.callback(process.stop)
        stack.callback(log, "stopping the cookie service")

        def healthy() -> bool:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                return r.status == 200

        process.wait_ready(healthy, 60, "healthy on /healthz")
        self.component("cookie-service", pid=process.proc.pid, port=port, url=url, health=url + "/healthz",
                       log=str(process.log_path))
        self.save(cookie_service=url)


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graysteps_lab.sandbox.supervisor")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--no-workloads", action="store_true")
    args = parser.parse_args(argv)
    sandbox = SandboxDir(args.dir)
    supervisor = Supervisor(sandbox, args.catalog, workloads=not args.no_workloads)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: supervisor.stop_requested.set())
    sandbox.pid_file.write_text(str(os.getpid()))
    supervisor.save()
    try:
        code = supervisor.run()
    finally:
        state = sandbox.read_state()
        if state.get("phase") != FAILED:
            state["phase"] = "stopped"
        state["stopped_at"] = time.time()
        sandbox.write_state(state)
        sandbox.pid_file.unlink(missing_ok=True)  # last: `down` waits for it
    return code


if __name__ == "__main__":
    sys.exit(main())
