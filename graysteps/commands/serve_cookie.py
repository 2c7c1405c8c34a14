"""`graysteps serve-cookie`: the cookie generator the auth center calls (HTTP)."""

from __future__ import annotations

import argparse
import signal
import threading

from graysteps.commands._whitelist_options import add_cookie_arguments, add_db_argument, cookie_settings_and_key

NAME = "serve-cookie"
HELP = "serve GET /v1/gray-cookie?tenant=T (JSON {tenant, gray} + Set-Cookie) and /healthz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0 picks a free one)")
    add_db_argument(parser)
    parser.add_argument("--ttl", type=float, default=5.0, metavar="SECONDS", help="cache answers this long (default: 5)")
    parser.add_argument(
        "--generation-check",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="look for whitelist changes (sync, add, remove) this often and drop the cache (default: 1)",
    )
    add_cookie_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from graysteps.errors import InvalidInput
    from graysteps.steps.cookie_service import CookieServer, CookieService
    from graysteps.adapters.db.store import open_store

    if args.ttl < 0 or args.generation_check < 0:
        raise InvalidInput(f"--ttl {args.ttl} / --generation-check {args.generation_check}: use 0 or more seconds")
    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"--port {args.port}: use 0..65535")
    settings, key = cookie_settings_and_key(args)
    store = open_store(args.db)
    service = CookieService(store, settings, key=key, ttl=args.ttl, generation_check=args.generation_check)
    try:
        server = CookieServer(service, args.host, args.port)
    except OSError as e:
        store.close()
        raise InvalidInput(f"cannot listen on {args.host}:{args.port}: {e.strerror}") from e

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"serving on {server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        store.close()
    return 0
