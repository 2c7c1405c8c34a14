"""Benchmark: whitelist sync into MariaDB against MariaDB's own LOAD DATA, same run;
cookie decisions per second; cookie service HTTP latency.

    python bench/whitelist_sync.py [--tenants 1000000] [--changes 10000] [--repeat 5]
                                   [--db-url URL --admin-url URL]   # else starts its own MariaDB

Starts a private MariaDB (graysteps_lab.world.mariadb; innodb_buffer_pool_size
raised to 512 MiB for 1M rows, the same for both sides), writes a source file
of N tenant ids, then `repeat` times:
  1. baseline: `LOAD DATA LOCAL INFILE` of that file into an empty copy of the
     whitelist table (same columns, keys, charset), committed;
  2. full sync: the whole path of `graysteps whitelist sync` in process
     (sync_from): read and validate the file (the current ids are read
     meanwhile), lock, diff, bulk insert, audit rows, generation bump, commit;
  3. incremental sync: a second file with `changes` differences (half removed,
     half new) synced into the full store.
Then the incremental sync once more as the real command (a new process, for
information), the cookie decisions per second in process (cached, and straight
from the database), and p50/p99 of `GET /v1/gray-cookie` against `graysteps serve-cookie`
(a subprocess, one keep-alive client).
Goals (issue 5): full sync <= 30 s and <= 2x LOAD DATA; incremental <= 2 s.
Medians over the repeats; the machine's load average is printed with them (the
test machine is shared: absolute times move with it, the ratio much less).
Exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from graysteps.steps.cookie_service import CookieService  # noqa: E402
from graysteps.adapters.db.store import open_store  # noqa: E402
from graysteps.steps.whitelist import sync_from  # noqa: E402

FULL_GOAL_S = 30.0
RATIO_GOAL = 2.0
INCREMENTAL_GOAL_S = 2.0


def write_sources(workdir: Path, tenants: int, changes: int) -> tuple[Path, Path]:
    ids = [f"tenant-{i:08d}" for i in range(tenants)]
    full = workdir / "full.txt"
    full.write_text("\n".join(ids) + "\n")
    rng = random.Random(5)
    removed = set(rng.sample(range(tenants), changes // 2))
    kept = [t for i, t in enumerate(ids) if i not in removed]
    added = [f"newtenant-{i:08d}" for i in range(changes - len(removed))]
    incremental = workdir / "incremental.txt"
    incremental.write_text("\n".join(kept + added) + "\n")
    return full, incremental


def reset_store(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM graysteps_audit"))
        conn.execute(text("TRUNCATE TABLE graysteps_whitelist"))


def load_data(engine, path: Path) -> float:
    """LOAD DATA LOCAL INFILE into an empty copy of the whitelist table; seconds."""
    url = engine.url.update_query_dict({"local_infile": "1"})
    local = create_engine(url)
    try:
        with local.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS bench_load_data"))
            conn.execute(text("CREATE TABLE bench_load_data LIKE graysteps_whitelist"))
        with local.connect() as conn:
            started = time.perf_counter()
            conn.execute(
                text(
                    "LOAD DATA LOCAL INFILE :path INTO TABLE bench_load_data "
                    "LINES TERMINATED BY '\\n' (tenant_id) SET note = NULL, added_by = 'bench', added_at = NOW(6)"
                ),
                {"path": str(path)},
            )
            conn.commit()
            elapsed = time.perf_counter() - started
            loaded = conn.execute(text("SELECT COUNT(*) FROM bench_load_data")).scalar()
            conn.execute(text("DROP TABLE bench_load_data"))
            conn.commit()
    finally:
        local.dispose()
    return elapsed, loaded


def timed_sync(db_url: str, path: Path) -> tuple[float, object]:
    """What `graysteps whitelist sync --source PATH` does after Python start-up."""
    started = time.perf_counter()
    store = open_store(db_url, upgrade=False)
    try:
        result = sync_from(store, str(path), actor="bench", reason="bench")
    finally:
        store.close()
    return time.perf_counter() - started, result


def cookie_decisions(db_url: str, tenants: list[str]) -> tuple[float, float]:
    """(cached decisions/s, uncached decisions/s) in process."""
    store = open_store(db_url)
    try:
        cached = CookieService(store, ttl=3600, generation_check=3600)
        for t in tenants:
            cached.answer(t)
        rounds = 20
        started = time.perf_counter()
        for _ in range(rounds):
            for t in tenants:
                cached.answer(t)
        cached_rate = rounds * len(tenants) / (time.perf_counter() - started)
        uncached = CookieService(store, ttl=0, generation_check=3600)
        sample = tenants[:2000]
        started = time.perf_counter()
        for t in sample:
            uncached.answer(t)
        uncached_rate = len(sample) / (time.perf_counter() - started)
    finally:
        store.close()
    return cached_rate, uncached_rate


def http_latency(db_url: str, tenants: list[str], requests: int) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "graysteps", "serve-cookie", "--port", "0", "--ttl", "5", "--no-access-log"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "GRAYSTEPS_DB": db_url}, cwd=REPO,
    )
    try:
        line = proc.stdout.readline()
        host, port = line.split("//")[1].strip().split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        latencies = []
        for i in range(requests):
            started = time.perf_counter()
            conn.request("GET", f"/v1/gray-cookie?tenant={tenants[i % len(tenants)]}")
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            assert response.status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    latencies.sort()
    return {
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "requests_per_s": len(latencies) / sum(latencies),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--http-requests", type=int, default=5000)
    parser.add_argument("--db-url", help="an existing MySQL/MariaDB test database (its graysteps tables are emptied!)")
    parser.add_argument("--admin-url", help="its admin URL (to allow local_infile); with --db-url")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-whitelist-") as tmp:
        workdir = Path(tmp)
        server = None
        if args.db_url:
            db_url, admin_url = args.db_url, args.admin_url
        else:
            from graysteps_lab.world.mariadb import MariaDB

            server = MariaDB(workdir / "mariadb").start()
            db_url, admin_url = server.url, server.admin_url
        try:
            return run(args, workdir, db_url, admin_url)
        finally:
            if server:
                server.stop()


def run(args, workdir: Path, db_url: str, admin_url: str | None) -> int:
    if admin_url:
        admin = create_engine(admin_url)
        with admin.begin() as conn:
            conn.execute(text("SET GLOBAL local_infile = 1"))
            conn.execute(text("SET GLOBAL innodb_buffer_pool_size = 536870912"))
            pool = conn.execute(text("SELECT @@innodb_buffer_pool_size, VERSION()")).one()
        admin.dispose()
        print(f"MariaDB {pool[1]}, innodb_buffer_pool_size {pool[0] // 2**20} MiB")
    print(f"source: {args.tenants:,} tenants; incremental: {args.changes:,} changes; repeat {args.repeat}")
    full, incremental = write_sources(workdir, args.tenants, args.changes)
    open_store(db_url).close()
    engine = create_engine(make_url(db_url))

    loads, fulls, incs = [], [], []
    for rep in range(1, args.repeat + 1):
        reset_store(engine)
        load_s, loaded = load_data(engine, full)
        assert loaded == args.tenants, loaded
        full_s, result = timed_sync(db_url, full)
        assert len(result.added) == args.tenants and not result.removed
        inc_s, result = timed_sync(db_url, incremental)
        assert len(result.added) + len(result.removed) == args.changes, (len(result.added), len(result.removed))
        loads.append(load_s)
        fulls.append(full_s)
        incs.append(inc_s)
        print(f"  run {rep}: LOAD DATA {load_s:6.2f} s | full sync {full_s:6.2f} s ({full_s / load_s:.2f}x) "
              f"| incremental {inc_s:5.2f} s")

    timed_sync(db_url, full)  # back to the full list, then the incremental sync as the command, Python start-up included
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "graysteps", "whitelist", "sync", "--source", str(incremental), "--summary-only"],
        capture_output=True, text=True, env={**os.environ, "GRAYSTEPS_DB": db_url}, cwd=REPO,
    )
    cli_s = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    load_s, full_s, inc_s = statistics.median(loads), statistics.median(fulls), statistics.median(incs)
    ratio = statistics.median(f / l for f, l in zip(fulls, loads))
    tenants = [f"tenant-{i:08d}" for i in range(0, args.tenants, max(1, args.tenants // 5000))][:5000]
    tenants += [f"stranger-{i}" for i in range(len(tenants))]
    cached_rate, uncached_rate = cookie_decisions(db_url, tenants)
    latency = http_latency(db_url, tenants, args.http_requests)
    engine.dispose()

    goals = [
        (f"full sync {full_s:.2f} s <= {FULL_GOAL_S:.0f} s", full_s <= FULL_GOAL_S),
        (f"full sync / LOAD DATA = {ratio:.2f}x <= {RATIO_GOAL:.0f}x (LOAD DATA {load_s:.2f} s)", ratio <= RATIO_GOAL),
        (f"incremental sync {inc_s:.2f} s <= {INCREMENTAL_GOAL_S:.0f} s", inc_s <= INCREMENTAL_GOAL_S),
    ]
    print(f"medians (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):")
    for text_, ok in goals:
        print(f"  {'PASS' if ok else 'FAIL'}  {text_}")
    print(f"  incremental sync as the command (`graysteps whitelist sync`, Python start-up included): {cli_s:.2f} s")
    print(f"  cookie decisions in process: {cached_rate:,.0f}/s cached, {uncached_rate:,.0f}/s from MariaDB")
    print(f"  HTTP GET /v1/gray-cookie ({args.http_requests} requests, 1 keep-alive client): "
          f"p50 {latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms, {latency['requests_per_s']:,.0f} req/s")
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
