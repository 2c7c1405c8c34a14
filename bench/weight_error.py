"""How close does real Envoy get to the weight graysteps asks for?

Sends N requests through the lab's gateway Envoy (configured by istiod from the
`weight` strategy's VirtualService) to a prod and a gray backend, R times per (weight, N), and
prints the observed gray share, its error, and the binomial standard error
sqrt(p(1-p)/N) for comparison.

    python bench/weight_error.py [--weights 20 50] [--n 1000 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graysteps_lab.world.istiod import istio_lab  # noqa: E402
from graysteps_lab.world.mesh import LocalMesh  # noqa: E402
from tests.lab.dataplane.virtual_services import strategy_vs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(f"{'weight':>6} {'N':>6} {'run':>3} {'gray':>6} {'observed':>9} {'error':>8} {'1 s.e.':>7}")
    with tempfile.TemporaryDirectory() as work, istio_lab(Path(work) / "lab") as (kube, istiod):
        with LocalMesh({"test-a": []}, [strategy_vs("test-a", "rollback")], Path(work) / "mesh",
                       kube=kube, istiod=istiod) as mesh:
            for weight in args.weights:
                mesh.update([strategy_vs("test-a", "weight", weight)])
                p = weight / 100
                for n in args.n:
                    errors = []
                    for run in range(1, args.repeat + 1):
                        counts = mesh.probe("test-a", n, concurrency=args.concurrency)
                        assert sum(counts.values()) == n and set(counts) <= {"gray", "prod"}, counts
                        share = counts["gray"] / n
                        errors.append(share - p)
                        print(f"{weight:>5}% {n:>6} {run:>3} {counts['gray']:>6} {share:>9.4f} "
                              f"{share - p:>+8.4f} {math.sqrt(p * (1 - p) / n):>7.4f}")
                    print(f"{'':>6} {n:>6} max |error| over {args.repeat} runs: {max(abs(e) for e in errors):.4f} "
                          f"({max(abs(e) for e in errors) * 100:.2f} percentage points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
