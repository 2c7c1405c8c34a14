"""How fast does `graysteps verify` prove a 20 % split within ±5 points at 99 %?

The lab's gateway Envoy, configured by istiod from a VirtualService with gray
20 / prod 80 (a throwaway apiserver + istiod), routing to graysteps' prod and
gray backends.
Measured in the same run, as the baseline: a naive Python keep-alive client
(one http.client connection, Nagle on, one request after the other) through
the same Envoy.

    python bench/verify_split.py [--runs 5] [--batch 100] [--concurrency 4]

Goal: every run decides in <= 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.probe_throughput import naive  # noqa: E402 (the same naive client as the throughput bench)
from graysteps_lab.world.istiod import istio_lab  # noqa: E402
from graysteps_lab.world.mesh import LocalMesh  # noqa: E402
from graysteps.steps.verify import ProbeSettings, check_share  # noqa: E402

HOST = "test-a"
SERVED = "test-a.prod.svc.cluster.local"  # the name Istio serves host test-a of namespace prod under
GOAL_SECONDS = 2.0


def split_vs(gray: int) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": HOST, "namespace": "prod"},
            "spec": {"hosts": [HOST], "http": [{"name": "primary", "route": [
                {"destination": {"host": f"{HOST}.gray.svc.cluster.local"}, "weight": gray},
                {"destination": {"host": f"{HOST}.prod.svc.cluster.local"}, "weight": 100 - gray}]}]}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100, help="requests between two looks of the test")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--naive-n", type=int, default=300, help="requests for the naive baseline")
    parser.add_argument("--wrong", type=int, default=50, help="also verify 20 against a live split of this many")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work, istio_lab(Path(work) / "lab") as (kube, istiod), \
            LocalMesh({HOST: []}, [split_vs(20)], Path(work) / "mesh", kube=kube, istiod=istiod) as mesh:
        port = mesh.listener("ingress").port
        settings = ProbeSettings(mesh.url(), batch=args.batch, concurrency=args.concurrency)
        check_share(SERVED, ProbeSettings(mesh.url(), max_requests=200, batch=100), 20)  # warm-up
        naive_rate = naive(port, SERVED, args.naive_n)
        runs = [check_share(SERVED, settings, 20) for _ in range(args.runs)]
        mesh.update([split_vs(args.wrong)])
        wrong = check_share(SERVED, settings, 20)

    seconds = [r.seconds for r in runs]
    requests = [r.requests for r in runs]
    rates = [r.requests / r.seconds for r in runs]
    print(f"verify 20% ± 5 at 99% through Envoy, {args.runs} runs (batch {args.batch}, concurrency {args.concurrency})")
    for r in runs:
        print(f"  {r.status:6} {r.seconds:6.3f} s  {r.requests:5d} requests  {r.requests / r.seconds:7.0f} req/s  "
              f"{r.message}")
    print(f"time      median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s (goal <= {GOAL_SECONDS:g} s)")
    print(f"requests  median {statistics.median(requests):.0f}, max {max(requests)}")
    print(f"rate      verify probes {statistics.median(rates):.0f} req/s vs naive keep-alive client {naive_rate:.0f} req/s"
          f" = x{statistics.median(rates) / naive_rate:.1f}")
    print(f"naive client would need {statistics.median(requests) / naive_rate:.1f} s for the median request count")
    print(f"wrong split (live {args.wrong}, expected 20): {wrong.status} in {wrong.seconds:.3f} s, "
          f"{wrong.requests} requests: {wrong.message}")
    ok = all(r.status == "passed" for r in runs) and max(seconds) <= GOAL_SECONDS and wrong.status == "failed"
    print("GOAL MET" if ok else "GOAL NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
