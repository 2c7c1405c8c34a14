"""How fast a VirtualService change in the lab's apiserver reaches live traffic through
istiod, and what `--wait` costs on top.

One run, one machine: the lab's apiserver + istiod, a gateway Envoy and a sidecar
Envoy per profile (graysteps_lab.world.mesh), test-a in prod and gray. Patches
alternate test-a between all-prod and all-gray (merge patch in the apiserver):
- traffic: patch -> the gateway's answers come from the new profile (20 in a
  row, timed from the patch to the first of them);
- --wait: patch -> `wait_until_served` returns (what `graysteps route --wait`
  does after its write: istiod holds the new version, every proxy acknowledged
  a push carrying it); then 20 requests are sent, all must meet the new route;
- baseline, from istiod itself in the same run: its debounce (`pilot_debounce_time`:
  first config event -> the merged push is queued) plus its push
  (`pilot_proxy_convergence_time`: push queued -> the proxy has it), each
  averaged over the run.

Goal: median --wait within 1.5x of istiod's convergence (its debounce, 100 ms by
default, plus the push: about 200 ms).

    python bench/sandbox_propagation.py [--patches 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graysteps.adapters.istiod import ConfigChange, newest_push, wait_until_served  # noqa: E402
from graysteps.adapters.probe import probe  # noqa: E402
from graysteps_lab.sandbox.client import seconds_until_profile  # noqa: E402
from graysteps_lab.world.istiod import istio_lab  # noqa: E402
from graysteps_lab.world.mesh import LocalMesh  # noqa: E402

HOST = "test-a.prod.svc.cluster.local"
GOAL_RATIO = 1.5
VS_PATH = "/apis/networking.istio.io/v1/namespaces/prod/virtualservices/test-a"


def virtual_service(profile: str) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "test-a", "namespace": "prod"},
            "spec": {"hosts": ["test-a"], "http": [{"name": "test-a", "route": [
                {"destination": {"host": f"test-a.{profile}.svc.cluster.local"}}]}]}}


HISTOGRAMS = ("pilot_debounce_time", "pilot_proxy_convergence_time")


def histograms(istiod) -> dict[str, tuple[float, float]]:
    """{name: (sum of seconds, count)} of istiod's debounce and convergence histograms."""
    with urllib.request.urlopen(f"http://127.0.0.1:{istiod.monitoring_port}/metrics", timeout=10) as r:
        text = r.read(32 * 1024 * 1024).decode()
    out = {}
    for name in HISTOGRAMS:
        total = re.search(rf"^{name}_sum(?:\{{[^}}]*\}})? (\S+)$", text, re.M)
        count = re.search(rf"^{name}_count(?:\{{[^}}]*\}})? (\S+)$", text, re.M)
        out[name] = (float(total.group(1)), float(count.group(1))) if total and count else (0.0, 0.0)
    return out


def mean_ms(before: dict, after: dict, name: str) -> tuple[float, float]:
    """(mean milliseconds, count) of histogram `name` between two readings."""
    count = after[name][1] - before[name][1]
    return (1000 * (after[name][0] - before[name][0]) / count if count else float("nan")), count


def patch(kube, profile: str) -> str:
    status, answer = kube.request("PATCH", VS_PATH, {"spec": virtual_service(profile)["spec"]},
                                  content_type="application/merge-patch+json")
    assert status == 200, answer
    return answer["metadata"]["resourceVersion"]


def show(name: str, seconds: list[float]) -> float:
    ms = sorted(s * 1000 for s in seconds)
    median = statistics.median(ms)
    print(f"{name:<44} median {median:6.1f} ms   min {ms[0]:6.1f}   p90 {ms[int(0.9 * (len(ms) - 1))]:6.1f}   "
          f"max {ms[-1]:6.1f}   (n={len(ms)})")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=int, default=20, help="patches per measurement (default 20)")
    args = parser.parse_args()
    traffic, waited, late = [], [], 0
    with tempfile.TemporaryDirectory(prefix="graysteps-bench-") as tmp, \
            istio_lab(Path(tmp) / "lab") as (kube, istiod), \
            LocalMesh({"test-a": []}, [virtual_service("prod")], Path(tmp) / "mesh", kube=kube, istiod=istiod) as mesh:
        before = histograms(istiod)
        for i in range(2 * args.patches):
            profile = ("gray", "prod")[i % 2]
            if i % 4 < 2:  # traffic: patch -> the answers come from the new profile
                t0 = time.monotonic()
                patch(kube, profile)
                traffic.append(seconds_until_profile(mesh.url(), HOST, profile, t0))
            else:  # --wait: patch -> istiod says every proxy has it; then the next requests must meet it
                floor = newest_push(istiod.debug)
                t0 = time.monotonic()
                version = patch(kube, profile)
                wait_until_served([ConfigChange("VirtualService", "prod", "test-a", version)], istiod.debug,
                                  after_push=floor, timeout=30)
                waited.append(time.monotonic() - t0)
                answers = probe(mesh.url(), HOST, 20, concurrency=1)
                late += sum(n for answer, n in answers.items() if answer != profile)
        after = histograms(istiod)
    debounce, debounces = mean_ms(before, after, "pilot_debounce_time")
    push, pushes = mean_ms(before, after, "pilot_proxy_convergence_time")
    istiod_ms = debounce + push
    print(f"apiserver patch -> live traffic through istiod ({args.patches} patches each, lab on loopback)")
    print(f"{'baseline: istiod debounce + push':<44} mean   {istiod_ms:6.1f} ms   (debounce {debounce:.1f} ms over "
          f"{debounces:.0f} pushes + push {push:.1f} ms over {pushes:.0f} proxy pushes)")
    t = show("patch -> traffic follows", traffic)
    w = show("patch -> --wait returns", waited)
    print(f"ratio traffic/baseline: {t / istiod_ms:.2f}x; ratio --wait/baseline: {w / istiod_ms:.2f}x "
          f"(goal <= {GOAL_RATIO}x); --wait over traffic: {w - t:+.1f} ms")
    print(f"requests sent right after --wait returned that met the old route: {late} of {20 * len(waited)}")
    ok = w / istiod_ms <= GOAL_RATIO and late == 0
    print("GOAL MET" if ok else "GOAL NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
