"""`graysteps cookie --tenant T`: print the gray cookie the auth center hands out."""

from __future__ import annotations

import argparse

from graysteps.commands._whitelist_options import add_cookie_arguments, add_db_argument, cookie_settings_and_key

NAME = "cookie"
HELP = "print the gray cookie for a tenant (tenantGray=1 if whitelisted, else tenantGray=0)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, help="tenant id: 1-64 of letters, digits, . _ : -")
    add_db_argument(parser)
    add_cookie_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from graysteps.model.cookie import gray_cookie
    from graysteps.adapters.db.entries import is_whitelisted
    from graysteps.adapters.db.store import open_existing_store
    from graysteps.model.tenants import validate_tenant_id

    tenant = validate_tenant_id(args.tenant)
    settings, key = cookie_settings_and_key(args)
    store = open_existing_store(args.db)
    gray = False  # no database yet: nobody is whitelisted, and reading creates nothing
    if store is not None:
        try:
            with store.read() as conn:
                gray = is_whitelisted(conn, tenant)
        finally:
            store.close()
    print(gray_cookie(tenant, gray, settings, key=key))
    return 0
