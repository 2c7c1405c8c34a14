"""`graysteps serve-cookie`: the cookie generator the auth center calls (HTTP)."""

from __future__ import annotations

import argparse
import signal

from graysteps.commands._types import duration, port_number, positive_int
from graysteps.commands._whitelist_options import add_cookie_arguments, add_db_argument, cookie_settings_and_key

NAME = "serve-cookie"
HELP = "serve GET /v1/gray-cookie?tenant=T (JSON {tenant, gray} + Set-Cookie) and /healthz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8080, help="port (default: 8080; 0 picks a free one)")
    add_db_argument(parser)
    parser.add_argument("--ttl", type=duration, default=5.0, metavar="SECONDS", help="cache answers this long (default: 5)")
    parser.add_argument(
        "--generation-check",
        type=duration,
        default=1.0,
        metavar="SECONDS",
        help="look for whitelist changes (sync, add, remove) this often and drop the cache (default: 1)",
    )
    limits = parser.add_argument_group("server limits")
    limits.add_argument("--threads", type=positive_int, default=8, help="requests handled at once (default: 8)")
    limits.add_argument("--connection-limit", type=positive_int, default=1000,
                        help="open connections at most (default: 1000)")
    limits.add_argument("--idle-timeout", type=positive_int, default=30, metavar="SECONDS",
                        help="close a connection idle or stalled this long (default: 30)")
    parser.add_argument("--no-access-log", action="store_true",
                        help="do not write the access log (one JSON line per request on stderr)")
    add_cookie_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from graysteps.errors import InvalidInput
    from graysteps.steps.cookie_service import CookieServer, CookieService, ServerLimits, json_lines_log
    from graysteps.adapters.db.store import open_store

    settings, key = cookie_settings_and_key(args)
    store = open_store(args.db)  # the service prepares its database: a sync may come after it starts
    service = CookieService(store, settings, key=key, ttl=args.ttl, generation_check=args.generation_check)
    limits = ServerLimits(threads=args.threads, connection_limit=args.connection_limit, channel_timeout=args.idle_timeout)
    try:
        server = CookieServer(service, args.host, args.port, limits=limits,
                              access_log=None if args.no_access_log else json_lines_log(sys.stderr))
    except (OSError, ValueError) as e:  # ValueError: an address waitress refuses, e.g. ''
        store.close()
        raise InvalidInput(f"cannot listen on {args.host!r}:{args.port}: {getattr(e, 'strerror', None) or e}") from e

    def stop(*_):
        raise SystemExit(0)  # in the serving thread: waitress finishes the requests in flight, then returns

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"serving on {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
        store.close()
    return 0
