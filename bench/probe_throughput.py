"""Requests/s through a real Envoy: a naive Python client vs graysteps.adapters.probe.

Same run, same Envoy (a static config: one listener, a virtual host per
backend), same backends. The naive client is what one writes
first: one keep-alive http.client connection, Nagle left on, one request after
the other. The backends are graysteps' own (Nagle off), plus one stdlib
ThreadingHTTPServer with Nagle left on, which is the trap TESTENV.md describes
(~28 req/s).

    python bench/probe_throughput.py [--n 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graysteps.adapters.probe import probe  # noqa: E402
from graysteps_lab.world.backend import Backend  # noqa: E402
from graysteps_lab.world.envoy import Envoy  # noqa: E402
from graysteps_lab.world.ports import free_port  # noqa: E402


def naive(port: int, host: str, n: int) -> float:
    """Requests/s of one plain keep-alive http.client connection, sequential."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.perf_counter()
    for _ in range(n):
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
    conn.close()
    return n / (time.perf_counter() - t0)


def naive_new_connection(port: int, host: str, n: int) -> float:
    """Requests/s with a new http.client connection for every request."""
    t0 = time.perf_counter()
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status == 200, resp.status
    return n / (time.perf_counter() - t0)


def with_probe(port: int, host: str, n: int, concurrency: int) -> float:
    t0 = time.perf_counter()
    counts = probe(f"http://127.0.0.1:{port}/", host, n, concurrency=concurrency)
    seconds = time.perf_counter() - t0
    assert sum(v for k, v in counts.items() if not k.startswith(("HTTP", "error"))) == n, counts
    return n / seconds


def static_bootstrap(port: int, backends: dict[str, tuple[str, int]]) -> dict:
    """Envoy with one HTTP listener on `port`: Host NAME goes to the backend named NAME."""
    return {"static_resources": {
        "listeners": [{"name": "bench", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                           "typed_config": {
                               "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                               "stat_prefix": "bench",
                               "route_config": {"virtual_hosts": [
                                   {"name": name, "domains": [name], "routes": [{"match": {"prefix": "/"},
                                                                                  "route": {"cluster": name}}]}
                                   for name in backends]},
                               "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                                   "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}],
        "clusters": [{"name": name, "type": "STATIC", "connect_timeout": "1s",
                      "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
                          "address": {"socket_address": {"address": host, "port_value": bport}}}}]}]}}
                     for name, (host, bport) in backends.items()],
    }}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per measurement (default 2000)")
    parser.add_argument("--nagle-n", type=int, default=100, help="requests against the Nagle-on backend (default 100)")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    fast, slow = Backend("fast", "prod"), Backend("slow", "prod", nagle=True)
    port = free_port()
    with fast, slow, tempfile.TemporaryDirectory() as work:
        boot = static_bootstrap(port, {"fast": fast.address, "slow": slow.address})
        with Envoy(boot, work, log_level="warning"):
            for warm in ("fast", "slow"):
                probe(f"http://127.0.0.1:{port}/", warm, 20, concurrency=2)
            rows = [
                ("naive client, stdlib backend with Nagle on", naive(port, "slow", args.nagle_n)),
                ("naive client, graysteps backend (NODELAY)", naive(port, "fast", args.n)),
                ("naive client, new connection per request", naive_new_connection(port, "fast", args.n)),
                ("probe, concurrency 1", with_probe(port, "fast", args.n, 1)),
                (f"probe, concurrency {args.concurrency}", with_probe(port, "fast", args.n, args.concurrency)),
            ]
    baseline = rows[1][1]
    print(f"requests/s through Envoy (n={args.n}; Nagle-on row n={args.nagle_n})")
    for name, rate in rows:
        print(f"  {name:<45} {rate:9.0f} req/s   x{rate / baseline:5.2f} vs naive")
    print(f"ratio probe(concurrency {args.concurrency}) / naive client: {rows[-1][1] / baseline:.2f}")
    print(f"ratio probe(concurrency {args.concurrency}) / naive client against a Nagle-on backend: {rows[-1][1] / rows[0][1]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
