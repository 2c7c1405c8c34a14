"""A real Kubernetes control plane for tests and the sandbox: etcd and
kube-apiserver built from the Go module proxy by tools/testenv/build.sh,
started with envtest-like flags on loopback, with Istio's CRDs installed.

    world = KubeWorld(workdir).start()
    api = world.api_client()          # admin (system:masters) over client-cert TLS
    world.stop_apiserver(); world.start_apiserver()   # same etcd, same URL
    world.apiserver_generation        # +1 at every start of kube-apiserver
    world.stop()

There is no kubelet, controller-manager or scheduler: Deployments do not get
Pods (set their status through the /status subresource), and deleted
namespaces stay Terminating.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from graysteps_lab.world import pki
from graysteps_lab.world.ports import free_port
from graysteps_lab.world.process import SETUP_HINT, ManagedServer, ServerProcess, WorldError

from graysteps_lab.paths import REPO_ROOT
BUILD_SCRIPT = REPO_ROOT / "tools" / "testenv" / "build.sh"
# The istio.io/api version istiod (tools/testenv/build-istio.sh) is built with: its CRDs match istiod.
ISTIO_API_MODULE = "istio.io/api@v1.31.0-rc.0.0.20260824154656-b943409680a7"
ISTIO_CRDS_IN_MODULE = "kubernetes/customresourcedefinitions.gen.yaml"
ADMIN_USER = "graysteps-admin"


def control_plane_binaries() -> Path:
    """The directory holding `etcd` and `kube-apiserver`.

    $GRAYSTEPS_KUBE_BINARIES when set; otherwise tools/testenv/build.sh, which
    answers at once from its cache and builds (10+ minutes) when cold.
    """
    return built_binaries(BUILD_SCRIPT, "GRAYSTEPS_KUBE_BINARIES", ("etcd", "kube-apiserver"))


def built_binaries(script: Path, override_variable: str, names: tuple[str, ...]) -> Path:
    """The directory $`override_variable` names, else the one the build `script`
    prints (from its cache, or after building), once it holds every one of `names`."""
    override = os.environ.get(override_variable)
    if override:
        found = Path(override)
    else:
        if not script.is_file():
            raise WorldError(f"{script} is missing: run from a graysteps checkout, or set "
                             f"{override_variable} to a directory with {' and '.join(names)}", step="testworld")
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.splitlines()[-30:])
            raise WorldError(f"{script} failed (exit {done.returncode}): {SETUP_HINT}\n{tail}", step="testworld")
        found = Path(done.stdout.strip().splitlines()[-1])
    return checked_binaries(found, names, script)


def checked_binaries(directory: Path, names: tuple[str, ...] = ("etcd", "kube-apiserver"),
                     script: Path = BUILD_SCRIPT) -> Path:
    """`directory`, once it is known to hold every one of `names`, executable."""
    for name in names:
        if not os.access(directory / name, os.X_OK):
            raise WorldError(f"{directory / name} is missing: run bash {script} (needs Go), or {SETUP_HINT}",
                             step="testworld")
    return directory


def istio_crds_path() -> Path:
    """Istio's CRDs, of the istio.io/api version istiod is built with (from the Go
    module cache or proxy). Without the 'go' command, ../shared/istio/crds.yaml
    next to the checkout (1.30.3: same kinds and versions, an older schema)."""
    shared = REPO_ROOT.parent / "shared" / "istio" / "crds.yaml"
    try:
        done = subprocess.run(["go", "mod", "download", "-json", ISTIO_API_MODULE], capture_output=True, text=True,
                              cwd="/", env={**os.environ, "GO111MODULE": "on", "GOFLAGS": "-mod=mod"},
                              stdin=subprocess.DEVNULL, timeout=300)
    except FileNotFoundError as e:
        if shared.is_file():
            return shared
        raise WorldError(f"the 'go' command is missing (to fetch {ISTIO_API_MODULE}) and so is {shared}: "
                         f"{SETUP_HINT}", step="testworld") from e
    except subprocess.TimeoutExpired as e:
        raise WorldError(f"`go mod download {ISTIO_API_MODULE}` took over 300s", step="testworld") from e
    if done.returncode != 0:
        if shared.is_file():
            return shared
        raise WorldError(f"`go mod download {ISTIO_API_MODULE}` failed and {shared} is missing: "
                         f"{done.stderr.strip() or done.stdout.strip()}", step="testworld")
    path = Path(json.loads(done.stdout)["Dir"]) / ISTIO_CRDS_IN_MODULE
    if not path.is_file():
        raise WorldError(f"{ISTIO_API_MODULE} has no {ISTIO_CRDS_IN_MODULE}", step="testworld")
    return path


class KubeWorld(ManagedServer):
    """etcd + kube-apiserver under `workdir`, admin kubeconfig at `.kubeconfig`."""

    def __init__(self, workdir: str | os.PathLike, *, binaries: str | os.PathLike | None = None,
                 crds: str | os.PathLike | None = None, install_istio_crds: bool = True,
                 ready_timeout: float = 120.0):
        self.workdir = Path(workdir)
        self.binaries = Path(binaries) if binaries else None
        self._crds = Path(crds) if crds else None
        self.install_istio_crds = install_istio_crds
        self.ready_timeout = ready_timeout
        self.pki_dir = self.workdir / "pki"
        self.kubeconfig = str(self.workdir / "kubeconfig")
        self.etcd_port: int | None = None
        self._etcd_peer_port: int | None = None
        self.port: int | None = None
        self._etcd: ServerProcess | None = None
        self._apiserver: ServerProcess | None = None
        # How many times kube-apiserver has been started: a client that started before the
        # last (re)start has seen its watches broken (Istiod.follow_apiserver_restart).
        self.apiserver_generation = 0

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    def start(self) -> "KubeWorld":
        try:
            self.binaries = checked_binaries(self.binaries) if self.binaries else control_plane_binaries()
            self._make_pki()
            self.start_etcd()
            self.start_apiserver()
            self._write_kubeconfig()
            if self.install_istio_crds:
                self.install_crds(self._crds or istio_crds_path())
        except BaseException:
            self.stop()
            raise
        return self

    # -- etcd ---------------------------------------------------------------

    def start_etcd(self) -> None:
        self.etcd_port = self.etcd_port or free_port()
        self._etcd_peer_port = self._etcd_peer_port or free_port()
        peer = f"http://127.0.0.1:{self._etcd_peer_port}"
        self._etcd = ServerProcess("etcd", [
            self.binaries / "etcd", "--name=graysteps", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=graysteps={peer}",
            "--watch-progress-notify-interval=5s",  # the apiserver's consistent reads from cache need it
            "--unsafe-no-fsync=true",  # throwaway data: no fsync, much faster on shared disks
            "--log-level=warn",
        ], self.workdir / "etcd.log").start()
        self._etcd.wait_ready(self._etcd_healthy, self.ready_timeout, "healthy on /health")

    def _etcd_healthy(self) -> bool:
        with urllib.request.urlopen(self.etcd_url + "/health", timeout=2) as r:
            return json.loads(r.read()).get("health") == "true"

    def stop_etcd(self) -> None:
        if self._etcd:
            self._etcd.stop()

    # -- kube-apiserver -----------------------------------------------------

    def start_apiserver(self) -> None:
        """Start (or restart, on the same port and etcd) kube-apiserver; wait for /readyz."""
        if self.apiserver_running:
            return
        self.port = self.port or free_port()
        p = self.pki_dir
        self._apiserver = ServerProcess("kube-apiserver", [
            self.binaries / "kube-apiserver",
            f"--etcd-servers={self.etcd_url}",
            f"--secure-port={self.port}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--cert-dir={p}",
            f"--tls-cert-file={p / 'apiserver.crt'}", f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}", f"--token-auth-file={p / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={self.server}/",
            f"--service-account-key-file={p / 'sa.pub'}", f"--service-account-signing-key-file={p / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",  # a 127.0.0.1 endpoint for `kubernetes` is refused anyway
            "--profiling=false", "--v=1",
        ], self.workdir / "kube-apiserver.log").start()
        self._apiserver.wait_ready(self._apiserver_ready, self.ready_timeout, "ready on /readyz")
        self.apiserver_generation += 1

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver only (etcd and its data stay): for fault tests."""
        if self._apiserver:
            self._apiserver.stop()

    @property
    def apiserver_running(self) -> bool:
        return bool(self._apiserver and self._apiserver.running)

    def _apiserver_ready(self) -> bool:
        return self.request("GET", "/readyz", timeout=3)[0] == 200

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        context.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        return context

    def request(self, method: str, path: str, body: object = None, timeout: float = 30,
                content_type: str = "application/json") -> tuple[int, object]:
        """(status, decoded JSON or text) of one admin request to the apiserver, without the kubernetes client."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Content-Type": content_type} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._ssl_context()) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    # -- credentials --------------------------------------------------------

    def _make_pki(self) -> None:
        self.pki_dir.mkdir(parents=True, exist_ok=True)
        self._ca = ca = pki.CertificateAuthority()
        (self.pki_dir / "ca.crt").write_bytes(ca.cert_pem)
        (self.pki_dir / "ca.key").write_bytes(ca.key_pem)  # for controllers that sign (e.g. --cluster-signing-*)
        (self.pki_dir / "ca.key").chmod(0o600)
        ca.issue("kube-apiserver", server=True, ips=("127.0.0.1",),
                 dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                            "kubernetes.default.svc.cluster.local"),
                 ).write(self.pki_dir / "apiserver.crt", self.pki_dir / "apiserver.key")
        ca.issue(ADMIN_USER, organizations=("system:masters",)).write(
            self.pki_dir / "admin.crt", self.pki_dir / "admin.key")
        sa_private, sa_public = pki.service_account_key()
        (self.pki_dir / "sa.key").write_bytes(sa_private)
        (self.pki_dir / "sa.pub").write_bytes(sa_public)
        self.token = os.urandom(24).hex()
        (self.pki_dir / "tokens.csv").write_text(f'{self.token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')

    def _write_kubeconfig(self) -> None:
        admin = pki.KeyPair((self.pki_dir / "admin.crt").read_bytes(), (self.pki_dir / "admin.key").read_bytes())
        self._kubeconfig_file(Path(self.kubeconfig), ADMIN_USER, admin)

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> str:
        """A kubeconfig for another user (client certificate; `groups` become its groups),
        e.g. to test what a CI account with narrow RBAC rights may do. Returns its path."""
        path = self.workdir / f"kubeconfig-{user.replace(':', '_')}"
        self._kubeconfig_file(path, user, self._ca.issue(user, organizations=groups))
        return str(path)

    def proxied_kubeconfig(self, server: str, name: str = "proxied") -> str:
        """An admin kubeconfig that talks to `server` (a proxy in front of this apiserver,
        serving a certificate from `serving_pair`); returns its path."""
        admin = pki.KeyPair((self.pki_dir / "admin.crt").read_bytes(), (self.pki_dir / "admin.key").read_bytes())
        path = self.workdir / f"kubeconfig-{name}"
        self._kubeconfig_file(path, ADMIN_USER, admin, server=server)
        return str(path)

    def serving_pair(self, name: str) -> pki.KeyPair:
        """A serving certificate for 127.0.0.1 from this world's CA (for servers the apiserver
        or its clients must trust: a proxy, a webhook)."""
        return self._ca.issue(name, server=True, ips=("127.0.0.1",), dns_names=("localhost",))

    def _kubeconfig_file(self, path: Path, user: str, pair: pki.KeyPair, server: str | None = None) -> None:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "graysteps-test",
            "clusters": [{"name": "graysteps-test", "cluster": {
                "server": server or self.server, "certificate-authority-data": b64(self._ca.cert_pem)}}],
            "users": [{"name": user, "user": {
                "client-certificate-data": b64(pair.cert_pem), "client-key-data": b64(pair.key_pem)}}],
            "contexts": [{"name": "graysteps-test", "context": {"cluster": "graysteps-test", "user": user}}],
        }
        path.write_text(json.dumps(config, indent=1), encoding="utf-8")  # JSON is valid kubeconfig YAML
        path.chmod(0o600)

    def api_client(self):
        """A kubernetes.client.ApiClient for the admin (system:masters)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig)

    # -- CRDs ---------------------------------------------------------------

    def install_crds(self, path: str | os.PathLike, timeout: float = 60.0) -> list[str]:
        """Create every CRD in the YAML file (existing ones are left alone), wait until
        each is Established and its resources are served. Returns the CRD names."""
        import yaml

        crds = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8"))
                if d and d.get("kind") == "CustomResourceDefinition"]
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        for crd in crds:
            status, answer = self.request("POST", base, crd)
            if status not in (201, 409):
                raise WorldError(f"CRD {crd['metadata']['name']} from {path} was refused ({status}): "
                                 f"{_message(answer)}", step="testworld")
        deadline = time.monotonic() + timeout
        for crd in crds:
            name, spec = crd["metadata"]["name"], crd["spec"]
            served = next(v["name"] for v in spec["versions"] if v.get("storage"))
            list_path = f"/apis/{spec['group']}/{served}/{spec['names']['plural']}?limit=1"
            while not (self._established(base + "/" + name) and self.request("GET", list_path)[0] == 200):
                if time.monotonic() > deadline:
                    raise WorldError(f"CRD {name} was not Established and served within {timeout:.0f}s; "
                                     f"log {self.workdir / 'kube-apiserver.log'}", step="testworld")
                time.sleep(0.1)
        return [c["metadata"]["name"] for c in crds]

    def _established(self, path: str) -> bool:
        status, crd = self.request("GET", path)
        if status != 200:
            return False
        conditions = crd.get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    # -- teardown -----------------------------------------------------------

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd."""
        self.stop_apiserver()
        self.stop_etcd()


def _message(answer: object) -> str:
    return answer.get("message", str(answer)) if isinstance(answer, dict) else str(answer)[:500]
