"""`graysteps rollback --all | --service S... [--namespace NS...]`: everything back to prod, now.

Tries every service in parallel (bounded by --workers), prints one line per
service, and exits 1 if any failed. Safe to repeat: a service already on prod
is not written. `--all` means every catalog service, plus any VirtualService
labelled as managed by graysteps that the catalog does not know (reported as
failed, since its prod destination is unknown); see graysteps/fleet_rollback.py.
With an audit database (--db, $GRAYSTEPS_DB), a real run leaves one `rollback`
row in the audit table, written after the rollback so that loading the
database layer or a database outage never delays it (graysteps/release_record.py).
"""

from __future__ import annotations

from graysteps.commands._cluster_options import add_catalog_argument, add_kubeconfig_argument
from graysteps.commands._types import int_in, output_file

NAME = "rollback"
HELP = "roll services back to prod (all traffic to prod), in parallel"


def add_arguments(parser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every service graysteps manages (catalog + managed VirtualServices)")
    which.add_argument("--service", nargs="+", metavar="S", help="these catalog services")
    parser.add_argument("--namespace", nargs="+", default=[], metavar="NS", help="only services whose VirtualService is in these namespaces")
    add_catalog_argument(parser)
    add_kubeconfig_argument(parser)
    parser.add_argument("--workers", type=int_in(1, 64), default=16, metavar="N", help="services rolled back at once (1-64, default 16)")
    parser.add_argument("--dry-run", action="store_true", help="send every write as the apiserver's dry run; change nothing")
    parser.add_argument("--report", metavar="FILE", type=output_file, help="write each service's outcome as JSON here")
    parser.add_argument("--db", metavar="URL", help="audit database for the rollback record (default: $GRAYSTEPS_DB; none: not recorded)")
    parser.add_argument("--actor", metavar="NAME", help="who rolls back, for the audit record (default: $BUILD_USER_ID, else $USER)")


def run(args) -> int:
    import json
    import os
    from pathlib import Path

    from graysteps.steps import rollback as fleet
    from graysteps.adapters.actor import check_actor
    from graysteps.model.catalog import load_catalog
    from graysteps.errors import GraystepsError, InvalidInput
    from graysteps.adapters.db.url import DB_ENV, check_db_url

    # Checked before the first write, without loading the database layer.
    actor = check_actor(args.actor)
    if args.db == "":
        raise InvalidInput("--db is empty: give the audit database URL, or leave --db out", step=NAME)
    audit_db = args.db or os.environ.get(DB_ENV)
    if audit_db:
        check_db_url(audit_db)
    if not 1 <= args.workers <= fleet.MAX_WORKERS:
        raise InvalidInput(f"--workers {args.workers} is not allowed; use 1-{fleet.MAX_WORKERS}", step=NAME)
    catalog = load_catalog(args.catalog)
    services = fleet.select_services(catalog, names=args.service or (), all_services=args.all, namespaces=args.namespace)
    api = fleet.connect(args.kubeconfig, args.workers)
    unmanaged = []
    if args.all:
        try:
            unmanaged = fleet.managed_outside_catalog(catalog, api, args.namespace)
        except Exception as e:  # noqa: BLE001 - the catalog services are still rolled back
            from graysteps.steps.release import failure_reason

            print(f"warning: could not look for managed VirtualServices outside the catalog: {failure_reason(e)}")
    result = fleet.rollback_fleet(services, api=api, workers=args.workers, dry_run=args.dry_run, unmanaged=unmanaged)

    width = max((len(o.service) for o in result.outcomes), default=0)
    for o in result.outcomes:
        line = f"{o.status:<18} {o.service:<{width}}  {o.virtual_service}"
        print(line + (f"  - {o.message}" if o.message else ""))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts().items()))
    print(f"rollback: {len(result.outcomes)} services in {result.seconds:.3f}s: {counts}", flush=True)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    audit_problem = "" if args.dry_run else record(args, result, actor, audit_db)
    if not result.ok:
        names = ", ".join(o.service for o in result.failed[:10]) + (" ..." if len(result.failed) > 10 else "")
        raise GraystepsError(
            f"{len(result.failed)} of {len(result.outcomes)} services NOT rolled back ({names}); "
            f"the others are on prod{audit_problem}. Fix the cause shown above and rerun: it is safe to repeat",
            step=NAME,
            result=result,
        )
    if audit_problem:
        raise GraystepsError(f"all {len(result.outcomes)} services are on prod{audit_problem}", step=NAME, result=result)
    return 0


def record(args, result, actor: str, audit_db: str | None) -> str:
    """Write the rollback's audit row, if there is an audit database; "" or what went wrong."""
    from graysteps.errors import GraystepsError
    from graysteps.adapters.db.url import DB_ENV

    if not audit_db:
        print(f"rollback: not recorded in an audit table (no --db, no ${DB_ENV})")
        return ""
    from graysteps.adapters.audit.releases import record_rollback

    selection = ["--all"] if args.all else list(args.service)
    if args.namespace:
        selection += ["--namespace", *args.namespace]
    try:
        record_rollback(result, selection=" ".join(selection), actor=actor, db_url=audit_db)
    except GraystepsError as e:
        return f"; its audit record was not written: {e.message}"
    return ""
