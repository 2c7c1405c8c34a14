"""Container images without a Docker daemon: podman's Docker-compatible API
(`podman system service`, vfs storage, its own root under `workdir`) and
Debian's `docker-registry` on a loopback port, which podman trusts as an
insecure (plain HTTP) registry through its own registries.conf.

    with Registry(tmp / "registry") as registry, \\
         Podman(tmp / "podman", insecure_registries=[registry.address]) as podman:
        client = docker.DockerClient(base_url=podman.docker_host)

A Registry made with `users={"name": "password"}` requires a login (htpasswd,
bcrypt hashes; `bcrypt` comes with the `test` extra); podman still reaches it
over plain HTTP and sends the credentials it is given there.

This machine has no working container runtime: builds work for Dockerfiles
made of FROM scratch / COPY / LABEL / ENV, never RUN.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

from graysteps_lab.world.ports import free_port
from graysteps_lab.world.process import SETUP_HINT, ManagedServer, ServerProcess, WorldError, require_executable

PODMAN_HINT = f"apt-get install podman, or {SETUP_HINT}"
REGISTRY_HINT = f"apt-get install docker-registry, or {SETUP_HINT}"
REGISTRY_REALM = "graysteps-test"


class Registry(ManagedServer):
    """Debian's docker-registry (distribution 2.x) on 127.0.0.1:PORT, storage under `workdir`.

    With `users` (name -> password) every request needs HTTP basic auth."""

    def __init__(self, workdir: str | os.PathLike, *, users: Mapping[str, str] | None = None,
                 ready_timeout: float = 30.0):
        self.workdir = Path(workdir)
        self.users = dict(users or {})
        self.port: int | None = None
        self.ready_timeout = ready_timeout
        self._process: ServerProcess | None = None

    @property
    def address(self) -> str:
        """`127.0.0.1:PORT`, the prefix of image names pushed here."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> "Registry":
        binary = require_executable("docker-registry", REGISTRY_HINT)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        settings = {
            "version": 0.1,
            "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": str(self.workdir / "storage")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.address, "secret": os.urandom(16).hex()},
        }
        if self.users:
            settings["auth"] = {"htpasswd": {"realm": REGISTRY_REALM, "path": str(self._write_htpasswd())}}
        config = self.workdir / "config.yml"
        # JSON is YAML: no YAML library needed to write the config.
        config.write_text(json.dumps(settings, indent=1), encoding="utf-8")
        self._process = ServerProcess(
            "docker-registry", [binary, "serve", config], self.workdir / "registry.log"
        ).start()
        ready = 401 if self.users else 200  # with auth, an anonymous GET /v2/ is a challenge
        self._process.wait_ready(lambda: self.get("/v2/")[0] == ready, self.ready_timeout, "answering GET /v2/")
        return self

    def _write_htpasswd(self) -> Path:
        """`users` as an htpasswd file: distribution accepts bcrypt hashes only."""
        try:
            import bcrypt
        except ImportError as e:
            raise WorldError(f"a Registry with users needs the 'bcrypt' package: pip install bcrypt, or {SETUP_HINT}",
                             step="testworld") from e
        path = self.workdir / "htpasswd"  # cost 4, bcrypt's cheapest: a throwaway registry, started often
        path.write_text("".join(
            f"{name}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
            for name, password in self.users.items()), encoding="utf-8")
        return path

    def get(self, path: str, accept: str | None = None, *,
            auth: tuple[str, str] | None = None) -> tuple[int, dict, bytes]:
        """(status, headers, body) of a GET on the registry's HTTP API; `auth` is (user, password)."""
        headers = {"Accept": accept} if accept else {}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()


class Podman(ManagedServer):
    """`podman system service` serving the Docker API on `unix://<workdir>/podman.sock`.

    Images live under `workdir` (vfs driver), not in the machine's podman
    store; `insecure_registries` (e.g. a Registry's `.address`) may be
    pushed to over plain HTTP.
    """

    def __init__(self, workdir: str | os.PathLike, *, insecure_registries: Sequence[str] = (),
                 ready_timeout: float = 60.0):
        self.workdir = Path(workdir)
        self.insecure_registries = list(insecure_registries)
        self.ready_timeout = ready_timeout
        self.socket = self.workdir / "podman.sock"
        self._process: ServerProcess | None = None

    @property
    def docker_host(self) -> str:
        """The DOCKER_HOST for the docker SDK/CLI."""
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """Environment that points podman and its libraries at this instance's config files."""
        return {
            **os.environ,
            "CONTAINERS_REGISTRIES_CONF": str(self.workdir / "registries.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.workdir / "storage.conf"),
            "CONTAINERS_CONF": str(self.workdir / "containers.conf"),
            "TMPDIR": str(self.workdir / "tmp"),
        }

    def start(self) -> "Podman":
        binary = require_executable("podman", PODMAN_HINT)
        if len(str(self.socket)) > 100:
            raise ValueError(f"Podman: socket path {self.socket} is too long for a unix socket; use a shorter workdir")
        root, runroot = self.workdir / "root", self.workdir / "runroot"
        for d in (root, runroot, self.workdir / "tmp", self.workdir / "libpod"):
            d.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self._write_configs(root, runroot)
        self._process = ServerProcess("podman system service", [
            binary, "--root", root, "--runroot", runroot, "--storage-driver", "vfs",
            "--tmpdir", self.workdir / "libpod", "--events-backend", "file", "--cgroup-manager", "cgroupfs",
            "system", "service", "--time", "0", self.docker_host,
        ], self.workdir / "podman.log", env=self.env).start()
        self._process.wait_ready(self._ping, self.ready_timeout, "answering the Docker API /_ping")
        return self

    def _write_configs(self, root: Path, runroot: Path) -> None:
        registries = ['unqualified-search-registries = []']
        for location in self.insecure_registries:
            registries += ["", "[[registry]]", f"location = {json.dumps(location)}", "insecure = true"]
        (self.workdir / "registries.conf").write_text("\n".join(registries) + "\n", encoding="utf-8")
        (self.workdir / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = {json.dumps(str(root))}\nrunroot = {json.dumps(str(runroot))}\n',
            encoding="utf-8")
        (self.workdir / "containers.conf").write_text(
            '[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n', encoding="utf-8")

    def _ping(self) -> bool:
        if not self.socket.exists():
            return False
        import http.client
        import socket as socketlib

        class UnixConnection(http.client.HTTPConnection):
            def connect(conn):
                conn.sock = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
                conn.sock.settimeout(2)
                conn.sock.connect(str(self.socket))

        connection = UnixConnection("localhost", timeout=2)
        try:
            connection.request("GET", "/_ping")
            return connection.getresponse().status == 200
        finally:
            connection.close()
