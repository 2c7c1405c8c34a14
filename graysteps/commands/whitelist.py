"""`graysteps whitelist add|remove|list|sync`: the tenant whitelist (graysteps/steps/whitelist.py)."""

from __future__ import annotations

import argparse
import sys

from graysteps.commands._whitelist_options import DB_HELP, add_actor_argument, add_db_argument

NAME = "whitelist"
HELP = "manage the gray tenant whitelist (add, remove, list, sync)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Database: " + DB_HELP
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    for action, what in (("add", "whitelist these tenants"), ("remove", "take these tenants off the whitelist")):
        p = sub.add_parser(action, help=what, description=f"{what.capitalize()}; prints + or - per changed tenant.")
        p.add_argument("tenants", nargs="+", metavar="TENANT", help="tenant id: 1-64 of letters, digits, . _ : -")
        add_db_argument(p)
        p.add_argument("--reason", help="why (recorded in the audit log)")
        add_actor_argument(p)

    p = sub.add_parser("list", help="print the whitelisted tenants, one per line", description="One tenant per line, sorted.")
    add_db_argument(p)

    p = sub.add_parser(
        "sync",
        help="make the whitelist exactly a source file or URL",
        description="Make the whitelist exactly the source, in one transaction. The source is one tenant id per "
        "line or a CSV with a tenant_id column, UTF-8 (BOM allowed); blank lines and duplicates are ignored; any "
        "invalid line rejects the whole source and nothing changes. Prints the diff (+ added, - removed) and a "
        "'#' summary line.",
    )
    p.add_argument("--source", required=True, metavar="FILE|URL", help="a file path or an http(s) URL")
    add_db_argument(p)
    p.add_argument("--dry-run", action="store_true", help="print the diff, change nothing")
    p.add_argument("--reason", help="why (recorded in the audit log)")
    p.add_argument("--allow-empty", action="store_true", help="accept a source without ids (empties the whitelist)")
    p.add_argument("--summary-only", action="store_true", help="print only the summary line, not every changed id")
    add_actor_argument(p)


def run(args: argparse.Namespace) -> int:
    from graysteps.errors import GraystepsError

    try:
        return _run(args)
    except GraystepsError as e:
        e.step = e.step or f"whitelist {args.action}"
        raise


def _run(args: argparse.Namespace) -> int:
    from graysteps.adapters.actor import check_actor
    from graysteps.adapters.db.store import open_store
    from graysteps.model.tenants import validate_tenant_ids
    from graysteps.steps import whitelist

    out = sys.stdout
    if args.action in ("add", "remove"):
        tenants = validate_tenant_ids(args.tenants)  # before opening anything: bad input changes nothing
        actor = check_actor(args.actor)
        store = open_store(args.db)
        try:
            if args.action == "add":
                changed = whitelist.add_tenants(store, tenants, actor=actor, reason=args.reason)
                out.writelines(f"+ {t}\n" for t in changed)
            else:
                changed = whitelist.remove_tenants(store, tenants, actor=actor, reason=args.reason)
                out.writelines(f"- {t}\n" for t in changed)
        finally:
            store.close()
        return 0
    if args.action == "list":
        store = open_store(args.db)
        try:
            out.writelines(f"{t}\n" for t in whitelist.list_tenants(store))
        finally:
            store.close()
        return 0
    # sync: the schema is created/upgraded only once the whole source is read and checked
    store = open_store(args.db, upgrade=False)
    try:
        result = whitelist.sync_from(
            store, args.source, actor=args.actor, reason=args.reason, dry_run=args.dry_run, allow_empty=args.allow_empty
        )
    finally:
        store.close()
    if not args.summary_only:
        out.writelines(f"{line}\n" for line in whitelist.diff_lines(result))
    out.write(whitelist.summary_line(result) + "\n")
    return 0
