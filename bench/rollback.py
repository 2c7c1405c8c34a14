"""Benchmark: `graysteps rollback --all` against a loop of `kubectl patch`, same run.

    python bench/rollback.py [--sizes 60,600] [--repeat 3] [--workers 16]

Starts its own real control plane (etcd + kube-apiserver with Istio's CRDs,
graysteps_lab.world.kube), then for each size N:
  1. writes a catalog of N services and puts each one's VirtualService on the
     whitelist strategy (gray routes present);
  2. times the whole command `graysteps rollback --all` (a new process: Python
     start-up, catalog, LIST, N writes), checks every VirtualService is on prod;
  3. times it again on the fleet already on prod (safe to repeat: no writes),
     then the rollback again with an audit database (`--db`, SQLite: the
     command also loads SQLAlchemy and writes its `rollback` row);
  4. puts the fleet back on whitelist and times a shell-style loop of
     `kubectl patch --type merge` (one process per service) doing the same
     rollback, and checks the result too.
Goals (issue 7), on the command without an audit database: 60 services in
<= 1 s and >= 10x faster than the loop; 600 services in <= 5 s. Prints a table and exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graysteps_lab.world.kube import KubeWorld  # noqa: E402

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
GOALS = {60: 1.0, 600: 5.0}
MIN_RATIO = 10.0


def write_catalog(path: Path, names: list[str], prod_ns: str, gray_ns: str) -> None:
    """A catalog with `names`, every VirtualService in `prod_ns` (namespace layout)."""
    from graysteps_lab.world.fleet import write_catalog as write

    write(path, names, prod_ns=prod_ns, gray_ns=gray_ns)


def seed_gray(api, catalog_path: Path, workers: int = 16) -> None:
    """Put every catalog service's VirtualService on the whitelist strategy (create or replace)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from graysteps.model.catalog import load_catalog
    from graysteps.steps.rollback import catalog_services
    from graysteps.routing.operations import apply_strategy
    from graysteps.model.strategy import parse_strategy

    objects = client.CustomObjectsApi(api)
    whitelist = parse_strategy("whitelist", None)

    def one(svc) -> None:
        group, version = svc.api_version.split("/", 1)
        args = (group, version, svc.vs_namespace, "virtualservices")
        try:
            live = objects.get_namespaced_custom_object(*args, svc.vs_name)
        except ApiException as e:
            if e.status != 404:
                raise
            objects.create_namespaced_custom_object(*args, apply_strategy(None, svc, whitelist))
            return
        objects.replace_namespaced_custom_object(*args, svc.vs_name, apply_strategy(live, svc, whitelist))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, catalog_services(load_catalog(str(catalog_path)))))


def prod_only_count(api, catalog_path: Path) -> tuple[int, int]:
    """(services whose VirtualService sends everything to prod, services)."""
    from kubernetes import client

    from graysteps.model.catalog import load_catalog
    from graysteps.steps.rollback import catalog_services

    services = catalog_services(load_catalog(str(catalog_path)))
    ns = services[0].vs_namespace
    items = {
        vs["metadata"]["name"]: vs
        for vs in client.CustomObjectsApi(api).list_namespaced_custom_object("networking.istio.io", "v1", ns, "virtualservices")["items"]
    }
    good = 0
    for svc in services:
        prod = svc.destination("prod")
        routes = (items.get(svc.vs_name) or {}).get("spec", {}).get("http") or []
        dests = [d["destination"] for r in routes for d in r.get("route", []) if d.get("weight", 100) > 0]
        if routes and all(d.get("host") == prod.get("host") and d.get("subset") == prod.get("subset") for d in dests):
            good += 1
    return good, len(services)


def time_graysteps(catalog: Path, kubeconfig: str, workers: int, audit_db: str | None = None) -> tuple[float, str]:
    argv = [sys.executable, "-m", "graysteps", "rollback", "--all", "--catalog", str(catalog), "--kubeconfig", kubeconfig,
            "--workers", str(workers)] + (["--db", audit_db] if audit_db else [])
    env = {k: v for k, v in os.environ.items() if k != "GRAYSTEPS_DB"}  # no audit database unless asked
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"graysteps rollback failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds, next(l for l in done.stdout.splitlines() if l.startswith("rollback: "))


