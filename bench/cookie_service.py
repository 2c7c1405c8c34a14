"""Benchmark: the cookie service on waitress against the previous http.server one, same run.

    python bench/cookie_service.py [--requests 3000] [--levels 1,200] [--tenants 1000]

Both servers run as their own processes on one SQLite whitelist of `tenants`
ids (half of them asked for): the new one is `graysteps serve-cookie
--no-access-log`; the baseline is the previous implementation
(graysteps/steps/cookie_service.py at commit e68581a, the last with
ThreadingHTTPServer and its listen backlog of 5), loaded from git into a
temporary module. At each concurrency level an asyncio client (its own
process) keeps that many requests in flight, each on a new connection as an
auth center without pooling would, and reports p50/p99 latency (connect
included) and failures. Ratios are new / baseline of the same run.
Exits 1 if the new server's p99 at the highest level is worse than the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "e68581a"

OLD_SERVER = """
import importlib.util, signal, sys, threading
spec = importlib.util.spec_from_file_location("old_cookie_service", sys.argv[1])
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
from graysteps.adapters.db.store import open_store
store = open_store(sys.argv[2])
server = old.CookieServer(old.CookieService(store), "127.0.0.1", 0)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
print(f"serving on {server.url}", flush=True)
server.serve_forever(poll_interval=0.2)
"""

CLIENT = """
import asyncio, json, sys, time
host, port, concurrency, total, tenants = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(",")

async def one(i):
    started = time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
    writer.write(f"GET /v1/gray-cookie?tenant={tenants[i % len(tenants)]} HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n".encode())
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(data[:40])
    return time.perf_counter() - started

async def main():
    latencies, failures, next_i = [], 0, 0
    async def worker():
        nonlocal next_i, failures
        while next_i < total:
            i = next_i; next_i += 1
            try:
                latencies.append(await one(i))
            except Exception:
                failures += 1
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    print(json.dumps({"latencies": latencies, "failures": failures, "seconds": time.perf_counter() - started}))

asyncio.run(main())
"""


def start(argv: list[str], env: dict) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    line = proc.stdout.readline()
    if not line.startswith("serving on http://"):
        proc.kill()
        raise SystemExit(f"bench: server did not start: {line!r}")
    host, port = line.split("//")[1].strip().rsplit(":", 1)
    return proc, host, int(port)


def measure(host: str, port: int, concurrency: int, total: int, tenants: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", CLIENT, host, str(port), str(concurrency), str(total), ",".join(tenants)],
                          capture_output=True, text=True, timeout=600)
    result = json.loads(done.stdout)
    latencies = sorted(result["latencies"])
    if not latencies:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "failures": result["failures"], "rps": 0.0}
    return {
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "failures": result["failures"],
        "rps": len(latencies) / result["seconds"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per level (default 3000; 300 at level 1)")
    parser.add_argument("--levels", default="1,200", help="concurrency levels (default 1,200)")
    parser.add_argument("--tenants", type=int, default=1000)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    with tempfile.TemporaryDirectory(prefix="bench-cookie-") as tmp:
        old_module = Path(tmp) / "old_cookie_service.py"
        old_module.write_text(subprocess.run(["git", "show", f"{BASELINE_COMMIT}:graysteps/steps/cookie_service.py"],
                                             capture_output=True, text=True, check=True, cwd=REPO).stdout)
        db_url = f"sqlite:///{tmp}/whitelist.db"
        env = {**os.environ, "GRAYSTEPS_DB": db_url, "PYTHONPATH": str(REPO)}
        ids = [f"tenant-{i:05d}" for i in range(args.tenants)]
        (Path(tmp) / "ids.txt").write_text("\n".join(ids[: args.tenants // 2]) + "\n")
        subprocess.run([sys.executable, "-m", "graysteps", "whitelist", "sync", "--source", "ids.txt", "--db", db_url,
                        "--summary-only", "--actor", "bench"], check=True, cwd=tmp, env=env, stdout=subprocess.DEVNULL)
        servers = {
            "baseline (http.server)": [sys.executable, "-c", OLD_SERVER, str(old_module), db_url],
            "new (waitress)": [sys.executable, "-m", "graysteps", "serve-cookie", "--port", "0", "--no-access-log"],
        }
        results: dict[tuple[str, int], dict] = {}
        for name, argv in servers.items():
            proc, host, port = start(argv, env)
            try:
                measure(host, port, 8, 200, ids)  # warm-up: caches, threads
                for level in levels:
                    total = args.requests if level > 1 else max(100, args.requests // 10)
                    results[name, level] = measure(host, port, level, total, ids)
            finally:
                proc.terminate()
                proc.wait(timeout=30)

    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(f"{'server':<24} {'clients':>7} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8} {'failed':>6}")
    for (name, level), r in results.items():
        print(f"{name:<24} {level:>7} {r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} {r['rps']:>8.0f} {r['failures']:>6}")
    old, new = list(servers)
    for level in levels:
        a, b = results[old, level], results[new, level]
        print(f"ratio new/baseline at {level:>3} clients: p50 {b['p50_ms'] / a['p50_ms']:.2f}, "
              f"p99 {b['p99_ms'] / a['p99_ms']:.2f}")
    top = max(levels)
    return 0 if results[new, top]["p99_ms"] <= results[old, top]["p99_ms"] and not results[new, top]["failures"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
