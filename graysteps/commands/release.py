"""`graysteps release --plan FILE [--dry-run]`: apply a release plan all-or-nothing.

Validates the whole plan against the catalog, checks every change with the
apiserver's dry run, writes the services in order, and if one fails puts the
others back. Prints one line per service; records the run (who, when, what,
result) in the audit table and, on request, as JSON and JUnit files. `--wait`
returns only once Istio serves every change the plan wrote.
"""

from __future__ import annotations

from graysteps.commands._cluster_options import add_catalog_argument, add_kubeconfig_argument
from graysteps.commands._types import output_file
from graysteps.commands._wait_options import add_wait_arguments, istio_wait, served_line

NAME = "release"
HELP = "apply a release plan (several services and their strategies) all-or-nothing"


def add_arguments(parser) -> None:
    parser.add_argument("--plan", required=True, metavar="FILE", help="plan file (YAML): services and their strategies")
    parser.add_argument("--dry-run", action="store_true", help="check every change with the apiserver's dry run; write nothing")
    add_catalog_argument(parser)
    add_kubeconfig_argument(parser)
    parser.add_argument("--db", metavar="URL", help="audit database (default: $GRAYSTEPS_DB, else the default SQLite file)")
    parser.add_argument("--actor", metavar="NAME", help="who runs the plan, for the audit record (default: $BUILD_USER_ID, else $USER)")
    parser.add_argument("--report", metavar="FILE", type=output_file, help="write the outcome as JSON here")
    parser.add_argument("--junit", metavar="FILE", type=output_file, help="write the outcome as a JUnit XML report here")
    add_wait_arguments(parser)


def format_outcomes(result) -> list[str]:
    width = max((len(o.service) for o in result.outcomes), default=0)
    lines = []
    for o in result.outcomes:
        line = f"{o.status:<24} {o.service:<{width}}  {o.strategy:<12} {o.virtual_service}"
        if o.message:
            line += f"  - {o.message}"
        lines.append(line)
        lines.extend(f"warning: {o.service}: {w}" for w in o.warnings)
    return lines


def run(args) -> int:
    import sys

    from graysteps.adapters.actor import check_actor
    from graysteps.adapters.audit.releases import record_plan_run, record_plan_start
    from graysteps.adapters.kube.client import api_client
    from graysteps.errors import GraystepsError
    from graysteps.model.catalog import load_catalog
    from graysteps.model.plan import load_plan
    from graysteps.steps import release as plans

    wait = None if args.dry_run else istio_wait(args, NAME)
    catalog = load_catalog(args.catalog)
    plan = load_plan(args.plan, catalog)
    client = api_client(args.kubeconfig)
    if wait:
        wait.before()
    actor = check_actor(args.actor)
    if not args.dry_run:
        # Recorded before the first write: a run killed half-way still shows in the audit table.
        earlier = record_plan_start(plan.name, description=plan.description, actor=actor, db_url=args.db,
                                    detail={"file": plan.path, "sha256": plan.sha256, "services": plan.summary()})
        if earlier is not None:
            print(f"warning: the run of plan {plan.name} that {earlier.actor} started at {earlier.at:%Y-%m-%d %H:%M:%S} UTC "
                  "never recorded its end (killed, or still running); this run converges the services to the plan",
                  file=sys.stderr)
    result = plans.apply_plan(plan, api_client=client, dry_run=args.dry_run, actor=actor)

    problems = []
    if args.report:
        plans.write_json_report(result, args.report)
    if args.junit:
        plans.write_junit_report(result, args.junit)
    if not args.dry_run:
        try:
            record_plan_run(plan.name, outcome=result.result, detail=result.to_dict(), actor=result.actor,
                            db_url=args.db)
        except GraystepsError as e:
            problems.append(f"its audit record was not written: {e.message}")

    for line in format_outcomes(result):
        print(line)
    if args.dry_run:
        for o in result.outcomes:
            if o.diff:
                print(o.diff.rstrip("\n"))
    print(f"plan {plan.name}: {result.result}")
    if not result.ok:
        still = f"; STILL CHANGED: {', '.join(result.changed)}" if result.changed else ""
        also = f"; {problems[0]}" if problems else ""
        nxt = "; fix the cause, then rerun the plan: it converges" if result.result != "failed-nothing-changed" else ""
        raise GraystepsError(f"plan {plan.name} ({plan.path}) {result.result}: {result.error}{still}{also}{nxt}", step=NAME, result=result)
    if problems:
        raise GraystepsError(f"plan {plan.name} applied, but {problems[0]}", step=NAME, result=result)
    if wait:
        from graysteps.adapters.istiod import ConfigChange

        print(f"plan {plan.name}: " + served_line(wait.served([
            ConfigChange("VirtualService", *o.virtual_service.split("/", 1), o.after_resource_version)
            for o in result.outcomes if o.status == plans.APPLIED and o.after_resource_version])), flush=True)
    return 0