def time_kubectl_loop(catalog: Path, kubeconfig: str) -> float:
    """One `kubectl patch` per service, one after the other, as a shell loop would."""
    from graysteps.model.catalog import load_catalog
    from graysteps.steps.rollback import catalog_services

    services = catalog_services(load_catalog(str(catalog)))
    commands = []
    for svc in services:
        patch = {"spec": {"http": [{"route": [{"destination": svc.destination("prod")}]}]}}
        commands.append([KUBECTL, "--kubeconfig", kubeconfig, "-n", svc.vs_namespace, "patch",
                         "virtualservices.networking.istio.io", svc.vs_name, "--type", "merge", "-p", json.dumps(patch)])
    started = time.perf_counter()
    for argv in commands:
        subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="60,600", help="fleet sizes, comma-separated (default 60,600)")
    parser.add_argument("--repeat", type=int, default=3, help="graysteps runs per size (median reported)")
    parser.add_argument("--workers", type=int, default=16, help="graysteps rollback --workers")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="graysteps-bench-rollback-"))
    world = KubeWorld(workdir / "kube")
    print(f"starting etcd + kube-apiserver in {workdir} ...", flush=True)
    world.start()
    rows, missed = [], []
    try:
        api = world.api_client()
        from kubernetes import client

        for n in sizes:
            prod_ns, gray_ns = f"bench{n}-prod", f"bench{n}-gray"
            for ns in (prod_ns, gray_ns):
                client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
            catalog = workdir / f"catalog-{n}.yaml"
            write_catalog(catalog, [f"svc-{i:04d}" for i in range(n)], prod_ns, gray_ns)

            runs = []
            for _ in range(args.repeat):
                seed_gray(api, catalog)
                assert prod_only_count(api, catalog)[0] == 0, "seeding left services on prod"
                seconds, summary = time_graysteps(catalog, world.kubeconfig, args.workers)
                good, total = prod_only_count(api, catalog)
                if good != total:
                    raise SystemExit(f"graysteps rollback left {total - good} of {total} services off prod")
                runs.append(seconds)
            repeat_seconds, repeat_summary = time_graysteps(catalog, world.kubeconfig, args.workers)
            audited = []  # the same rollback, also writing its row to an audit database (SQLite)
            for _ in range(args.repeat):
                seed_gray(api, catalog)
                audited.append(time_graysteps(catalog, world.kubeconfig, args.workers, f"sqlite:///{workdir / 'audit.db'}")[0])

            seed_gray(api, catalog)
            kubectl_seconds = time_kubectl_loop(catalog, world.kubeconfig)
            good, total = prod_only_count(api, catalog)
            if good != total:
                raise SystemExit(f"the kubectl loop left {total - good} of {total} services off prod")

            median = statistics.median(runs)
            ratio = kubectl_seconds / median
            rows.append((n, median, runs, repeat_seconds, statistics.median(audited), kubectl_seconds, ratio, summary, repeat_summary))
            goal = GOALS.get(n)
            if goal is not None and median > goal:
                missed.append(f"{n} services: {median:.2f}s > {goal:.0f}s")
            if n == 60 and ratio < MIN_RATIO:
                missed.append(f"{n} services: only {ratio:.1f}x faster than kubectl (goal {MIN_RATIO:.0f}x)")
    finally:
        world.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nkube-apiserver + etcd on loopback, {os.cpu_count()} cores (load average now {load}), "
          f"workers={args.workers}, median of {args.repeat}; times are the whole command (process start included)")
    print(f"{'services':>8} {'graysteps':>10} {'runs':>24} {'repeat':>8} {'+audit db':>10} {'kubectl loop':>13} {'ratio':>7} {'+audit':>7}")
    for n, median, runs, rep, audited, kc, ratio, summary, rep_summary in rows:
        print(f"{n:>8} {median:>9.3f}s {' '.join(f'{r:.3f}' for r in runs):>24} {rep:>7.3f}s {audited:>9.3f}s "
              f"{kc:>12.2f}s {ratio:>6.1f}x {kc / audited:>6.1f}x")
        print(f"{'':>8} last run: {summary}")
        print(f"{'':>8} repeat:   {rep_summary}")
    if missed:
        print("GOALS MISSED: " + "; ".join(missed))
        return 1
    print("goals met: " + ", ".join(f"{n} in <= {g:.0f}s" for n, g in GOALS.items() if n in sizes) + f", >= {MIN_RATIO:.0f}x the kubectl loop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
