"""Pods that really run, without a kubelet: kube-controller-manager (Deployments
become ReplicaSets become Pods), kube-scheduler (Pods are bound to nodes) and
kwok (fake nodes whose pods become Running and Ready), all against a KubeWorld.

    with KubeWorld(tmp / "kube") as kube, Workloads(kube, tmp / "workloads") as workloads:
        ...  # a Deployment now rolls out like on a real cluster

The binaries come from tools/testenv/build.sh (the same wrapper module as the
apiserver; kwok from `go install`). kwok's stages (node-initialize,
node-heartbeat, pod-ready, pod-complete, pod-delete) are read from the kwok
module in the Go module cache.

Only these controllers run: deployment, replicaset. Do not share the
apiserver with tests that set Deployment status by hand: the deployment
controller would overwrite it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from graysteps_lab.world.kube import KubeWorld, control_plane_binaries
from graysteps_lab.world.process import SETUP_HINT, ServerProcess, WorldError

KWOK_MODULE = "sigs.k8s.io/kwok@v0.8.0"
KWOK_STAGES = ("node/fast/node-initialize.yaml", "node/heartbeat/node-heartbeat.yaml",
               "pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml")
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def kwok_stages_dir() -> Path:
    """kustomize/stage of the kwok module, downloaded into the Go module cache if needed."""
    try:
        done = subprocess.run(["go", "mod", "download", "-json", KWOK_MODULE], capture_output=True, text=True,
                              cwd="/", env={**os.environ, "GO111MODULE": "on", "GOFLAGS": "-mod=mod"}, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise WorldError(f"cannot fetch {KWOK_MODULE} for kwok's stages ('go' missing?): {SETUP_HINT}",
                         step="testworld") from e
    if done.returncode != 0:
        raise WorldError(f"`go mod download {KWOK_MODULE}` failed: {done.stderr.strip()}", step="testworld")
    stages = Path(json.loads(done.stdout)["Dir"]) / "kustomize" / "stage"
    missing = [s for s in KWOK_STAGES if not (stages / s).is_file()]
    if missing:
        raise WorldError(f"{KWOK_MODULE} has no {', '.join(missing)} under kustomize/stage", step="testworld")
    return stages


class Workloads:
    """kube-controller-manager + kube-scheduler + kwok for `kube`, with `nodes` fake nodes."""

    def __init__(self, kube: KubeWorld, workdir: str | os.PathLike, *, nodes: int = 1, ready_timeout: float = 60.0):
        self.kube = kube
        self.workdir = Path(workdir)
        self.node_names = [f"kwok-node-{i}" for i in range(nodes)]
        self.ready_timeout = ready_timeout
        self._processes: list[ServerProcess] = []

    def start(self) -> "Workloads":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        binaries = control_plane_binaries()
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            if not os.access(binaries / name, os.X_OK):
                raise WorldError(f"{binaries / name} is missing: run bash tools/testenv/build.sh, or {SETUP_HINT}",
                                 step="testworld")
        self.workdir.mkdir(parents=True, exist_ok=True)
        stages = kwok_stages_dir()
        config = self.workdir / "kwok-stages.yaml"
        config.write_text("".join("---\n" + (stages / s).read_text(encoding="utf-8") for s in KWOK_STAGES),
                          encoding="utf-8")
        kubeconfig = f"--kubeconfig={self.kube.kubeconfig}"
        self._run("kube-controller-manager", [
            binaries / "kube-controller-manager", kubeconfig, "--controllers=deployment,replicaset",
            "--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false",
            "--concurrent-deployment-syncs=5", "--concurrent-replicaset-syncs=5"])
        self._run("kube-scheduler", [binaries / "kube-scheduler", kubeconfig, "--leader-elect=false",
                                     "--secure-port=0"])
        self._run("kwok", [binaries / "kwok", kubeconfig, "-c", config,
                           f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                           "--cidr=10.244.0.0/16", "--node-ip=127.0.0.1"])
        for name in self.node_names:
            self._add_node(name)
        deadline = time.monotonic() + self.ready_timeout
        while not all(self._node_schedulable(n) for n in self.node_names):
            for p in self._processes:
                if not p.running:
                    raise WorldError(f"{p.name} exited while fake nodes were starting; log {p.log_path}",
                                     step="testworld")
            if time.monotonic() > deadline:
                raise WorldError(f"kwok did not make nodes {self.node_names} Ready within {self.ready_timeout:.0f}s; "
                                 f"log {self.workdir / 'kwok.log'}", step="testworld")
            time.sleep(0.1)

    def _run(self, name: str, argv: list) -> None:
        process = ServerProcess(name, argv, self.workdir / f"{name}.log").start()
        self._processes.append(process)

    def _add_node(self, name: str) -> None:
        resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
        status, answer = self.kube.request("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                         "labels": {"type": "kwok", "kubernetes.io/hostname": name}},
            "status": {"allocatable": resources, "capacity": resources},
        })
        if status not in (201, 409):
            raise WorldError(f"creating fake node {name} was refused ({status}): {answer}", step="testworld")

    def _node_schedulable(self, name: str) -> bool:
        status, node = self.kube.request("GET", f"/api/v1/nodes/{name}")
        if status != 200:
            return False
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in (node.get("status") or {}).get("conditions") or [])
        if ready and node.get("spec", {}).get("taints"):
            # The apiserver adds node.kubernetes.io/not-ready on create; the node-lifecycle
            # controller (not run here) would remove it once kwok reports Ready.
            from kubernetes import client

            with self.kube.api_client() as api:
                client.CoreV1Api(api).patch_node(name, {"spec": {"taints": None}}, _preload_content=False,
                                                 _content_type="application/merge-patch+json")
            return False
        return ready

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()

    def __enter__(self) -> "Workloads":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
