"""How fast a VirtualService change in the sandbox's apiserver reaches live traffic.

Same run, same machine:
- baseline: a LocalMesh (same translator, same Envoy file reload) given the new
  VirtualService directly: file rewrite -> traffic follows, no apiserver;
- sandbox: a merge patch of the VirtualService in the sandbox's kube-apiserver
  -> watch event -> translate -> file rewrite -> traffic follows.
Both are timed by sending requests until 20 answers in a row come from the new
profile. Reports medians and the sandbox/baseline ratio (the apiserver + watch
overhead).

    python bench/sandbox_propagation.py [--patches 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graysteps_lab.sandbox import control  # noqa: E402
from graysteps_lab.sandbox.client import seconds_until_profile  # noqa: E402
from graysteps_lab.sandbox.state import SandboxDir  # noqa: E402
from graysteps_lab.world.mesh import LocalMesh  # noqa: E402


def virtual_service(profile: str) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "test-a", "namespace": "prod"},
            "spec": {"hosts": ["test-a"], "http": [{"name": "test-a", "route": [
                {"destination": {"host": f"test-a.{profile}.svc.cluster.local"}}]}]}}


def baseline(patches: int, workdir: Path) -> list[float]:
    out = []
    with LocalMesh({"test-a": [], "test-b": []}, [virtual_service("prod")], workdir) as mesh:
        for i in range(patches):
            profile = ("gray", "prod")[i % 2]
            t0 = time.monotonic()
            mesh.update([virtual_service(profile)], timeout=10)
            out.append(seconds_until_profile(mesh.url(), "test-a", profile, t0))
    return out


def through_apiserver(patches: int, sandbox: SandboxDir) -> list[float]:
    from kubernetes import client

    from graysteps.adapters.kube.client import api_client

    state = sandbox.read_state()
    out = []
    with api_client(state["env"]["KUBECONFIG"]) as api:
        objects = client.CustomObjectsApi(api)
        for i in range(patches):
            profile = ("gray", "prod")[i % 2]
            t0 = time.monotonic()
            objects.patch_namespaced_custom_object("networking.istio.io", "v1", "prod", "virtualservices", "test-a",
                                                   {"spec": virtual_service(profile)["spec"]},
                                                   _content_type="application/merge-patch+json")
            out.append(seconds_until_profile(state["ingress"], "test-a", profile, t0))
    return out


def show(name: str, seconds: list[float]) -> float:
    ms = sorted(s * 1000 for s in seconds)
    median = statistics.median(ms)
    print(f"{name:<34} median {median:6.1f} ms   min {ms[0]:6.1f}   p90 {ms[int(0.9 * (len(ms) - 1))]:6.1f}   "
          f"max {ms[-1]:6.1f}   (n={len(ms)})")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="graysteps-bench-") as tmp:
        direct = baseline(args.patches, Path(tmp) / "mesh")
        sandbox = SandboxDir(Path(tmp) / "sandbox")
        control.up(sandbox, workloads=False, out=lambda line: None)
        try:
            live = through_apiserver(args.patches, sandbox)
        finally:
            control.down(sandbox, out=lambda line: None)
    base = show("baseline: file rewrite -> traffic", direct)
    full = show("sandbox: apiserver patch -> traffic", live)
    print(f"ratio sandbox/baseline: {full / base:.2f}x (the apiserver write + watch + translation on top of Envoy's reload)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
