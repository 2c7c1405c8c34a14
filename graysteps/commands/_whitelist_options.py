"""Options shared by the whitelist, cookie and serve-cookie commands (no heavy imports here)."""

from __future__ import annotations

import argparse

from graysteps.commands._types import int_in

DB_HELP = (
    "whitelist database as an SQLAlchemy URL (sqlite:///PATH or mysql+pymysql://USER:PASS@HOST/DB); "
    "default: $GRAYSTEPS_DB, else ${XDG_DATA_HOME:-~/.local/share}/graysteps/whitelist.db. "
    "Prefer $GRAYSTEPS_DB for URLs with a password (argv is visible to other users)"
)


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help=DB_HELP)


def add_actor_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", help="who to record in the audit log (default: $BUILD_USER_ID, else $USER)")


def add_cookie_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cookie")
    group.add_argument("--cookie-name", default="tenantGray", help="cookie name (default: tenantGray)")
    group.add_argument("--domain", help="Domain attribute (default: none, host-only cookie)")
    group.add_argument("--max-age", type=int_in(0, 400 * 86400), metavar="SECONDS", help="Max-Age attribute (default: session cookie)")
    group.add_argument("--same-site", default="Lax", choices=["Strict", "Lax", "None"], help="SameSite (default: Lax)")
    group.add_argument("--secure", action="store_true", help="add the Secure attribute")
    group.add_argument(
        "--signed",
        action="store_true",
        help="HMAC-signed cookie (a JWT, HS256) that clients cannot forge; key from $GRAYSTEPS_COOKIE_KEY_FILE, "
        "--key-file or $GRAYSTEPS_COOKIE_KEY (never an argument)",
    )
    group.add_argument("--key-file", metavar="PATH", help="file holding the signing key (with --signed)")


def cookie_settings_and_key(args: argparse.Namespace):
    """(CookieSettings, key or None) from the cookie options."""
    from graysteps.model.cookie import CookieSettings, load_cookie_key

    settings = CookieSettings(
        name=args.cookie_name, domain=args.domain, max_age=args.max_age, same_site=args.same_site, secure=args.secure
    )
    key = load_cookie_key(args.key_file) if args.signed else None
    return settings, key
