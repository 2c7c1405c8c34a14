"""A real Prometheus (built from the Go module proxy by
tools/testenv/build-prometheus.sh) scraping the lab's Envoys.

    with Prometheus(workdir, scrape_interval="1s") as prom:
        prom.scrape_envoy("mesh", envoy.admin_port)   # /stats/prometheus on the admin port
        prom.wait_scraped("mesh")
        prom.url                                      # http://127.0.0.1:PORT, the HTTP API

Targets are a file_sd file Prometheus re-reads on change, so an Envoy started
after Prometheus (or restarted on another port) is added without a restart.
The one thing to know: a sample is at most one scrape interval old when a
query sees it; progressive delivery's detection time includes that lag.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from graysteps.adapters.files import write_json_atomically
from graysteps_lab.paths import REPO_ROOT
from graysteps_lab.world.ports import free_port
from graysteps_lab.world.process import SETUP_HINT, ManagedServer, ServerProcess, WorldError

BUILD_SCRIPT = REPO_ROOT / "tools" / "testenv" / "build-prometheus.sh"


def prometheus_binary() -> str:
    """$GRAYSTEPS_PROMETHEUS_BINARY when set (not $GRAYSTEPS_PROMETHEUS: that is the server's URL for
    `graysteps progress`); otherwise the build script's cached binary (built when cold)."""
    override = os.environ.get("GRAYSTEPS_PROMETHEUS_BINARY")
    if override:
        found = Path(override)
    else:
        done = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.splitlines()[-30:])
            raise WorldError(f"{BUILD_SCRIPT} failed (exit {done.returncode}): {SETUP_HINT}\n{tail}", step="testworld")
        found = Path(done.stdout.strip().splitlines()[-1]) / "prometheus"
    if not os.access(found, os.X_OK):
        raise WorldError(f"{found} is missing: run bash {BUILD_SCRIPT} (needs Go), or {SETUP_HINT}", step="testworld")
    return str(found)


class Prometheus(ManagedServer):
    """One Prometheus process with its TSDB and config in `workdir`."""

    def __init__(self, workdir: str | os.PathLike, *, scrape_interval: str = "1s", binary: str | None = None,
                 ready_timeout: float = 60.0):
        self.workdir = Path(workdir)
        self.scrape_interval = scrape_interval
        self.binary = binary
        self.ready_timeout = ready_timeout
        self.port: int | None = None
        self.targets: dict[str, list[str]] = {}
        self._process: ServerProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._process.proc.pid if self._process and self._process.running else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    @property
    def targets_path(self) -> Path:
        return self.workdir / "envoy-targets.json"

    def config(self) -> dict:
        return {
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval,
                       "evaluation_interval": self.scrape_interval},
            "scrape_configs": [{
                "job_name": "envoy",
                "metrics_path": "/stats/prometheus",
                "file_sd_configs": [{"files": [str(self.targets_path)], "refresh_interval": "1s"}],
            }],
        }

    def start(self) -> "Prometheus":
        binary = self.binary or prometheus_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_targets()
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps(self.config(), indent=1), encoding="utf-8")  # JSON is YAML
        self.port = free_port()
        self._process = ServerProcess("prometheus", [
            binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ], self.log_path, cwd=self.workdir).start()
        self._process.wait_ready(lambda: self._get("/-/ready").startswith("Prometheus"), self.ready_timeout,
                                 "ready on /-/ready")
        return self

    def scrape_envoy(self, name: str, admin_port: int, host: str = "127.0.0.1") -> None:
        """Scrape the Envoy whose admin listener is `host:admin_port` from now on, labelled `instance_name=name`."""
        self.targets[name] = [f"{host}:{admin_port}"]
        self._write_targets()

    def forget(self, name: str) -> None:
        """Stop scraping the target `name` (an Envoy that is gone)."""
        if self.targets.pop(name, None) is not None:
            self._write_targets()

    def _write_targets(self) -> None:
        groups = [{"targets": targets, "labels": {"instance_name": name}} for name, targets in sorted(self.targets.items())]
        write_json_atomically(self.targets_path, groups)

    def wait_scraped(self, name: str, timeout: float = 20.0) -> None:
        """Return once the target `name` was scraped successfully (its `up` is 1)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(f'up{{instance_name="{name}"}}')
            if result and result[0]["value"][1] == "1":
                return
            if time.monotonic() > deadline:
                raise WorldError(f"prometheus did not scrape {name} ({self.targets.get(name)}) within {timeout:.0f}s; "
                                 f"see {self.url}/api/v1/targets and {self.log_path}", step="testworld")
            time.sleep(0.2)

    def query(self, promql: str) -> list[dict]:
        """An instant query's result vector (lab helper; the product's client is graysteps.adapters.prometheus)."""
        body = json.loads(self._get("/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
        return body["data"]["result"]

    def query_range(self, promql: str, start: float, end: float, step: float = 1.0) -> list[tuple[float, float]]:
        """(unix time, value) of a one-series expression over [start, end] (lab helper, for charts)."""
        body = json.loads(self._get("/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": promql, "start": start, "end": end, "step": step})))
        result = body["data"]["result"]
        return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []

    def _get(self, path: str, timeout: float = 5.0) -> str:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return r.read(4 << 20).decode()
